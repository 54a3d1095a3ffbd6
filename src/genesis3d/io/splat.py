"""antimatter15 .splat: 32-byte records, no header, no spherical harmonics.

Each record: position 3 x float32, scale 3 x float32 (linear), colour RGBA 4 x uint8
(RGB = band-0 display colour, A = opacity), rotation 4 x uint8 = q * 128 + 128 with q in
(w, x, y, z) order. Records are sorted by decreasing opacity x volume, as the reference
converter does, so viewers that stream the file draw the most visible splats first.
Positions are in the RDF frame of 3DGS files (see :mod:`genesis3d.io._splat_frame`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genesis3d.assets import SplatAsset
from genesis3d.errors import FormatError
from genesis3d.io._splat_frame import flip
from genesis3d.io.atomic import atomic_write

RECORD = np.dtype(
    [
        ("position", "<f4", (3,)),
        ("scale", "<f4", (3,)),
        ("color", "u1", (4,)),
        ("rotation", "u1", (4,)),
    ]
)


def encode(splats: SplatAsset) -> bytes:
    """The bytes of a .splat file of ``splats`` (higher SH bands are dropped)."""
    means, rotations = flip(splats.means, splats.rotations)
    order = np.argsort(
        -(splats.opacities.astype(np.float64) * np.prod(splats.scales.astype(np.float64), axis=1)),
        kind="stable",
    )
    records = np.empty(splats.n_splats, RECORD)
    records["position"] = means[order]
    records["scale"] = splats.scales[order]
    color = np.concatenate([splats.colors(), splats.opacities[:, None]], axis=1)[order]
    records["color"] = np.clip(np.round(color * 255.0), 0, 255).astype(np.uint8)
    records["rotation"] = np.clip(np.round(rotations[order] * 128.0 + 128.0), 0, 255).astype(
        np.uint8
    )
    return records.tobytes()


def write(splats: SplatAsset, path: str | Path) -> None:
    """Write ``splats`` as a .splat file, atomically."""
    data = encode(splats)
    with atomic_write(path) as stream:
        stream.write(data)


def read(path: str | Path) -> SplatAsset:
    """Read a .splat file.

    Raises:
        FormatError: when the size is not a whole number of 32-byte records.
    """
    data = Path(path).read_bytes()
    if len(data) % RECORD.itemsize:
        raise FormatError(
            f"{path} is not a .splat file: its size {len(data)} is not a multiple of {RECORD.itemsize} bytes"
        )
    records = np.frombuffer(data, RECORD)
    rotations = (records["rotation"].astype(np.float64) - 128.0) / 128.0
    norms = np.linalg.norm(rotations, axis=1, keepdims=True)
    rotations = np.where(norms > 0, rotations / np.maximum(norms, 1e-30), [1.0, 0.0, 0.0, 0.0])
    means, rotations = flip(records["position"].astype(np.float32), rotations)
    color = records["color"].astype(np.float32) / 255.0
    scales = records["scale"].astype(np.float32)
    if len(scales) and not (np.isfinite(scales).all() and scales.min() > 0):
        raise FormatError(
            f"{path} is not a valid .splat file: scales must be positive finite numbers"
        )
    return SplatAsset(
        means=means,
        scales=scales,
        rotations=rotations,
        opacities=color[:, 3],
        sh0=SplatAsset.sh0_from_colors(color[:, :3]),
    )
