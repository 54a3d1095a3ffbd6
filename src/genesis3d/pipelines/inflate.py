"""``inflate``: the built-in generator that needs no weights.

A geometric inflation of the object's silhouette, not a learned reconstruction: see
:mod:`genesis3d.geometry.inflate` for the method. It runs on the CPU with NumPy and SciPy,
whatever device is asked for.

Steps: 1. preprocess (load, cut out, crop), 2. geometry (height field, marching cubes),
3. texture (atlas and UVs), 4. splats (surface sampling, only when asked for).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from genesis3d.assets import MeshAsset, PBRMaterial, SplatAsset
from genesis3d.errors import ConfigError
from genesis3d.geometry import frames, inflate
from genesis3d.geometry.mesh_ops import orient_outward, split_by_face_group, vertex_normals
from genesis3d.geometry.placement import placement_transform
from genesis3d.geometry.sampling import sample_splats
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline
from genesis3d.preprocess import load_image
from genesis3d.preprocess.framing import prepare_silhouette
from genesis3d.progress import ProgressCallback, StageReporter

logger = logging.getLogger(__name__)

METHOD = "geometric inflation of the silhouette (not a learned reconstruction)"


@dataclass(frozen=True)
class InflateParams:
    """Parameters of ``inflate``, validated.

    Attributes:
        resolution: grid cells along the object's longest side (32-512); sets the mesh detail.
        thickness: front height at the deepest point relative to the object's largest
            inner radius (0.05-2.0); 1.0 makes a disc a half sphere at the front.
        back_scale: depth of the back relative to the front (0.05-1.0).
        back_shade: brightness of the back texture relative to the front (0.1-1.0).
        texture_size: atlas side in pixels, a power of two from 256 to 8192.
        splats: number of Gaussian splats sampled on the surface (1,024-4,194,304).
    """

    resolution: int = 160
    thickness: float = 0.8
    back_scale: float = 0.5
    back_shade: float = 0.6
    texture_size: int = 1024
    splats: int = 131_072

    def __post_init__(self) -> None:
        _check_range("resolution", self.resolution, 32, 512, integer=True)
        _check_range("thickness", self.thickness, 0.05, 2.0)
        _check_range("back_scale", self.back_scale, 0.05, 1.0)
        _check_range("back_shade", self.back_shade, 0.1, 1.0)
        _check_range("splats", self.splats, 1024, 4_194_304, integer=True)
        size = self.texture_size
        if not isinstance(size, int) or size < 256 or size > 8192 or size & (size - 1):
            raise ConfigError(
                f"texture_size must be a power of two between 256 and 8192, got {size!r}"
            )


def _check_range(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    kind_ok = (
        isinstance(value, int) and not isinstance(value, bool)
        if integer
        else isinstance(value, int | float) and not isinstance(value, bool)
    )
    if not kind_ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} between {low:g} and {high:g}, got {value!r}")


class InflatePipeline(Pipeline):
    """Silhouette inflation: a picture to a textured, watertight mesh and Gaussian splats."""

    name: ClassVar[str] = "inflate"
    outputs: ClassVar[tuple[OutputKind, ...]] = ("mesh", "splats")
    params_class: ClassVar[type] = InflateParams

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> InflateParams:
        unknown = set(params) - set(InflateParams.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"inflate has no parameter {', '.join(sorted(unknown))}; it takes {', '.join(InflateParams.__dataclass_fields__)}"
            )
        return InflateParams(**params)

    def __init__(self, device: str | None = None, dtype: str | None = None) -> None:
        # NumPy on the CPU whatever the device: the work is small and has no GPU kernel.
        self.device = "cpu"
        if device not in (None, "auto", "cpu"):
            logger.info("inflate runs on the CPU; device %r is not used", device)

    def __call__(
        self,
        image: Any,
        *,
        seed: int = 0,
        outputs: tuple[OutputKind, ...] | None = None,
        background: str | None = None,
        progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Generation:
        settings = self.parse_params(params)
        wanted = tuple(outputs) if outputs else ("mesh",)
        for kind in wanted:
            if kind not in self.outputs:
                raise ConfigError(f"inflate makes mesh and splats, not {kind!r}")
        timings: dict[str, float] = {}

        start = time.perf_counter()
        stage = StageReporter(progress, "preprocess").start()
        picture = load_image(image)
        rgba = prepare_silhouette(
            picture, background, max_side=max(1024, settings.texture_size // 2)
        )
        stage.done()
        timings["preprocess"] = time.perf_counter() - start

        start = time.perf_counter()
        stage = StageReporter(progress, "geometry").start()
        pixels, faces = self._solid(rgba, settings)
        stage.done()
        timings["geometry"] = time.perf_counter() - start

        start = time.perf_counter()
        stage = StageReporter(progress, "texture").start()
        mesh = self._textured_mesh(rgba, pixels, faces, settings, seed)
        stage.done()
        timings["texture"] = time.perf_counter() - start

        splats = None
        if "splats" in wanted:
            start = time.perf_counter()
            stage = StageReporter(progress, "splats").start()
            splats = self._splats(mesh, settings, seed)
            stage.done()
            timings["splats"] = time.perf_counter() - start
        return Generation(
            mesh=mesh if "mesh" in wanted else None, splats=splats, condition=rgba, timings=timings
        )

    @staticmethod
    def _solid(rgba: np.ndarray, settings: InflateParams) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (n, 3) in picture pixels (column, row, depth) and faces (m, 3)."""
        field = inflate.silhouette_field(rgba[..., 3], settings.resolution)
        front, _ = inflate.height_profile(field.distance, settings.thickness)
        cells, faces = inflate.extract_solid(front, settings.back_scale)
        return (cells + np.array([0.5, 0.5, 0.0])) * field.cell, faces

    def _textured_mesh(
        self,
        rgba: np.ndarray,
        pixels: np.ndarray,
        faces: np.ndarray,
        settings: InflateParams,
        seed: int,
    ) -> MeshAsset:
        height, width = rgba.shape[:2]
        world = frames.image_to_world(pixels, (height, width))
        scale, offset = placement_transform(
            np.stack([world.min(axis=0), world.max(axis=0)]), size=1.0, pivot="center"
        )
        world = (world * scale + offset).astype(np.float32)
        faces = orient_outward(world, faces)  # the pixel frame is left-handed: the map mirrors
        normals = vertex_normals(world, faces)
        # Front and back are split at the silhouette's plane, depth 0 in the pixel frame.
        is_back = (pixels[faces].mean(axis=1)[:, 2] < 0).astype(np.int64)
        source, group, split_faces = split_by_face_group(faces, is_back)
        atlas, layout = inflate.texture_atlas(rgba, settings.texture_size, settings.back_shade)
        uvs = inflate.project_uvs(pixels[source, :2], group == 1, layout)
        material = PBRMaterial(
            base_color_texture=atlas, metallic_factor=0.0, roughness_factor=0.85, name="inflate"
        )
        return MeshAsset(
            positions=world[source],
            faces=split_faces,
            normals=normals[source],
            uvs=uvs,
            material=material,
            metadata=self._metadata(settings, seed),
        )

    def _splats(self, mesh: MeshAsset, settings: InflateParams, seed: int) -> SplatAsset:
        rng = np.random.default_rng(seed)
        fields = sample_splats(
            mesh.positions,
            mesh.faces,
            mesh.normals,
            mesh.uvs,
            mesh.material.base_color_texture,
            settings.splats,
            rng,
        )
        return SplatAsset(**fields, metadata=self._metadata(settings, seed))

    @staticmethod
    def _metadata(settings: InflateParams, seed: int) -> dict[str, Any]:
        return {
            "generator": "genesis3d",
            "model": "inflate",
            "method": METHOD,
            "seed": int(seed),
            **settings.__dict__,
        }
