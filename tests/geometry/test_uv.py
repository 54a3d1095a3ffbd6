"""UV unwrapping: charts inside [0, 1], no overlap, padding and density from the texture size."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import ConfigError
from genesis3d.geometry.measure import mesh_health, uv_raster
from genesis3d.geometry.uv import atlas_padding, check_texture_size, face_groups, unwrap_uv
from genesis3d.testing.shapes import torus, uv_sphere


@pytest.mark.parametrize("group_faces", [None, 300])
@pytest.mark.parametrize("shape", [uv_sphere, torus])
def test_unwrap_keeps_faces_and_lays_charts_inside_the_atlas(shape, group_faces):
    positions, faces = shape()
    result = unwrap_uv(positions, faces, 256, group_faces=group_faces)
    assert result.faces.shape == faces.shape
    # Same triangles, in the same order, through the vertex map.
    np.testing.assert_array_equal(result.source_vertex[result.faces], faces)
    assert result.uvs.min() >= 0.0 and result.uvs.max() <= 1.0
    counts = uv_raster(result.uvs, result.faces, 256)
    assert counts.max() == 1, "charts overlap"
    health = mesh_health(positions[result.source_vertex], result.faces, result.uvs)
    assert health.degenerate_faces == 0 and health.uv_out_of_range == 0
    report = result.report
    assert report.charts >= 1 and 0.3 < report.utilization <= 1.0
    assert report.padding == 2 and report.effective_padding > 1.0
    assert report.to_dict()["texture_size"] == 256


def test_padding_grows_with_texture_size():
    assert [atlas_padding(s) for s in (256, 512, 2048, 8192)] == [2, 2, 8, 32]


@pytest.mark.parametrize("bad", [3000, 128, 16384, 0, 2048.0, True])
def test_texture_size_is_validated_with_the_value(bad):
    with pytest.raises(ConfigError, match="power of two between 256 and 8192"):
        check_texture_size(bad)


def test_bad_padding_is_refused():
    positions, faces = uv_sphere(8, 16)
    with pytest.raises(ConfigError, match="padding"):
        unwrap_uv(positions, faces, 256, padding=-1)


def test_face_groups_are_compact_and_bounded():
    positions, faces = torus(64, 32)
    groups = face_groups(positions, faces, 500)
    sizes = np.bincount(groups)
    assert sizes.max() <= 500 and sizes.min() >= 250 and sizes.sum() == len(faces)
    # Each group is a patch: its faces span a small part of the torus.
    centroids = positions[faces].mean(axis=1)
    extent = np.ptp(centroids, axis=0).max()
    spans = [np.ptp(centroids[groups == g], axis=0).max() for g in range(len(sizes))]
    assert max(spans) < 0.5 * extent


def test_grouped_charts_keep_stretch_low():
    positions, faces = uv_sphere(48, 96)
    result = unwrap_uv(positions, faces, 512, group_faces=600)
    corners = positions[result.source_vertex][result.faces].astype(np.float64)
    uv = result.uvs[result.faces].astype(np.float64)
    area3 = np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    area2 = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    ratio = area2 / area3
    ratio /= np.median(ratio)
    assert np.percentile(ratio, 90) / np.percentile(ratio, 10) < 1.5


def test_bad_group_size_is_refused():
    positions, faces = uv_sphere(8, 16)
    with pytest.raises(ConfigError, match="group_faces"):
        unwrap_uv(positions, faces, 256, group_faces=0)
