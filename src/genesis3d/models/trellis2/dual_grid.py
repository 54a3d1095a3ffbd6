"""Flexible dual grid to mesh (TRELLIS.2's O-Voxel decoding), vectorised in torch.

One vertex per voxel, at its dual vertex. A flag on axis a of voxel v means the primal grid
edge along a through v's max corner in the other two axes crosses the surface; the four
voxels around that edge form a quad (only if all four exist), split into two triangles.
Voxel lookups use sorted linear keys and ``searchsorted``.
"""

from __future__ import annotations

import torch

from genesis3d.errors import InputError

#: Per axis (x, y, z), the offsets of the 4 voxels around a flagged edge, in quad order.
QUAD_OFFSETS = torch.tensor(
    [
        [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0]],
        [[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]],
        [[0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0]],
    ]
)


def _lookup(coords: torch.Tensor, query: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Row of each (..., 3) query voxel among ``coords`` (M, 3); -1 if absent or off the grid."""
    size = grid_size
    keys = (coords[:, 0] * size + coords[:, 1]) * size + coords[:, 2]
    sorted_keys, order = torch.sort(keys)
    inside = ((query >= 0) & (query < size)).all(dim=-1)
    query_keys = (query[..., 0] * size + query[..., 1]) * size + query[..., 2]
    position = torch.searchsorted(sorted_keys, query_keys).clamp_(max=len(keys) - 1)
    found = inside & (sorted_keys[position] == query_keys)
    return torch.where(found, order[position], torch.full_like(position, -1))


def flexible_dual_grid_to_mesh(
    coords: torch.Tensor,
    dual_vertices: torch.Tensor,
    intersected: torch.Tensor,
    split_weight: torch.Tensor | None,
    aabb: tuple[tuple[float, float, float], tuple[float, float, float]] | torch.Tensor,
    grid_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mesh of one voxel set.

    Args:
        coords: (M, 3) int voxel coordinates (x, y, z) in [0, grid_size).
        dual_vertices: (M, 3) float32 dual vertex of each voxel, in voxel units from its min corner.
        intersected: (M, 3) bool edge flags per axis.
        split_weight: (M, 1) float32 > 0, or None (then each quad is split by the normal test).
        aabb: ((min x, y, z), (max x, y, z)) of the grid.
        grid_size: voxels per axis.

    Returns:
        vertices (M, 3) float32 (one per voxel, unreferenced ones kept) and faces (F, 3) int32,
        two triangles per quad, quads in (voxel, axis) row-major order of the flags.
    """
    if coords.dim() != 2 or coords.shape[1] != 3:
        raise InputError(f"coords must be (M, 3), got {tuple(coords.shape)}")
    box = torch.as_tensor(aabb, dtype=torch.float32, device=dual_vertices.device)
    voxel_size = (box[1] - box[0]) / grid_size
    vertices = (coords.float() + dual_vertices.float()) * voxel_size + box[0]
    c = coords.long()
    voxel, axis = torch.nonzero(intersected, as_tuple=True)
    offsets = QUAD_OFFSETS.to(c.device)[axis]  # (L, 4, 3)
    quads = _lookup(c, c[voxel][:, None, :] + offsets, grid_size)
    quads = quads[(quads >= 0).all(dim=1)]
    first = torch.tensor([[0, 1, 2], [0, 2, 3]], device=c.device)
    second = torch.tensor([[0, 1, 3], [3, 1, 2]], device=c.device)
    if split_weight is not None:
        w = split_weight.float().reshape(-1)[quads]
        use_first = w[:, 0] * w[:, 2] > w[:, 1] * w[:, 3]
    else:
        # The official fallback compares the normals of (q0, q1, q2) and (q1, q2, q0) for the
        # first split against 0 for the second (whose second pair is degenerate): the first
        # split wins unless the quad's first triangle is degenerate.
        p = vertices[quads]
        n0 = torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        n1 = torch.linalg.cross(p[:, 2] - p[:, 1], p[:, 0] - p[:, 1])
        use_first = (n0 * n1).sum(dim=1).abs() > 0
    pattern = torch.where(use_first[:, None, None], first, second)  # (L, 2, 3)
    faces = torch.gather(quads[:, None, :].expand(-1, 2, -1), 2, pattern)
    return vertices, faces.reshape(-1, 3).to(torch.int32)
