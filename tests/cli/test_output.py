from pathlib import Path

import pytest

from genesis3d.cli.output import (
    expand_inputs,
    kind_for_format,
    parse_formats,
    parse_params,
    plan_outputs,
)
from genesis3d.errors import ConfigError
from genesis3d.registry import FAMILIES

INFLATE, TRIPOSPLAT, TRIPOSG = FAMILIES["inflate"], FAMILIES["triposplat"], FAMILIES["triposg"]


def test_formats_repeated_and_comma_separated():
    assert parse_formats(["glb,ply", ".spz", "GLB"]) == ["glb", "ply", "spz"]
    assert parse_formats(None) == []
    with pytest.raises(ConfigError, match="got 'fbx'"):
        parse_formats(["fbx"])


def test_params_are_literals_or_text():
    assert parse_params(["resolution=192", "thickness=0.3", "name=chair", "texture-size=512"]) == {
        "resolution": 192,
        "thickness": 0.3,
        "name": "chair",
        "texture_size": 512,
    }
    with pytest.raises(ConfigError):
        parse_params(["=3"])


def test_ply_means_splats_when_the_model_makes_them():
    assert kind_for_format("ply", INFLATE) == "splats"
    assert kind_for_format("ply", TRIPOSG) == "mesh"
    assert kind_for_format("glb", INFLATE) == "mesh"
    assert kind_for_format("glb", TRIPOSPLAT) == "splats"
    with pytest.raises(ConfigError, match="choose --format glb|ply"):
        kind_for_format("spz", TRIPOSG)


def test_default_folder_and_unique_names():
    plans = plan_outputs(
        [Path("a/chair.png"), Path("b/chair.png"), Path("lamp.jpg")], None, [], INFLATE
    )
    assert [str(plan.targets[0][2]) for plan in plans] == [
        "outputs/chair.glb",
        "outputs/chair-2.glb",
        "outputs/lamp.glb",
    ]


def test_single_file_name_gives_format_and_stem():
    (plan,) = plan_outputs([Path("chair.png")], Path("out/prop.ply"), [], INFLATE)
    assert plan.targets == (("ply", "splats", Path("out/prop.ply")),)
    (plan,) = plan_outputs([Path("chair.png")], Path("out/prop.glb"), ["glb", "spz"], INFLATE)
    assert [str(t[2]) for t in plan.targets] == ["out/prop.glb", "out/prop.spz"]
    with pytest.raises(ConfigError, match="make them agree"):
        plan_outputs([Path("chair.png")], Path("prop.glb"), ["ply"], INFLATE)
    with pytest.raises(ConfigError, match="unknown extension"):
        plan_outputs([Path("chair.png")], Path("prop.fbx"), [], INFLATE)


def test_folders_expand_to_their_pictures(tmp_path):
    for name in ("b.png", "a.webp", "c.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in expand_inputs([tmp_path, Path("x.png")])] == [
        "a.webp",
        "b.png",
        "c.JPG",
        "x.png",
    ]
    with pytest.raises(ConfigError, match="holds no .png"):
        expand_inputs([tmp_path / "sub"])
