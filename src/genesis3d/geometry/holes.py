"""Fill holes in a triangle mesh: boundary loops up to a perimeter get a fan or a split.

Used by :func:`genesis3d.geometry.clean.clean_mesh`, which shares its edge table with this
stage; :func:`fill_holes` is the stand-alone entry point.
"""

from __future__ import annotations

import numpy as np

from genesis3d.geometry.measure import _edge_table
from genesis3d.geometry.mesh_ops import bounding_diagonal, check_mesh
from genesis3d.geometry.weld import connected_labels

__all__ = ["fill_holes"]


def _fill(positions: np.ndarray, faces: np.ndarray, edges, max_perimeter: float, min_area: float):
    """Fill boundary loops up to ``max_perimeter`` long.

    A loop gets a fan around a new centre vertex; a flat three-edge loop (a zero-area
    crack such as a T-junction or a dropped cap triangle: its fan would be degenerate) is
    closed, whatever its length, by splitting the face across its longest edge at the
    opposite loop vertex; other flat loops are left open.

    Returns:
        (centres (h, 3), added (a, 3) int64, face each added face continues (a,),
        replaced face indices (r,), their new rows (r, 3), filled (3m,) bool per face-edge
        slot, loops filled, loops left).
    """
    m = len(faces)
    slots = np.flatnonzero(edges.counts[edges.inverse] == 1)  # face-edge-major slots
    filled_slots = np.zeros(3 * m, bool)
    none = np.zeros((0, 3), np.int64)
    if len(slots) == 0:
        return np.zeros((0, 3)), none, none[:, 0], none[:, 0], none, filled_slots, 0, 0
    corner, face = np.divmod(slots, m)
    start = faces[face, corner]
    end = faces[face, (corner + 1) % 3]
    labels = connected_labels(start, end, len(positions))
    used, loop = np.unique(labels[start], return_inverse=True)
    loops = len(used)
    lengths = np.linalg.norm(
        positions[end].astype(np.float64) - positions[start].astype(np.float64), axis=1
    )
    edge_count = np.bincount(loop, minlength=loops)
    midpoints = 0.5 * (positions[start].astype(np.float64) + positions[end])
    centres = (
        np.stack(
            [np.bincount(loop, weights=midpoints[:, k], minlength=loops) for k in range(3)], axis=1
        )
        / np.maximum(edge_count, 1)[:, None]
    )
    fan_area = 0.5 * np.linalg.norm(
        np.cross(positions[start] - centres[loop], positions[end] - centres[loop]), axis=1
    )
    perimeter = np.bincount(loop, weights=lengths, minlength=loops)
    # Flat: a degenerate fan triangle, or (a sliver crack) area below 1e-6 perimeter^2.
    flat = np.bincount(loop, weights=fan_area <= min_area, minlength=loops) > 0
    flat |= np.bincount(loop, weights=fan_area, minlength=loops) <= 1e-6 * perimeter**2
    fill = perimeter <= max_perimeter
    # Flat triangles: split the face across the longest edge (u -> v, third corner x) at w.
    split = flat & (edge_count == 3)  # zero area: closed whatever its perimeter
    order = np.lexsort((-lengths, loop))
    longest = order[np.searchsorted(loop[order], np.arange(loops))]
    ends = np.bincount(loop, weights=start, minlength=loops).astype(np.int64)
    pick = longest[split]
    target = face[pick]
    unique_target = np.bincount(target, minlength=m)[target] == 1
    split[np.flatnonzero(split)[~unique_target]] = False
    pick, target = pick[unique_target], target[unique_target]
    u, v = start[pick], end[pick]
    w = ends[loop[pick]] - u - v
    x = faces[target, (corner[pick] + 2) % 3]
    fill = (fill & ~flat) | split
    fan = fill & ~split
    new_index = np.full(loops, -1, np.int64)
    new_index[fan] = len(positions) + np.arange(int(fan.sum()))
    chosen = fan[loop]
    filled_slots[slots[fill[loop]]] = True
    added = np.concatenate(
        [
            np.stack([end[chosen], start[chosen], new_index[loop[chosen]]], axis=1),
            np.stack([w, v, x], axis=1),
        ]
    )
    added_from = np.concatenate([face[chosen], target])
    replaced_rows = np.stack([u, w, x], axis=1)
    filled = int(fill.sum())
    return (
        centres[fan],
        added,
        added_from,
        target,
        replaced_rows,
        filled_slots,
        filled,
        loops - filled,
    )


def fill_holes(
    positions: np.ndarray, faces: np.ndarray, max_perimeter: float
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Close boundary loops up to a perimeter with a fan around their centre.

    As TRELLIS.2's ``fill_holes``: each loop gets one new vertex at the mean of its edge
    midpoints and one triangle per boundary edge, wound against that edge's face so the
    fill continues the surface's orientation. Loops are the connected pieces of the
    boundary-edge graph (two loops touching at a vertex count as one).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int, without duplicate faces.
        max_perimeter: longest loop filled, as a fraction of the bounding-box diagonal.

    Returns:
        (positions (n + h, 3), faces (m + added, 3) int64, loops filled, loops left open).
    """
    positions, faces = check_mesh(positions, faces)
    if len(faces) == 0:
        return positions, faces, 0, 0
    edges = _edge_table(faces, len(positions))
    diagonal = bounding_diagonal(positions)
    centres, added, _, replaced, rows, _, filled, left = _fill(
        positions, faces, edges, max_perimeter * diagonal, 1e-12 * diagonal**2
    )
    faces = faces.copy()
    faces[replaced] = rows
    positions = np.concatenate([positions, centres.astype(positions.dtype)])
    return positions, np.concatenate([faces, added]), filled, left
