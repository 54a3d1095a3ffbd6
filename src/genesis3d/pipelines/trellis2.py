"""TRELLIS.2 (Microsoft, MIT): one picture -> a textured PBR mesh through sparse voxel latents.

Steps of a call (spec sections 1.2-1.9; the pipeline types are in :data:`PIPELINE_TYPES`):
  1. prepare the picture: its own alpha when it has one (any pixel below 255), else a
     BiRefNet matte; at most 1024 px; a square crop around the pixels with alpha > 204;
     colour premultiplied onto black;
  2. condition: DINOv3 ViT-L/16 tokens at 512 px (and 1024 px unless the type is ``512``),
     all 1029 / 4101 tokens after a non-affine LayerNorm; the negative is all zeros;
  3. sample the sparse structure (dense 16^3 flow, then the occupancy decoder) on a 32^3 or
     64^3 latent grid;
  4. sample the shape latent on those voxels; a cascade samples it at 512 first, subdivides
     it with the shape decoder and samples again on the finer grid (1024, or 1536 lowered
     by 128 at a time while the latent holds ``max_tokens`` voxels or more);
  5. sample the texture latent given the normalised shape latent;
  6. decode: the shape decoder's voxels become a flexible-dual-grid mesh, the texture
     decoder follows its subdivisions to PBR voxels (base colour, metallic, roughness,
     alpha); small holes are filled;
  7. export: clean, decimate to ``faces``, unwrap, bake the voxels' PBR attributes
     (trilinear over existing voxels) into ``texture_size`` textures, and map TRELLIS.2's
     Z-up frame to the world frame (:data:`genesis3d.geometry.frames.TRELLIS2_TO_WORLD`).

Samplers, latent normalisations and the image encoder come from the folder's
``pipeline.json``. Every noise tensor is drawn on the CPU from one ``torch.Generator``
seeded with the call's seed, in the official order (structure, shape, cascade shape,
texture), then moved to the device: the same seed gives the same noise on every device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genesis3d.errors import ConfigError, ExtractionError, InputError
from genesis3d.geometry import frames
from genesis3d.geometry.attributes import SparseVoxelAttributes
from genesis3d.geometry.bake import PBRChannels
from genesis3d.geometry.export import ExportOptions, postprocess
from genesis3d.geometry.holes import fill_holes
from genesis3d.geometry.uv import check_texture_size
from genesis3d.models.trellis2 import components as parts
from genesis3d.models.trellis2.dual_grid import flexible_dual_grid_to_mesh
from genesis3d.models.trellis2.sampling import SamplerSettings, sample_dense, sample_sparse
from genesis3d.models.trellis2.structure import (
    MAX_CASCADE_TOKENS,
    cascade_coords,
    occupancy_coords,
)
from genesis3d.nn.dinov3 import IMAGENET_MEAN, IMAGENET_STD
from genesis3d.nn.sparse.tensor import SparseTensor
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline
from genesis3d.preprocess import load_image
from genesis3d.preprocess.matte import remove_background
from genesis3d.progress import ProgressCallback, StageReporter

logger = logging.getLogger(__name__)

PipelineType = Literal["512", "1024", "1024_cascade", "1536_cascade"]
#: type -> (structure grid, output resolution, whether the shape is sampled in two passes)
PIPELINE_TYPES: dict[str, tuple[int, int, bool]] = {
    "512": (32, 512, False),
    "1024": (64, 1024, False),
    "1024_cascade": (32, 1024, True),
    "1536_cascade": (32, 1536, True),
}
#: what ``--resolution`` means, as in the official web demo
RESOLUTION_TYPES = {512: "512", 1024: "1024_cascade", 1536: "1536_cascade"}
MAX_SIDE = 1024
ALPHA_THRESHOLD = 0.8 * 255
#: longest hole filled after decoding, in the [-0.5, 0.5]^3 cube (cumesh's fill_holes)
MAX_HOLE_PERIMETER = 0.03
AABB = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))


@dataclass(frozen=True)
class Trellis2Params:
    """Parameters of a TRELLIS.2 call (defaults: the official pipeline and web demo).

    Attributes:
        pipeline_type: "512", "1024", "1024_cascade" or "1536_cascade" (``resolution``
            512, 1024 and 1536 choose "512", "1024_cascade" and "1536_cascade").
        steps: Euler steps of every sampler (None: pipeline.json's, 12 each).
        faces: decimate the mesh to at most this many faces.
        texture_size: side of the PBR textures, a power of two from 256 to 8192.
        max_tokens: the 1536 cascade lowers its resolution until the latent holds fewer
            voxels than this.
    """

    pipeline_type: PipelineType = "1024_cascade"
    steps: int | None = None
    faces: int = 500_000
    texture_size: int = 2048
    max_tokens: int = MAX_CASCADE_TOKENS

    def __post_init__(self) -> None:
        if self.pipeline_type not in PIPELINE_TYPES:
            raise ConfigError(
                f"pipeline_type must be one of {', '.join(PIPELINE_TYPES)}, got {self.pipeline_type!r}"
            )
        if self.steps is not None and not 1 <= self.steps <= 200:
            raise ConfigError(f"steps must be between 1 and 200, got {self.steps}")
        if self.faces < 4:
            raise ConfigError(f"faces must be at least 4 (e.g. 500000), got {self.faces}")
        check_texture_size(self.texture_size)
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be positive, got {self.max_tokens}")

    @property
    def resolution(self) -> int:
        return PIPELINE_TYPES[self.pipeline_type][1]

    @classmethod
    def parse(cls, params: dict[str, Any]) -> Trellis2Params:
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in params.items():
            if key == "resolution":
                number = _whole("resolution", value)
                if number not in RESOLUTION_TYPES:
                    raise ConfigError(f"resolution must be 512, 1024 or 1536, got {value!r}")
                values["pipeline_type"] = RESOLUTION_TYPES[number]
            elif key not in names:
                raise ConfigError(
                    f"trellis2 has no parameter {key!r}; it takes resolution, {', '.join(sorted(names))}"
                )
            elif key == "pipeline_type":
                values[key] = str(value)
            elif key == "steps" and value in (None, "none"):
                values[key] = None
            else:
                values[key] = _whole(key, value)
        return cls(**values)


def _whole(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from error
    if number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


# ----------------------------------------------------------------------- step 1: picture


def crop_to_object(rgba: np.ndarray) -> np.ndarray:
    """The official crop (spec 1.2 steps 4-5) of a matted picture.

    The box is the square of side max(w, h) (no margin) centred on the pixels with alpha
    > 204; parts outside the picture are transparent black. Colour is premultiplied by
    alpha with truncation.

    Args:
        rgba: (H, W, 4) uint8 straight alpha.

    Returns:
        (S, S, 4) uint8: premultiplied colour and the alpha.

    Raises:
        InputError: no pixel has alpha above 204.
    """
    ys, xs = np.nonzero(rgba[..., 3] > ALPHA_THRESHOLD)
    if len(xs) == 0:
        raise InputError(
            "the picture has no object (no pixel with alpha above 80%); check the picture "
            "or choose another --bg backend"
        )
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) // 2
    cropped = Image.fromarray(rgba, "RGBA").crop((cx - half, cy - half, cx + half, cy + half))
    pixels = np.asarray(cropped).astype(np.float32) / 255
    rgb = (pixels[..., :3] * pixels[..., 3:4] * 255).astype(np.uint8)
    return np.dstack([rgb, np.asarray(cropped)[..., 3]])


def shrink(rgba: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Lanczos resize so the longest side is at most ``max_side`` (sizes truncated)."""
    height, width = rgba.shape[:2]
    if max(height, width) <= max_side:
        return rgba
    scale = max_side / max(height, width)
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    mode = "RGBA" if rgba.shape[2] == 4 else "RGB"
    return np.asarray(Image.fromarray(rgba, mode).resize(size, Image.Resampling.LANCZOS))


def dinov3_pixels(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(S, S, 3) uint8 -> (1, 3, size, size) float32, Lanczos-resized, ImageNet-normalised."""
    image = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


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
                default type uses are loaded now); "model" loads each one for its stage only.
        """
        store = parts.Trellis2Components(Path(folder), device=device, dtype=dtype, offload=offload)
        store.load_required(_networks(store.config.default_pipeline_type))
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

        with _timed(timings, "preprocess"):
            stage = StageReporter(progress, "preprocess").start()
            condition = self._prepare(image, background)
            stage.done()

        with _timed(timings, "condition"), torch.inference_mode():
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
        with _timed(timings, "decode"), torch.inference_mode():
            positions, faces, source = self._decode(latents, progress)
        with _timed(timings, "export"):
            mesh = self._export(positions, faces, source, settings, progress)
        mesh.metadata.update(
            {
                "model": "trellis2",
                "seed": int(seed),
                "pipeline_type": settings.pipeline_type,
                "resolution": latents.resolution,
                "tokens": len(latents.coords),
                "steps": settings.steps or self.config.samplers["shape_slat_sampler"].get("steps"),
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
            from genesis3d.models.birefnet import predict_alpha

            rgb = shrink(picture.rgb)
            with torch.inference_mode(), self.store.use(parts.BACKGROUND_REMOVAL) as birefnet:
                rgba = np.dstack([rgb, predict_alpha(birefnet, rgb)])
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

        with _timed(timings, "structure"):
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
        with _timed(timings, "shape"):
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
        with _timed(timings, "texture"):
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
    ):
        # The dual grid's winding follows a fixed vertex order, not the inside (spec 4.1):
        # the material is double-sided, as the official export without remeshing.
        options = ExportOptions(
            face_budgets=(settings.faces,),
            texture_size=settings.texture_size,
            normal_map=False,
            channels=PBRChannels(),
            alpha_mode="OPAQUE",
            double_sided=True,
        )
        mesh = postprocess(positions, faces, source, options, progress=progress)
        world = frames.rotate_points(mesh.positions, frames.TRELLIS2_TO_WORLD)
        normals = (
            None
            if mesh.normals is None
            else frames.rotate_points(mesh.normals, frames.TRELLIS2_TO_WORLD)
        )
        return dataclasses.replace(mesh, positions=world, normals=normals)


def _networks(pipeline_type: str) -> tuple[str, ...]:
    """The networks a pipeline type runs."""
    _, _, cascade = PIPELINE_TYPES.get(pipeline_type, PIPELINE_TYPES["1024_cascade"])
    names = [
        "sparse_structure_flow_model",
        "sparse_structure_decoder",
        "shape_slat_decoder",
        "tex_slat_decoder",
        parts.IMAGE_ENCODER,
    ]
    if pipeline_type == "512":
        names += ["shape_slat_flow_model_512", "tex_slat_flow_model_512"]
    elif cascade:
        names += [
            "shape_slat_flow_model_512",
            "shape_slat_flow_model_1024",
            "tex_slat_flow_model_1024",
        ]
    else:
        names += ["shape_slat_flow_model_1024", "tex_slat_flow_model_1024"]
    return tuple(names)


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - start


__all__ = [
    "PIPELINE_TYPES",
    "Trellis2ImageTo3DPipeline",
    "Trellis2Params",
    "crop_to_object",
    "dinov3_pixels",
    "shrink",
]
