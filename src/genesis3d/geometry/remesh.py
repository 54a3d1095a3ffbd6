"""Closed-surface remeshing: one clean, closed, manifold shell around any triangle soup.

TRELLIS.2's remesh contours ``{UDF = eps}``, the level set of the unsigned distance to the
input: every sheet of the input becomes a slab, so a closed shape comes back as an outer
*and* an inner shell. Here the inside is decided first and the field is signed, so only
the outer shell exists. Stages, all on a regular grid in cell units:

1. :func:`remesh_grid`: the grid around the input, padded so its border is far outside.
2. :func:`narrow_band_udf`: exact unsigned distance to the input at the grid points
   within a band around it (point-to-triangle, candidates from a k-d tree of dense
   surface samples); points farther away are ``inf``.
3. :func:`outside_region`: flood fill from the grid border through the points farther
   than ``band`` cells from the input (6-connected). A 6-neighbour step is one cell long,
   so it cannot pass a surface without one end within half a cell of it: with
   ``band >= 0.75`` nothing leaks through a closed surface, and holes narrower than about
   ``2 * band`` cells are sealed. Self-intersections and inconsistent winding do not
   matter, since only distances are used.
4. :func:`closed_field`: the outside region's boundary is the input offset by ``band``;
   it is contoured (one outer shell by construction: the outside is connected and
   everything else is inside) and the exact distance to that offset shell is taken
   again, so that the solid can be eroded back by ``band - dilation``. This is a
   morphological closing with sub-cell accuracy: the result lies ``dilation`` cells
   outside the input, and parts thinner than a cell survive as solids at least
   ``2 * dilation`` cells thick instead of breaking up.
5. Marching cubes of that signed field, outward winding, and the largest shell (or all).

Why a flood fill rather than generalised winding numbers: the winding number is the
better inside test for a *nearly* closed, consistently oriented mesh, but it needs every
triangle's solid angle at every grid point (``O(points x faces)``: minutes at 256 cells on
a CPU, against seconds here), it is meaningless for single-sided sheets such as a fin
modelled as one polygon (0.5 on both sides), and generated meshes have neither consistent
winding nor closure (see the TRELLIS.2 spec: the flexible dual grid output's winding is
arbitrary). The flood fill needs distances only in the narrow band, and its failure mode
is explicit: a hole wider than ``2 * band`` cells lets the outside in, which a larger
``band`` fixes at the price of filling concave gaps of that width.

Cost (one thread): a 36,864-face torus takes 6.6 CPU s at resolution 128 (98,592 faces
out) and 25 CPU s at 256 (389,968 faces); the two exact distance passes dominate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from genesis3d.errors import ConfigError, ExtractionError, InputError
from genesis3d.geometry.clean import component_labels
from genesis3d.geometry.compare import closest_point_on_triangles
from genesis3d.geometry.isosurface import marching_cubes_indices
from genesis3d.geometry.mesh_ops import face_areas

logger = logging.getLogger(__name__)

MIN_RESOLUTION = 8
MAX_RESOLUTION = 1024
MIN_BAND = 0.75
# Spacing of the surface samples that seed the nearest-face search, in cells.
_SAMPLE_SPACING = 0.5
_CANDIDATES = 8
_CHUNK = 131_072


@dataclass(frozen=True)
class RemeshGrid:
    """A regular grid of points ``origin + index * cell`` (world units).

    Attributes:
        origin: (3,) float64 world position of grid point (0, 0, 0).
        cell: edge length of one cell in world units.
        shape: points per axis.
    """

    origin: np.ndarray
    cell: float
    shape: tuple[int, int, int]

    def to_grid(self, positions: np.ndarray) -> np.ndarray:
        """(n, 3) world positions -> (n, 3) float64 positions in cell units."""
        return (np.asarray(positions, np.float64) - self.origin) / self.cell

    def to_world(self, positions: np.ndarray) -> np.ndarray:
        """(n, 3) positions in cell units -> (n, 3) float64 world positions."""
        return np.asarray(positions, np.float64) * self.cell + self.origin


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
        raise InputError(
            f"vertices must be an (n, 3) array with n >= 3, got shape {vertices.shape}"
        )
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError(f"faces must be an (m, 3) array with m >= 1, got shape {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        raise InputError(f"faces must hold integer vertex indices, got dtype {faces.dtype}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(
            f"faces index vertices 0..{len(vertices) - 1}, got indices in "
            f"[{faces.min()}, {faces.max()}]"
        )
    vertices = vertices.astype(np.float64)
    if not np.isfinite(vertices).all():
        raise InputError("vertices hold NaN or infinity; clean the mesh before remeshing")
    return vertices, faces.astype(np.int64)


def remesh_grid(vertices: np.ndarray, resolution: int, padding: float) -> RemeshGrid:
    """The grid of ``resolution`` cells along the longest side of the input's bounding box.

    Args:
        vertices: (n, 3) float world positions.
        resolution: cells along the longest side.
        padding: cells added on every side beyond the bounding box.

    Returns:
        The :class:`RemeshGrid`.

    Raises:
        InputError: the vertices span no volume along any axis (a single point).
    """
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    extent = float((high - low).max())
    if not extent > 0.0:
        raise InputError(
            f"the mesh has no extent (all vertices at {low.tolist()}); nothing to remesh"
        )
    cell = extent / resolution
    margin = int(np.ceil(padding))
    cells = np.ceil((high - low) / cell).astype(np.int64) + 2 * margin
    centre = 0.5 * (low + high)
    origin = centre - 0.5 * cells * cell
    shape = tuple(int(n) + 1 for n in cells)
    return RemeshGrid(origin=origin, cell=cell, shape=shape)


def surface_samples(
    positions: np.ndarray, faces: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points on a barycentric lattice of every face, no farther than ``spacing`` apart.

    Args:
        positions: (n, 3) float64.
        faces: (m, 3) int64.
        spacing: largest lattice step along a face's edges.

    Returns:
        (points (k, 3) float64, (k,) int64 face of each point); corners and edges included.
    """
    corners = positions[faces]
    longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max(axis=1)
    steps = np.maximum(1, np.ceil(longest / spacing)).astype(np.int64)
    points, owners = [], []
    for step in np.unique(steps):
        picked = np.flatnonzero(steps == step)
        i, j = np.meshgrid(np.arange(step + 1), np.arange(step + 1), indexing="ij")
        keep = i + j <= step
        u, v = (i[keep] / step)[None, :, None], (j[keep] / step)[None, :, None]
        a, b, c = (corners[picked, axis][:, None, :] for axis in range(3))
        points.append((a + u * (b - a) + v * (c - a)).reshape(-1, 3))
        owners.append(np.repeat(picked, keep.sum()))
    return np.concatenate(points), np.concatenate(owners)


def _distances(
    queries: np.ndarray,
    positions: np.ndarray,
    faces: np.ndarray,
    samples: np.ndarray,
    owners: np.ndarray,
    reach: float,
) -> np.ndarray:
    """Exact distance from each query to the nearest of its candidate faces, within ``reach``.

    The candidates are the faces of the query's nearest samples; queries with no sample
    within ``reach`` get ``inf`` (their distance exceeds ``reach`` minus the sample spacing).
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(samples, balanced_tree=False, compact_nodes=False)
    result = np.full(len(queries), np.inf)
    nearest_sample, _ = tree.query(queries, k=1, distance_upper_bound=reach)
    close = np.flatnonzero(np.isfinite(nearest_sample))
    k = min(_CANDIDATES, len(samples))
    for start in range(0, len(close), _CHUNK):
        rows_here = close[start : start + _CHUNK]
        points = queries[rows_here]
        _, nearest = tree.query(points, k=k)
        candidates = np.sort(owners[nearest.reshape(len(points), k)], axis=1)
        repeated = np.zeros(candidates.shape, bool)
        repeated[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
        best = np.full(len(points), np.inf)
        for column in range(k):
            rows = np.flatnonzero(~repeated[:, column])
            closest = closest_point_on_triangles(
                points[rows], positions[faces[candidates[rows, column]]]
            )
            distance = np.linalg.norm(points[rows] - closest, axis=1)
            best[rows] = np.minimum(best[rows], distance)
        result[rows_here] = best
    return result


def narrow_band_udf(
    positions: np.ndarray, faces: np.ndarray, shape: tuple[int, int, int], radius: float
) -> np.ndarray:
    """Unsigned distance to a mesh at the grid points within ``radius`` cells of it.

    Args:
        positions: (n, 3) float64 vertices in cell units (grid point ``i`` at ``i``).
        faces: (m, 3) int64.
        shape: points per axis.
        radius: band half-width in cells; every point closer than this gets its distance.

    Returns:
        (shape) float32 distances in cells, ``inf`` outside the band (points beyond the
        band may also carry finite distances larger than ``radius``).
    """
    from scipy import ndimage

    samples, owners = surface_samples(positions, faces, _SAMPLE_SPACING)
    index = np.clip(np.floor(samples).astype(np.int64), 0, np.asarray(shape) - 1)
    near = np.zeros(shape, bool)
    near[index[:, 0], index[:, 1], index[:, 2]] = True
    # A cube dilation by r cells covers the Euclidean ball of radius r around each sample's
    # cell; one more cell covers the sample spacing.
    reach = radius + _SAMPLE_SPACING
    near = ndimage.binary_dilation(
        near, structure=np.ones((3, 3, 3), bool), iterations=int(np.ceil(reach)) + 1
    )
    points = np.argwhere(near).astype(np.float64)
    udf = np.full(shape, np.inf, np.float32)
    udf[near] = _distances(points, positions, faces, samples, owners, reach)
    return udf


def outside_region(udf: np.ndarray, band: float) -> np.ndarray:
    """Grid points reachable from the grid border without coming within ``band`` of the input.

    Args:
        udf: (nx, ny, nz) float distances in cells from :func:`narrow_band_udf`.
        band: cells; at least ``MIN_BAND`` so that no 6-neighbour step crosses a surface.

    Returns:
        (nx, ny, nz) bool, True outside.

    Raises:
        ExtractionError: the border itself lies within the band (too little padding).
    """
    from scipy import ndimage

    free = udf > band
    border = np.zeros(udf.shape, bool)
    border[[0, -1], :, :] = border[:, [0, -1], :] = border[:, :, [0, -1]] = True
    if not free[border].all():
        raise ExtractionError("the grid border lies within the band; the grid needs more padding")
    labels, _ = ndimage.label(free)
    return np.isin(labels, np.unique(labels[border]))


def _contour(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a field positive inside; faces wound outward."""
    # A value exactly at the level makes marching cubes emit zero-area faces.
    field = np.where(field == 0.0, np.float32(1e-6), field).astype(np.float32)
    vertices, faces = marching_cubes_indices(field, 0.0)
    return vertices.astype(np.float64), faces[:, ::-1].astype(np.int64)


def closed_field(udf: np.ndarray, outside: np.ndarray, band: float, dilation: float) -> np.ndarray:
    """The signed field (positive inside) of the input closed by ``band`` and pushed out by ``dilation``.

    Args:
        udf: (nx, ny, nz) float distances in cells to the input.
        outside: (nx, ny, nz) bool from :func:`outside_region`.
        band: the flood fill's band in cells.
        dilation: cells by which the result lies outside the input, ``0 <= dilation < band``.

    Returns:
        (nx, ny, nz) float32 signed field in cells, zero on the result's surface.
    """
    # The outside's boundary, at distance ``band`` from the input: the dilated solid.
    distance = np.minimum(udf, band + 1.5)
    dilated = np.where(outside, band - distance, np.abs(distance - band)).astype(np.float32)
    offset_vertices, offset_faces = _contour(dilated)
    erosion = band - dilation
    to_offset = narrow_band_udf(offset_vertices, offset_faces, udf.shape, erosion + 1.0)
    to_offset = np.minimum(to_offset, erosion + 2.0)
    return np.where(outside, -to_offset - erosion, to_offset - erosion).astype(np.float32)


def _keep_shells(
    vertices: np.ndarray, faces: np.ndarray, keep: Literal["largest", "all"]
) -> tuple[np.ndarray, np.ndarray]:
    count, labels = component_labels(faces, len(vertices))
    if keep == "all" or count == 1:
        return vertices, faces
    areas = np.bincount(labels, weights=face_areas(vertices, faces), minlength=count)
    largest = int(np.argmax(areas))
    logger.info(
        "remesh: kept the largest of %d shells (%.1f%% of the area)",
        count,
        100.0 * areas[largest] / areas.sum(),
    )
    faces = faces[labels == largest]
    used, faces = np.unique(faces, return_inverse=True)
    return vertices[used], faces.reshape(-1, 3)


def remesh_closed(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    resolution: int = 256,
    band: float = 1.0,
    dilation: float = 0.5,
    keep: Literal["largest", "all"] = "largest",
) -> tuple[np.ndarray, np.ndarray]:
    """Remesh any triangle mesh into one closed, manifold, outward-wound surface.

    Args:
        vertices: (n, 3) float positions.
        faces: (m, 3) int vertex indices; holes, self-intersections, duplicate or
            inconsistently wound faces are all accepted.
        resolution: cells along the longest side of the bounding box, in
            [``MIN_RESOLUTION``, ``MAX_RESOLUTION``]; the output's edges are about one cell.
        band: half-width in cells of the shell the outside may not enter, at least
            ``MIN_BAND``. Holes narrower than about ``2 * band`` cells are sealed and
            concave gaps narrower than that are filled.
        dilation: cells by which the result lies outside the input, in ``[0, band)``;
            parts thinner than a cell come out at least ``2 * dilation`` cells thick (0
            reproduces the input's closing exactly but lets sub-cell parts break up).
        keep: "largest" keeps the shell of largest area, "all" keeps every separate piece
            (there are never inner shells).

    Returns:
        (vertices (v, 3) float32, faces (f, 3) int32), closed, edge- and vertex-manifold,
        with right-hand normals pointing outward.

    Raises:
        ConfigError: a parameter out of range.
        InputError: malformed or empty input.
        ExtractionError: the input vanished at this resolution.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ConfigError(f"resolution must be an integer, got {resolution!r}; e.g. resolution=256")
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ConfigError(
            f"resolution must be in [{MIN_RESOLUTION}, {MAX_RESOLUTION}] cells, got {resolution}; "
            "e.g. resolution=256"
        )
    if not np.isfinite(band) or band < MIN_BAND:
        raise ConfigError(
            f"band must be at least {MIN_BAND} cells (a thinner band lets the outside leak "
            f"through the surface), got {band}; e.g. band=1.0"
        )
    if not 0.0 <= dilation < band:
        raise ConfigError(f"dilation must be in [0, band={band}) cells, got {dilation}; e.g. 0.5")
    if keep not in ("largest", "all"):
        raise ConfigError(f"keep must be 'largest' or 'all', got {keep!r}")
    positions, faces = _check_mesh(vertices, faces)
    grid = remesh_grid(positions, int(resolution), padding=band + 3.0)
    grid_positions = grid.to_grid(positions)
    udf = narrow_band_udf(grid_positions, faces, grid.shape, band + 1.5)
    outside = outside_region(udf, band)
    field = closed_field(udf, outside, band, dilation)
    if not (field > 0.0).any():
        raise ExtractionError(
            f"nothing of the mesh is thicker than the grid at resolution {resolution}; "
            "raise resolution or dilation"
        )
    result_vertices, result_faces = _contour(field)
    result_vertices, result_faces = _keep_shells(result_vertices, result_faces, keep)
    return (
        grid.to_world(result_vertices).astype(np.float32),
        result_faces.astype(np.int32),
    )
