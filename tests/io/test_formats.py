"""The dispatch table: extensions, content sniffing, kind checks, options and atomic writes."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from genesis3d import io
from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import AssetError, ConfigError, FormatError, InputError
from genesis3d.io.atomic import atomic_write
from tests.support import random_splats, textured_box


def test_format_table():
    assert set(io.FORMATS) == {"glb", "ply", "splat", "spz", "obj"}
    assert io.FORMATS["glb"].kinds == ("mesh", "splats")
    assert set(io.FORMATS["ply"].kinds) == {"mesh", "splats"}
    assert io.FORMATS["spz"].extensions == (".spz",)
    assert all(spec.description for spec in io.FORMATS.values())
    assert io.format_from_path("a/B.GLB") == "glb" and io.format_from_path("x.splat") == "splat"
    assert io.format_from_path("model.OBJ") == "obj"
    with pytest.raises(ConfigError, match=r"\.glb, \.ply, \.splat, \.spz, \.obj, got '\.fbx'"):
        io.format_from_path("model.fbx")


@pytest.mark.parametrize(
    ("name", "asset"),
    [("a.glb", textured_box()), ("b.ply", textured_box()), ("c.ply", random_splats(n=8)),
     ("d.splat", random_splats(n=8)), ("e.spz", random_splats(n=8)), ("f.obj", textured_box())],
)  # fmt: skip
def test_sniffing_reads_the_content_not_the_name(tmp_path, name, asset):
    written = io.save(asset, tmp_path / name)
    expected = io.format_from_path(written)
    assert io.sniff_format(written) == expected
    # .splat and .obj have no magic number: only their names say what they are
    if expected not in ("splat", "obj"):
        disguised = tmp_path / "disguised.bin"
        disguised.write_bytes(written.read_bytes())
        assert io.sniff_format(disguised) == expected
        assert type(io.load(disguised)) is type(asset)


def test_sniffing_errors(tmp_path):
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"hello world")
    with pytest.raises(FormatError, match="not a GLB, PLY, OBJ, .splat or .spz file"):
        io.load(junk)
    other_gzip = tmp_path / "x.spz"
    other_gzip.write_bytes(gzip.compress(b"just some text"))
    with pytest.raises(FormatError, match="gzip-compressed but not an .spz"):
        io.sniff_format(other_gzip)
    short = tmp_path / "y.splat"
    short.write_bytes(bytes(40))
    with pytest.raises(FormatError, match="multiple of 32"):
        io.load(short)
    with pytest.raises(InputError, match="not found"):
        io.load(tmp_path / "missing.ply")
    with pytest.raises(InputError, match="not found"):
        io.sniff_format(tmp_path)


def test_format_argument_overrides_sniffing(tmp_path):
    path = io.save(random_splats(n=4), tmp_path / "no-extension", format="splat")
    assert io.load(path, format="SPLAT").n_splats == 4
    with pytest.raises(ConfigError, match="format must be one of"):
        io.load(path, format="fbx")


def test_wrong_kind_for_a_format(tmp_path):
    with pytest.raises(
        ConfigError, match=r"\.splat holds Gaussian splats; write a mesh as \.glb or \.ply or \.obj"
    ):
        io.save(textured_box(), tmp_path / "a.splat")
    with pytest.raises(ConfigError, match=r"\.spz holds Gaussian splats; write a mesh as \.glb or"):
        io.save(textured_box(), tmp_path / "a.spz")
    with pytest.raises(ConfigError, match="MeshAsset or a SplatAsset"):
        io.save(np.zeros(3), tmp_path / "a.glb")
    assert list(tmp_path.iterdir()) == []


def test_writer_options(tmp_path):
    splats = random_splats(n=50)
    io.save(splats, tmp_path / "a.spz", version=2, compression_level=9)
    assert gzip.decompress((tmp_path / "a.spz").read_bytes())[4] == 2
    with pytest.raises(ConfigError, match="no option quality; its options are: version"):
        io.save(splats, tmp_path / "b.spz", quality=3)
    with pytest.raises(ConfigError, match="its options are: none"):
        io.save(textured_box(), tmp_path / "b.glb", version=2)


@pytest.mark.parametrize("suffix", ["glb", "ply", "spz", "splat"])
def test_truncated_files_raise_format_error(tmp_path, suffix):
    asset = textured_box() if suffix == "glb" else random_splats()
    path = io.save(asset, tmp_path / f"a.{suffix}")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 1])
    with pytest.raises(FormatError, match="truncated|broken"):
        io.load(path)


@pytest.mark.parametrize("name", ["out.glb", "out.ply"])
def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path, name):
    target = tmp_path / name
    bad = MeshAsset(positions=np.eye(3), faces=[[0, 1, 2]], metadata={"bad": object()})
    with pytest.raises(AssetError, match="JSON-serialisable"):
        io.save(bad, target)
    assert list(tmp_path.iterdir()) == []
    io.save(textured_box(), target)
    before = target.read_bytes()
    with pytest.raises(AssetError):
        io.save(bad, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_atomic_write_cleans_up_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as stream:
        stream.write(b"partial")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"] and target.read_bytes() == b"old"
    with atomic_write(tmp_path / "new" / "y.bin") as stream:
        stream.write(b"done")
    assert (tmp_path / "new" / "y.bin").read_bytes() == b"done"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["y.bin"]


def test_every_format_keeps_the_splat_count_and_kind(tmp_path):
    splats = random_splats(n=33, degree=1)
    for name in ("s.ply", "s.splat", "s.spz"):
        back = io.load(io.save(splats, tmp_path / name))
        assert isinstance(back, SplatAsset) and back.n_splats == 33


def test_written_files_get_the_mode_of_an_ordinary_new_file(tmp_path):
    import os
    import stat

    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")  # created the ordinary way: 0666 less the umask
    with atomic_write(tmp_path / "atomic.bin") as stream:
        stream.write(b"x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.bin").st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode)
