"""Mesh extraction from TripoSG's SDF: sample a grid by the chosen route, then triangulate.

Routes: the official flash ladder (:mod:`~genesis3d.models.triposg.flash`, default), whose
final level stays a list of points for
:func:`~genesis3d.geometry.isosurface.marching_cubes_refined`, and the dense and
hierarchical grids (:mod:`~genesis3d.models.triposg.grids`), triangulated by
:func:`~genesis3d.geometry.isosurface.marching_cubes_indices`. Vertices are mapped to the
model frame exactly (the official scaling slip is an option, for comparisons).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from genesis3d.errors import ConfigError
from genesis3d.geometry.isosurface import (
    index_to_world,
    marching_cubes_indices,
    marching_cubes_refined,
)
from genesis3d.models.triposg.flash import flash_grid, flash_ladder, flash_refined
from genesis3d.models.triposg.grids import Field, SampledGrid, dense_grid, hierarchical_grid

Method = Literal["flash", "hierarchical", "dense"]
METHODS: tuple[str, ...] = ("flash", "hierarchical", "dense")


@dataclass(frozen=True)
class ExtractionOptions:
    """How the mesh is extracted from the SDF.

    Attributes:
        method: "flash" (coarse to fine, the official default), "hierarchical" (dense grid
            refined once in a band) or "dense" (every point of one grid).
        octree_depth: the final grid has about 2^depth cells per axis (released: 9, i.e. 504
            cells for flash and 512 points for hierarchical); "dense" evaluates 2^depth
            points per axis.
        dense_depth: hierarchical only, the depth of the dense first grid (released: 8).
        bounds: half-size of the sampled cube (released: 1.005).
        official_scale: map vertices the way upstream does (dividing grid indices by
            2^depth instead of the cell count), which shrinks the mesh by up to 1.6% toward
            the (-bounds) corner; only for comparisons with upstream meshes.
    """

    method: Method = "flash"
    octree_depth: int = 9
    dense_depth: int = 8
    bounds: float = 1.005
    official_scale: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"extraction method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if not 4 <= self.octree_depth <= 10:
            raise ConfigError(f"octree_depth must be between 4 and 10, got {self.octree_depth}")
        if self.method == "hierarchical" and not 1 <= self.dense_depth <= self.octree_depth:
            raise ConfigError(
                f"dense_depth must be between 1 and octree_depth ({self.octree_depth}), got {self.dense_depth}"
            )
        if not 0 < self.bounds <= 4:
            raise ConfigError(f"bounds must be in (0, 4], got {self.bounds}")


def sample_grid(
    field_fn: Field,
    options: ExtractionOptions,
    *,
    batch_points: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SampledGrid:
    """The dense grid of the chosen method (see the module docstring)."""
    if options.method == "flash":
        return flash_grid(
            field_fn,
            bounds=options.bounds,
            octree_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
            progress=progress,
        )
    if options.method == "hierarchical":
        return hierarchical_grid(
            field_fn,
            bounds=options.bounds,
            dense_depth=options.dense_depth,
            final_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
        )
    return dense_grid(
        field_fn,
        bounds=options.bounds,
        octree_depth=options.octree_depth,
        batch_points=batch_points,
        device=device,
    )


def extract_mesh(
    field_fn: Field,
    options: ExtractionOptions | None = None,
    *,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the field and triangulate its zero set on the CPU.

    Returns:
        (vertices (v, 3) float32 in the model frame, faces (f, 3) int32 wound outward).

    Raises:
        ExtractionError: the field is empty, full or not finite.
    """
    options = options or ExtractionOptions()
    if options.method == "flash" and len(flash_ladder(options.octree_depth)) > 1:
        refined = flash_refined(
            field_fn,
            bounds=options.bounds,
            octree_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
            progress=progress,
        )
        (low, high) = refined.bounds
        cells = 2 * (refined.coarse.shape[0] - 1)
        vertices, faces = marching_cubes_refined(
            refined.coarse.cpu().numpy(),
            refined.indices.cpu().numpy(),
            refined.values.cpu().numpy(),
            0.0,
        )
    else:
        grid = sample_grid(
            field_fn, options, batch_points=batch_points, device=device, progress=progress
        )
        values = grid.values.cpu().numpy()
        surface = None if grid.surface_cells is None else grid.surface_cells.cpu().numpy()
        (low, high), cells = grid.bounds, grid.cells
        del grid  # the torch grid; marching cubes needs only the arrays
        vertices, faces = marching_cubes_indices(values, 0.0, cells=surface)
    divisor = 2**options.octree_depth if options.official_scale else cells
    world = index_to_world(vertices, (cells + 1,) * 3, (low,) * 3, (high,) * 3, divisor=divisor)
    # The field is larger inside: reverse scikit-image's winding for outward normals.
    return world, np.ascontiguousarray(faces[:, ::-1])
