"""Surface splats: area-uniform, tangent to the surface, coloured from the texture."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.assets import SplatAsset
from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.mesh_ops import vertex_normals
from genesis3d.geometry.sampling import sample_splats, sample_texture, stratified_faces

from .test_measure import cube


def quaternion_matrices(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q.T.astype(np.float64)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def textured_cube():
    positions, faces = cube(2.0)
    # UV by face: +z faces read the red left half of the texture, the rest the blue right half.
    front = positions[faces].mean(axis=1)[:, 2] > 0.99
    flat = faces.reshape(-1)
    uvs = np.where(np.repeat(front, 3)[:, None], [0.25, 0.5], [0.75, 0.5])
    texture = np.zeros((8, 8, 4), np.uint8)
    texture[:, :4] = [255, 0, 0, 255]
    texture[:, 4:] = [0, 0, 255, 255]
    return positions[flat], np.arange(len(flat)).reshape(-1, 3), uvs, texture


def test_splats_lie_on_the_surface_flat_and_coloured():
    positions, faces, uvs, texture = textured_cube()
    normals = vertex_normals(positions, faces)
    fields = sample_splats(positions, faces, normals, uvs, texture, 6000, np.random.default_rng(1))
    splats = SplatAsset(**fields)  # shapes, unit quaternions, positive scales, opacity range
    assert splats.n_splats == 6000
    means = splats.means
    assert np.allclose(np.abs(means).max(axis=1), 1.0, atol=1e-5)  # on the cube's faces
    # Area-uniform and stratified: each of the 6 equal faces gets its share within a few.
    side = np.argmax(np.abs(means), axis=1) * 2 + (
        means[np.arange(6000), np.argmax(np.abs(means), axis=1)] > 0
    )
    assert np.abs(np.bincount(side, minlength=6) - 1000).max() <= 2
    # Flat: the short axis (third column of the rotation) is the face normal.
    axes = quaternion_matrices(splats.rotations)[:, :, 2]
    face_normal = np.zeros_like(means)
    face_normal[np.arange(6000), np.argmax(np.abs(means), axis=1)] = 1.0
    assert np.abs(np.sum(axes * face_normal, axis=1)).min() > 0.999
    spacing = np.sqrt(24.0 / 6000)
    assert splats.scales[:, 0] == pytest.approx(0.7 * spacing, rel=1e-5)
    assert splats.scales[:, 2] == pytest.approx(0.07 * spacing, rel=1e-5)
    colors = splats.colors()
    on_front = means[:, 2] > 0.9999
    assert np.allclose(colors[on_front], [1, 0, 0], atol=1e-5)
    assert np.allclose(colors[~on_front], [0, 0, 1], atol=1e-5)
    assert splats.opacities.min() >= 0.95


def test_smooth_normals_tilt_splats_and_flat_ones_do_not():
    positions, faces = cube(2.0)
    uvs = np.full((8, 2), 0.5)
    texture = np.full((2, 2, 3), 128, np.uint8)
    smooth = sample_splats(
        positions,
        faces,
        vertex_normals(positions, faces),
        uvs,
        texture,
        500,
        np.random.default_rng(0),
    )
    flat = sample_splats(positions, faces, None, uvs, texture, 500, np.random.default_rng(0))
    np.testing.assert_array_equal(smooth["means"], flat["means"])
    tilt_smooth = np.abs(quaternion_matrices(smooth["rotations"])[:, :, 2]).max(axis=1)
    tilt_flat = np.abs(quaternion_matrices(flat["rotations"])[:, :, 2]).max(axis=1)
    assert tilt_flat.min() > 0.9999 and tilt_smooth.min() < 0.9


def test_same_generator_seed_same_splats():
    positions, faces, uvs, texture = textured_cube()
    first = sample_splats(positions, faces, None, uvs, texture, 100, np.random.default_rng(7))
    again = sample_splats(positions, faces, None, uvs, texture, 100, np.random.default_rng(7))
    other = sample_splats(positions, faces, None, uvs, texture, 100, np.random.default_rng(8))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["means"], other["means"])


def test_stratified_faces_follow_the_area():
    areas = np.array([1.0, 0.0, 3.0, 6.0])
    picks = stratified_faces(areas, 1000, np.random.default_rng(0))
    assert np.bincount(picks, minlength=4).tolist() == [100, 0, 300, 600]


def test_bilinear_texture_lookup():
    texture = np.array([[[0], [255]], [[255], [255]]], np.uint8)
    values = sample_texture(texture, np.array([[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.0, 0.0]]))
    assert values[:, 0] == pytest.approx([0.0, 0.5, 0.75, 0.0])


def test_bad_requests_are_refused():
    positions, faces, uvs, texture = textured_cube()
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="at least 1"):
        sample_splats(positions, faces, None, uvs, texture, 0, rng)
    with pytest.raises(ConfigError, match="opacity"):
        sample_splats(positions, faces, None, uvs, texture, 10, rng, opacity=1.5)
    with pytest.raises(InputError, match="zero area"):
        sample_splats(positions, faces[:0], None, uvs, texture, 10, rng)
