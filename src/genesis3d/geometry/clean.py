"""Clean a raw triangle mesh: weld, drop bad faces and floaters, fill holes, orient.

Each stage is a function over arrays; :func:`clean_mesh` runs them in order under a
:class:`CleanOptions` and returns what it changed in a :class:`CleanReport`. Everything is
vectorised (sorts, ``np.bincount`` and ``scipy.sparse.csgraph.connected_components``), so
meshes of millions of faces take seconds.

Lengths and areas in the options are relative to the bounding-box diagonal ``D`` of the
input (areas to the total surface area), so one default fits any scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.measure import _edge_table
from genesis3d.geometry.mesh_ops import face_normals

#: Default of :attr:`CleanOptions.min_component_area`. Measured on a 256^3 marching-cubes
#: scene (tests/geometry/test_clean.py::test_default_area_fraction_separates_parts_from_floaters):
#: the smallest intended part there (a thin railing bar) holds 1.1e-3 of the area and the
#: largest one-voxel floater 4e-6, so 1e-5 drops floaters of a few voxels and keeps parts
#: two orders of magnitude smaller than that railing (a leaf of 0.5 % of a tree's height).
DEFAULT_MIN_COMPONENT_AREA = 1e-5


@dataclass(frozen=True)
class CleanOptions:
    """What :func:`clean_mesh` does.

    Attributes:
        weld_tolerance: boundary vertices closer than this fraction of ``D`` are merged
            (vertices with equal positions always are); 0 welds exact duplicates only.
        min_component_area: connected pieces holding less than this fraction of the total
            area are dropped; 0 keeps every piece.
        max_hole_perimeter: boundary loops up to this fraction of ``D`` long are filled; 0
            fills none. The default 0.02 matches TRELLIS.2's 0.03 in its unit cube (whose
            diagonal is 1.73).
        orient: make face winding consistent across each orientable piece.
        outward: then turn each closed piece to enclose positive volume.
    """

    weld_tolerance: float = 1e-6
    min_component_area: float = DEFAULT_MIN_COMPONENT_AREA
    max_hole_perimeter: float = 0.02
    orient: bool = True
    outward: bool = True

    def __post_init__(self) -> None:
        for name in ("weld_tolerance", "min_component_area"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(
                    f"{name} is a fraction in [0, 1), got {value!r}; e.g. CleanOptions({name}=0)"
                )
        if not self.max_hole_perimeter >= 0.0:
            raise ConfigError(
                f"max_hole_perimeter must be >= 0 (a multiple of the diagonal), got "
                f"{self.max_hole_perimeter!r}; e.g. CleanOptions(max_hole_perimeter=0.02)"
            )


@dataclass(frozen=True)
class CleanReport:
    """What :func:`clean_mesh` removed or changed (counts)."""

    vertices_in: int
    faces_in: int
    vertices_out: int
    faces_out: int
    welded_vertices: int
    degenerate_faces: int
    duplicate_faces: int
    small_components: int
    small_component_faces: int
    holes_filled: int
    hole_faces_added: int
    holes_left: int
    flipped_faces: int
    non_orientable_faces: int
    unreferenced_vertices: int

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class CleanedMesh:
    """Result of :func:`clean_mesh`.

    Attributes:
        positions: (k, 3) float32.
        faces: (m, 3) int64.
        source_vertex: (k,) int64 input vertex each output vertex came from; -1 for
            vertices added to fill holes.
        report: the counts.
    """

    positions: np.ndarray
    faces: np.ndarray
    source_vertex: np.ndarray
    report: CleanReport


def _diagonal(positions: np.ndarray) -> float:
    if len(positions) == 0:
        return 0.0
    return float(np.linalg.norm(positions.max(axis=0) - positions.min(axis=0)))


def _check(positions: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    positions = np.asarray(positions)
    faces = np.asarray(faces)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {positions.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(
            f"faces must be an (m, 3) integer array, got shape {faces.shape} dtype {faces.dtype}"
        )
    if len(faces) and (faces.min() < 0 or faces.max() >= len(positions)):
        raise InputError(
            f"faces must index vertices in [0, {len(positions)}), got [{faces.min()}, {faces.max()}]"
        )
    return positions, faces.astype(np.int64)


def weld_vertices(
    positions: np.ndarray, faces: np.ndarray, tolerance: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge vertices with equal positions, then boundary vertices within a tolerance.

    Only vertices on a boundary edge (after the exact weld) are candidates for the
    tolerance weld: a crack between two patches shows up as boundary, while merging
    interior vertices could only collapse short edges or glue two close sheets together.
    Chains of close vertices merge into one; each group keeps its lowest-index position.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        tolerance: merge distance as a fraction of the bounding-box diagonal.

    Returns:
        (positions (k, 3) of the kept vertices, faces (m, 3) int64 into them, source (k,)
        int64 input index of each kept vertex).
    """
    positions, faces = _check(positions, faces)
    if len(positions) == 0:
        return positions, faces, np.zeros(0, np.int64)
    order = np.lexsort(positions.T[::-1])
    ordered = positions[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    group = np.cumsum(starts) - 1
    target = np.empty(len(order), np.int64)
    target[order] = group
    # Representative of each group: its lowest input index.
    source = np.full(int(group[-1]) + 1, len(positions), np.int64)
    np.minimum.at(source, group, order)
    faces = target[faces]
    radius = tolerance * _diagonal(positions)
    if radius > 0.0 and len(faces):
        edges = _edge_table(faces, len(source))
        low, high = np.divmod(edges.keys[edges.counts == 1], np.int64(len(source)))
        boundary = np.unique(np.concatenate([low, high]))
        if len(boundary) > 1:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components
            from scipy.spatial import cKDTree

            tree = cKDTree(positions[source[boundary]].astype(np.float64))
            pairs = tree.query_pairs(radius, output_type="ndarray")
            if len(pairs):
                count = len(source)
                graph = coo_matrix(
                    (np.ones(len(pairs), np.int8), (boundary[pairs[:, 0]], boundary[pairs[:, 1]])),
                    shape=(count, count),
                )
                _, labels = connected_components(graph, directed=False)
                merged = np.full(labels.max() + 1, count, np.int64)
                np.minimum.at(merged, labels, np.arange(count))
                # Renumber so that surviving vertices keep their order.
                keep = np.zeros(count, bool)
                keep[merged] = True
                renumber = np.cumsum(keep) - 1
                faces = renumber[merged[labels]][faces]
                source = source[keep]
    return positions[source], faces, source


def degenerate_faces(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces that repeat a vertex or have (near) zero area.

    Uses the threshold of :mod:`genesis3d.geometry.measure`: area at most 1e-12 times the
    squared bounding-box diagonal.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (m,) bool, True for degenerate faces.
    """
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
    repeated |= faces[:, 0] == faces[:, 2]
    areas = 0.5 * np.linalg.norm(face_normals(positions, faces), axis=1)
    return repeated | (areas <= 1e-12 * max(_diagonal(positions) ** 2, 1e-30))


def duplicate_faces(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """Faces using the same three vertices as an earlier face, in either winding.

    Args:
        faces: (m, 3) int.
        vertex_count: number of vertices the faces index.

    Returns:
        (m,) bool, True for every copy after the first.
    """
    if len(faces) < 2:
        return np.zeros(len(faces), bool)
    ordered = np.sort(faces, axis=1).astype(np.int64)
    pair = ordered[:, 0] * np.int64(vertex_count) + ordered[:, 1]
    order = np.lexsort((ordered[:, 2], pair))
    same = (pair[order][1:] == pair[order][:-1]) & (ordered[order, 2][1:] == ordered[order, 2][:-1])
    duplicate = np.zeros(len(faces), bool)
    # ``lexsort`` is stable, so the first of each run is the earliest face.
    duplicate[order[1:][same]] = True
    return duplicate


def component_labels(faces: np.ndarray, vertex_count: int) -> tuple[int, np.ndarray]:
    """Connected pieces of a face list (faces sharing a vertex are connected).

    Args:
        faces: (m, 3) int.
        vertex_count: number of vertices the faces index.

    Returns:
        (number of labels, (m,) int64 label of each face).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix(
        (np.ones(len(rows), np.int8), (rows, cols)), shape=(vertex_count, vertex_count)
    )
    count, labels = connected_components(graph, directed=False)
    return int(count), labels[faces[:, 0]].astype(np.int64)


def small_components(positions: np.ndarray, faces: np.ndarray, min_area: float) -> np.ndarray:
    """Faces of pieces holding less than ``min_area`` of the total surface area.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        min_area: fraction of the total area.

    Returns:
        (m,) bool, True for faces of small pieces.
    """
    if len(faces) == 0 or min_area <= 0.0:
        return np.zeros(len(faces), bool)
    count, labels = component_labels(faces, len(positions))
    areas = 0.5 * np.linalg.norm(face_normals(positions, faces), axis=1)
    piece_area = np.bincount(labels, weights=areas, minlength=count)
    return piece_area[labels] < min_area * max(float(areas.sum()), 1e-300)


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
    positions, faces = _check(positions, faces)
    if len(faces) == 0:
        return positions, faces, 0, 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = len(faces)
    edges = _edge_table(faces, len(positions))
    slots = np.flatnonzero(edges.counts[edges.inverse] == 1)  # face-edge-major slots
    if len(slots) == 0:
        return positions, faces, 0, 0
    corner, face = np.divmod(slots, m)
    start = faces[face, corner]
    end = faces[face, (corner + 1) % 3]
    count = len(positions)
    graph = coo_matrix((np.ones(len(start), np.int8), (start, end)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    loop_of_vertex = np.full(count, -1, np.int64)
    used, loop = np.unique(labels[start], return_inverse=True)
    loop_of_vertex[start] = loop
    loops = len(used)
    lengths = np.linalg.norm(
        positions[end].astype(np.float64) - positions[start].astype(np.float64), axis=1
    )
    perimeter = np.bincount(loop, weights=lengths, minlength=loops)
    fill = perimeter <= max_perimeter * _diagonal(positions)
    midpoints = 0.5 * (positions[start].astype(np.float64) + positions[end])
    edge_count = np.bincount(loop, minlength=loops)
    centres = (
        np.stack(
            [np.bincount(loop, weights=midpoints[:, k], minlength=loops) for k in range(3)], axis=1
        )
        / np.maximum(edge_count, 1)[:, None]
    )
    new_index = np.full(loops, -1, np.int64)
    new_index[fill] = count + np.arange(int(fill.sum()))
    chosen = fill[loop]
    added = np.stack([end[chosen], start[chosen], new_index[loop[chosen]]], axis=1)
    positions = np.concatenate([positions, centres[fill].astype(positions.dtype)])
    return positions, np.concatenate([faces, added]), int(fill.sum()), int((~fill).sum())


def orient_faces(
    positions: np.ndarray, faces: np.ndarray, *, outward: bool = True
) -> tuple[np.ndarray, int, int]:
    """Make winding consistent across each orientable piece, then outward where closed.

    Faces sharing a manifold edge (one used by exactly two faces) must use it in opposite
    directions. Each face has two states (kept, flipped); linking the states that agree
    across every manifold edge and taking connected components of that doubled graph
    solves all pieces at once: a piece whose two states end up connected is not
    orientable (a Moebius band) and is left as it is. Of the two valid windings of a
    piece, the one flipping fewer faces is taken. Then, if ``outward``, each piece with no
    boundary or non-manifold edge is reversed when its signed volume is negative (so an
    inner cavity's shell also faces outward).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        outward: turn closed pieces to enclose positive volume.

    Returns:
        (faces (m, 3) int64, faces flipped, faces in non-orientable pieces).
    """
    positions, faces = _check(positions, faces)
    m = len(faces)
    if m == 0:
        return faces, 0, 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = _edge_table(faces, len(positions))
    slot_edge, order, first = edges.inverse, edges.order, edges.first
    manifold = np.flatnonzero(edges.counts == 2)
    slot_a, slot_b = order[first[manifold]], order[first[manifold] + 1]
    corner_a, face_a = np.divmod(slot_a, m)
    corner_b, face_b = np.divmod(slot_b, m)
    forward_a = faces[face_a, corner_a] < faces[face_a, (corner_a + 1) % 3]
    forward_b = faces[face_b, corner_b] < faces[face_b, (corner_b + 1) % 3]
    agree = forward_a != forward_b  # opposite directions: already consistent
    # Node f is face f as is, node f + m face f reversed.
    rows = np.concatenate([face_a, face_a + m])
    cols = np.concatenate(
        [np.where(agree, face_b, face_b + m), np.where(agree, face_b + m, face_b)]
    )
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(2 * m, 2 * m))
    _, labels = connected_components(graph, directed=False)
    own, other = labels[:m], labels[m:]
    non_orientable = own == other
    kept = np.bincount(own, minlength=labels.max() + 1)
    flip = (kept[own] < kept[other]) | ((kept[own] == kept[other]) & (own > other))
    flip &= ~non_orientable
    if outward:
        piece = np.minimum(own, other)
        pieces = labels.max() + 1
        open_slot = edges.counts[slot_edge] != 2
        open_piece = np.bincount(piece[np.arange(3 * m) % m], weights=open_slot, minlength=pieces)
        corners = positions[faces].astype(np.float64)
        volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2]))
        volume = np.where(flip, -volume, volume)
        piece_volume = np.bincount(piece, weights=volume, minlength=pieces)
        reverse = (open_piece == 0) & (piece_volume < 0.0)
        flip ^= reverse[piece] & ~non_orientable
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces, int(flip.sum()), int(non_orientable.sum())


def remove_unreferenced(
    positions: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop vertices no face uses.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (positions (k, 3), faces (m, 3) int64 renumbered, kept (k,) int64 old index of each
        kept vertex).
    """
    used = np.zeros(len(positions), bool)
    used[faces.reshape(-1)] = True
    kept = np.flatnonzero(used)
    renumber = np.cumsum(used) - 1
    return positions[kept], renumber[faces], kept


def clean_mesh(
    positions: np.ndarray, faces: np.ndarray, options: CleanOptions | None = None
) -> CleanedMesh:
    """Weld, drop degenerate/duplicate faces and small pieces, fill holes, orient.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices.
        options: what to do; defaults to :class:`CleanOptions()`.

    Returns:
        The :class:`CleanedMesh` (float32 positions, int64 faces, source vertex map, report).
    """
    options = options or CleanOptions()
    positions, faces = _check(positions, faces)
    vertices_in, faces_in = len(positions), len(faces)
    positions, faces, source = weld_vertices(positions, faces, options.weld_tolerance)
    welded = vertices_in - len(positions)

    bad = degenerate_faces(positions, faces)
    faces = faces[~bad]
    copies = duplicate_faces(faces, len(positions))
    faces = faces[~copies]
    small = small_components(positions, faces, options.min_component_area)
    small_count = 0
    if small.any():
        small_count = len(np.unique(component_labels(faces[small], len(positions))[1]))
    faces = faces[~small]
    positions, faces, kept = remove_unreferenced(positions, faces)
    unreferenced = len(source) - len(kept)
    source = source[kept]

    filled = left = added = 0
    if options.max_hole_perimeter > 0.0:
        before = len(faces)
        positions, faces, filled, left = fill_holes(positions, faces, options.max_hole_perimeter)
        added = len(faces) - before
        source = np.concatenate([source, np.full(filled, -1, np.int64)])
    flipped = non_orientable = 0
    if options.orient:
        faces, flipped, non_orientable = orient_faces(positions, faces, outward=options.outward)
    report = CleanReport(
        vertices_in=vertices_in,
        faces_in=faces_in,
        vertices_out=len(positions),
        faces_out=len(faces),
        welded_vertices=welded,
        degenerate_faces=int(bad.sum()),
        duplicate_faces=int(copies.sum()),
        small_components=small_count,
        small_component_faces=int(small.sum()),
        holes_filled=filled,
        hole_faces_added=added,
        holes_left=left,
        flipped_faces=flipped,
        non_orientable_faces=non_orientable,
        unreferenced_vertices=unreferenced,
    )
    return CleanedMesh(positions.astype(np.float32), faces, source, report)
