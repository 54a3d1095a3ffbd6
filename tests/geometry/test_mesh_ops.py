import numpy as np
import pytest

from genesis3d.geometry.frames import matrices_to_quaternions, matrix_to_quaternion
from genesis3d.geometry.mesh_ops import split_by_face_group, vertex_normals, vertex_tangents
from genesis3d.geometry.sampling import sample_texture


def test_normals_of_a_quad_and_split_by_group():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(vertex_normals(positions, faces), np.tile([0, 0, 1.0], (4, 1)))
    source, group, new_faces = split_by_face_group(faces, np.array([0, 1]))
    assert len(source) == 6  # vertices 0 and 2 are shared by both groups
    np.testing.assert_array_equal(source[new_faces], faces)
    assert (group[new_faces] == np.array([[0], [1]])).all()


def test_tangents_follow_u_and_handedness_follows_v():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile([0, 0, 1.0], (4, 1))
    # glTF UVs: v grows downwards in the image, i.e. towards -Y on this quad
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0.0]])
    tangents = vertex_tangents(positions, faces, normals, uvs)
    np.testing.assert_allclose(tangents[:, :3], np.tile([1, 0, 0], (4, 1)), atol=1e-6)
    bitangent = np.cross(normals, tangents[:, :3]) * tangents[:, 3:]
    np.testing.assert_allclose(bitangent, np.tile([0, -1, 0], (4, 1)), atol=1e-6)
    mirrored = vertex_tangents(positions, faces, normals, uvs * [1, -1] + [0, 1])
    assert (mirrored[:, 3] == -tangents[:, 3]).all()


def test_vectorised_quaternions_match_the_scalar_routine():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    matrices = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )
    many = matrices_to_quaternions(matrices)
    one_by_one = np.stack([matrix_to_quaternion(m) for m in matrices])
    np.testing.assert_allclose(many, one_by_one, atol=1e-9)
    np.testing.assert_allclose(np.abs((many * q).sum(axis=1)), 1.0, atol=1e-9)


def test_bilinear_sampling_at_texel_centres():
    texture = np.array([[[0], [255]]], np.uint8)  # 1 x 2
    np.testing.assert_allclose(
        sample_texture(texture, np.array([[0.25, 0.5], [0.5, 0.5], [0.75, 0.5]])),
        [[0], [0.5], [1]],
        atol=1e-6,
    )


def test_corner_sums_round_as_add_at_corner_by_corner():
    from genesis3d.geometry.mesh_ops import _sum_at_corners

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 50, (4000, 3))
    values = rng.normal(size=(4000, 3)) * 10.0 ** rng.integers(-8, 8, (4000, 1))
    expected = np.zeros((60, 3))  # ten vertices no face uses
    for corner in range(3):
        np.add.at(expected, faces[:, corner], values)
    np.testing.assert_array_equal(_sum_at_corners(faces, values, 60), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_face_normals_equal_the_numpy_ones(monkeypatch, dtype):
    pytest.importorskip("numba")
    from genesis3d.geometry import mesh_ops
    from genesis3d.testing.shapes import torus

    positions, faces = torus(256, 160)  # above the compiled path's face count
    positions = positions.astype(dtype)
    assert len(faces) >= mesh_ops._COMPILED_FACES
    compiled = mesh_ops.face_normals(positions, faces)
    monkeypatch.setattr(mesh_ops, "_COMPILED_FACES", 1 << 62)
    np.testing.assert_array_equal(compiled, mesh_ops.face_normals(positions, faces))
    # Out-of-range indices never reach the compiled loop: NumPy's error is raised.
    monkeypatch.undo()
    with pytest.raises(IndexError):
        mesh_ops.face_normals(positions[:10], faces)
