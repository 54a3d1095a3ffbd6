from pathlib import Path

import numpy as np
import pytest

from genesis3d.errors import ConfigError, InputError, MissingDependencyError
from genesis3d.preprocess import load_image, remove_background
from genesis3d.preprocess.load import Picture

CASES = [
    (
        "290af2dd390c_rgb_white.png",
        "290af2dd390c95db88a35b8062fdd2ac1a9c28edc6533bc6a26ab2c83c523c61.webp",
    ),
    (
        "65433d02fc56_rgb_gray.jpg",
        "65433d02fc56dae164719ec29cb9646c0383aa1d0e24f0bb592899f08428d68e.webp",
    ),
    ("T_rgb_blue.png", "T.png"),
]


def _iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    a, b = alpha >= 128, truth >= 128
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize(("photo", "original"), CASES)
def test_auto_cuts_out_the_rgb_test_pictures(testdata_images: Path, photo, original):
    picture = load_image(testdata_images / photo)
    assert not picture.has_real_alpha
    rgba = remove_background(picture)  # no alpha: auto is chosen
    truth = load_image(testdata_images / original).alpha
    assert _iou(rgba[..., 3], truth) >= 0.97
    np.testing.assert_array_equal(rgba[..., :3], picture.rgb)


@pytest.mark.parametrize("backdrop", [(0, 0, 0), (255, 0, 255), (40, 160, 90)])
def test_auto_on_other_backdrop_colours(testdata_images: Path, backdrop):
    original = load_image(testdata_images / CASES[0][1])
    alpha = original.alpha.astype(np.float32)[..., None] / 255.0
    composite = np.round(
        original.rgb * alpha + np.array(backdrop, np.float32) * (1 - alpha)
    ).astype(np.uint8)
    rgba = remove_background(Picture(composite, None, "<composite>", "ARRAY"), "auto")
    assert _iou(rgba[..., 3], original.alpha) >= 0.95


def _ring(size=200, backdrop=(250, 250, 250), color=(180, 40, 40)):
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    ring = (radius < size * 0.35) & (radius > size * 0.18)
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = backdrop
    rgb[ring] = color
    return rgb, ring


def test_holes_stay_holes_and_soft_edges():
    rgb, ring = _ring()
    alpha = remove_background(Picture(rgb, None, "<ring>", "ARRAY"), "auto")[..., 3]
    assert alpha[100, 100] == 0  # the centre of the ring is backdrop
    assert _iou(alpha, ring.astype(np.uint8) * 255) >= 0.97


def test_object_colours_near_the_backdrop_are_not_punched_out():
    rgb, ring = _ring(backdrop=(250, 250, 250), color=(120, 120, 120))
    # a small, textured near-white patch inside the object must stay object
    rng = np.random.default_rng(0)
    patch = (slice(40, 60), slice(95, 105))
    rgb[patch] = (235 + rng.integers(-12, 12, (20, 10, 1))).clip(0, 255).astype(np.uint8)
    alpha = remove_background(Picture(rgb, None, "<ring>", "ARRAY"), "auto")[..., 3]
    assert (alpha[patch] >= 128).mean() > 0.9


def test_alpha_backend_and_errors():
    rgb, ring = _ring()
    with_alpha = Picture(rgb, (ring * 255).astype(np.uint8), "<ring>", "ARRAY")
    np.testing.assert_array_equal(remove_background(with_alpha)[..., 3], with_alpha.alpha)
    with pytest.raises(InputError, match="no transparent pixels"):
        remove_background(Picture(rgb, None, "<ring>", "ARRAY"), "alpha")
    with pytest.raises(InputError, match="matte is empty"):
        remove_background(Picture(rgb, np.zeros(ring.shape, np.uint8), "<empty>", "ARRAY"))
    with pytest.raises(ConfigError, match="alpha, auto, rembg"):
        remove_background(with_alpha, "magic")


def test_non_flat_backdrop_and_blank_pictures_refused():
    noise = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="not a flat backdrop"):
        remove_background(Picture(noise, None, "<noise>", "ARRAY"), "auto")
    blank = np.full((120, 120, 3), 200, np.uint8)
    with pytest.raises(InputError, match="no object found"):
        remove_background(Picture(blank, None, "<blank>", "ARRAY"), "auto")


def test_rembg_missing_names_the_install_line():
    rgb, _ = _ring()
    try:
        import rembg  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.fail(
            "rembg is installed in the test environment; this test checks the message without it"
        )
    with pytest.raises(MissingDependencyError, match=r'pip install "genesis3d\[rembg\]"'):
        remove_background(Picture(rgb, None, "<ring>", "ARRAY"), "rembg")
