"""The Python API: generate, run, load_pipeline, export, load, inspect."""

from __future__ import annotations

import numpy as np
import pytest

import genesis3d
from genesis3d.errors import ConfigError, UnknownModelError

SMALL = {"resolution": 96, "splats": 4096, "texture_size": 256}


def test_generate_mesh_and_splats(examples_dir):
    mesh = genesis3d.generate(examples_dir / "typewriter.webp", model="inflate", **SMALL)
    assert isinstance(mesh, genesis3d.MeshAsset) and mesh.n_faces > 0
    splats = genesis3d.generate(
        examples_dir / "typewriter.webp", model="inflate", output="splats", **SMALL
    )
    assert isinstance(splats, genesis3d.SplatAsset) and splats.n_splats == 4096


def test_default_model_is_inflate_and_seed_is_reproducible(examples_dir):
    image = examples_dir / "typewriter.webp"
    first = genesis3d.run(image, seed=3, outputs=("splats",), **SMALL).splats
    again = genesis3d.run(image, seed=3, outputs=("splats",), **SMALL).splats
    other = genesis3d.run(image, seed=4, outputs=("splats",), **SMALL).splats
    assert first.metadata["model"] == "inflate"
    np.testing.assert_array_equal(first.means, again.means)
    assert not np.array_equal(first.means, other.means)


def test_export_load_inspect_round_trip(tmp_path, examples_dir, gltf_validator):
    pipeline = genesis3d.load_pipeline("inflate")
    result = pipeline(examples_dir / "helmet.webp", outputs=("mesh", "splats"), **SMALL)
    path = genesis3d.export(result.mesh, tmp_path / "helmet.glb", size=2.0, pivot="bottom")
    gltf_validator(path)
    loaded = genesis3d.load(path)
    low, high = loaded.bounds()
    assert (high - low).max() == pytest.approx(2.0, rel=1e-5)
    assert low[1] == pytest.approx(0.0, abs=1e-6)
    report = genesis3d.inspect(path)
    assert report["watertight"] and report["faces"] == result.mesh.n_faces
    # Each texture's gutter figures (the export bake's are checked to be fully filled in
    # tests/geometry/test_texture_fill.py).
    assert set(report["texture_fill"]) == set(report["textures"])
    for name, fill in report["texture_fill"].items():
        assert fill["reachable_fraction"] > fill["covered_fraction"] > 0, name
        assert 0.0 <= fill["unfilled_fraction"] <= fill["gutter_fraction"] < 1.0, name
    spz = genesis3d.export(result.splats, tmp_path / "helmet.spz")
    assert genesis3d.inspect(spz)["count"] == 4096


def test_load_pipeline_refuses_bad_arguments():
    with pytest.raises(UnknownModelError):
        genesis3d.load_pipeline("nope")
    with pytest.raises(ConfigError, match="offload must be one of"):
        genesis3d.load_pipeline("inflate", offload="disk")


def test_inspect_compares_against_a_reference_mesh():
    from dataclasses import replace

    from tests.support import textured_box

    box = textured_box()
    bigger = replace(box, positions=(box.positions - 0.5) * 1.1 + 0.5)
    report = genesis3d.inspect(bigger, compare=box, threshold=0.01, samples=5_000)
    comparison = report["comparison"]
    # Faces sit 0.05 apart; corners 0.05 * sqrt(3).
    assert comparison["chamfer"] == pytest.approx(0.05, rel=0.15)
    assert 0.05 < comparison["hausdorff"] <= 0.0867
    assert comparison["f_score"] == 0.0 and comparison["normal_consistency"] > 0.95
    loose = genesis3d.inspect(bigger, compare=box, threshold=0.05, samples=5_000)
    assert loose["comparison"]["f_score"] > 0.9
