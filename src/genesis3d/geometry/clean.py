"""Clean a raw triangle mesh: weld, drop bad faces and floaters, fill holes, orient.

Each stage is a function over arrays (hole filling in :mod:`genesis3d.geometry.holes`,
winding in :mod:`genesis3d.geometry.orient`); :func:`clean_mesh` runs them in order under a
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

from genesis3d.errors import ConfigError
from genesis3d.geometry.compiled import grouped_order
from genesis3d.geometry.holes import _fill, fill_holes
from genesis3d.geometry.measure import _edge_table
from genesis3d.geometry.mesh_ops import bounding_diagonal, check_mesh, face_areas
from genesis3d.geometry.orient import _consistent, _inward_pieces, orient_faces
from genesis3d.geometry.weld import (
    connected_labels,
    weld_boundary,
    weld_exact_with_source,
    weld_vertices,
)

__all__ = [
    "DEFAULT_MIN_COMPONENT_AREA",
    "CleanOptions",
    "CleanReport",
    "CleanedMesh",
    "clean_mesh",
    "component_labels",
    "degenerate_faces",
    "duplicate_faces",
    "fill_holes",
    "orient_faces",
    "remove_unreferenced",
    "small_components",
    "weld_vertices",
]

#: Default of :attr:`CleanOptions.min_component_area`, measured on
#: :func:`genesis3d.testing.shapes.parts_scene` (a body, six separate railing bars two samples
#: thick, a leaf and twelve floaters of 0.6-1 sample radius; marching cubes), see
#: tests/geometry/test_clean.py::test_default_area_fraction_separates_parts_from_floaters.
#: Area fractions at 128^3: floaters 1.0e-5 to 4.3e-4, bars 8.7e-3, leaf 7.2e-3; at 256^3:
#: floaters 1.5e-5 to 1.0e-4, bars 4.5e-3, leaf 6.1e-3. Floaters shrink as 1/res^2 and bars
#: as 1/res, so at TRELLIS.2's 1024^3 floaters hold about 1e-6 to 7e-6 and a bar 1e-3.
#: 1e-5 drops such debris there and keeps any separate part 100x smaller than that bar. At
#: low resolutions (<= 256) floaters survive it; raise it per call to drop them there.
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


def degenerate_faces(
    positions: np.ndarray, faces: np.ndarray, *, areas: np.ndarray | None = None
) -> np.ndarray:
    """Faces that repeat a vertex or have (near) zero area.

    Uses the threshold of :mod:`genesis3d.geometry.measure`: area at most 1e-12 times the
    squared bounding-box diagonal.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        areas: (m,) float64 face areas (:func:`face_areas`) if already at hand.

    Returns:
        (m,) bool, True for degenerate faces.
    """
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
    repeated |= faces[:, 0] == faces[:, 2]
    if areas is None:
        areas = face_areas(positions, faces)
    return repeated | (areas <= 1e-12 * max(bounding_diagonal(positions) ** 2, 1e-30))


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
    faces = np.asarray(faces, np.int64)
    # The sorted corners without a per-row sort (slow on millions of rows).
    low = np.minimum(np.minimum(faces[:, 0], faces[:, 1]), faces[:, 2])
    high = np.maximum(np.maximum(faces[:, 0], faces[:, 1]), faces[:, 2])
    middle = faces.sum(axis=1) - low - high
    rest = middle * np.int64(vertex_count) + high
    kernel = grouped_order() if len(faces) > 4096 else None
    order = kernel(low, rest, int(vertex_count)) if kernel is not None else np.lexsort((rest, low))
    low, rest = low[order], rest[order]
    same = (low[1:] == low[:-1]) & (rest[1:] == rest[:-1])
    duplicate = np.zeros(len(faces), bool)
    # The sort is stable, so the first of each run is the earliest face.
    duplicate[order[1:][same]] = True
    return duplicate


def component_labels(faces: np.ndarray, vertex_count: int) -> tuple[int, np.ndarray]:
    """Connected pieces of a face list (faces sharing a vertex are connected).

    Args:
        faces: (m, 3) int.
        vertex_count: number of vertices the faces index.

    Returns:
        (number of pieces, (m,) int64 piece of each face, numbered from 0).
    """
    labels = connected_labels(
        np.concatenate([faces[:, 0], faces[:, 1]]),
        np.concatenate([faces[:, 1], faces[:, 2]]),
        vertex_count,
    )
    face_labels = labels[faces[:, 0]]
    used, face_labels = np.unique(face_labels, return_inverse=True)
    return len(used), face_labels.astype(np.int64)


def small_components(
    positions: np.ndarray,
    faces: np.ndarray,
    min_area: float,
    *,
    areas: np.ndarray | None = None,
) -> np.ndarray:
    """Faces of pieces holding less than ``min_area`` of the total surface area.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        min_area: fraction of the total area.
        areas: (m,) float64 face areas (:func:`face_areas`) if already at hand.

    Returns:
        (m,) bool, True for faces of small pieces.
    """
    if len(faces) == 0 or min_area <= 0.0:
        return np.zeros(len(faces), bool)
    count, labels = component_labels(faces, len(positions))
    if areas is None:
        areas = face_areas(positions, faces)
    piece_area = np.bincount(labels, weights=areas, minlength=count)
    return piece_area[labels] < min_area * max(float(areas.sum()), 1e-300)


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
    positions, faces = check_mesh(positions, faces)
    vertices_in, faces_in = len(positions), len(faces)
    diagonal = bounding_diagonal(positions)
    if vertices_in == 0 or faces_in == 0:
        faces, source = faces[:0], np.zeros(0, np.int64)
    else:
        faces, source = weld_exact_with_source(positions, faces)
    positions = positions[source]
    welded = vertices_in - len(source)
    areas = face_areas(positions, faces)
    bad = degenerate_faces(positions, faces, areas=areas)
    copies = duplicate_faces(faces[~bad], len(positions))
    faces = faces[~bad][~copies]
    small = small_components(
        positions, faces, options.min_component_area, areas=areas[~bad][~copies]
    )
    small_count = component_labels(faces[small], len(positions))[0] if small.any() else 0
    faces = faces[~small]
    positions, faces, kept = remove_unreferenced(positions, faces)
    unreferenced = len(source) - len(kept)
    source = source[kept]
    # One edge table serves the boundary weld, orientation, hole filling and the outward
    # test; only a boundary weld that merges something needs a second one.
    edges = _edge_table(faces, len(positions))
    radius = options.weld_tolerance * diagonal
    merged = weld_boundary(positions, faces, edges, radius) if radius > 0.0 and len(faces) else None
    if merged is not None:
        faces, kept = merged
        welded += len(positions) - len(kept)
        positions, source = positions[kept], source[kept]
        collapsed = degenerate_faces(positions, faces)
        more_copies = duplicate_faces(faces[~collapsed], len(positions))
        faces = faces[~collapsed][~more_copies]
        bad = np.append(bad, collapsed)  # counted together below
        copies = np.append(copies, more_copies)
        positions, faces, kept = remove_unreferenced(positions, faces)
        unreferenced += len(source) - len(kept)
        source = source[kept]
        edges = _edge_table(faces, len(positions))
    m = len(faces)
    flip = non_orientable = np.zeros(m, bool)
    piece = np.zeros(m, np.int64)
    if options.orient and m:
        flip, non_orientable, piece = _consistent(faces, edges)
        faces = faces.copy()
        faces[flip] = faces[flip][:, ::-1]
    filled = left = 0
    added = np.zeros((0, 3), np.int64)
    added_from = np.zeros(0, np.int64)
    filled_slots = np.zeros(3 * m, bool)
    if options.max_hole_perimeter > 0.0 and m:
        centres, added, added_from, replaced, rows, filled_slots, filled, left = _fill(
            positions,
            faces,
            edges,
            options.max_hole_perimeter * diagonal,
            1e-12 * diagonal**2,
        )
        faces = faces.copy()
        faces[replaced] = rows
        positions = np.concatenate([positions, centres.astype(positions.dtype)])
        source = np.concatenate([source, np.full(len(centres), -1, np.int64)])
    faces = np.concatenate([faces, added])
    flipped = int(flip.sum())
    if options.orient and options.outward and m:
        counts = edges.counts[edges.inverse]
        open_slot = (counts > 2) | ((counts == 1) & ~filled_slots)
        open_piece = np.bincount(piece[np.arange(3 * m) % m], weights=open_slot) > 0
        piece = np.concatenate([piece, piece[added_from]])
        locked = np.concatenate([non_orientable, non_orientable[added_from]])
        reverse = _inward_pieces(positions, faces, piece, open_piece)[piece] & ~locked
        faces[reverse] = faces[reverse][:, ::-1]
        flipped = int((np.append(flip, np.zeros(len(added), bool)) ^ reverse)[:m].sum())
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
        hole_faces_added=len(added),
        holes_left=left,
        flipped_faces=flipped,
        non_orientable_faces=int(non_orientable.sum()),
        unreferenced_vertices=unreferenced,
    )
    return CleanedMesh(positions.astype(np.float32), faces, source, report)
