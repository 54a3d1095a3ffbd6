import numpy as np
import pytest

from genesis3d.errors import InputError
from genesis3d.preprocess.framing import (
    composite,
    crop_box,
    crop_square_scaled,
    crop_to_object,
    erode_alpha,
    fit_object,
    object_bbox,
    pad_to_square,
    prepare_silhouette,
    resize_rgba,
)
from genesis3d.preprocess.load import Picture


def _rgba(height=60, width=100, box=(30, 10, 70, 30)):
    rgba = np.zeros((height, width, 4), np.uint8)
    x0, y0, x1, y1 = box
    rgba[y0:y1, x0:x1] = (255, 255, 255, 255)
    return rgba


def test_bbox_and_empty_mask():
    assert object_bbox(_rgba()[..., 3]) == (30, 10, 70, 30)
    with pytest.raises(InputError, match="matte is empty"):
        object_bbox(np.zeros((5, 5), np.uint8))


def test_crops_margin_square_and_outside_is_transparent():
    assert crop_to_object(_rgba()).shape == (20, 40, 4)
    assert crop_to_object(_rgba(), margin=0.25).shape == (40, 60, 4)
    square = crop_square_scaled(_rgba(), scale=1.5)
    assert square.shape == (60, 60, 4)
    assert square[..., 3].sum() == 20 * 40 * 255
    outside = crop_box(_rgba(), (-5, -5, 5, 5))
    assert outside.shape == (10, 10, 4) and outside[:5, :5].max() == 0


def test_pad_to_square_keeps_centre():
    padded = pad_to_square(_rgba(height=20, width=40, box=(0, 0, 40, 20)))
    assert padded.shape == (40, 40, 4)
    assert padded[10:30, :, 3].min() == 255 and padded[:10, :, 3].max() == 0


def test_erode_alpha():
    alpha = np.zeros((7, 7), np.uint8)
    alpha[1:6, 1:6] = 255
    eroded = erode_alpha(alpha, 3)
    assert eroded[2:5, 2:5].min() == 255 and eroded[1].max() == 0


def test_premultiplied_resize_has_no_dark_fringe():
    rgba = np.zeros((64, 64, 4), np.uint8)  # transparent black around a white square
    rgba[16:48, 16:48] = 255
    small = resize_rgba(rgba, (16, 16))
    visible = small[..., 3] > 10
    assert small[visible][:, :3].min() >= 250  # straight resize would darken the edge
    straight = resize_rgba(rgba, (16, 16), premultiplied=False)
    assert straight[straight[..., 3] > 10][:, :3].min() < 200


def test_composite_and_fit():
    rgba = _rgba()
    rgba[10:30, 30:70, 3] = 128
    out = composite(rgba, (0, 0, 255))
    assert tuple(out[20, 50]) == (128, 128, 255) and tuple(out[0, 0]) == (0, 0, 255)
    fitted = fit_object(_rgba(), 50, fill=0.8)
    bbox = object_bbox(fitted[..., 3])
    assert fitted.shape == (50, 50, 4) and bbox[2] - bbox[0] == 40


def test_prepare_silhouette_caps_size_without_upscaling():
    big = _rgba(height=600, width=1000, box=(100, 100, 900, 500))
    cut = prepare_silhouette(
        Picture(big[..., :3], big[..., 3], "<x>", "ARRAY"), max_side=256, margin=0.0
    )
    assert max(cut.shape[:2]) == 256
    small = prepare_silhouette(
        Picture(_rgba()[..., :3], _rgba()[..., 3], "<x>", "ARRAY"), max_side=256, margin=0.0
    )
    assert small.shape[:2] == (20, 40)
