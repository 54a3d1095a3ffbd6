"""Real-world size and pivot of an asset in the world frame (Y up, metres)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import ConfigError

Pivot = Literal["center", "bottom", "keep"]
PIVOTS: tuple[str, ...] = ("center", "bottom", "keep")


def placement_transform(
    bounds: np.ndarray, size: float | None = None, pivot: Pivot = "keep"
) -> tuple[float, np.ndarray]:
    """Uniform scale and translation that give an object a size and a pivot.

    The transform is ``p' = scale * p + offset``.

    Args:
        bounds: (2, 3) float, min row then max row of the object.
        size: wanted length of the object's longest side in metres; None keeps the scale.
        pivot: "center" puts the bounds' centre at the origin; "bottom" puts the centre of
            the bottom face of the bounds (lowest Y, centred in X and Z) at the origin, as
            game engines expect for props that stand on the ground; "keep" does not move it.

    Returns:
        (scale, offset): float and (3,) float64 translation.

    Raises:
        ConfigError: for a size that is not a positive finite number or an unknown pivot.
    """
    if pivot not in PIVOTS:
        raise ConfigError(f"pivot must be one of {', '.join(PIVOTS)}, got {pivot!r}")
    bounds = np.asarray(bounds, np.float64)
    scale = 1.0
    if size is not None:
        if not (np.isfinite(size) and size > 0):
            raise ConfigError(f"size must be a positive length in metres, got {size!r}")
        longest = float((bounds[1] - bounds[0]).max())
        if longest <= 0:
            raise ConfigError("cannot scale an object of zero extent to a size")
        scale = float(size) / longest
    low, high = bounds[0] * scale, bounds[1] * scale
    if pivot == "center":
        offset = -(low + high) / 2.0
    elif pivot == "bottom":
        offset = np.array([-(low[0] + high[0]) / 2.0, -low[1], -(low[2] + high[2]) / 2.0])
    else:
        offset = np.zeros(3)
    return scale, offset


def place_mesh(mesh: MeshAsset, size: float | None = None, pivot: Pivot = "keep") -> MeshAsset:
    """A copy of a mesh scaled to ``size`` metres (longest side) and moved to ``pivot``.

    Normals are unchanged by a uniform scale and a translation.
    """
    scale, offset = placement_transform(mesh.bounds(), size, pivot)
    positions = (mesh.positions.astype(np.float64) * scale + offset).astype(np.float32)
    return replace(
        mesh, positions=positions, metadata={**mesh.metadata, **_placement_metadata(size, pivot)}
    )


def place_splats(
    splats: SplatAsset, size: float | None = None, pivot: Pivot = "keep"
) -> SplatAsset:
    """A copy of splats scaled to ``size`` metres (longest side of the centres) and moved to ``pivot``.

    Gaussian scales are multiplied by the same factor; rotations are unchanged.
    """
    scale, offset = placement_transform(splats.bounds(), size, pivot)
    means = (splats.means.astype(np.float64) * scale + offset).astype(np.float32)
    return replace(
        splats,
        means=means,
        scales=(splats.scales * np.float32(scale)),
        metadata={**splats.metadata, **_placement_metadata(size, pivot)},
    )


def place(
    asset: MeshAsset | SplatAsset, size: float | None = None, pivot: Pivot = "keep"
) -> MeshAsset | SplatAsset:
    """Scale and move a mesh or splats; see :func:`placement_transform`."""
    if isinstance(asset, MeshAsset):
        return place_mesh(asset, size, pivot)
    return place_splats(asset, size, pivot)


def _placement_metadata(size: float | None, pivot: str) -> dict:
    facts: dict = {}
    if size is not None:
        facts["size_m"] = float(size)
    if pivot != "keep":
        facts["pivot"] = pivot
    return facts
