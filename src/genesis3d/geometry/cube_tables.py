"""The triangle table of marching cubes, derived from the cube's faces rather than typed in.

A cube's corner ``c = 4 dx + 2 dy + dz`` is *above* when its value exceeds the level; a
case is the 8-bit set of above corners. The surface crosses every edge whose two corners
differ. On each of the cube's six faces the crossings are joined into segments: two
crossings make one segment; four (the ambiguous face, above and below corners alternating)
make two, joined so that the face's two above corners stay connected (each segment cuts off
one below corner). The rule reads nothing but the face's own four corners, so the two cubes
that share a face draw the same segments on it and the surface has no cracks: every crossing
is the end of exactly one segment on each of the two faces that hold its edge, the segments
of a cube close into loops, and each loop becomes a polygon, triangulated without new
vertices and with no diagonal between two crossings of one face (the cube across it could
draw the same diagonal, and four triangles would share an edge).

Polygons are wound so that their right-hand normals point toward the above corners
(toward larger values), as scikit-image's marching cubes winds them. Away from ambiguous
faces the polygons are those of any marching cubes (the same vertices, a polygon of ``m``
crossings as ``m - 2`` triangles); on ambiguous faces scikit-image's Lewiner variant decides
by the values (asymptotic decider) where this table always keeps the above side connected:
with TripoSG's field, positive inside, thin parts of a shape stay joined.

Edges are numbered by axis (x: 0-3, y: 4-7, z: 8-11) and, within an axis, by their lower
corner in increasing order.
"""

from __future__ import annotations

import functools

import numpy as np

#: corner offsets (dx, dy, dz) of corner c = 4 dx + 2 dy + dz
CORNERS = np.array([(c >> 2 & 1, c >> 1 & 1, c & 1) for c in range(8)], np.int64)


def _edges() -> np.ndarray:
    """(12, 2) corner pairs (lower, upper), grouped by axis."""
    edges = []
    for axis in range(3):
        bit = 4 >> axis
        edges.extend((corner, corner | bit) for corner in range(8) if not corner & bit)
    return np.array(edges, np.int64)


#: (12, 2) the corners of each edge, lower first
EDGES = _edges()
#: (12,) the axis each edge runs along
EDGE_AXIS = np.repeat(np.arange(3), 4)
_EDGE_OF = {(int(a), int(b)): e for e, (a, b) in enumerate(EDGES)}


def _faces() -> list[list[int]]:
    """The six faces, each as its four corners in cyclic order."""
    faces = []
    for axis in range(3):
        u, v = [other for other in range(3) if other != axis]
        for side in (0, 1):
            ring = []
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                offset = [0, 0, 0]
                offset[axis], offset[u], offset[v] = side, du, dv
                ring.append(4 * offset[0] + 2 * offset[1] + offset[2])
            faces.append(ring)
    return faces


def _edge(a: int, b: int) -> int:
    return _EDGE_OF[(min(a, b), max(a, b))]


def _face_segments(ring: list[int], above: list[bool]) -> list[tuple[int, int]]:
    """The segments (pairs of crossed edges) the surface draws on one face."""
    crossed = [
        _edge(ring[k], ring[(k + 1) % 4]) for k in range(4) if above[k] != above[(k + 1) % 4]
    ]
    if len(crossed) == 2:
        return [(crossed[0], crossed[1])]
    if len(crossed) == 4:
        # Alternating corners: cut off each below corner by the two edges that meet at it.
        segments = []
        for k in range(4):
            if not above[k]:
                segments.append((_edge(ring[k - 1], ring[k]), _edge(ring[k], ring[(k + 1) % 4])))
        return segments
    return []


def _loops(segments: list[tuple[int, int]]) -> list[list[int]]:
    """Chain segments sharing crossed edges into closed loops of edges."""
    neighbours: dict[int, list[int]] = {}
    for a, b in segments:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    assert all(len(ends) == 2 for ends in neighbours.values()), neighbours
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, previous, current = [start], None, start
        seen.add(start)
        while True:
            first, second = neighbours[current]
            following = second if first == previous else first
            if following == start:
                break
            loop.append(following)
            seen.add(following)
            previous, current = current, following
        loops.append(loop)
    return loops


def _wind(loop: list[int], case: int) -> list[int]:
    """The loop in the order whose right-hand normal points toward the above corners."""
    points = CORNERS[EDGES[loop]].mean(axis=1).astype(np.float64)
    normal = np.cross(points, np.roll(points, -1, axis=0)).sum(axis=0)
    toward = np.zeros(3)
    for edge in loop:
        low, high = EDGES[edge]
        upward = CORNERS[high] - CORNERS[low]
        toward += upward if case >> high & 1 else -upward
    alignment = float(normal @ toward)
    assert abs(alignment) > 1e-9, (case, loop)
    return loop if alignment > 0 else loop[::-1]


def _triangulations(loop: list[int]) -> list[list[tuple[int, int, int]]]:
    """Every triangulation of a polygon without new vertices, each in the polygon's winding."""
    if len(loop) < 3:
        return [[]]
    first, last = loop[0], loop[-1]
    found = []
    for apex in range(1, len(loop) - 1):
        for left in _triangulations(loop[: apex + 1]):
            for right in _triangulations(loop[apex:]):
                found.append([(first, loop[apex], last), *left, *right])
    return found


@functools.cache
def _quality(triangle: tuple[int, int, int]) -> float:
    """Area over the squared edge lengths (1 for an equilateral triangle), at edge midpoints."""
    a, b, c = CORNERS[EDGES[list(triangle)]].mean(axis=1)
    area = np.linalg.norm(np.cross(b - a, c - a)) / 2
    return float(
        4 * np.sqrt(3) * area / (((b - a) ** 2).sum() + ((c - b) ** 2).sum() + ((a - c) ** 2).sum())
    )


@functools.cache
def _on_one_face(first: int, second: int) -> bool:
    """Whether two edges lie on a common face of the cube."""
    corners = {int(c) for c in EDGES[first]} | {int(c) for c in EDGES[second]}
    return any(
        all(corner >> (2 - axis) & 1 == side for corner in corners)
        for axis in range(3)
        for side in (0, 1)
    )


def _triangulate(loop: list[int]) -> list[tuple[int, int, int]]:
    """Triangles of a polygon of crossings, in its winding, without new vertices.

    No diagonal may join two crossings of one face: the cube across that face could draw
    the same diagonal, and four triangles would share an edge. Among the triangulations
    left, the one whose worst triangle is best (at edge midpoints) is taken.
    """
    allowed = [
        triangles
        for triangles in _triangulations(loop)
        if not any(
            _on_one_face(a, b)
            for triangle in triangles
            for a, b in zip(triangle, triangle[1:] + triangle[:1], strict=True)
            if abs(loop.index(a) - loop.index(b)) not in (1, len(loop) - 1)
        )
    ]
    assert allowed, loop
    return max(allowed, key=lambda triangles: min(_quality(t) for t in triangles))


@functools.cache
def triangle_table() -> tuple[np.ndarray, np.ndarray]:
    """The triangles of every case.

    Returns:
        (counts (256,) int64 triangles per case, edges (256, 3 * most) int64: the crossed
        edges of each triangle in turn, -1 past the case's count).
    """
    faces = _faces()
    cases = []
    for case in range(256):
        segments = []
        for ring in faces:
            segments += _face_segments(ring, [bool(case >> corner & 1) for corner in ring])
        triangles = []
        for loop in _loops(segments):
            triangles += _triangulate(_wind(loop, case))
        cases.append(triangles)
    most = max(len(triangles) for triangles in cases)
    counts = np.array([len(triangles) for triangles in cases], np.int64)
    edges = np.full((256, 3 * most), -1, np.int64)
    for case, triangles in enumerate(cases):
        flat = [edge for triangle in triangles for edge in triangle]
        edges[case, : len(flat)] = flat
    counts.setflags(write=False)
    edges.setflags(write=False)
    return counts, edges


@functools.cache
def crossing_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`triangle_table` by crossed edge: each case's crossed edges and its triangles as
    positions in that list.

    Returns:
        (crossed (256, 13) int64: the count, then the crossed edges in increasing order;
        corners (256, 3 * most) int64: each triangle corner's position among the crossed
        edges, -1 past the case's triangles; counts (256,) int64 triangles per case).
    """
    counts, edges = triangle_table()
    crossed = np.zeros((256, 13), np.int64)
    corners = np.full(edges.shape, -1, np.int64)
    for case in range(256):
        used = sorted(set(edges[case, : 3 * counts[case]].tolist()))
        crossed[case, 0] = len(used)
        crossed[case, 1 : 1 + len(used)] = used
        corners[case, : 3 * counts[case]] = [used.index(e) for e in edges[case, : 3 * counts[case]]]
    for table in (crossed, corners):
        table.setflags(write=False)
    return crossed, corners, counts
