"""Inflation: a closed, rounded solid from an object's silhouette, textured from the picture.

This is geometry, not learning. The solid is the region between a front height field and
a back height field over the silhouette:

1. :func:`silhouette_field`: the matte on a working grid and its signed distance to the
   silhouette's edge (positive inside, in grid cells, sub-cell accurate from the soft matte).
2. :func:`height_profile`: a rounded profile of that distance: it starts vertical at the
   edge (a round rim) and saturates at ``thickness`` times the object's largest inner
   radius, so the height grows with the distance to the edge; the back is
   ``back_scale`` times the front (a gentler mirror).
3. :func:`extract_solid`: the implicit field min(front - z, back + z), negative outside
   the silhouette, contoured by marching cubes on a padded volume. The surface is closed
   by construction, and holes in the silhouette stay holes.
4. :func:`texture_atlas` and :func:`project_uvs`: a texture with the picture on the left
   half and a mirrored, darkened copy on the right; front faces map to the first, back
   faces to the second, and vertices on the seam between them are split.

Coordinates of the solid are in the picture's pixel frame (column, row, depth towards the
viewer); :func:`genesis3d.geometry.frames.image_to_world` maps them to the world frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genesis3d.errors import InputError
from genesis3d.geometry.mesh_ops import orient_outward


@dataclass(frozen=True)
class SilhouetteField:
    """The silhouette on the working grid.

    Attributes:
        coverage: (gh, gw) float32 matte in [0, 1] averaged over each cell.
        distance: (gh, gw) float32 signed distance to the edge in cells (> 0 inside).
        cell: size of one cell in picture pixels.
    """

    coverage: np.ndarray
    distance: np.ndarray
    cell: float


def silhouette_field(alpha: np.ndarray, resolution: int) -> SilhouetteField:
    """Area-average the matte onto a grid of ``resolution`` cells along the longest side.

    Args:
        alpha: (H, W) uint8 matte of the cropped object.
        resolution: cells along the picture's longest side.

    Returns:
        The :class:`SilhouetteField`.

    Raises:
        InputError: when nothing of the object survives at this resolution.
    """
    from PIL import Image
    from scipy import ndimage

    height, width = alpha.shape
    cell = max(height, width) / float(resolution)
    grid = (max(2, round(height / cell)), max(2, round(width / cell)))
    image = Image.fromarray(alpha.astype(np.float32) / 255.0, "F")
    coverage = np.asarray(image.resize((grid[1], grid[0]), Image.Resampling.BOX), np.float32).clip(
        0.0, 1.0
    )
    inside = coverage >= 0.5
    if not inside.any():
        raise InputError(
            f"the object is too small to inflate at resolution {resolution}; raise the resolution or use a larger picture"
        )
    # Sub-cell edge position: a cell with coverage c sits about (c - 0.5) cells inside the edge.
    inner = ndimage.distance_transform_edt(inside) - 0.5
    outer = ndimage.distance_transform_edt(~inside) - 0.5
    distance = np.where(inside, inner, -outer) + np.where(
        np.abs(coverage - 0.5) < 0.5, coverage - 0.5, 0.0
    )
    distance = ndimage.gaussian_filter(distance.astype(np.float32), sigma=0.6)
    return SilhouetteField(coverage, distance.astype(np.float32), cell)


def height_profile(distance: np.ndarray, thickness: float) -> tuple[np.ndarray, float]:
    """Front height over the grid: a quarter-ellipse rising from the edge.

    Args:
        distance: (gh, gw) signed distance in cells.
        thickness: height at the deepest point relative to the largest inner radius.

    Returns:
        ((gh, gw) float32 front height in cells, negative outside; largest inner radius).
    """
    radius = float(max(distance.max(), 1.0))
    t = np.clip(distance / radius, 0.0, 1.0)
    height = thickness * radius * np.sqrt(1.0 - (1.0 - t) ** 2)
    return np.where(distance > 0, height, distance).astype(np.float32), radius


def extract_solid(front: np.ndarray, back_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Contour the solid between ``front`` and ``-back_scale * front`` with marching cubes.

    Args:
        front: (gh, gw) front height in cells (negative outside the silhouette).
        back_scale: depth of the back relative to the front, in (0, 1].

    Returns:
        (vertices (n, 3) float64 as (column, row, depth) in cells, faces (m, 3) int64) with
        positive signed volume in these coordinates. The pixel frame is left-handed, so
        after :func:`genesis3d.geometry.frames.image_to_world` the winding must be reversed.
    """
    from skimage.measure import marching_cubes

    pad = 2
    heights = np.pad(front.astype(np.float32), pad, constant_values=-float(pad))
    top = float(front.max()) + pad
    depths = np.arange(-back_scale * top, top + 1.0, 1.0, dtype=np.float32)
    back = np.where(heights > 0, np.float32(back_scale) * heights, heights)
    # Filled one depth slice at a time, so the peak memory is one volume, not three.
    field = np.empty((len(depths), *heights.shape), np.float32)
    for index, depth in enumerate(depths):
        np.minimum(heights - depth, back + depth, out=field[index])
    field[[0, -1]] = -1.0  # close the volume at both depth ends
    # A field value (near) zero on a grid point puts several vertices on that point and makes
    # zero-area triangles; keeping |field| >= 2% of a cell moves the surface by at most that much.
    near_zero = np.abs(field) < 0.02
    field[near_zero] = np.where(field[near_zero] < 0, np.float32(-0.02), np.float32(0.02))
    vertices, faces, _, _ = marching_cubes(field, level=0.0, allow_degenerate=False)
    # volume axes are (depth, row, column); reorder to (column, row, depth)
    points = np.stack(
        [vertices[:, 2] - pad, vertices[:, 1] - pad, depths[0] + vertices[:, 0]], axis=1
    )
    return points, np.ascontiguousarray(orient_outward(points, faces.astype(np.int64)))


def bleed_colors(rgba: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Extend the object's colours outward over the transparent pixels (nearest opaque pixel).

    Bilinear filtering and mip-maps near the silhouette then never pull in backdrop colour.

    Args:
        rgba: (H, W, 4) uint8.

    Returns:
        (H, W, 3) uint8 colours.
    """
    from scipy import ndimage

    solid = rgba[..., 3] >= threshold
    if not solid.any():
        return rgba[..., :3].copy()
    _, (rows, cols) = ndimage.distance_transform_edt(~solid, return_indices=True)
    return rgba[rows, cols, :3]


@dataclass(frozen=True)
class AtlasLayout:
    """Where the picture sits in each half of the atlas: pixel scale and offsets."""

    size: int
    scale: float
    offset_x: float
    offset_y: float


def texture_atlas(rgba: np.ndarray, size: int, back_shade: float) -> tuple[np.ndarray, AtlasLayout]:
    """Build the atlas: the picture on the left half, a mirrored darkened copy on the right.

    Args:
        rgba: (H, W, 4) uint8 cropped picture.
        size: atlas side in pixels (power of two).
        back_shade: brightness factor of the back copy, in (0, 1].

    Returns:
        ((size, size, 4) uint8 opaque RGBA atlas, its layout).
    """
    from PIL import Image

    height, width = rgba.shape[:2]
    half = size // 2
    scale = min(half / width, size / height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    colors = Image.fromarray(bleed_colors(rgba)).resize(fitted, Image.Resampling.LANCZOS)
    front = np.asarray(colors)
    offset_x, offset_y = (half - fitted[0]) / 2.0, (size - fitted[1]) / 2.0
    ox, oy = int(round(offset_x)), int(round(offset_y))
    # Pad the rest of the half by edge replication so filtering near the border stays on colour.
    left = np.pad(
        front, ((oy, size - oy - fitted[1]), (ox, half - ox - fitted[0]), (0, 0)), mode="edge"
    )
    right = np.clip(left[:, ::-1].astype(np.float32) * back_shade, 0, 255).astype(np.uint8)
    atlas = np.concatenate([left, right], axis=1)
    alpha = np.full((size, size, 1), 255, np.uint8)
    return np.concatenate([atlas, alpha], axis=2), AtlasLayout(size, scale, float(ox), float(oy))


def project_uvs(pixels: np.ndarray, is_back: np.ndarray, layout: AtlasLayout) -> np.ndarray:
    """Orthographic UVs: front vertices into the left half, back vertices mirrored into the right.

    Args:
        pixels: (n, 2) float (column, row) in picture pixels.
        is_back: (n,) bool.
        layout: the atlas layout.

    Returns:
        (n, 2) float32 UVs in [0, 1] (glTF convention, v down).
    """
    half = layout.size / 2.0
    u_front = layout.offset_x + pixels[:, 0] * layout.scale
    u_back = layout.size - (layout.offset_x + pixels[:, 0] * layout.scale)
    u = np.where(is_back, u_back, u_front)
    u = np.where(is_back, np.clip(u, half, layout.size), np.clip(u, 0.0, half))
    v = layout.offset_y + pixels[:, 1] * layout.scale
    return np.clip(np.stack([u, v], axis=1) / layout.size, 0.0, 1.0).astype(np.float32)
