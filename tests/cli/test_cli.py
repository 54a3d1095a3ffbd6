"""The ``genesis3d`` command, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def genesis(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genesis3d", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory, examples_dir):
    """One generation of the bundled example into GLB and splat PLY, shared by the tests."""
    work = tmp_path_factory.mktemp("generate")
    result = genesis(
        "generate",
        str(examples_dir / "helmet.webp"),
        "--format",
        "glb,ply",
        "-p",
        "resolution=128",
        "-p",
        "splats=20000",
        cwd=work,
    )
    return work, result


def test_generate_writes_valid_glb_and_splat_ply(generated, gltf_validator):
    work, result = generated
    assert result.returncode == 0, result.stderr
    glb, ply = work / "outputs" / "helmet.glb", work / "outputs" / "helmet.ply"
    assert glb.is_file() and ply.is_file()
    gltf_validator(glb)
    assert "files are in outputs" in result.stderr
    assert "not AI" in result.stderr  # inflate says what it is


def test_inspect_reports_a_watertight_mesh(generated):
    work, _ = generated
    result = genesis("inspect", "outputs/helmet.glb", "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "mesh"
    assert report["watertight"] is True
    assert report["textures"]["base_color"][0] > 0
    splats = json.loads(genesis("inspect", "outputs/helmet.ply", "--json", cwd=work).stdout)
    assert splats["kind"] == "splats" and splats["count"] == 20000


def test_inspect_compares_two_meshes(generated):
    work, _ = generated
    args = ("inspect", "outputs/helmet.glb", "--compare", "outputs/helmet.glb", "--json")
    result = genesis(*args, cwd=work)
    assert result.returncode == 0, result.stderr
    comparison = json.loads(result.stdout)["comparison"]
    assert comparison["f_score"] == 1.0 and comparison["normal_consistency"] > 0.99
    assert comparison["chamfer"] < 1e-4 * comparison["diagonal"]
    refused = genesis("inspect", "outputs/helmet.glb", "--compare", "outputs/helmet.ply", cwd=work)
    assert refused.returncode != 0 and "reference" in refused.stderr


def test_convert_between_splat_formats_and_refuse_mesh_to_splat(generated):
    work, _ = generated
    for target in ("helmet.spz", "helmet.splat", "again.ply"):
        result = genesis("convert", "outputs/helmet.ply", target, "--json", cwd=work)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["splats"] == 20000
    refused = genesis("convert", "outputs/helmet.glb", "mesh.splat", cwd=work)
    assert refused.returncode != 0
    assert "holds mesh" in refused.stderr and "choose another output extension" in refused.stderr
    assert not (work / "mesh.splat").exists()


def test_batch_reports_failures_and_goes_on(tmp_path, examples_dir):
    gif = tmp_path / "fake.png"
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(empty)
    result = genesis(
        "generate", "missing.png", str(gif), str(empty), str(examples_dir / "typewriter.webp"),
        "-o", "out", "--json", "-p", "resolution=96", "-p", "splats=4096", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    report = json.loads(result.stdout)
    by_image = {Path(item["image"]).name: item for item in report["results"]}
    assert by_image["typewriter.webp"]["ok"] is True
    for name in ("missing.png", "fake.png", "empty.png"):
        assert by_image[name]["ok"] is False
        assert by_image[name]["error_type"] == "InputError", by_image[name]
    assert "not found" in by_image["missing.png"]["error"]
    assert "GIF" in by_image["fake.png"]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["typewriter.glb"]


def test_single_output_file_name(tmp_path, examples_dir):
    result = genesis(
        "generate",
        str(examples_dir / "typewriter.webp"),
        "-o",
        "props/tw.glb",
        "-p",
        "resolution=96",
        "--size",
        "0.5",
        "--pivot",
        "bottom",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(genesis("inspect", "props/tw.glb", "--json", cwd=tmp_path).stdout)
    low, high = np.array(report["bounds"])
    assert max(high - low) == pytest.approx(0.5, rel=1e-4)
    assert low[1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["generate", "x.png", "--model", "nope"], "unknown model 'nope'"),
        (
            ["generate", "x.png", "--format", "fbx"],
            "--format must be one of glb, ply, splat, spz, obj",
        ),
        (["generate", "x.png", "--model", "inflate", "--device", "cuda"], "sees no CUDA GPU"),
        (["generate", "a.png", "b.png", "-o", "one.glb"], "need an output folder"),
        (["generate", "x.png", "-p", "oops"], "KEY=VALUE"),
        (["inspect", "nothing.glb"], "not found"),
    ],
)
def test_bad_input_is_one_line_with_a_fix_and_writes_nothing(tmp_path, args, fragment):
    result = genesis(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert fragment in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_models_lists_availability_and_licence(tmp_path):
    result = genesis("models", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["inflate"]["available"] is True
    assert rows["triposplat"]["available"] is False and rows["triposplat"]["reason"]
    assert all(row["license"] == "MIT" for row in rows.values())
    table = genesis("models", cwd=tmp_path)
    assert "inflate" in table.stdout and "MIT" in table.stdout


def test_version(tmp_path):
    result = genesis("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("genesis3d ")


def test_lods_writes_one_textured_glb_per_budget(tmp_path, gltf_validator):
    from genesis3d.assets import MeshAsset
    from genesis3d.io import load, save
    from genesis3d.testing.shapes import torus

    positions, faces = torus(96, 48)
    colors = np.ones((len(positions), 4), np.float32)
    colors[:, 0] = (positions[:, 0] > 0).astype(np.float32)  # red on one half
    save(
        MeshAsset(positions=positions, faces=faces.astype(np.int32), colors=colors),
        tmp_path / "raw.glb",
    )
    result = genesis(
        "lods", "raw.glb", "light.glb", "--faces", "2000,500", "--texture", "256", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    levels = json.loads(result.stdout)["levels"]
    assert [Path(level["path"]).name for level in levels] == ["light_lod0.glb", "light_lod1.glb"]
    for level, budget in zip(levels, (2000, 500), strict=True):
        assert level["faces"] <= budget
        gltf_validator(tmp_path / level["path"])
        mesh = load(tmp_path / level["path"])
        texture = mesh.material.base_color_texture
        assert texture.shape[:2] == (256, 256)
        # Both halves of the colour made it into the texture.
        assert texture[..., 0].max() == 255 and texture[..., 0].min() == 0
    refused = genesis("lods", "light_lod0.glb", "again.glb", "--faces", "100", cwd=tmp_path)
    assert refused.returncode != 0 and "vertex colours" in refused.stderr
