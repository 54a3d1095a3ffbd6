import numpy as np
import pytest
from PIL import Image, ImageFilter

from genesis3d.errors import ConfigError, InputError
from genesis3d.preprocess.framing import (
    composite,
    crop_box,
    crop_square,
    crop_to_object,
    erode_alpha,
    fit_object,
    object_bbox,
    pad_to_square,
    prepare_silhouette,
    resize_rgba,
    square_box,
)
from genesis3d.preprocess.load import Picture


def _rgba(height=60, width=100, box=(30, 10, 70, 30)):
    rgba = np.zeros((height, width, 4), np.uint8)
    x0, y0, x1, y1 = box
    rgba[y0:y1, x0:x1] = (255, 255, 255, 255)
    return rgba


def test_bbox_threshold_is_strict_and_empty_mask_refused():
    alpha = _rgba()[..., 3].copy()
    alpha[5, 5] = 100  # faint pixel: in the box at threshold 0, out of it at 127
    assert object_bbox(alpha, 127) == (30, 10, 70, 30)
    assert object_bbox(alpha) == (5, 5, 70, 30)
    assert object_bbox(alpha, 99) == (5, 5, 70, 30) and object_bbox(alpha, 100) == (30, 10, 70, 30)
    with pytest.raises(InputError, match="no object found"):
        object_bbox(np.zeros((5, 5), np.uint8))


def test_crop_box_pads_with_transparent_black():
    outside = crop_box(_rgba(), (-5, -5, 35, 15))
    assert outside.shape == (20, 40, 4)
    assert outside[:5].max() == 0 and outside[:, :5].max() == 0  # outside the picture
    assert outside[15:, 35:, 3].min() == 255  # the object's corner at (30, 10)
    with pytest.raises(ConfigError, match="x1 > x0"):
        crop_box(_rgba(), (5, 5, 5, 10))


def test_square_box_rule():
    # object 40 x 20 centred at (50, 20)
    assert square_box((30, 10, 70, 30)) == (30, 0, 70, 40)
    assert square_box((30, 10, 70, 30), scale=1.5) == (20, -10, 80, 50)
    assert square_box((30, 10, 70, 30), margin=0.25) == (20, -10, 80, 50)
    assert square_box((0, 0, 3, 3), scale=1.0) == (0, 0, 3, 3)  # odd sides stay put
    with pytest.raises(ConfigError):
        square_box((0, 0, 3, 3), scale=0)


def test_crop_square_and_crop_to_object():
    square = crop_square(_rgba(), (30, 10, 70, 30), scale=1.5)
    assert square.shape == (60, 60, 4)
    assert square[..., 3].sum() == 20 * 40 * 255  # the whole object, nothing else
    assert square[:10].max() == 0  # above the picture: transparent
    np.testing.assert_array_equal(square[20:40, 10:50, 3], 255)
    assert crop_to_object(_rgba()).shape == (20, 40, 4)
    assert crop_to_object(_rgba(), margin=0.25).shape == (40, 60, 4)


def test_pad_to_square_keeps_centre():
    padded = pad_to_square(_rgba(height=20, width=40, box=(0, 0, 40, 20)))
    assert padded.shape == (40, 40, 4)
    assert padded[10:30, :, 3].min() == 255 and padded[:10, :, 3].max() == 0
    assert padded[30:, :, 3].max() == 0
    odd = pad_to_square(_rgba(height=3, width=6, box=(0, 0, 6, 3)))
    assert odd.shape == (6, 6, 4) and odd[1:4, :, 3].min() == 255 and odd[0].max() == 0


def test_erode_matches_pil_min_filter():
    alpha = np.zeros((9, 9), np.uint8)
    alpha[1:8, 1:8] = 255
    alpha[4, 4] = 90
    eroded = erode_alpha(alpha, 3)
    expected = np.asarray(Image.fromarray(alpha).filter(ImageFilter.MinFilter(3)))
    np.testing.assert_array_equal(eroded, expected)
    assert eroded[2:7, 2:7].min() == 90 and eroded[1].max() == 0 and eroded[3, 3] == 90
    with pytest.raises(ConfigError, match="odd"):
        erode_alpha(alpha, 2)


def test_premultiplied_resize_has_no_dark_fringe():
    rgba = np.zeros((64, 64, 4), np.uint8)  # transparent black around a white square
    rgba[16:48, 16:48] = 255
    for method in ("lanczos", "bicubic", "bilinear"):
        small = resize_rgba(rgba, (16, 16), method)
        visible = small[..., 3] > 10
        assert small[visible][:, :3].min() >= 250, method
    straight = resize_rgba(rgba, (16, 16), premultiplied=False)
    assert straight[straight[..., 3] > 10][:, :3].min() < 200  # what it guards against
    assert resize_rgba(rgba, (64, 64))[..., 3].tolist() == rgba[..., 3].tolist()
    with pytest.raises(ConfigError, match="lanczos"):
        resize_rgba(rgba, (8, 8), "cubic")


def test_composite_exact_values():
    rgba = _rgba()
    rgba[10:30, 30:70, 3] = 128
    out = composite(rgba, (0, 0, 255))
    assert out.shape == (60, 100, 3) and out.dtype == np.uint8
    assert tuple(out[20, 50]) == (128, 128, 255)  # 255*128/255 + 0, and 255 in blue
    assert tuple(out[0, 0]) == (0, 0, 255)
    assert tuple(composite(_rgba(), (7, 8, 9))[20, 50]) == (255, 255, 255)


def test_fit_object_fills_the_fraction():
    fitted = fit_object(_rgba(), 50, fill_fraction=0.8)
    x0, y0, x1, y1 = object_bbox(fitted[..., 3], 127)
    assert fitted.shape == (50, 50, 4)
    assert x1 - x0 == 40 and y1 - y0 == 20  # longest side = 0.8 * 50
    assert abs((x0 + x1) / 2 - 25) <= 0.5 and abs((y0 + y1) / 2 - 25) <= 0.5
    with pytest.raises(ConfigError, match="fill_fraction"):
        fit_object(_rgba(), 50, fill_fraction=1.5)


def test_prepare_silhouette_caps_size_without_upscaling():
    big = _rgba(height=600, width=1000, box=(100, 100, 900, 500))
    cut = prepare_silhouette(
        Picture(big[..., :3], big[..., 3], "<x>", "ARRAY"), max_side=256, margin=0.0
    )
    assert cut.shape == (128, 256, 4)
    small = _rgba()
    small = prepare_silhouette(Picture(small[..., :3], small[..., 3], "<x>", "ARRAY"), margin=0.1)
    assert small.shape == (28, 48, 4)  # 20 x 40 plus 4 pixels per side, not upscaled
