"""Gutter fill measured from a textured mesh: reachable texels and unfilled ones."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import InputError
from genesis3d.geometry.attributes import VertexAttributes
from genesis3d.geometry.bake import bake_textures, rasterize_atlas
from genesis3d.geometry.decimate import decimate
from genesis3d.geometry.texture_fill import reachable_texels, texture_fill
from genesis3d.geometry.uv import unwrap_uv
from genesis3d.testing.shapes import torus

SIZE = 32


def _chebyshev_to_triangle(centres: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Chebyshev distance of (k, 2) points to a dense sampling of one (3, 2) triangle."""
    steps = np.linspace(0.0, 1.0, 161)
    a, b = np.meshgrid(steps, steps)
    keep = a + b <= 1.0
    a, b = a[keep], b[keep]
    samples = (
        corners[0] + a[:, None] * (corners[1] - corners[0]) + b[:, None] * (corners[2] - corners[0])
    )
    distance = np.full(len(centres), np.inf)
    for begin in range(0, len(samples), 4096):
        gap = np.abs(centres[:, None] - samples[None, begin : begin + 4096]).max(axis=2)
        distance = np.minimum(distance, gap.min(axis=1))
    return distance


@pytest.mark.parametrize(
    "corners",
    [
        [[0.21, 0.18], [0.73, 0.31], [0.42, 0.77]],  # counter-clockwise
        [[0.21, 0.18], [0.42, 0.77], [0.73, 0.31]],  # clockwise
        [[0.30, 0.30], [0.70, 0.32], [0.31, 0.33]],  # a sliver covering few centres
    ],
)
def test_reachable_texels_are_those_within_one_texel_of_the_triangle(corners):
    uvs = np.asarray(corners, np.float64)
    reached = reachable_texels(uvs, np.array([[0, 1, 2]]), SIZE)
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    centres = np.stack([columns.ravel(), rows.ravel()], axis=1).astype(np.float64)
    distance = _chebyshev_to_triangle(centres, uvs * SIZE - 0.5).reshape(SIZE, SIZE)
    # The sampled distance overestimates the true one by less than 0.1 texel here.
    assert reached[distance < 0.9].all()
    assert not reached[distance >= 1.1].any()
    assert reached.sum() > 0


def _baked_torus():
    dense_positions, dense_faces = torus(64, 32)
    colours = 0.5 + 0.4 * np.sin(3.0 * dense_positions)
    positions, faces = decimate(dense_positions, dense_faces, 800)
    unwrap = unwrap_uv(positions, faces, 256)
    baked = bake_textures(
        positions[unwrap.source_vertex],
        unwrap.faces,
        unwrap.uvs,
        dense_positions,
        dense_faces,
        VertexAttributes(dense_faces, colours.astype(np.float32)),
        256,
        normal_map=False,
    )
    return unwrap, baked


def test_a_baked_texture_has_no_unfilled_texel_and_a_cleared_gutter_is_caught():
    unwrap, baked = _baked_torus()
    fill = texture_fill(unwrap.uvs, unwrap.faces, baked.base_color)
    assert fill.unfilled_fraction == 0.0
    assert 0.0 < fill.gutter_fraction < 0.5
    assert fill.covered_fraction == pytest.approx(baked.report.covered_fraction)
    # Clear the gutter to black: every gutter texel next to a non-black chart is unfilled.
    covered = rasterize_atlas(unwrap.uvs, unwrap.faces, 256, border=0).covered
    cleared = np.where(covered[..., None], baked.base_color, 0).astype(np.uint8)
    blank = texture_fill(unwrap.uvs, unwrap.faces, cleared)
    assert blank.unfilled_fraction > 0.9 * blank.gutter_fraction
    assert blank.gutter_fraction == pytest.approx(fill.gutter_fraction)


def test_a_wide_texture_is_measured_on_its_own_texel_grid():
    unwrap, baked = _baked_torus()
    square = texture_fill(unwrap.uvs, unwrap.faces, baked.base_color)
    # The same atlas in the left half of a 256 x 512 texture (u halved).
    wide_uvs = unwrap.uvs * np.array([0.5, 1.0], np.float32)
    # The right half repeats the last column, as a clamped lookup of the square one reads.
    wide = np.pad(baked.base_color, ((0, 0), (0, 256), (0, 0)), mode="edge")
    measured = texture_fill(wide_uvs, unwrap.faces, wide)
    assert measured.covered_fraction == pytest.approx(square.covered_fraction / 2)
    # Texels just past the square's right edge become real ones: a few more are reached.
    assert measured.reachable_fraction == pytest.approx(square.reachable_fraction / 2, rel=1e-3)
    assert measured.gutter_fraction == pytest.approx(square.gutter_fraction, rel=1e-2)
    assert measured.unfilled_fraction == 0.0
    with pytest.raises(InputError, match="texture must be"):
        texture_fill(unwrap.uvs, unwrap.faces, baked.base_color[None])
