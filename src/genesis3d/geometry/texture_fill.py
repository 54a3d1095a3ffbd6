"""How well a texture's gutters are filled, measured from a textured mesh alone.

A viewer reads a texture with bilinear filtering: a point at UV ``x`` reads the four
texels whose centres lie within one texel of it along each axis. So the texels a mesh can
ever show are those whose centre lies within one texel (Chebyshev) of some UV triangle:
the *reachable* texels. Those whose centre lies inside a UV triangle are *covered* (a
baker samples them from the surface); the other reachable ones are *gutter* texels, whose
values only a gutter fill (or a band sampled past the chart edges) supplies.

Which texels a baker wrote is not stored in a file, so :func:`texture_fill` judges each
gutter texel by its value: it counts as *filled* when every channel lies within the range
of the covered texels around it (a ``(2 window + 1)^2`` square; with none there, the
square around its nearest covered texel), widened by that range's spread plus
``tolerance``. A gutter fill that copies the chart's values, or a band sampled past the
chart edge that continues them, passes; a texel left at the clear colour (black,
transparent) next to a chart of other colours fails. A clear colour within about twice the
local spread of the chart's values is not caught, and hardly seen either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genesis3d.errors import InputError
from genesis3d.geometry.bake import rasterize_atlas

__all__ = ["TextureFill", "reachable_texels", "texture_fill"]

#: Candidate texels per block of the reachability test: bounds temporary memory.
_BLOCK = 1 << 22


@dataclass(frozen=True)
class TextureFill:
    """Figures of :func:`texture_fill`.

    Attributes:
        covered_fraction: texels whose centre lies inside a UV triangle, of all texels.
        reachable_fraction: texels bilinear sampling of the mesh can read, of all texels.
        gutter_fraction: reachable texels outside every UV triangle, of the reachable.
        unfilled_fraction: gutter texels whose value is not the chart's around them, of
            the reachable (0 for a fully filled texture).
    """

    covered_fraction: float
    reachable_fraction: float
    gutter_fraction: float
    unfilled_fraction: float

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-serialisable dict."""
        return asdict(self)


def reachable_texels(uvs: np.ndarray, faces: np.ndarray, texture_size: int) -> np.ndarray:
    """Texels whose centre lies within one texel (Chebyshev, open) of some UV triangle.

    Args:
        uvs: (n, 2) float texture coordinates (glTF: row = v * S, column = u * S).
        faces: (m, 3) int.
        texture_size: S, the texture side.

    Returns:
        (S, S) bool.
    """
    size = int(texture_size)
    corners = np.asarray(uvs, np.float64)[np.asarray(faces, np.int64)] * size - 0.5
    reached = np.zeros(size * size, bool)
    low = np.clip(np.floor(corners.min(axis=1)) - 1, 0, size - 1).astype(np.int64)
    high = np.clip(np.ceil(corners.max(axis=1)) + 1, 0, size - 1).astype(np.int64)
    spans = (high - low + 1).max(axis=1)
    # Separating axes of a triangle and a square of half side 1 around a texel centre:
    # the two box axes (the box ranges above) and each edge's outward normal.
    edges = np.roll(corners, -1, axis=1) - corners
    orientation = np.sign(
        edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]
    ).reshape(-1, 1, 1)
    normals = np.stack([edges[..., 1], -edges[..., 0]], axis=-1) * orientation
    # A degenerate triangle (a segment or a point in UV) keeps its box: conservative.
    flat = orientation.reshape(-1) == 0
    bucket = np.ceil(np.log2(np.maximum(spans, 1))).astype(np.int64)
    for level in np.unique(bucket):
        side = 1 << int(level)
        members = np.flatnonzero(bucket == level)
        offsets = np.arange(side)
        for begin in range(0, len(members), max(1, _BLOCK // (side * side))):
            picked = members[begin : begin + max(1, _BLOCK // (side * side))]
            x = low[picked, 0, None, None] + offsets[None, None, :]
            y = low[picked, 1, None, None] + offsets[None, :, None]
            x, y = np.broadcast_arrays(x, y)
            box = (
                (x <= high[picked, 0, None, None])
                & (y <= high[picked, 1, None, None])
                & (x > corners[picked, :, 0].min(axis=1)[:, None, None] - 1)
                & (x < corners[picked, :, 0].max(axis=1)[:, None, None] + 1)
                & (y > corners[picked, :, 1].min(axis=1)[:, None, None] - 1)
                & (y < corners[picked, :, 1].max(axis=1)[:, None, None] + 1)
            )
            for edge in range(3):
                normal = normals[picked, edge][:, None, None, :]
                start = corners[picked, edge][:, None, None, :]
                reach = np.abs(normal).sum(axis=-1)
                along = normal[..., 0] * (x - start[..., 0]) + normal[..., 1] * (y - start[..., 1])
                box &= (along - reach < 0) | flat[picked, None, None]
            reached[(y * size + x)[box]] = True
    return reached.reshape(size, size)


def texture_fill(
    uvs: np.ndarray,
    faces: np.ndarray,
    texture: np.ndarray,
    *,
    window: int = 3,
    tolerance: float = 8.0,
) -> TextureFill:
    """Coverage of a texture by a mesh's UV triangles and how much of its gutter is filled.

    Args:
        uvs: (n, 2) float texture coordinates in [0, 1] (glTF convention).
        faces: (m, 3) int.
        texture: (H, W) or (H, W, c) uint8 (or float in the same units as ``tolerance``);
            UVs outside [0, 1] are not wrapped.
        window: half side of the square of covered texels a gutter texel is judged against.
        tolerance: how far past that range (widened by its spread) a filled value may
            lie, in texture units (8 = 8/255 for uint8 textures).

    Returns:
        The :class:`TextureFill` (see the module docstring).

    Raises:
        InputError: a texture that is not an (H, W) or (H, W, c) array.
    """
    from scipy import ndimage

    image = np.asarray(texture)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or min(image.shape[:2]) < 1:
        raise InputError(f"texture must be (H, W) or (H, W, c), got shape {image.shape}")
    height, width = image.shape[:2]
    # A square grid of the longer side with the UVs scaled onto it puts the texel centres
    # of an H x W texture at the same places; the rows and columns past it are dropped.
    size = max(height, width)
    scaled = np.asarray(uvs, np.float64) * np.array([width / size, height / size])
    covered = rasterize_atlas(scaled, faces, size, border=0).covered[:height, :width]
    reached = reachable_texels(scaled, faces, size)[:height, :width] | covered
    gutter = reached & ~covered
    reachable_count = max(int(reached.sum()), 1)
    unfilled = 0
    if gutter.any() and covered.any():
        values = image.astype(np.float32)
        covered_values_low = np.where(covered[..., None], values, np.inf)
        covered_values_high = np.where(covered[..., None], values, -np.inf)

        def covered_range(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            square = (side, side, 1)
            low = ndimage.minimum_filter(covered_values_low, size=square, mode="nearest")
            high = ndimage.maximum_filter(covered_values_high, size=square, mode="nearest")
            count = ndimage.uniform_filter(
                covered.astype(np.float32), size=side, mode="constant"
            ) * np.float32(side * side)
            return low, high, count > 2.5

        low, high, enough = covered_range(2 * window + 1)
        # Fewer than three covered texels (a sliver of a chart) show too little of its
        # gradient: judge against a square twice as wide, then against the square around
        # the nearest covered texel.
        wide_low, wide_high, wide_enough = covered_range(4 * window + 1)
        low = np.where(enough[..., None], low, wide_low)
        high = np.where(enough[..., None], high, wide_high)
        _, nearest = ndimage.distance_transform_edt(~covered, return_indices=True)
        alone = ~(enough | wide_enough)
        low[alone] = low[nearest[0][alone], nearest[1][alone]]
        high[alone] = high[nearest[0][alone], nearest[1][alone]]
        # A band sampled past the chart edge continues the chart's gradient: allow one
        # window spread past the range.
        slack = tolerance + (high - low)
        inside = ((values >= low - slack) & (values <= high + slack)).all(axis=-1)
        unfilled = int((gutter & ~inside).sum())
    elif gutter.any():
        unfilled = int(gutter.sum())
    return TextureFill(
        covered_fraction=float(covered.mean()),
        reachable_fraction=float(reached.mean()),
        gutter_fraction=float(gutter.sum() / reachable_count),
        unfilled_fraction=float(unfilled / reachable_count),
    )
