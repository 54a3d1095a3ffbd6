"""Baking on analytic shapes: colour against the field, full gutters, thin parts, normal maps."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import ConfigError
from genesis3d.geometry.attributes import FieldAttributes, VertexAttributes
from genesis3d.geometry.bake import (
    PBRChannels,
    bake_textures,
    fill_gutters,
    project_to_surface,
    rasterize_atlas,
)
from genesis3d.geometry.decimate import decimate
from genesis3d.geometry.mesh_ops import unit_vectors, vertex_normals, vertex_tangents
from genesis3d.geometry.uv import unwrap_uv
from genesis3d.testing.shapes import box_with_fin, torus

SIZE = 256


def smooth_field(points: np.ndarray) -> np.ndarray:
    """RGB, metallic, roughness, alpha: slowly varying, never black."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return np.stack(
        [
            0.5 + 0.3 * np.sin(2.0 * x),
            0.5 + 0.3 * np.cos(1.5 * y),
            0.5 + 0.4 * z,
            np.full_like(x, 0.25),
            0.3 + 0.2 * x * x,
            np.full_like(x, 0.9),
        ],
        axis=1,
    ).astype(np.float32)


@pytest.fixture(scope="module")
def torus_bake():
    dense_positions, dense_faces = torus(160, 80)
    positions, faces = decimate(dense_positions, dense_faces, 2000)
    unwrap = unwrap_uv(positions, faces, SIZE)
    points = positions[unwrap.source_vertex]
    baked = bake_textures(
        points,
        unwrap.faces,
        unwrap.uvs,
        dense_positions,
        dense_faces,
        FieldAttributes(smooth_field, 6),
        SIZE,
    )
    return points, unwrap, baked


def _surface_points(points, faces, uvs, count=4000, seed=0):
    rng = np.random.default_rng(seed)
    face = rng.integers(0, len(faces), count)
    weights = rng.dirichlet(np.ones(3), count)
    position = np.einsum("kj,kjc->kc", weights, points[faces[face]])
    uv = np.einsum("kj,kjc->kc", weights, uvs[faces[face]])
    return position, uv


def _bilinear(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    size = texture.shape[0]
    x = uv[:, 0] * size - 0.5
    y = uv[:, 1] * size - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    texels = texture.astype(np.float64)

    def at(row, column):
        return texels[np.clip(row, 0, size - 1), np.clip(column, 0, size - 1)]

    return (
        at(y0, x0) * (1 - fx) * (1 - fy)
        + at(y0, x0 + 1) * fx * (1 - fy)
        + at(y0 + 1, x0) * (1 - fx) * fy
        + at(y0 + 1, x0 + 1) * fx * fy
    )


def test_colour_matches_the_field_at_texel_centres(torus_bake):
    points, unwrap, baked = torus_bake
    raster = rasterize_atlas(unwrap.uvs, unwrap.faces, SIZE, border=0)
    inside = raster.covered
    corners = points[unwrap.faces[raster.face_ids[inside]]]
    where = np.einsum("kj,kjc->kc", raster.barycentrics[inside], corners)
    expected = np.rint(smooth_field(where) * 255)
    assert baked.base_color.shape == (SIZE, SIZE, 4)
    error = np.abs(baked.base_color[inside].astype(float) - expected[:, [0, 1, 2, 5]])
    assert error.max() <= 2.0
    mr = baked.metallic_roughness[inside].astype(float)
    assert np.abs(mr[:, 1] - expected[:, 4]).max() <= 2.0  # G = roughness
    assert np.abs(mr[:, 2] - expected[:, 3]).max() <= 2.0  # B = metallic


def test_bilinear_reads_only_sampled_texels_and_match_the_field(torus_bake):
    points, unwrap, baked = torus_bake
    raster = rasterize_atlas(unwrap.uvs, unwrap.faces, SIZE)
    # Every texel a bilinear tap at a covered centre can reach was sampled, not filled.
    covered = raster.covered
    reach = covered.copy()
    reach[1:] |= covered[:-1]
    reach[:-1] |= covered[1:]
    reach[:, 1:] |= reach[:, :-1].copy()
    reach[:, :-1] |= reach[:, 1:].copy()
    assert (raster.face_ids[reach] >= 0).all()
    assert baked.report.unfilled_fraction == 0.0
    assert 0.3 < baked.report.covered_fraction < baked.report.sampled_fraction < 1.0
    position, uv = _surface_points(points, unwrap.faces, unwrap.uvs)
    expected = smooth_field(position)[:, :3] * 255
    error = np.abs(_bilinear(baked.base_color[..., :3], uv) - expected)
    assert error.max() <= 2.0
    # Mip levels: 2x2 box filtering never meets an unfilled (black) texel.
    level = baked.base_color[..., :3].astype(np.float64)
    for _ in range(3):
        level = level.reshape(level.shape[0] // 2, 2, level.shape[1] // 2, 2, 3).mean(axis=(1, 3))
        assert level.min() > 0.1 * 255


def test_gutter_fill_leaves_nothing_unfilled():
    image = np.zeros((8, 8, 1), np.uint8)
    filled = np.zeros((8, 8), bool)
    image[2, 3], filled[2, 3] = 200, True
    image[6, 6], filled[6, 6] = 50, True
    result = fill_gutters(image, filled)
    assert result[0, 0, 0] == 200 and result[7, 7, 0] == 50 and (result > 0).all()


def test_normal_map_reconstructs_the_dense_normals(torus_bake):
    points, unwrap, baked = torus_bake
    raster = rasterize_atlas(unwrap.uvs, unwrap.faces, SIZE, border=0)
    inside = raster.covered
    faces = unwrap.faces[raster.face_ids[inside]]
    weights = raster.barycentrics[inside].astype(np.float64)
    normals = vertex_normals(points, unwrap.faces)
    tangents = vertex_tangents(points, unwrap.faces, normals, unwrap.uvs)
    # What a glTF viewer does: interpolate N and T, B = cross(N, T) * w.
    n = unit_vectors(np.einsum("kj,kjc->kc", weights, normals[faces]))
    t = np.einsum("kj,kjc->kc", weights, tangents[faces][:, :, :3])
    t = unit_vectors(t - n * (t * n).sum(axis=1, keepdims=True))
    b = np.cross(n, t) * tangents[faces[:, 0], 3:4]
    local = baked.normal[inside].astype(np.float64) / 255 * 2 - 1
    world = unit_vectors(local[:, :1] * t + local[:, 1:2] * b + local[:, 2:] * n)
    where = np.einsum("kj,kjc->kc", weights, points[faces])
    ring = where.copy()
    ring[:, 2] = 0
    ring = unit_vectors(ring) * 1.0
    analytic = unit_vectors(where - ring)  # the torus's true normal (major radius 1)
    cosine = (world * analytic).sum(axis=1)
    # The light mesh's own normals are off by several degrees; the map corrects that.
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).mean() < 1.5
    assert np.percentile(cosine, 1) > np.cos(np.radians(5))
    light = (n * analytic).sum(axis=1)
    assert cosine.mean() > light.mean()


def test_thin_fin_sides_keep_their_own_colours():
    dense_positions, dense_faces = box_with_fin(48, fin_voxels=2.0)

    def sides(points):
        red = points[:, 1] > 0
        return np.stack([red, np.zeros_like(red), ~red], axis=1).astype(np.float32)

    positions, faces = decimate(dense_positions, dense_faces, 3000)
    unwrap = unwrap_uv(positions, faces, SIZE)
    points = positions[unwrap.source_vertex]
    baked = bake_textures(
        points,
        unwrap.faces,
        unwrap.uvs,
        dense_positions,
        dense_faces,
        FieldAttributes(sides, 3),
        SIZE,
        normal_map=False,
    )
    assert baked.base_color.shape == (SIZE, SIZE, 3)
    assert baked.metallic_roughness is None and baked.normal is None
    raster = rasterize_atlas(unwrap.uvs, unwrap.faces, SIZE, border=0)
    normals = vertex_normals(points, unwrap.faces)
    face_normal = unit_vectors(normals[unwrap.faces].sum(axis=1))
    fin = raster.face_ids[raster.covered]
    colour = baked.base_color[raster.covered]
    centre = points[unwrap.faces[fin]].mean(axis=1)
    on_fin = centre[:, 2] > 0.05
    plus = on_fin & (face_normal[fin, 1] > 0.9)
    minus = on_fin & (face_normal[fin, 1] < -0.9)
    assert plus.sum() > 50 and minus.sum() > 50
    assert (colour[plus, 0] == 255).all() and (colour[minus, 2] == 255).all()


def test_projection_lands_on_the_dense_surface_with_consistent_faces():
    dense_positions, dense_faces = torus(64, 32)
    rng = np.random.default_rng(1)
    face = rng.integers(0, len(dense_faces), 500)
    on_surface = dense_positions[dense_faces[face]].mean(axis=1)
    normals = unit_vectors(
        np.cross(
            *(dense_positions[dense_faces[face]][:, 1:] - on_surface[:, None]).transpose(1, 0, 2)
        )
    )
    projected = project_to_surface(
        on_surface + 1e-4 * normals, normals, dense_positions, dense_faces
    )
    np.testing.assert_allclose(projected.positions, on_surface, atol=2e-4)
    np.testing.assert_array_equal(projected.face_ids, face)
    # A shared vertex: every query that lands on it takes the same (lowest) face.
    vertex = dense_faces[0, 0]
    queries = dense_positions[vertex] + 1e-3 * vertex_normals(dense_positions, dense_faces)[vertex]
    queries = np.repeat(queries[None], 5, axis=0)
    normals = np.repeat(vertex_normals(dense_positions, dense_faces)[vertex][None], 5, axis=0)
    again = project_to_surface(queries, normals, dense_positions, dense_faces)
    assert len(set(again.face_ids.tolist())) == 1


def test_vertex_attributes_are_baked_through_barycentrics():
    dense_positions, dense_faces = torus(96, 48)
    colours = smooth_field(dense_positions)[:, :3]
    positions, faces = decimate(dense_positions, dense_faces, 1500)
    unwrap = unwrap_uv(positions, faces, SIZE)
    points = positions[unwrap.source_vertex]
    baked = bake_textures(
        points,
        unwrap.faces,
        unwrap.uvs,
        dense_positions,
        dense_faces,
        VertexAttributes(dense_faces, colours),
        SIZE,
        normal_map=False,
    )
    position, uv = _surface_points(points, unwrap.faces, unwrap.uvs, seed=2)
    error = np.abs(_bilinear(baked.base_color, uv) - smooth_field(position)[:, :3] * 255)
    assert np.percentile(error, 99) <= 3.0


def test_channel_layout_is_checked():
    with pytest.raises(ConfigError, match="at least 3 channels"):
        PBRChannels.for_channel_count(2)
    with pytest.raises(ConfigError, match="names channel 5"):
        PBRChannels().check(4)
