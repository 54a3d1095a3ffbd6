"""Decimation: budgets met, surface kept, no degenerate faces, LODs, the clustering pre-pass."""

from __future__ import annotations

import importlib.util

import pytest

from genesis3d.errors import ConfigError
from genesis3d.geometry.compare import compare_meshes
from genesis3d.geometry.decimate import cluster_vertices, decimate, decimate_lods
from genesis3d.geometry.measure import mesh_health
from genesis3d.testing.shapes import torus

pytest.importorskip("fast_simplification")


@pytest.fixture(scope="module")
def dense_torus():
    return torus(256, 96)  # 49,152 faces


def test_decimate_meets_the_budget_and_keeps_the_surface(dense_torus):
    positions, faces = dense_torus
    out_positions, out_faces = decimate(positions, faces, 5_000)
    assert 0.95 * 5_000 <= len(out_faces) <= 5_000
    health = mesh_health(out_positions, out_faces)
    assert health.degenerate_faces == 0 and health.duplicate_faces == 0
    assert health.watertight and health.genus == 1
    comparison = compare_meshes(out_positions, out_faces, positions, faces, samples=20_000)
    assert comparison.chamfer < 2e-3 * comparison.diagonal
    assert comparison.f_score > 0.99 and comparison.normal_consistency > 0.99


def test_lods_are_progressive_and_in_the_order_given(dense_torus):
    positions, faces = dense_torus
    lods = decimate_lods(positions, faces, (2_000, 20_000, 100_000))
    counts = [len(level[1]) for level in lods]
    assert counts[2] == len(faces)  # already within budget: unchanged
    assert 0.95 * 20_000 <= counts[1] <= 20_000 and 0.95 * 2_000 <= counts[0] <= 2_000
    for level_positions, level_faces in lods:
        assert mesh_health(level_positions, level_faces).degenerate_faces == 0


def test_slab_prepass_runs_above_the_threshold_and_stays_watertight(dense_torus, caplog):
    positions, faces = dense_torus
    clustered = cluster_vertices(positions, faces, 0.05)
    assert len(clustered[1]) < len(faces) / 4
    assert mesh_health(*clustered).degenerate_faces == 0
    with caplog.at_level("INFO", logger="genesis3d.geometry.decimate"):
        out_positions, out_faces = decimate(positions, faces, 4_000, prepass_above=20_000)
    assert "slab" in caplog.text
    assert 0.95 * 4_000 <= len(out_faces) <= 4_000
    assert mesh_health(out_positions, out_faces).watertight
    comparison = compare_meshes(out_positions, out_faces, positions, faces, samples=20_000)
    assert comparison.chamfer < 5e-3 * comparison.diagonal


@pytest.mark.skipif(importlib.util.find_spec("meshoptimizer") is None, reason="no meshoptimizer")
def test_meshoptimizer_backend_meets_the_budget(dense_torus):
    positions, faces = dense_torus
    out_positions, out_faces = decimate(positions, faces, 5_000, backend="meshoptimizer")
    assert len(out_faces) <= 5_000
    assert mesh_health(out_positions, out_faces).degenerate_faces == 0


def test_bad_budget_or_backend_is_refused(dense_torus):
    with pytest.raises(ConfigError, match="target_faces"):
        decimate(*dense_torus, 2)
    with pytest.raises(ConfigError, match="backend"):
        decimate(*dense_torus, 100, backend="open3d")


def test_slab_workers_do_not_change_the_result(dense_torus):
    positions, faces = dense_torus
    alone = decimate(positions, faces, 4_000, prepass_above=20_000, slab_faces=10_000, workers=1)
    pooled = decimate(positions, faces, 4_000, prepass_above=20_000, slab_faces=10_000, workers=2)
    assert len(alone[1]) == len(pooled[1])
    assert (alone[0] == pooled[0]).all() and (alone[1] == pooled[1]).all()
