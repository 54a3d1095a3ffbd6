"""Bake a dense surface's attributes into the UV atlas of a light mesh, on the CPU.

Stages, each a public function:

1. :func:`rasterize_atlas`: which light-mesh face covers each texel centre, and where
   (barycentrics); one compiled loop over the triangles, or vectorised NumPy with the
   triangles bucketed by the size of their texel box.
   Texels up to ``border`` texels outside a chart get the nearest face too, with its
   barycentrics extrapolated (the face's plane continued past its edge, then projected
   like any texel), so bilinear taps across a chart edge read the values the surface has
   where it continues across the seam.
2. :func:`~genesis3d.geometry.projection.project_to_surface`: each texel's point on the
   light mesh goes to its closest point on the dense surface, preferring faces that face
   along the light mesh's normal, with one face per shared edge or vertex (no per-texel
   face flicker).
3. The attribute source (:mod:`genesis3d.geometry.attributes`) is sampled at those points;
   an optional tangent-space normal map carries the dense surface's normals.
   The per-texel points, normals and tangent frames are computed in compiled loops too
   (:mod:`genesis3d.geometry.bake_kernels`), or in NumPy without numba: same texels.
4. :func:`fill_gutters`: every texel left is given its nearest sampled texel's value
   (exact Euclidean distance transform), so no texel that bilinear filtering or any mip
   level reads is unfilled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.attributes import AttributeSource
from genesis3d.geometry.compiled import Backend, use_numba
from genesis3d.geometry.mesh_ops import unit_vectors, vertex_normals, vertex_tangents
from genesis3d.geometry.projection import project_to_surface
from genesis3d.geometry.uv import check_texture_size

logger = logging.getLogger(__name__)

__all__ = [
    "AtlasRaster",
    "BakeReport",
    "BakedTextures",
    "PBRChannels",
    "bake_textures",
    "fill_gutters",
    "project_to_surface",
    "rasterize_atlas",
]

#: Candidate texels tested per rasterisation block: bounds temporary memory to a few
#: hundred MB.
_RASTER_BLOCK = 1 << 22


@dataclass(frozen=True)
class PBRChannels:
    """Where each material quantity sits among an attribute source's channels.

    The default is TRELLIS.2's layout: base colour 0:3, metallic 3, roughness 4, alpha 5.
    Values are in [0, 1]; base colour is stored as it will be written (sRGB).

    Attributes:
        base_color: first of the three base colour channels.
        metallic: metallic channel, or None (the material's factor is used).
        roughness: roughness channel, or None.
        alpha: alpha channel, or None (opaque).
    """

    base_color: int = 0
    metallic: int | None = 3
    roughness: int | None = 4
    alpha: int | None = 5

    @classmethod
    def for_channel_count(cls, count: int) -> PBRChannels:
        """The usual layout of ``count`` channels: 3 RGB, 4 RGBA, 5 RGB+MR, 6+ TRELLIS.2's."""
        if count >= 6:
            return cls()
        if count == 5:
            return cls(alpha=None)
        if count == 4:
            return cls(metallic=None, roughness=None, alpha=3)
        if count == 3:
            return cls(metallic=None, roughness=None, alpha=None)
        raise ConfigError(
            f"an attribute source for baking needs at least 3 channels (RGB), got {count}; "
            "pass colours, or PBRChannels naming where they are"
        )

    def check(self, count: int) -> None:
        """Raise ConfigError if a named channel is past ``count``."""
        used = [self.base_color + 2] + [
            c for c in (self.metallic, self.roughness, self.alpha) if c is not None
        ]
        if min(used) < 0 or max(used) >= count:
            raise ConfigError(
                f"PBRChannels {self} names channel {max(used)}, but the source has {count}; "
                "set the channels that exist (None for absent ones)"
            )


@dataclass(frozen=True)
class AtlasRaster:
    """Which light-mesh face each texel samples.

    Attributes:
        face_ids: (S, S) int64 face per texel (row = v, column = u), -1 where none.
        barycentrics: (S, S, 3) float32 weights of the face's corners, summing to 1 (0
            where none); in the border band some are negative (extrapolated).
        covered: (S, S) bool texel centres inside a UV triangle (the rest of
            ``face_ids >= 0`` is the border band around charts).
    """

    face_ids: np.ndarray
    barycentrics: np.ndarray
    covered: np.ndarray


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _barycentrics_2d(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentrics of (..., 2) points in (..., 3, 2) triangles: (..., 3) float64."""
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    area = _cross2(b - a, c - a)
    area = np.where(area == 0, 1.0, area)
    w1 = _cross2(points - a, c - a) / area
    w2 = _cross2(b - a, points - a) / area
    return np.stack([1.0 - w1 - w2, w1, w2], axis=-1)


def _rasterize_numpy(
    corners: np.ndarray,
    usable: np.ndarray,
    bucket: np.ndarray,
    low: np.ndarray,
    face_ids: np.ndarray,
    weights: np.ndarray,
    size: int,
) -> None:
    """Rasterise the ``usable`` faces, bucketed by the power-of-two side of their box.

    ``corners`` (m, 3, 2) float64 texel-index corners, ``bucket`` (k,) log2 box side of each
    usable face, ``low`` (m, 2) int64 first column and row; writes ``face_ids`` (S * S,)
    and ``weights`` (S * S, 3), later buckets and higher ids overwriting.
    """
    offsets_cache: dict[int, np.ndarray] = {}
    for level in np.unique(bucket):
        side = 1 << int(level)
        offsets = offsets_cache.setdefault(side, np.arange(side))
        members = usable[bucket == level]
        chunk = max(1, _RASTER_BLOCK // (side * side))
        for begin in range(0, len(members), chunk):
            picked = members[begin : begin + chunk]
            x = low[picked, 0, None, None] + offsets[None, None, :]
            y = low[picked, 1, None, None] + offsets[None, :, None]
            x, y = np.broadcast_arrays(x, y)
            points = np.stack([x, y], axis=-1).astype(np.float64)
            bary = _barycentrics_2d(points, corners[picked][:, None, None])
            inside = (bary >= -1e-9).all(axis=-1) & (x < size) & (y < size)
            which = np.broadcast_to(picked[:, None, None], inside.shape)[inside]
            texel = (y * size + x)[inside]
            face_ids[texel] = which
            weights[texel] = np.clip(bary[inside], 0.0, 1.0)


def rasterize_atlas(
    uvs: np.ndarray,
    faces: np.ndarray,
    texture_size: int,
    *,
    border: int = 2,
    backend: Backend = "auto",
) -> AtlasRaster:
    """Rasterise UV triangles at texel centres ((column + 0.5, row + 0.5) / S = (u, v)).

    Args:
        uvs: (n, 2) float texture coordinates in [0, 1].
        faces: (m, 3) int.
        texture_size: S, the texture side.
        border: texels within this distance outside the charts also get the nearest
            face, with barycentrics extrapolated past its edge; 0 for none.
        backend: "numba", "numpy" or "auto" (see :mod:`genesis3d.geometry.compiled`).

    Returns:
        The :class:`AtlasRaster`. A texel centre on an edge shared by two triangles (or
        inside overlapping ones) takes the triangle with the larger texel box, and among
        boxes of one power-of-two size the higher face id.
    """
    from scipy import ndimage

    size = int(texture_size)
    uvs = np.asarray(uvs, np.float64)
    faces = np.asarray(faces, np.int64)
    if uvs.ndim != 2 or uvs.shape[1] != 2 or faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(f"uvs must be (n, 2) and faces (m, 3), got {uvs.shape} and {faces.shape}")
    corners = uvs[faces] * size - 0.5  # texel-index coordinates of the corners
    face_ids = np.full(size * size, -1, np.int64)
    weights = np.zeros((size * size, 3), np.float32)
    low = np.clip(np.ceil(corners.min(axis=1)), 0, size).astype(np.int64)
    high = np.clip(np.floor(corners.max(axis=1)), -1, size - 1).astype(np.int64)
    extent = high - low + 1
    doubled = _cross2(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    usable = np.flatnonzero((extent.min(axis=1) >= 1) & (doubled != 0))
    spans = extent[usable].max(axis=1)
    bucket = np.ceil(np.log2(np.maximum(spans, 1))).astype(np.int64)
    if use_numba(backend, "rasterize_atlas"):
        from genesis3d.geometry.bake_kernels import rasterize_compiled

        side = np.zeros(len(faces), np.int64)
        side[usable] = 1 << bucket
        order = usable[np.argsort(bucket, kind="stable")]
        rasterize_compiled(corners, order, low, side, face_ids, weights, size)
    else:
        _rasterize_numpy(corners, usable, bucket, low, face_ids, weights, size)
    covered = face_ids >= 0
    if border > 0 and covered.any() and not covered.all():
        distance, nearest = ndimage.distance_transform_edt(
            ~covered.reshape(size, size), return_indices=True
        )
        band = np.flatnonzero((distance.reshape(-1) <= border) & ~covered)
        source = nearest[0].reshape(-1)[band] * size + nearest[1].reshape(-1)[band]
        band_faces = face_ids[source]
        centres = np.stack([band % size, band // size], axis=1).astype(np.float64)
        bary = _barycentrics_2d(centres, corners[band_faces])
        face_ids[band] = band_faces
        weights[band] = bary
    return AtlasRaster(
        face_ids=face_ids.reshape(size, size),
        barycentrics=weights.reshape(size, size, 3),
        covered=covered.reshape(size, size),
    )


def fill_gutters(image: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Give every unfilled texel the value of its nearest filled texel.

    Args:
        image: (S, S, c) texture.
        filled: (S, S) bool texels holding real values.

    Returns:
        (S, S, c) texture of the same dtype with no unfilled texel (unchanged if none is
        filled).
    """
    from scipy import ndimage

    if filled.all() or not filled.any():
        return image
    nearest = ndimage.distance_transform_edt(~filled, return_distances=False, return_indices=True)
    return image[nearest[0], nearest[1]]


@dataclass(frozen=True)
class BakeReport:
    """Figures of one bake.

    Attributes:
        texture_size: texture side.
        covered_fraction: texels whose centre lies inside a UV triangle.
        sampled_fraction: texels sampled from the dense surface (covered + border band).
        unfilled_fraction: texels holding no value after the gutter fill (0 unless
            nothing was sampled).
        seconds: wall time per stage.
    """

    texture_size: int
    covered_fraction: float
    sampled_fraction: float
    unfilled_fraction: float
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class BakedTextures:
    """Textures of :func:`bake_textures`, row = v (glTF's top-left origin).

    Attributes:
        base_color: (S, S, 3) or (S, S, 4) uint8 (RGBA when the source has alpha).
        metallic_roughness: (S, S, 3) uint8 in glTF channels (G roughness, B metallic,
            R 0), or None when the source has neither.
        normal: (S, S, 3) uint8 tangent-space normal map, or None.
        report: the figures.
    """

    base_color: np.ndarray
    metallic_roughness: np.ndarray | None
    normal: np.ndarray | None
    report: BakeReport


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _tangent_space(
    dense_normals: np.ndarray,
    corners: np.ndarray,
    weights: np.ndarray,
    normals: np.ndarray,
    tangents: np.ndarray,
) -> np.ndarray:
    """Dense normals (k, 3) in the light mesh's per-texel tangent frame, as viewers build it."""
    normal = unit_vectors(np.einsum("kj,kjc->kc", weights, normals[corners]))
    tangent = np.einsum("kj,kjc->kc", weights, tangents[corners][:, :, :3])
    tangent = unit_vectors(
        tangent - normal * (tangent * normal).sum(axis=1, keepdims=True), fallback=(1.0, 0.0, 0.0)
    )
    bitangent = np.cross(normal, tangent) * tangents[corners[:, 0], 3:4]
    local = np.stack(
        [
            (dense_normals * tangent).sum(axis=1),
            (dense_normals * bitangent).sum(axis=1),
            (dense_normals * normal).sum(axis=1),
        ],
        axis=1,
    )
    local[:, 2] = np.maximum(local[:, 2], 1e-3)  # never point into the surface
    return unit_vectors(local)


def bake_textures(
    positions: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    source: AttributeSource,
    texture_size: int = 2048,
    *,
    channels: PBRChannels | None = None,
    normal_map: bool = True,
    normals: np.ndarray | None = None,
    border: int = 2,
    candidates: int = 8,
    backend: Backend = "auto",
) -> BakedTextures:
    """Bake base colour, metallic-roughness and a normal map for a UV-mapped light mesh.

    Args:
        positions: (n, 3) float light mesh vertices.
        faces: (m, 3) int light mesh faces.
        uvs: (n, 2) float texture coordinates in [0, 1] (glTF convention).
        dense_positions: (N, 3) float dense surface the attributes belong to.
        dense_faces: (M, 3) int dense surface faces.
        source: gives the attribute channels at points of the dense surface.
        texture_size: S, a power of two in [256, 8192].
        channels: where colour and material sit in the source; default by channel count
            (:meth:`PBRChannels.for_channel_count`).
        normal_map: bake the dense surface's normals into a tangent-space map.
        normals: (n, 3) float unit vertex normals of the light mesh as they will be
            written (the tangent frame is built from them); default area-weighted ones.
        border: texels outside the charts sampled directly (see :func:`rasterize_atlas`).
        candidates: dense faces tested per texel (see :func:`project_to_surface`).
        backend: "numba" (compiled loops, needs numba), "numpy", or "auto": numba when
            installed, else NumPy with a log line. Both give the same textures.

    Returns:
        The :class:`BakedTextures`.
    """
    size = check_texture_size(texture_size)
    channels = channels or PBRChannels.for_channel_count(source.channels)
    channels.check(source.channels)
    positions = np.asarray(positions, np.float64)
    faces = np.asarray(faces, np.int64)
    uvs = np.asarray(uvs, np.float64)
    if uvs.shape != (len(positions), 2):
        raise InputError(f"uvs must have shape ({len(positions)}, 2), got {uvs.shape}")
    compiled = use_numba(backend, "bake_textures")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    raster = rasterize_atlas(uvs, faces, size, border=border, backend=backend)
    seconds["rasterize"] = time.perf_counter() - start
    texels = np.flatnonzero(raster.face_ids.reshape(-1) >= 0)
    face_of = raster.face_ids.reshape(-1)[texels]
    bary = raster.barycentrics.reshape(-1, 3)[texels]
    if normals is None:
        normals = vertex_normals(positions.astype(np.float32), faces)
    normals = np.ascontiguousarray(normals, np.float64)
    if compiled:
        from genesis3d.geometry.bake_kernels import texel_frames_compiled

        points, point_normals = texel_frames_compiled(face_of, bary, faces, positions, normals)
    else:
        weights = bary.astype(np.float64)
        corners = faces[face_of]
        points = np.einsum("kj,kjc->kc", weights, positions[corners])
        point_normals = unit_vectors(np.einsum("kj,kjc->kc", weights, normals[corners]))
    start = time.perf_counter()
    projected = project_to_surface(
        points,
        point_normals,
        dense_positions,
        dense_faces,
        candidates=candidates,
        backend=backend,
    )
    seconds["project"] = time.perf_counter() - start
    start = time.perf_counter()
    values = np.asarray(source.sample(projected), np.float32)
    seconds["sample"] = time.perf_counter() - start
    start = time.perf_counter()
    filled = raster.face_ids >= 0
    color_channels = [channels.base_color, channels.base_color + 1, channels.base_color + 2]
    if channels.alpha is not None:
        color_channels.append(channels.alpha)
    layers = [_to_uint8(values[:, color_channels])]
    has_mr = channels.metallic is not None or channels.roughness is not None
    if has_mr:
        mr = np.zeros((len(texels), 3), np.float32)
        if channels.roughness is not None:
            mr[:, 1] = values[:, channels.roughness]
        if channels.metallic is not None:
            mr[:, 2] = values[:, channels.metallic]
        layers.append(_to_uint8(mr))
    if normal_map:
        dense_faces = np.ascontiguousarray(dense_faces, np.int64)
        dense_normals = vertex_normals(np.asarray(dense_positions, np.float32), dense_faces)
        tangents = vertex_tangents(positions, faces, normals, uvs).astype(np.float64)
        if compiled:
            from genesis3d.geometry.bake_kernels import tangent_normals_compiled

            encoded = tangent_normals_compiled(
                face_of,
                bary,
                faces,
                point_normals,
                tangents,
                projected.barycentrics,
                projected.face_ids,
                dense_faces,
                dense_normals,
            )
        else:
            detail = unit_vectors(
                np.einsum(
                    "kj,kjc->kc",
                    projected.barycentrics.astype(np.float64),
                    dense_normals[dense_faces[projected.face_ids]].astype(np.float64),
                )
            )
            local = _tangent_space(detail, faces[face_of], weights, normals, tangents)
            encoded = _to_uint8(local * 0.5 + 0.5)
        layers.append(encoded)
    widths = [layer.shape[1] for layer in layers]
    plane = np.zeros((size * size, sum(widths)), np.uint8)
    plane[texels] = np.concatenate(layers, axis=1)
    plane = fill_gutters(plane.reshape(size, size, -1), filled)
    seconds["fill"] = time.perf_counter() - start
    split = np.cumsum(widths)[:-1]
    pieces = np.split(plane, split, axis=2)
    base_color = np.ascontiguousarray(pieces[0])
    metallic_roughness = np.ascontiguousarray(pieces[1]) if has_mr else None
    normal = np.ascontiguousarray(pieces[-1]) if normal_map else None
    report = BakeReport(
        texture_size=size,
        covered_fraction=float(raster.covered.mean()),
        sampled_fraction=float(filled.mean()),
        unfilled_fraction=0.0 if filled.any() else 1.0,
        seconds=seconds,
    )
    logger.info(
        "bake_textures: %d px, %.1f %% covered, stages %s",
        size,
        100 * report.covered_fraction,
        {k: round(v, 2) for k, v in seconds.items()},
    )
    return BakedTextures(base_color, metallic_roughness, normal, report)
