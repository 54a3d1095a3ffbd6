"""The TRELLIS.2 image-to-3D pipeline: the steps listed in :mod:`genesis3d.pipelines.trellis2`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from genesis3d.assets import MeshAsset
from genesis3d.errors import ConfigError, ExtractionError, InputError
from genesis3d.geometry import frames
from genesis3d.geometry.attributes import SparseVoxelAttributes
from genesis3d.geometry.bake import PBRChannels
from genesis3d.geometry.export import ExportOptions, postprocess
from genesis3d.geometry.holes import fill_holes
from genesis3d.geometry.remesh import remesh_closed
from genesis3d.models.trellis2 import components as parts
from genesis3d.models.trellis2.dual_grid import flexible_dual_grid_to_mesh
from genesis3d.models.trellis2.sampling import SamplerSettings, sample_dense, sample_sparse
from genesis3d.models.trellis2.structure import cascade_coords, occupancy_coords
from genesis3d.nn.sparse.tensor import SparseTensor
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline, timed
from genesis3d.pipelines.trellis2.params import (
    PIPELINE_TYPES,
    Trellis2Params,
    birefnet_matte,
    crop_to_object,
    dinov3_pixels,
    networks,
    shrink,
)
from genesis3d.preprocess import load_image
from genesis3d.preprocess.matte import remove_background
from genesis3d.progress import ProgressCallback, StageReporter

logger = logging.getLogger(__name__)

AABB = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
#: longest hole filled after decoding, in the [-0.5, 0.5]^3 cube (cumesh's fill_holes)
MAX_HOLE_PERIMETER = 0.03


# ----------------------------------------------------------------------- the pipeline


@dataclass
class _Latents:
    """What the samplers produced: voxels (T, 4), shape and texture latents, resolution."""

    coords: torch.Tensor
    shape: torch.Tensor
    texture: torch.Tensor
    resolution: int


class Trellis2ImageTo3DPipeline(Pipeline):
    """Image to textured PBR mesh with the official TRELLIS.2 checkpoints."""

    name: ClassVar[str] = "trellis2"
    outputs: ClassVar[tuple[OutputKind, ...]] = ("mesh",)
    params_class: ClassVar[type] = Trellis2Params

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> Trellis2Params:
        return Trellis2Params.parse(params)

    def __init__(self, store: parts.Trellis2Components) -> None:
        self.store = store
        self.config = store.config

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        offload: str = "none",
    ) -> Trellis2ImageTo3DPipeline:
        """Load from a folder in the official layout (see :mod:`genesis3d.models.trellis2.components`).

        Args:
            folder: the folder holding ``pipeline.json`` and ``ckpts/``.
            device: "auto", "cpu", "cuda[:N]" or "mps".
            dtype: None/"auto" (bfloat16 flow blocks and float16 decoder blocks on CUDA and
                MPS, float32 on the CPU) or one dtype for the blocks of every network.
            offload: "none" keeps each network on the device once loaded (the ones the
                default type, ``1024_cascade``, uses are loaded now); "model" loads each one
                for its stage only.
        """
        store = parts.Trellis2Components(Path(folder), device=device, dtype=dtype, offload=offload)
        store.load_required(networks(Trellis2Params().pipeline_type))
        return cls(store)

    @staticmethod
    def verify(folder: str | Path) -> dict[str, Any]:
        """Check every network file of a weights folder (see ``genesis3d models verify``)."""
        return parts.verify(folder)

    def sampler(self, name: str, steps: int | None) -> SamplerSettings:
        """A stage's sampler settings from pipeline.json, with ``steps`` if given."""
        values = dict(self.config.samplers[name])
        if steps is not None:
            values["steps"] = steps
        if "guidance_interval" in values:
            values["guidance_interval"] = tuple(values["guidance_interval"])
        try:
            return SamplerSettings(**values)
        except TypeError as error:
            raise ConfigError(
                f"pipeline.json: {name} has parameters this port does not know: {error}"
            ) from error

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
        for kind in outputs or ("mesh",):
            if kind != "mesh":
                raise ConfigError(
                    f"trellis2 makes meshes, not {kind!r}; use --model triposplat for splats"
                )
        generator = torch.Generator("cpu").manual_seed(int(seed))
        timings: dict[str, float] = {}

        with timed(timings, "preprocess"):
            stage = StageReporter(progress, "preprocess").start()
            condition = self._prepare(image, background)
            stage.done()

        with timed(timings, "condition"), torch.inference_mode():
            sizes = (512,) if settings.pipeline_type == "512" else (512, 1024)
            stage = StageReporter(progress, "condition", len(sizes)).start()
            conds = {}
            with self.store.use(parts.IMAGE_ENCODER) as encoder:
                for size in sizes:
                    pixels = dinov3_pixels(condition[..., :3], size).to(self.store.device)
                    hidden = encoder.hidden_states(pixels).float()
                    conds[size] = F.layer_norm(hidden, hidden.shape[-1:], eps=1e-5)
                    stage.advance()

        with torch.inference_mode():
            latents = self._sample(settings, conds, generator, timings, progress)
        with timed(timings, "decode"), torch.inference_mode():
            positions, faces, source = self._decode(latents, progress)
        with timed(timings, "export"):
            mesh = self._export(positions, faces, source, settings, progress)
        mesh.metadata.update(
            {
                "model": "trellis2",
                "seed": int(seed),
                "pipeline_type": settings.pipeline_type,
                "resolution": latents.resolution,
                "tokens": len(latents.coords),
                "steps": settings.steps or self.config.samplers["shape_slat_sampler"].get("steps"),
                "remesh": settings.remesh_resolution if settings.remesh else False,
            }
        )
        return Generation(mesh=mesh, condition=condition, timings=timings)

    def _prepare(self, image: Any, background: str | None) -> np.ndarray:
        picture = load_image(image)
        backend = (background or "").strip().lower() or None
        has_alpha = picture.alpha is not None and bool((picture.alpha < 255).any())
        if backend is None:
            backend = "alpha" if has_alpha else "birefnet"
        if backend == "alpha" and not has_alpha:
            raise InputError(
                f"{picture.source} has no alpha matte (every pixel is opaque); "
                "leave --bg unset for BiRefNet, or use --bg auto or --bg rembg"
            )
        if backend == "alpha":
            rgba = shrink(np.dstack([picture.rgb, picture.alpha]))
        elif backend == "birefnet":
            rgb = shrink(picture.rgb)
            with self.store.use(parts.BACKGROUND_REMOVAL) as birefnet:
                rgba = np.dstack([rgb, birefnet_matte(birefnet, rgb)])
        else:
            rgba = shrink(remove_background(picture, backend))
        return crop_to_object(rgba)

    def _noise(self, generator: torch.Generator, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(self.store.device)

    def _sample(
        self,
        settings: Trellis2Params,
        conds: dict[int, torch.Tensor],
        generator: torch.Generator,
        timings: dict[str, float],
        progress: ProgressCallback | None,
    ) -> _Latents:
        grid, resolution, cascade = PIPELINE_TYPES[settings.pipeline_type]
        steps = settings.steps
        structure = self.sampler("sparse_structure_sampler", steps)
        shape_sampler = self.sampler("shape_slat_sampler", steps)
        shape_norm = self.config.shape_normalization

        with timed(timings, "structure"):
            stage = StageReporter(progress, "structure", structure.steps).start()
            with self.store.use("sparse_structure_flow_model") as flow:
                size = flow.config.resolution
                noise = self._noise(generator, 1, flow.config.in_channels, size, size, size)
                cond = conds[512]
                latent = sample_dense(
                    flow, noise, cond, torch.zeros_like(cond), structure,
                    callback=lambda *_: stage.advance(),
                ).samples  # fmt: skip
            with self.store.use("sparse_structure_decoder") as decoder:
                coords = occupancy_coords(decoder(latent), grid)
            if len(coords) == 0:
                raise ExtractionError(
                    "the structure stage found no occupied voxel; try another seed or picture"
                )

        first = "shape_slat_flow_model_512" if grid == 32 else "shape_slat_flow_model_1024"
        with timed(timings, "shape"):
            passes = 2 if cascade else 1
            stage = StageReporter(progress, "shape", passes * shape_sampler.steps).start()
            latent_shape = self._shape_pass(
                first, coords, conds[512 if grid == 32 else 1024], shape_sampler, generator, stage
            )
            if cascade:
                with self.store.use("shape_slat_decoder") as decoder:
                    fine = decoder.upsample(SparseTensor(coords, latent_shape), upsample_times=4)
                coords, resolution = cascade_coords(
                    fine, resolution, source_grid=grid * 16, max_tokens=settings.max_tokens
                )
                logger.info("cascade: %d latent voxels at resolution %d", len(coords), resolution)
                latent_shape = self._shape_pass(
                    "shape_slat_flow_model_1024",
                    coords,
                    conds[1024],
                    shape_sampler,
                    generator,
                    stage,
                )

        tex_name = (
            "tex_slat_flow_model_512"
            if settings.pipeline_type == "512"
            else "tex_slat_flow_model_1024"
        )
        texture = self.sampler("tex_slat_sampler", steps)
        with timed(timings, "texture"):
            stage = StageReporter(progress, "texture", texture.steps).start()
            with self.store.use(tex_name) as flow:
                normalized = shape_norm.normalize(latent_shape)
                noise = self._noise(
                    generator, len(coords), flow.config.in_channels - normalized.shape[1]
                )
                cond = conds[512 if tex_name.endswith("512") else 1024]
                result = sample_sparse(
                    flow, SparseTensor(coords, noise), cond, torch.zeros_like(cond), texture,
                    concat_cond=SparseTensor(coords, normalized),
                    callback=lambda *_: stage.advance(),
                ).samples  # fmt: skip
            latent_texture = self.config.tex_normalization.denormalize(result.feats)
        return _Latents(coords, latent_shape, latent_texture, resolution)

    def _shape_pass(
        self,
        name: str,
        coords: torch.Tensor,
        cond: torch.Tensor,
        settings: SamplerSettings,
        generator: torch.Generator,
        stage: StageReporter,
    ) -> torch.Tensor:
        """One shape flow pass on ``coords`` (T, 4) -> de-normalised latent (T, C)."""
        with self.store.use(name) as flow:
            noise = self._noise(generator, len(coords), flow.config.in_channels)
            result = sample_sparse(
                flow, SparseTensor(coords, noise), cond, torch.zeros_like(cond), settings,
                callback=lambda *_: stage.advance(),
            ).samples  # fmt: skip
        return self.config.shape_normalization.denormalize(result.feats)

    def _decode(
        self, latents: _Latents, progress: ProgressCallback | None
    ) -> tuple[np.ndarray, np.ndarray, SparseVoxelAttributes]:
        """Mesh (TRELLIS.2 frame, holes filled) and the PBR voxels of the latents."""
        stage = StageReporter(progress, "decode", 3).start()
        with self.store.use("shape_slat_decoder") as decoder:
            out, subs = decoder(SparseTensor(latents.coords, latents.shape))
            dual, intersected, split = decoder.fields(out)
        voxels = out.coords[:, 1:]
        vertices, faces = flexible_dual_grid_to_mesh(
            voxels, dual, intersected, split, AABB, latents.resolution
        )
        stage.advance()
        with self.store.use("tex_slat_decoder") as decoder:
            pbr, _ = decoder(
                SparseTensor(latents.coords, latents.texture), [sub.feats for sub in subs]
            )
        if not torch.equal(pbr.coords, out.coords):
            raise ExtractionError("the texture decoder did not end on the shape decoder's voxels")
        attributes = (pbr.feats.float() * 0.5 + 0.5).cpu().numpy()
        stage.advance()
        positions = vertices.cpu().numpy().astype(np.float32)
        faces_np = faces.cpu().numpy().astype(np.int64)
        if len(faces_np) == 0:
            raise ExtractionError("the decoded voxels form no surface; try another seed or picture")
        diagonal = float(np.linalg.norm(positions.max(0) - positions.min(0)))
        positions, faces_np, filled, _ = fill_holes(
            positions, faces_np, MAX_HOLE_PERIMETER / max(diagonal, 1e-12)
        )
        logger.info(
            "decode: %d voxels, %d faces, %d holes filled", len(voxels), len(faces_np), filled
        )
        source = SparseVoxelAttributes(
            voxels.cpu().numpy().astype(np.int64), attributes, latents.resolution, AABB
        )
        stage.done()
        return positions, faces_np, source

    def _export(
        self,
        positions: np.ndarray,
        faces: np.ndarray,
        source: SparseVoxelAttributes,
        settings: Trellis2Params,
        progress: ProgressCallback | None,
    ) -> MeshAsset:
        # The dual grid's winding follows a fixed vertex order, not the inside (spec 4.1):
        # the material is double-sided, as the official export without remeshing. The
        # remesh gives one closed shell wound outward, which needs no back faces.
        if settings.remesh:
            positions, faces = remesh_closed(
                positions, faces, resolution=settings.remesh_resolution
            )
            logger.info("remesh: one closed shell of %d faces", len(faces))
        options = ExportOptions(
            face_budgets=(settings.faces,),
            texture_size=settings.texture_size,
            normal_map=False,
            channels=PBRChannels(),
            alpha_mode="OPAQUE",
            double_sided=not settings.remesh,
        )
        mesh = postprocess(positions, faces, source, options, progress=progress)
        world = frames.rotate_points(mesh.positions, frames.TRELLIS2_TO_WORLD)
        normals = (
            None
            if mesh.normals is None
            else frames.rotate_points(mesh.normals, frames.TRELLIS2_TO_WORLD)
        )
        return dataclasses.replace(mesh, positions=world, normals=normals)


__all__ = ["Trellis2ImageTo3DPipeline"]
