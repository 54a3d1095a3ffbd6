"""Analytic test meshes: sphere, torus, iso-surfaces of signed distance fields.

Used by the geometry tests and benchmarks. Every generator is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def torus(
    major_segments: int = 64, minor_segments: int = 32, major: float = 1.0, minor: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-wound torus around +Z (genus 1).

    Returns:
        (positions (a * b, 3) float32, faces (2 * a * b, 3) int64).
    """
    u = np.linspace(0.0, 2 * np.pi, major_segments, endpoint=False)
    v = np.linspace(0.0, 2 * np.pi, minor_segments, endpoint=False)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = major + minor * np.cos(vv)
    positions = np.stack([ring * np.cos(uu), ring * np.sin(uu), minor * np.sin(vv)], axis=-1)
    i, j = np.meshgrid(np.arange(major_segments), np.arange(minor_segments), indexing="ij")
    i1, j1 = (i + 1) % major_segments, (j + 1) % minor_segments
    a = i * minor_segments + j
    b = i1 * minor_segments + j
    c = i1 * minor_segments + j1
    d = i * minor_segments + j1
    faces = np.concatenate(
        [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    )
    return positions.reshape(-1, 3).astype(np.float32), faces.astype(np.int64)


def uv_sphere(
    rings: int = 32, segments: int = 64, radius: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-wound sphere with one vertex at each pole (genus 0).

    Returns:
        (positions (2 + (rings - 1) * segments, 3) float32,
        faces (2 * (rings - 1) * segments, 3) int64).
    """
    theta = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    tt, pp = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)], -1)
    positions = np.concatenate([[[0, 0, 1]], body.reshape(-1, 3), [[0, 0, -1]]]) * radius
    south = len(positions) - 1
    j = np.arange(segments)
    j1 = (j + 1) % segments
    faces = [np.stack([np.zeros(segments, np.int64), 1 + j, 1 + j1], -1)]
    for ring in range(rings - 2):
        top, bottom = 1 + ring * segments, 1 + (ring + 1) * segments
        faces.append(np.stack([top + j, bottom + j, bottom + j1], -1))
        faces.append(np.stack([top + j, bottom + j1, top + j1], -1))
    last = 1 + (rings - 2) * segments
    faces.append(np.stack([last + j, np.full(segments, south), last + j1], -1))
    return positions.astype(np.float32), np.concatenate(faces).astype(np.int64)


def sdf_mesh(
    sdf: Callable[[np.ndarray], np.ndarray], resolution: int, extent: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes surface of ``sdf < 0`` over the cube ``[-extent, extent]^3``.

    Args:
        sdf: maps (k, 3) float64 points to (k,) signed distances (negative inside).
        resolution: samples per axis.
        extent: half side of the sampled cube.

    Returns:
        (positions (n, 3) float32, faces (m, 3) int64), wound outward.
    """
    axis = np.linspace(-extent, extent, resolution)
    plane = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    values = np.empty((resolution, resolution, resolution), np.float32)
    for k, z in enumerate(axis):  # one slab at a time keeps memory at one plane
        points = np.concatenate([plane, np.full((len(plane), 1), z)], axis=1)
        values[:, :, k] = sdf(points).reshape(resolution, resolution)
    return grid_mesh(values, extent)


def grid_mesh(values: np.ndarray, extent: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes surface of ``values < 0`` sampled on a cube ``[-extent, extent]^3``.

    Args:
        values: (r, r, r) float signed distances at the grid points, index order x, y, z.
        extent: half side of the cube.

    Returns:
        (positions (n, 3) float32, faces (m, 3) int64), wound outward.
    """
    from skimage.measure import marching_cubes

    resolution = values.shape[0]
    spacing = (2 * extent / (resolution - 1),) * 3
    positions, faces, _, _ = marching_cubes(values, 0.0, spacing=spacing, method="lewiner")
    return (positions - extent).astype(np.float32), faces.astype(np.int64)


def box_sdf(points: np.ndarray, centre, half) -> np.ndarray:
    """Signed distance to an axis-aligned box: (k,) float64."""
    q = np.abs(points - np.asarray(centre)) - np.asarray(half)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    return outside + np.minimum(q.max(axis=1), 0.0)


def box_with_fin(resolution: int = 96, fin_voxels: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A box with a thin fin (``fin_voxels`` samples thick) standing on its top face.

    Returns:
        (positions, faces) of one closed component.
    """
    voxel = 2.0 / (resolution - 1)

    def sdf(points: np.ndarray) -> np.ndarray:
        body = box_sdf(points, (0, 0, -0.3), (0.5, 0.5, 0.3))
        fin = box_sdf(points, (0, 0, 0.3), (0.45, 0.5 * fin_voxels * voxel, 0.35))
        return np.minimum(body, fin)

    return sdf_mesh(sdf, resolution)


def parts_scene(resolution: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """A house-like body with separate thin parts and one-voxel floaters.

    Parts, each a separate component: a railing of 6 bars ``2`` samples thick, a leaf
    (flat ellipsoid) and 12 floaters (spheres of 0.6 to 1 sample radius, the debris a
    decoder leaves).

    Returns:
        (positions, faces, kinds) where ``kinds`` maps "body", "railing", "leaf" and
        "floater" to the SDF index of each part (for tests that label components).
    """
    voxel = 2.0 / (resolution - 1)
    rng = np.random.default_rng(seed)
    parts: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("body", lambda p: box_sdf(p, (0, 0, -0.2), (0.5, 0.4, 0.4)))
    ]
    for k in range(6):
        x = -0.45 + 0.18 * k
        parts.append(("railing", lambda p, x=x: box_sdf(p, (x, 0.6, 0.0), (voxel, voxel, 0.2))))
    parts.append(
        (
            "leaf",
            lambda p: (
                np.linalg.norm((p - (0.0, -0.7, 0.5)) / (0.08, 0.05, 2 * voxel), axis=1) - 1.0
            ),
        )
    )
    for _ in range(12):
        centre = rng.uniform(-0.8, 0.8, 3)
        centre[2] = rng.uniform(0.5, 0.8)
        radius = voxel * rng.uniform(0.6, 1.0)
        parts.append(("floater", lambda p, c=centre, r=radius: np.linalg.norm(p - c, axis=1) - r))

    axis = np.linspace(-1.0, 1.0, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = parts[0][1](grid.reshape(-1, 3)).reshape(grid.shape[:3]).astype(np.float32)
    for _, part in parts[1:]:
        # Thin parts only matter near themselves: evaluate them where they are below 0.1.
        coarse = part(grid[::8, ::8, ::8].reshape(-1, 3)).reshape(grid[::8, ::8, ::8].shape[:3])
        near = np.argwhere(coarse < 0.1 + 8 * 2.0 / resolution)
        low = np.maximum(near.min(axis=0) * 8 - 8, 0)
        high = np.minimum(near.max(axis=0) * 8 + 9, resolution)
        block = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        local = part(grid[block].reshape(-1, 3)).reshape(grid[block].shape[:3])
        values[block] = np.minimum(values[block], local)
    positions, faces = grid_mesh(values)
    kinds: dict[str, list[int]] = {}
    for index, (kind, _) in enumerate(parts):
        kinds.setdefault(kind, []).append(index)
    return positions, faces, {"parts": parts, "kinds": kinds}


def bumpy_sphere(resolution: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A closed sphere with smooth random bumps (about 8 * resolution^2 faces).

    Returns:
        (positions, faces) from marching cubes, wound outward.
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(24, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    heights = rng.uniform(0.02, 0.06, 24)

    def sdf(points: np.ndarray) -> np.ndarray:
        radius = np.linalg.norm(points, axis=1)
        unit = points / np.maximum(radius, 1e-9)[:, None]
        bumps = np.zeros(len(points))
        for direction, height in zip(directions, heights, strict=True):
            bumps += height * np.exp(-8.0 * (1.0 - unit @ direction))
        return radius - 0.7 - bumps

    return sdf_mesh(sdf, resolution)
