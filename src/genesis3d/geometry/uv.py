"""UV unwrapping with xatlas: charts packed into one square atlas for a given texture size.

The padding between charts and the texel density both come from the texture size, so a
chart keeps ``padding`` texels of gutter on every side at the full resolution and
``padding / 2**k`` at mip level k. xatlas (MIT, PyPI ``xatlas``, wheels for Linux, macOS
and Windows) is the only mature CPU unwrapper.

Given one large mesh, xatlas's time grows faster than linearly (measured on a 100k-face
decimated bumpy sphere, 2-core machine under load: 234 s with 1,925 charts). Most of it
goes into growing and packing many small charts over the whole surface. So
:func:`unwrap_uv` first cuts the mesh into spatially coherent groups of about
``group_faces`` faces (recursive median splits of the face centroids) and hands each group
to the same ``xatlas.Atlas`` as a mesh of its own: charting runs per group (in xatlas's
worker threads) and packing stays joint, in one atlas. Same mesh, 64 groups: 10 s of CPU,
73 charts, no overlap, UV area stretch p90/p10 1.03 (1.39 reported for the ungrouped
unwrap), atlas utilisation 0.67 instead of 0.77. Smaller groups are faster still, at the price of
more charts: on the 100k-face level of ``benchmarks/export.py`` (2-core machine, lightly loaded) groups
of 2000 / 1000 / 500 faces took 8.2 / 4.8 / 3.8 s (15.5 / 8.8 / 6.5 s of CPU) for 332 /
390 / 545 charts; the default is 500. The extra seams cost no colour: the bake extrapolates
the faces past chart edges into the gutter (see :mod:`genesis3d.geometry.bake`), which keeps
the seam error of a 256-texel torus bake at 1.2/255 at most. In ``benchmarks/export.py`` (1.2M-face
raw mesh) the unwrap took 3.5 / 18.8 / 78 s of CPU at 20k / 100k / 500k faces. Group
borders are chart seams like any other; the bake samples a band past every chart edge and
fills the gutters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genesis3d.errors import ConfigError, InputError, require

logger = logging.getLogger(__name__)

__all__ = [
    "UVReport",
    "UVUnwrap",
    "atlas_padding",
    "check_texture_size",
    "face_groups",
    "unwrap_uv",
]

_INSTALL = 'pip install "genesis3d[export]"  (or: pip install xatlas)'


def check_texture_size(texture_size: int) -> int:
    """Validate a texture side: a power of two between 256 and 8192.

    Raises:
        ConfigError: naming the value that came.
    """
    if (
        not isinstance(texture_size, int | np.integer)
        or isinstance(texture_size, bool)
        or texture_size < 256
        or texture_size > 8192
        or texture_size & (texture_size - 1)
    ):
        raise ConfigError(
            f"`texture_size` must be a power of two between 256 and 8192, got {texture_size!r}; "
            "e.g. 2048"
        )
    return int(texture_size)


def atlas_padding(texture_size: int) -> int:
    """Gutter between charts in texels: 2 at 256, growing with the size (8 at 2048).

    Two texels keep bilinear filtering of neighbouring charts apart at full resolution;
    ``texture_size / 256`` more keeps them apart for the first mip levels as well.
    """
    return max(2, check_texture_size(texture_size) // 256)


@dataclass(frozen=True)
class UVReport:
    """What :func:`unwrap_uv` made.

    Attributes:
        charts: number of charts.
        utilization: fraction of the atlas covered by charts.
        atlas_width: atlas width xatlas packed into, in texels.
        atlas_height: atlas height in texels.
        texture_size: texture side the UVs were laid out for.
        padding: gutter requested between charts, in atlas texels.
        effective_padding: that gutter in texels of the ``texture_size`` texture (smaller
            when xatlas grew the atlas past the texture size).
        texels_per_unit: texel density used (texels per unit of surface length).
        seconds: wall time of the unwrap.
    """

    charts: int
    utilization: float
    atlas_width: int
    atlas_height: int
    texture_size: int
    padding: int
    effective_padding: float
    texels_per_unit: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class UVUnwrap:
    """Result of :func:`unwrap_uv`.

    Attributes:
        source_vertex: (k,) int64 input vertex of each output vertex (vertices on chart
            seams are duplicated).
        uvs: (k, 2) float32 texture coordinates in [0, 1]; texel (row, column) =
            (v, u) * texture_size, i.e. glTF's top-left origin.
        faces: (m, 3) int64 faces over the output vertices, same order as the input faces.
        report: the chart report.
    """

    source_vertex: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    report: UVReport


def _texels_per_unit(positions: np.ndarray, faces: np.ndarray, texture_size: int) -> float:
    """Density that fills about 60 % of the square (xatlas packs at 0.65-0.85)."""
    corners = positions[faces].astype(np.float64)
    area = (
        0.5
        * np.linalg.norm(
            np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
        ).sum()
    )
    if area <= 0:
        return 0.0
    return float(math.sqrt(0.6 * texture_size**2 / area))


def face_groups(positions: np.ndarray, faces: np.ndarray, group_faces: int) -> np.ndarray:
    """Spatially coherent face groups of at most ``group_faces`` faces.

    Recursive median splits of the face centroids along each box's longest side, so the
    groups are compact patches of the surface of nearly equal size.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        group_faces: largest group, at least 1.

    Returns:
        (m,) int64 group of each face, numbered from 0.
    """
    centroids = positions[faces].mean(axis=1)
    groups = np.zeros(len(faces), np.int64)
    pending = [np.arange(len(faces))]
    count = 0
    while pending:
        members = pending.pop()
        if len(members) <= group_faces:
            groups[members] = count
            count += 1
            continue
        points = centroids[members]
        axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
        half = len(members) // 2
        order = np.argpartition(points[:, axis], half)
        pending.extend([members[order[:half]], members[order[half:]]])
    return groups


def unwrap_uv(
    positions: np.ndarray,
    faces: np.ndarray,
    texture_size: int = 2048,
    *,
    padding: int | None = None,
    max_chart_iterations: int = 1,
    group_faces: int | None = 500,
) -> UVUnwrap:
    """Cut a mesh into charts and pack them into a square atlas with xatlas.

    The texel density is chosen so the charts fill about 60 % of a ``texture_size`` square
    (xatlas then grows the atlas a little if they do not fit); the UVs are scaled to
    [0, 1] over the final atlas, so they suit a ``texture_size`` texture.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices, no degenerate faces.
        texture_size: side of the texture the atlas is for, a power of two in [256, 8192].
        padding: gutter between charts in texels; default :func:`atlas_padding`.
        max_chart_iterations: xatlas chart growing iterations (1 is its fast setting; more
            gives fewer charts, slower).
        group_faces: charts are grown inside spatial groups of at most this many faces
            (see the module docstring; it changes the charts, not the faces); None grows
            them over the whole mesh at once (much slower above ~20k faces).

    Returns:
        The :class:`UVUnwrap`.

    Raises:
        ConfigError: bad texture size or padding.
        InputError: bad shapes.
        MissingDependencyError: xatlas is not installed.
    """
    import time

    texture_size = check_texture_size(texture_size)
    padding = atlas_padding(texture_size) if padding is None else padding
    if not isinstance(padding, int | np.integer) or padding < 0 or padding > texture_size // 8:
        raise ConfigError(
            f"padding must be an integer in [0, {texture_size // 8}] texels, got {padding!r}; e.g. 4"
        )
    positions = np.ascontiguousarray(positions, np.float32)
    faces = np.asarray(faces)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {positions.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError(f"faces must have shape (m, 3) with m > 0, got {faces.shape}")
    if group_faces is not None and (
        not isinstance(group_faces, int | np.integer) or group_faces < 1
    ):
        raise ConfigError(
            f"group_faces must be a positive integer or None, got {group_faces!r}; e.g. 2000"
        )
    xatlas = require("xatlas", feature="UV unwrapping", install=_INSTALL)
    start = time.perf_counter()
    density = _texels_per_unit(positions, faces, texture_size)
    atlas = xatlas.Atlas()
    if group_faces is None or len(faces) <= group_faces:
        groups = np.zeros(len(faces), np.int64)
    else:
        groups = face_groups(positions, faces, int(group_faces))
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(int(groups.max()) + 2))
    group_vertices = []
    for index in range(len(bounds) - 1):
        members = order[bounds[index] : bounds[index + 1]]
        used, local = np.unique(faces[members], return_inverse=True)
        group_vertices.append(used)
        atlas.add_mesh(positions[used], local.reshape(-1, 3).astype(np.uint32))
    chart_options = xatlas.ChartOptions()
    chart_options.max_iterations = int(max_chart_iterations)
    pack_options = xatlas.PackOptions()
    pack_options.padding = int(padding)
    pack_options.bilinear = True
    pack_options.texels_per_unit = density
    # No fixed resolution: with one, xatlas spills charts that do not fit into more atlases.
    pack_options.resolution = 0
    atlas.generate(chart_options, pack_options)
    vmapping, indices, uvs = _gather(atlas, group_vertices, order, len(faces))
    seconds = time.perf_counter() - start
    report = UVReport(
        charts=int(atlas.chart_count),
        utilization=float(np.mean(atlas.utilization)),
        atlas_width=int(atlas.width),
        atlas_height=int(atlas.height),
        texture_size=texture_size,
        padding=int(padding),
        effective_padding=float(padding * texture_size / max(atlas.width, atlas.height, 1)),
        texels_per_unit=float(atlas.texels_per_unit),
        seconds=seconds,
    )
    if atlas.atlas_count != 1:
        raise InputError(
            f"xatlas packed the charts into {atlas.atlas_count} atlases, expected 1; "
            "raise texture_size or lower the face count"
        )
    logger.info(
        "unwrap_uv: %d faces -> %d charts, utilisation %.2f, atlas %dx%d for %d px, %.2f s",
        len(faces),
        report.charts,
        report.utilization,
        report.atlas_width,
        report.atlas_height,
        texture_size,
        seconds,
    )
    return UVUnwrap(source_vertex=vmapping, uvs=uvs, faces=indices, report=report)


def _gather(
    atlas: Any, group_vertices: list[np.ndarray], order: np.ndarray, face_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join xatlas's per-group outputs: (source vertex, faces in input order, uvs)."""
    sources, pieces, uv_pieces = [], [], []
    offset = 0
    for index, used in enumerate(group_vertices):
        vmapping, indices, uvs = atlas[index]
        sources.append(used[np.asarray(vmapping, np.int64)])
        pieces.append(np.asarray(indices, np.int64) + offset)
        uv_pieces.append(np.asarray(uvs, np.float32))
        offset += len(vmapping)
    faces = np.empty((face_count, 3), np.int64)
    faces[order] = np.concatenate(pieces)
    return np.concatenate(sources), faces, np.concatenate(uv_pieces)
