"""Native frames of each generator and their explicit conversion to the world frame.

The world frame is glTF's (see :mod:`genesis3d.assets`): right-handed, +Y up, +Z the
asset's front (towards a viewer who looks at the side the picture showed), metres.
In viewer terms that is RUB: +X to the viewer's right, +Y up, +Z back towards the viewer.

Each model works in a frame of its own. This module is the one place that says how each
maps to the world frame; every pipeline calls exactly one of these functions.

| source | native frame | to world |
| --- | --- | --- |
| ``inflate`` | image pixels: x right (columns), y down (rows), z towards the viewer | x, -y, z, scaled |
| TripoSplat | Z up, the picture's side faces +X, object in [-0.5, 0.5]^3 | (x, y, z) -> (y, z, x) |
| TRELLIS.2 | Z up, the picture's side faces -Y, object in [-0.5, 0.5]^3 | (x, y, z) -> (x, z, -y) |
| TripoSG | already Y up with the picture's side on +Z (the official export writes it unchanged) | identity |
| INRIA 3DGS PLY / .splat | RDF: x right, y down, z away from the viewer | (x, y, z) -> (x, -y, -z) |
| Niantic .spz | RUB, the same as the world frame | identity |
"""

from __future__ import annotations

import numpy as np

#: TripoSplat's internal Z-up frame with the front on +X: x -> world z, y -> world x, z -> world y.
TRIPOSPLAT_TO_WORLD = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float64)

#: TRELLIS.2's Z-up frame: (x, y, z) -> (x, z, -y), as the official GLB export does.
TRELLIS2_TO_WORLD = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)

#: TripoSG's output frame is already the world frame.
TRIPOSG_TO_WORLD = np.eye(3, dtype=np.float64)

#: INRIA 3DGS files (and antimatter15 .splat) are RDF: a half turn about X from the world.
RDF_TO_WORLD = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=np.float64)


def rotate_points(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Apply a rotation matrix to points or direction vectors.

    Args:
        points: (n, 3) float positions or normals.
        rotation: (3, 3) proper rotation matrix (det +1).

    Returns:
        (n, 3) float32 rotated points.
    """
    rotation = np.asarray(rotation, np.float64)
    return (np.asarray(points, np.float64) @ rotation.T).astype(np.float32)


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Convert a rotation matrix to a unit quaternion.

    Args:
        matrix: (3, 3) proper rotation matrix.

    Returns:
        (4,) float64 unit quaternion (w, x, y, z) with w >= 0.
    """
    return matrices_to_quaternions(np.asarray(matrix, np.float64)[None])[0]


def quaternion_multiply(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamilton product ``left * right`` of quaternions in (w, x, y, z) order.

    Args:
        left: (4,) or (n, 4) quaternions.
        right: (4,) or (n, 4) quaternions.

    Returns:
        (n, 4) float64 products (broadcast over the rows).
    """
    lw, lx, ly, lz = np.moveaxis(np.atleast_2d(np.asarray(left, np.float64)), -1, 0)
    rw, rx, ry, rz = np.moveaxis(np.atleast_2d(np.asarray(right, np.float64)), -1, 0)
    return np.stack(
        [
            lw * rw - lx * rx - ly * ry - lz * rz,
            lw * rx + lx * rw + ly * rz - lz * ry,
            lw * ry - lx * rz + ly * rw + lz * rx,
            lw * rz + lx * ry - ly * rx + lz * rw,
        ],
        axis=-1,
    )


def rotate_quaternions(quaternions: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Rotate the orientations of Gaussians by a frame rotation (R' = rotation @ R(q)).

    Args:
        quaternions: (n, 4) unit quaternions (w, x, y, z).
        rotation: (3, 3) proper rotation matrix.

    Returns:
        (n, 4) float32 unit quaternions (w, x, y, z).
    """
    turned = quaternion_multiply(matrix_to_quaternion(rotation), quaternions)
    turned /= np.linalg.norm(turned, axis=1, keepdims=True)
    return turned.astype(np.float32)


def image_to_world(
    points: np.ndarray, image_size: tuple[int, int], extent: float = 1.0
) -> np.ndarray:
    """Map the ``inflate`` generator's pixel frame to the world frame.

    The picture's longest side becomes ``extent`` metres, centred on the origin; columns
    run along +X, rows (downwards) along -Y, and depth towards the viewer along +Z. The
    pixel frame is left-handed, so this map is a mirror: reverse the winding of faces
    that were outward in pixel coordinates.

    Args:
        points: (n, 3) float positions in pixels: (column, row, depth towards viewer).
        image_size: (height, width) of the picture in pixels.
        extent: world length of the picture's longest side, in metres.

    Returns:
        (n, 3) float32 world positions.
    """
    height, width = image_size
    scale = extent / float(max(height, width))
    points = np.asarray(points, np.float64)
    world = np.empty_like(points)
    world[:, 0] = (points[:, 0] - width / 2.0) * scale
    world[:, 1] = (height / 2.0 - points[:, 1]) * scale
    world[:, 2] = points[:, 2] * scale
    return world.astype(np.float32)


def matrices_to_quaternions(matrices: np.ndarray) -> np.ndarray:
    """Convert many rotation matrices to unit quaternions at once.

    Args:
        matrices: (n, 3, 3) proper rotation matrices.

    Returns:
        (n, 4) float64 unit quaternions (w, x, y, z) with w >= 0.
    """
    m = np.asarray(matrices, np.float64)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    # Four candidate formulas; each row uses the one with the largest, best-conditioned pivot.
    candidates = np.stack(
        [
            np.stack(
                [
                    1 + m00 + m11 + m22,
                    m[:, 2, 1] - m[:, 1, 2],
                    m[:, 0, 2] - m[:, 2, 0],
                    m[:, 1, 0] - m[:, 0, 1],
                ],
                axis=1,
            ),
            np.stack(
                [
                    m[:, 2, 1] - m[:, 1, 2],
                    1 + m00 - m11 - m22,
                    m[:, 0, 1] + m[:, 1, 0],
                    m[:, 0, 2] + m[:, 2, 0],
                ],
                axis=1,
            ),
            np.stack(
                [
                    m[:, 0, 2] - m[:, 2, 0],
                    m[:, 0, 1] + m[:, 1, 0],
                    1 - m00 + m11 - m22,
                    m[:, 1, 2] + m[:, 2, 1],
                ],
                axis=1,
            ),
            np.stack(
                [
                    m[:, 1, 0] - m[:, 0, 1],
                    m[:, 0, 2] + m[:, 2, 0],
                    m[:, 1, 2] + m[:, 2, 1],
                    1 - m00 - m11 + m22,
                ],
                axis=1,
            ),
        ],
        axis=1,
    )
    pivots = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=1
    )
    best = np.argmax(pivots, axis=1)
    q = candidates[np.arange(len(m)), best]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)
