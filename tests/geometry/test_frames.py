import numpy as np
import pytest

from genesis3d.geometry import frames


def _rotation_from_quaternion(q):
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@pytest.mark.parametrize(
    "name", ["TRIPOSPLAT_TO_WORLD", "TRELLIS2_TO_WORLD", "TRIPOSG_TO_WORLD", "RDF_TO_WORLD"]
)
def test_frame_matrices_are_proper_rotations(name):
    matrix = getattr(frames, name)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(matrix) == pytest.approx(1.0)


def test_triposplat_up_and_front():
    # internal Z up becomes world Y up; the picture's side (+X internally) faces world +Z
    up, front = frames.rotate_points(
        np.array([[0, 0, 1.0], [1.0, 0, 0]]), frames.TRIPOSPLAT_TO_WORLD
    )
    np.testing.assert_allclose(up, [0, 1, 0])
    np.testing.assert_allclose(front, [0, 0, 1])


def test_trellis2_matches_official_export_axes():
    # the official GLB export maps (x, y, z) -> (x, z, -y)
    point = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(
        frames.rotate_points(point, frames.TRELLIS2_TO_WORLD), [[0.1, 0.3, -0.2]], rtol=1e-6
    )


def test_rdf_is_a_half_turn_about_x():
    np.testing.assert_allclose(
        frames.rotate_points(np.array([[1.0, 2.0, 3.0]]), frames.RDF_TO_WORLD), [[1, -2, -3]]
    )
    np.testing.assert_allclose(frames.RDF_TO_WORLD @ frames.RDF_TO_WORLD, np.eye(3))


def test_matrix_quaternion_round_trip_on_random_rotations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        matrix = _rotation_from_quaternion(q)
        back = frames.matrix_to_quaternion(matrix)
        np.testing.assert_allclose(_rotation_from_quaternion(back), matrix, atol=1e-9)
    for matrix in (
        frames.RDF_TO_WORLD,
        frames.TRELLIS2_TO_WORLD,
        frames.TRIPOSPLAT_TO_WORLD,
        np.diag([-1.0, -1.0, 1.0]),
    ):
        np.testing.assert_allclose(
            _rotation_from_quaternion(frames.matrix_to_quaternion(matrix)), matrix, atol=1e-12
        )


def test_rotate_quaternions_composes_frame_rotation():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    turned = frames.rotate_quaternions(q, frames.TRIPOSPLAT_TO_WORLD)
    np.testing.assert_allclose(np.linalg.norm(turned, axis=1), 1.0, atol=1e-6)
    for original, result in zip(q, turned, strict=True):
        expected = frames.TRIPOSPLAT_TO_WORLD @ _rotation_from_quaternion(original)
        np.testing.assert_allclose(_rotation_from_quaternion(result), expected, atol=1e-5)


def test_image_to_world_axes_and_scale():
    # a 200 x 100 (H x W) picture: longest side 200 px -> 1 m; centre -> origin
    points = np.array(
        [[50.0, 100.0, 0.0], [100.0, 100.0, 0.0], [50.0, 0.0, 0.0], [50.0, 100.0, 20.0]]
    )
    world = frames.image_to_world(points, (200, 100), extent=1.0)
    np.testing.assert_allclose(world[0], [0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(world[1], [0.25, 0, 0], atol=1e-7)  # right in the picture -> +X
    np.testing.assert_allclose(world[2], [0, 0.5, 0], atol=1e-7)  # top row -> +Y (up)
    np.testing.assert_allclose(world[3], [0, 0, 0.1], atol=1e-7)  # towards the viewer -> +Z (front)
