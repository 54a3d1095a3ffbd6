import io

import numpy as np
import pytest
from PIL import Image

from genesis3d.errors import InputError
from genesis3d.preprocess import load_image


def _save(image, path, fmt, **kwargs):
    image.save(path, format=fmt, **kwargs)
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_loads_each_accepted_format(tmp_path, fmt):
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    image = Image.new(mode, (20, 10), (200, 100, 50, 128)[: len(mode)])
    picture = load_image(
        _save(
            image,
            tmp_path / f"x.{fmt.lower()}",
            fmt,
            **({"lossless": True} if fmt == "WEBP" else {}),
        )
    )
    assert picture.format == fmt and picture.size == (10, 20) and picture.rgb.shape == (10, 20, 3)
    if fmt == "JPEG":
        assert picture.alpha is None and not picture.has_real_alpha
    else:
        assert picture.has_real_alpha and int(picture.alpha[0, 0]) == 128


def test_content_not_extension(tmp_path):
    png_named_jpg = _save(Image.new("RGB", (4, 4), "red"), tmp_path / "photo.jpg", "PNG")
    assert load_image(png_named_jpg).format == "PNG"
    gif_named_png = _save(Image.new("RGB", (4, 4)), tmp_path / "fake.png", "GIF")
    with pytest.raises(InputError) as error:
        load_image(gif_named_png)
    assert "GIF" in str(error.value) and "PNG, JPEG and WebP" in str(error.value)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InputError, match="not a picture Genesis can read"):
        load_image(text)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="picture not found"):
        load_image(tmp_path / "nope.png")
    path = _save(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)),
        tmp_path / "t.png",
        "PNG",
    )
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_image(path)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), "white")
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, format="JPEG", exif=exif, quality=95)
    picture = load_image(path)
    assert picture.size == (40, 20)  # portrait after orientation
    assert picture.rgb[2, 10, 0] > 200 and picture.rgb[2, 10, 1] < 80  # the strip is now on top


def test_pixel_cap_checked_before_decoding(tmp_path):
    path = _save(Image.new("1", (9000, 9000)), tmp_path / "big.png", "PNG")
    with pytest.raises(InputError) as error:
        load_image(path, max_pixels=1_000_000)
    assert "9000x9000 = 81.0 MP" in str(error.value) and "1 MP limit" in str(error.value)
    # also beyond Pillow's own bomb limit, our message wins
    huge = _save(Image.new("1", (20000, 20000)), tmp_path / "huge.png", "PNG")
    with pytest.raises(InputError, match="MP"):
        load_image(huge)


def test_palette_transparency_grey_alpha_and_16_bit(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (2, 2, 6, 6))
    palette.info["transparency"] = 0
    picture = load_image(_save(palette, tmp_path / "p.png", "PNG", transparency=0))
    assert picture.has_real_alpha and picture.alpha[0, 0] == 0 and picture.alpha[3, 3] == 255
    assert tuple(picture.rgb[3, 3]) == (255, 0, 0)
    grey = Image.fromarray(
        np.dstack([np.full((4, 4), 90, np.uint8), np.full((4, 4), 30, np.uint8)]), "LA"
    )
    picture = load_image(_save(grey, tmp_path / "la.png", "PNG"))
    assert tuple(picture.rgb[0, 0]) == (90, 90, 90) and picture.alpha[0, 0] == 30
    deep = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    picture = load_image(_save(deep, tmp_path / "deep.png", "PNG"))
    assert tuple(picture.rgb[0, 0]) == (255, 255, 255)


def test_bytes_arrays_and_pil_images():
    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), "blue").save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).size == (3, 5)
    assert load_image(Image.new("RGBA", (5, 3))).alpha.shape == (3, 5)
    floats = np.zeros((3, 5, 4), np.float32)
    floats[..., 3] = 1.0
    picture = load_image(floats)
    assert picture.alpha.max() == 255 and not picture.has_real_alpha
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((3, 5)))
    with pytest.raises(InputError, match="uint8"):
        load_image(np.zeros((3, 5, 3), np.int32))
