"""Raw model surface -> light, UV-textured PBR meshes: the export driver.

:func:`postprocess_lods` runs the stages clean -> decimate -> unwrap -> bake -> place, one
function each (:func:`~genesis3d.geometry.clean.clean_mesh`,
:func:`~genesis3d.geometry.decimate.decimate_lods`, :func:`~genesis3d.geometry.uv.unwrap_uv`,
:func:`~genesis3d.geometry.bake.bake_textures`,
:func:`~genesis3d.geometry.placement.place_mesh`), as :class:`ExportOptions` says. Writing
the files is the IO layer's job (``genesis3d.io.save`` per level).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from genesis3d.assets import AlphaMode, MeshAsset, PBRMaterial
from genesis3d.errors import ConfigError
from genesis3d.geometry.attributes import AttributeSource, VertexAttributes
from genesis3d.geometry.bake import PBRChannels, bake_textures
from genesis3d.geometry.clean import CleanOptions, clean_mesh
from genesis3d.geometry.decimate import decimate_lods
from genesis3d.geometry.mesh_ops import vertex_normals
from genesis3d.geometry.placement import PIVOTS, Pivot, place_mesh
from genesis3d.geometry.uv import check_texture_size, unwrap_uv
from genesis3d.progress import ProgressCallback, ProgressEvent, no_progress

logger = logging.getLogger(__name__)

__all__ = ["ExportOptions", "postprocess", "postprocess_lods"]


@dataclass(frozen=True)
class ExportOptions:
    """What :func:`postprocess_lods` makes.

    Attributes:
        face_budgets: one level of detail per face budget, e.g. (100_000, 20_000).
        texture_size: texture side, a power of two in [256, 8192].
        normal_map: bake the dense surface's normals into a normal map.
        size: longest side in metres, or None to keep the scale.
        pivot: "keep", "center" or "bottom" (see :func:`place_mesh`).
        clean: options of the clean stage, or None to skip it (input already clean).
        channels: where colour and material sit among the source's channels; None picks
            by channel count (:meth:`PBRChannels.for_channel_count`).
        alpha_mode: glTF alpha mode of the material ("OPAQUE" unless asked).
        double_sided: whether the material is drawn from both sides.
    """

    face_budgets: tuple[int, ...] = (100_000,)
    texture_size: int = 2048
    normal_map: bool = True
    size: float | None = None
    pivot: Pivot = "keep"
    clean: CleanOptions | None = field(default_factory=CleanOptions)
    channels: PBRChannels | None = None
    alpha_mode: AlphaMode = "OPAQUE"
    double_sided: bool = False

    def __post_init__(self) -> None:
        budgets = tuple(self.face_budgets)
        if not budgets or not all(
            isinstance(b, int | np.integer) and not isinstance(b, bool) and b >= 4 for b in budgets
        ):
            raise ConfigError(
                f"face_budgets must be one or more integers of at least 4, got {self.face_budgets!r}; "
                "e.g. (100_000, 20_000)"
            )
        object.__setattr__(self, "face_budgets", budgets)
        check_texture_size(self.texture_size)
        if self.pivot not in PIVOTS:
            raise ConfigError(f"pivot must be one of {', '.join(PIVOTS)}, got {self.pivot!r}")
        if self.size is not None and not (np.isfinite(self.size) and self.size > 0):
            raise ConfigError(
                f"size must be a positive length in metres or None, got {self.size!r}"
            )


def _follow_clean(
    attributes: AttributeSource, faces: np.ndarray, source_vertex: np.ndarray
) -> AttributeSource:
    """Per-vertex attributes renumbered onto the cleaned mesh (others are unchanged).

    Vertices the hole filling added (``source_vertex`` -1) take the mean of the vertices
    they share faces with.
    """
    if not isinstance(attributes, VertexAttributes):
        return attributes
    values = np.asarray(attributes.values, np.float64)[np.maximum(source_vertex, 0)]
    added = source_vertex < 0
    if added.any():
        total = np.zeros_like(values)
        count = np.zeros(len(values))
        for corner in range(3):
            for other in ((corner + 1) % 3, (corner + 2) % 3):
                np.add.at(
                    total, faces[:, corner], values[faces[:, other]] * ~added[faces[:, other], None]
                )
                np.add.at(count, faces[:, corner], ~added[faces[:, other]])
        values[added] = total[added] / np.maximum(count[added], 1)[:, None]
    return VertexAttributes(faces, values.astype(np.float32))


def _level(
    positions: np.ndarray,
    faces: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    attributes: AttributeSource,
    options: ExportOptions,
    timings: dict[str, float],
    progress: ProgressCallback,
) -> MeshAsset:
    """Unwrap, bake and assemble one level of detail."""
    progress(ProgressEvent("uv", 0, 1, f"{len(faces)} faces"))
    start = time.perf_counter()
    unwrap = unwrap_uv(positions, faces, options.texture_size)
    timings["uv"] = time.perf_counter() - start
    points = positions[unwrap.source_vertex]
    normals = vertex_normals(positions, faces)[unwrap.source_vertex]
    progress(ProgressEvent("bake", 0, 1, f"{options.texture_size} px"))
    start = time.perf_counter()
    baked = bake_textures(
        points,
        unwrap.faces,
        unwrap.uvs,
        dense_positions,
        dense_faces,
        attributes,
        options.texture_size,
        channels=options.channels,
        normal_map=options.normal_map,
        normals=normals,
    )
    timings["bake"] = time.perf_counter() - start
    material = PBRMaterial(
        base_color_texture=baked.base_color,
        metallic_roughness_texture=baked.metallic_roughness,
        metallic_factor=1.0 if baked.metallic_roughness is not None else 0.0,
        roughness_factor=1.0,
        normal_texture=baked.normal,
        alpha_mode=options.alpha_mode,
        double_sided=options.double_sided,
    )
    mesh = MeshAsset(
        positions=points,
        faces=unwrap.faces,
        normals=normals,
        uvs=unwrap.uvs,
        material=material,
        metadata={"uv": unwrap.report.to_dict(), "bake": baked.report.to_dict()},
    )
    return place_mesh(mesh, options.size, options.pivot)


def postprocess_lods(
    positions: np.ndarray,
    faces: np.ndarray,
    attributes: AttributeSource,
    options: ExportOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> list[MeshAsset]:
    """Turn a dense raw surface and its attributes into one textured mesh per face budget.

    Args:
        positions: (n, 3) float dense surface vertices (the frame the attributes use).
        faces: (m, 3) int dense surface faces.
        attributes: colour and material at points of the dense surface.
        options: the :class:`ExportOptions`; default one 100k-face level with 2048 textures.
        progress: called with a :class:`ProgressEvent` as each stage starts ("clean",
            "decimate", then "uv" and "bake" per level) and once when all are done
            ("done").

    Returns:
        One :class:`MeshAsset` per ``options.face_budgets``, in that order; each one's
        ``metadata`` holds the clean, UV and bake reports and the stage times.
    """
    options = options or ExportOptions()
    progress = progress or no_progress
    timings: dict[str, float] = {}
    progress(ProgressEvent("clean", 0, 1, f"{len(faces)} faces"))
    start = time.perf_counter()
    dense_positions = np.asarray(positions, np.float32)
    dense_faces = np.asarray(faces, np.int64)
    clean_report = None
    if options.clean is not None:
        cleaned = clean_mesh(dense_positions, dense_faces, options.clean)
        dense_positions, dense_faces, clean_report = (
            cleaned.positions,
            cleaned.faces,
            cleaned.report,
        )
        attributes = _follow_clean(attributes, dense_faces, cleaned.source_vertex)
    timings["clean"] = time.perf_counter() - start
    progress(ProgressEvent("decimate", 0, 1, f"budgets {list(options.face_budgets)}"))
    start = time.perf_counter()
    levels = decimate_lods(dense_positions, dense_faces, options.face_budgets)
    timings["decimate"] = time.perf_counter() - start
    meshes = []
    for budget, (light_positions, light_faces) in zip(options.face_budgets, levels, strict=True):
        level_timings = dict(timings)
        mesh = _level(
            light_positions,
            light_faces,
            dense_positions,
            dense_faces,
            attributes,
            options,
            level_timings,
            progress,
        )
        mesh.metadata["face_budget"] = int(budget)
        mesh.metadata["stage_seconds"] = level_timings
        if clean_report is not None:
            mesh.metadata["clean"] = clean_report.to_dict()
        logger.info("postprocess: level %d faces, stages %s", mesh.n_faces, level_timings)
        meshes.append(mesh)
    progress(ProgressEvent("done", 1, 1))
    return meshes


def postprocess(
    positions: np.ndarray,
    faces: np.ndarray,
    attributes: AttributeSource,
    options: ExportOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> MeshAsset:
    """:func:`postprocess_lods` for one face budget (the first of ``options.face_budgets``)."""
    options = options or ExportOptions()
    if len(options.face_budgets) != 1:
        raise ConfigError(
            f"postprocess makes one mesh, got {len(options.face_budgets)} face budgets; "
            "use postprocess_lods for levels of detail"
        )
    return postprocess_lods(positions, faces, attributes, options, progress=progress)[0]
