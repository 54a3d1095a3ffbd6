"""Cleaning on analytic shapes: each stage's invariant, and the default area fraction."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.geometry.clean import (
    DEFAULT_MIN_COMPONENT_AREA,
    CleanOptions,
    clean_mesh,
    component_labels,
    duplicate_faces,
    fill_holes,
    orient_faces,
    weld_vertices,
)
from genesis3d.geometry.measure import mesh_health
from genesis3d.geometry.mesh_ops import face_areas, signed_volume
from genesis3d.testing.shapes import box_with_fin, parts_scene, torus, uv_sphere


def unweld(positions, faces):
    """Every face with its own three vertices (a triangle soup)."""
    return positions[faces].reshape(-1, 3), np.arange(3 * len(faces)).reshape(-1, 3)


def test_a_triangle_soup_is_welded_back_to_a_closed_torus():
    positions, faces = torus(32, 16)
    soup_positions, soup_faces = unweld(positions, faces)
    result = clean_mesh(soup_positions, soup_faces)
    health = mesh_health(result.positions, result.faces)
    assert health.watertight and health.genus == 1
    assert len(result.positions) == len(positions)
    assert result.report.welded_vertices == len(soup_positions) - len(positions)
    np.testing.assert_array_equal(result.positions, soup_positions[result.source_vertex])


def test_tolerance_weld_closes_a_crack_but_exact_weld_does_not():
    positions, faces = uv_sphere(16, 32)
    # Split the sphere along its equator-ish ring and nudge the copies by 1e-7 of D.
    ring = np.flatnonzero(np.abs(positions[:, 2] - positions[1 + 7 * 32, 2]) < 1e-6)
    copies = positions[ring] + np.float32(1e-7 * 2 * np.sqrt(3) / 3)
    moved = np.concatenate([positions, copies])
    below = positions[faces].mean(axis=1)[:, 2] < positions[ring[0], 2]
    remap = np.arange(len(positions))
    remap[ring] = len(positions) + np.arange(len(ring))
    faces = np.where(below[:, None], remap[faces], faces)
    exact = weld_vertices(moved, faces, 0.0)
    assert not mesh_health(*exact[:2]).watertight
    welded_positions, welded_faces, _ = weld_vertices(moved, faces, 1e-6)
    assert mesh_health(welded_positions, welded_faces).watertight


def test_degenerate_and_duplicate_faces_are_dropped():
    positions, faces = uv_sphere(12, 24)
    extra = np.array([[0, 0, 5], [7, 8, 7], faces[3], faces[10][::-1], faces[10]])
    collinear = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], np.float32) + 5
    positions = np.concatenate([positions, collinear])
    n = len(positions) - 3
    faces_in = np.concatenate([faces, extra, [[n, n + 1, n + 2]]])
    result = clean_mesh(positions, faces_in)
    assert result.report.degenerate_faces == 3
    assert result.report.duplicate_faces == 3
    health = mesh_health(result.positions, result.faces)
    assert health.degenerate_faces == 0 and health.duplicate_faces == 0
    assert health.watertight and len(result.faces) == len(faces)
    assert result.report.unreferenced_vertices == 3


def test_duplicate_faces_keep_the_first_copy():
    faces = np.array([[0, 1, 2], [2, 1, 0], [1, 2, 3], [1, 2, 0]])
    np.testing.assert_array_equal(duplicate_faces(faces, 4), [False, True, False, True])


def test_orientation_is_made_consistent_and_outward():
    positions, faces = torus(40, 20)
    rng = np.random.default_rng(0)
    scrambled = faces.copy()
    flip = rng.random(len(faces)) < 0.4
    scrambled[flip] = scrambled[flip][:, ::-1]
    assert not mesh_health(positions, scrambled).consistently_oriented
    oriented, flipped, non_orientable = orient_faces(positions, scrambled)
    assert non_orientable == 0
    np.testing.assert_array_equal(oriented, faces)
    assert flipped == flip.sum()
    # An inside-out sphere is turned outward.
    sphere_positions, sphere_faces = uv_sphere()
    turned, flipped, _ = orient_faces(sphere_positions, sphere_faces[:, ::-1])
    assert signed_volume(sphere_positions, turned) > 0 and flipped == len(sphere_faces)


def test_a_moebius_band_is_left_alone_and_reported():
    segments = 24
    angle = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    positions = []
    for a in angle:
        for side in (-0.2, 0.2):
            radial = 1 + side * np.cos(a / 2)
            positions.append([radial * np.cos(a), radial * np.sin(a), side * np.sin(a / 2)])
    faces = []
    for i in range(segments):
        a0, a1 = 2 * i, 2 * i + 1
        if i + 1 < segments:
            b0, b1 = 2 * (i + 1), 2 * (i + 1) + 1
        else:
            b0, b1 = 1, 0  # the half twist
        faces += [[a0, b0, b1], [a0, b1, a1]]
    _, _, non_orientable = orient_faces(np.array(positions), np.array(faces))
    assert non_orientable == len(faces)


def test_holes_up_to_the_perimeter_are_filled_watertight():
    positions, faces = uv_sphere(24, 48)
    centres = positions[faces].mean(axis=1)
    small = centres[:, 2] > 0.99  # the cap around the north pole: perimeter 0.24 D
    large = centres[:, 0] > 0.9  # a side opening: perimeter about 0.8 D
    holed = faces[~small & ~large]
    filled_positions, filled_faces, filled, left = fill_holes(positions, holed, 0.3)
    assert (filled, left) == (1, 1)
    result = clean_mesh(positions, holed, CleanOptions(max_hole_perimeter=5.0))
    health = mesh_health(result.positions, result.faces)
    assert result.report.holes_filled == 2 and health.watertight
    assert health.consistently_oriented and health.volume > 0
    assert (result.source_vertex[-2:] == -1).all()


def test_box_with_a_thin_fin_keeps_the_fin_and_stays_watertight():
    positions, faces = box_with_fin(64)
    result = clean_mesh(positions, faces)
    health = mesh_health(result.positions, result.faces)
    assert health.watertight and health.consistently_oriented and health.volume > 0
    assert result.report.small_component_faces == 0
    # The fin reaches z = 0.65; its top must survive.
    assert result.positions[:, 2].max() > 0.6


def test_default_area_fraction_separates_parts_from_floaters():
    """The measurement behind DEFAULT_MIN_COMPONENT_AREA (see its comment in clean.py).

    On this 128^3 scene the floaters hold 1.0e-5 to 4.3e-4 of the area each, the thinnest
    railing bar 8.7e-3 and the leaf 7.2e-3 (at 256^3: floaters 1.5e-5 to 1.0e-4, bars 4.5e-3,
    leaf 6.1e-3). Floaters scale as 1/res^2 and bars as 1/res, so at TRELLIS.2's 1024 the
    floaters fall to 1e-6..7e-6 and the bars to about 1e-3: 1e-5 lies between them.
    """
    positions, faces, info = parts_scene(128)
    count, labels = component_labels(faces, len(positions))
    areas = face_areas(positions, faces)
    fractions = np.bincount(labels, weights=areas, minlength=count) / areas.sum()
    assert count == 1 + 6 + 1 + 12
    kept = np.sort(fractions)[-8:]  # the body, the railing bars and the leaf
    assert kept.min() > 5e-3 > 100 * DEFAULT_MIN_COMPONENT_AREA
    result = clean_mesh(positions, faces, CleanOptions(min_component_area=1e-3))
    assert result.report.small_components == 12
    assert component_labels(result.faces, len(result.positions))[0] == 8


def test_options_are_validated():
    with pytest.raises(ValueError, match="fraction"):
        CleanOptions(min_component_area=2.0)


def test_a_t_junction_crack_is_closed_by_splitting_not_by_a_flat_fan():
    positions, faces = uv_sphere(12, 24)
    a, c, x = faces[40]
    # The face across edge a -> c, split at the edge's midpoint b: a zero-area crack.
    shares = ((faces == a) | (faces == c)).sum(axis=1) == 2
    across = [k for k in np.flatnonzero(shares) if k != 40][0]
    y = [v for v in faces[across] if v not in (a, c)][0]
    b = len(positions)
    positions = np.concatenate([positions, (positions[[a]] + positions[[c]]) / 2])
    faces = np.concatenate([np.delete(faces, across, axis=0), [[c, b, y], [b, a, y]]])
    assert not mesh_health(positions, faces).watertight
    result = clean_mesh(positions, faces)
    health = mesh_health(result.positions, result.faces)
    assert health.watertight and health.degenerate_faces == 0 and health.consistently_oriented
    assert result.report.holes_filled == 1 and result.report.hole_faces_added == 1


@pytest.mark.parametrize("nodes, pairs", [(1, 0), (7, 3), (500, 300), (20_000, 19_000)])
def test_compiled_union_find_numbers_components_like_scipy(nodes, pairs):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from genesis3d.geometry.compiled import union_find_labels

    pytest.importorskip("numba")
    rng = np.random.default_rng(nodes)
    rows, cols = rng.integers(0, nodes, (2, pairs))
    graph = coo_matrix((np.ones(pairs, np.int8), (rows, cols)), shape=(nodes, nodes))
    expected = connected_components(graph, directed=False)[1]
    labels = union_find_labels()(rows, cols, nodes)
    assert labels.dtype == np.int32
    assert (labels == expected).all()


def test_compiled_grouped_order_and_face_normals_match_numpy():
    from genesis3d.geometry.compiled import face_normals_kernel, grouped_order
    from genesis3d.geometry.mesh_ops import _face_normals_numpy

    pytest.importorskip("numba")
    positions, faces = torus(96, 48)
    rng = np.random.default_rng(0)
    faces = faces[rng.permutation(len(faces))]
    faces = np.concatenate([faces, faces[:50]])  # repeated edges keep their slot order
    start = faces.T.reshape(-1)
    end = np.roll(faces, -1, axis=1).T.reshape(-1)
    low, high = np.minimum(start, end), np.maximum(start, end)
    expected = np.argsort(low * len(positions) + high, kind="stable")
    assert (grouped_order()(low, high, len(positions)) == expected).all()
    second = rng.integers(-5, 5, len(low))  # negative keys and ties keep their order
    assert (grouped_order()(low, second, len(positions)) == np.lexsort((second, low))).all()
    normals = face_normals_kernel()(positions, faces)
    assert (normals == _face_normals_numpy(positions, faces)).all()


def test_duplicate_faces_of_a_large_mesh_are_the_later_copies():
    _, faces = torus(96, 48)  # 9,216 faces: the compiled sort where numba is installed
    copies = np.array([5, 700, 9000])
    extra = faces[copies][:, ::-1]  # the same faces, wound the other way
    marked = duplicate_faces(np.concatenate([faces, extra, faces[:1]]), faces.max() + 1)
    assert np.flatnonzero(marked).tolist() == [
        len(faces),
        len(faces) + 1,
        len(faces) + 2,
        len(faces) + 3,
    ]
