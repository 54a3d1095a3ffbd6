import io

import numpy as np
import pytest
from PIL import Image

from genesis3d.errors import InputError
from genesis3d.preprocess import load_image
from genesis3d.preprocess.load import header_size, sniff_format


def _encode(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _save(image, path, fmt, **kwargs):
    image.save(path, format=fmt, **kwargs)
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_loads_each_accepted_format_from_path_and_bytes(tmp_path, fmt):
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    image = Image.new(mode, (20, 10), (200, 100, 50, 128)[: len(mode)])
    options = {"lossless": True} if fmt == "WEBP" else {}
    path = _save(image, tmp_path / f"x.{fmt.lower()}", fmt, **options)
    for source in (path, str(path), path.read_bytes()):
        picture = load_image(source)
        assert picture.format == fmt and picture.size == (10, 20)
        assert picture.rgb.shape == (10, 20, 3) and picture.rgb.dtype == np.uint8
        if fmt == "JPEG":
            assert picture.alpha is None and not picture.has_real_alpha
            assert np.abs(picture.rgb.astype(int) - (200, 100, 50)).max() <= 3
        else:
            assert picture.has_real_alpha and int(picture.alpha[0, 0]) == 128
            assert tuple(picture.rgb[0, 0]) == (200, 100, 50)
    assert load_image(path.read_bytes()).source == "<bytes>"


@pytest.mark.parametrize(
    ("mode", "fmt", "options"),
    [
        ("RGB", "PNG", {}),
        ("RGB", "JPEG", {}),
        ("RGB", "WEBP", {}),  # lossy: VP8 chunk
        ("RGB", "WEBP", {"lossless": True}),  # VP8L chunk
        ("RGBA", "WEBP", {}),  # VP8X chunk
    ],
)
def test_header_size_without_decoding(mode, fmt, options):
    data = _encode(Image.new(mode, (321, 123)), fmt, **options)
    assert sniff_format(data[:12]) == fmt
    assert tuple(header_size(data, fmt)) == (321, 123)


def test_content_not_extension(tmp_path):
    png_named_jpg = _save(Image.new("RGB", (4, 4), "red"), tmp_path / "photo.jpg", "PNG")
    assert load_image(png_named_jpg).format == "PNG"
    for fmt in ("GIF", "BMP", "TIFF"):
        disguised = _save(Image.new("RGB", (4, 4)), tmp_path / f"{fmt}.png", fmt)
        with pytest.raises(InputError) as error:
            load_image(disguised)
        message = str(error.value)
        assert f"a {fmt} file" in message and "PNG, JPEG and WebP" in message
        assert "convert it to PNG" in message and str(disguised) in message
    heic = tmp_path / "phone.png"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    with pytest.raises(InputError, match="a HEIC file"):
        load_image(heic)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InputError, match="not a picture file Genesis can read"):
        load_image(text)


def test_missing_folder_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="picture not found") as error:
        load_image(tmp_path / "nope.png")
    assert str(tmp_path / "nope.png") in str(error.value)
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for fmt in ("PNG", "JPEG", "WEBP"):
        data = _encode(Image.fromarray(noise), fmt)
        with pytest.raises(InputError, match=f"damaged or truncated {fmt}"):
            load_image(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged PNG"):
        load_image(b"\x89PNG\r\n\x1a\n\x00\x00")  # the header ends before the size


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
    assert picture.rgb[37, 10, 1] > 200  # the bottom is white


def test_pixel_cap_checked_before_decoding(tmp_path):
    tiny = _save(Image.new("1", (1, 1)), tmp_path / "tiny.png", "PNG")
    assert load_image(tiny, max_pixels=1).size == (1, 1)
    path = _save(Image.new("1", (9000, 9000)), tmp_path / "big.png", "PNG")
    assert path.stat().st_size < 200_000  # small on disk, 81 MP decoded
    with pytest.raises(InputError) as error:
        load_image(path, max_pixels=1_000_000)
    assert "9000×9000 = 81.0 MP" in str(error.value) and "1 MP limit" in str(error.value)
    assert "max_pixels=81000000" in str(error.value)
    # Beyond Pillow's own bomb limit (179 MP): our message, not Pillow's error or warning.
    huge = _save(Image.new("1", (20000, 20000)), tmp_path / "huge.png", "PNG")
    with pytest.raises(InputError, match="20000×20000 = 400.0 MP, more than the 64 MP limit"):
        load_image(huge)
    with pytest.raises(InputError, match="more than Pillow decodes"):
        load_image(huge, max_pixels=10**9)


def test_crafted_webp_header_refused_before_decoding():
    data = bytearray(_encode(Image.new("RGB", (8, 8)), "WEBP", lossless=True))
    bits = (16383) | (16383 << 14)  # claims 16384 x 16384
    data[21:25] = (bits | (int.from_bytes(data[21:25], "little") & ~0x0FFFFFFF)).to_bytes(
        4, "little"
    )
    with pytest.raises(InputError, match="16384×16384 = 268.4 MP"):
        load_image(bytes(data))


def test_palette_grey_alpha_cmyk_and_16_bit(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (2, 2, 6, 6))
    picture = load_image(_save(palette, tmp_path / "p.png", "PNG", transparency=0))
    assert picture.has_real_alpha and picture.alpha[0, 0] == 0 and picture.alpha[3, 3] == 255
    assert tuple(picture.rgb[3, 3]) == (255, 0, 0)
    grey = Image.fromarray(
        np.dstack([np.full((4, 4), 90, np.uint8), np.full((4, 4), 30, np.uint8)]), "LA"
    )
    picture = load_image(_save(grey, tmp_path / "la.png", "PNG"))
    assert tuple(picture.rgb[0, 0]) == (90, 90, 90) and picture.alpha[0, 0] == 30
    ramp = np.array([[0, 257, 32896, 65535]], np.uint16)
    picture = load_image(_save(Image.fromarray(ramp), tmp_path / "deep.png", "PNG"))
    assert picture.rgb[0, :, 0].tolist() == [0, 1, 128, 255] and picture.alpha is None
    cmyk = Image.new("CMYK", (6, 6), (0, 255, 255, 0))  # red in CMYK
    picture = load_image(_save(cmyk, tmp_path / "c.jpg", "JPEG", quality=95))
    assert picture.rgb[3, 3, 0] > 220 and picture.rgb[3, 3, 1:].max() < 40


def test_real_alpha_needs_more_than_stray_pixels():
    rgba = np.full((100, 100, 4), 255, np.uint8)
    assert not load_image(rgba).has_real_alpha
    rgba[0, 0, 3] = 0  # one stray pixel in 10000 is not a matte
    assert not load_image(rgba).has_real_alpha
    rgba[:10, :10, 3] = 0
    assert load_image(rgba).has_real_alpha


def test_pil_images_and_arrays():
    assert load_image(Image.new("RGBA", (5, 3))).alpha.shape == (3, 5)
    floats = np.zeros((3, 5, 4), np.float32)
    floats[..., 0] = 0.5
    floats[..., 3] = 1.0
    picture = load_image(floats)
    assert picture.format == "ARRAY" and picture.rgb[0, 0, 0] == 128
    assert picture.alpha.max() == 255 and not picture.has_real_alpha
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((3, 5)))
    with pytest.raises(InputError, match="uint8"):
        load_image(np.zeros((3, 5, 3), np.int32))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        load_image(np.full((3, 5, 3), 255.0))
    with pytest.raises(InputError, match="MP limit"):
        load_image(np.zeros((30, 50, 3), np.uint8), max_pixels=100)
    with pytest.raises(InputError, match="a picture must be"):
        load_image(12)
