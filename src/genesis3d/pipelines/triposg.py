"""TripoSG (VAST, MIT): one picture -> a detailed untextured mesh.

Steps of a call:
  1. prepare the picture (spec 2.2): a valid alpha matte or a background-removal matte
     (hard mask, largest object), composite on white, crop to the object, pad to a square
     with a 10% margin, then DINOv2's processor (short side 256 bicubic, centre crop 224,
     ImageNet normalisation);
  2. encode it: DINOv2-L ``last_hidden_state`` (257 tokens);
  3. sample the shape latent: 50 Euler steps of TripoSG's rectified flow, CFG 7 against
     all-zero tokens, from seeded noise;
  4. extract the mesh: the VAE's SDF sampled coarse to fine (the trunk computed once),
     marching cubes on the CPU, vertices scaled correctly;
  5. optional decimation to a face budget; the mesh gets a neutral material.

The only random draw is the initial noise, from a ``torch.Generator`` seeded with the
call's seed: the same seed gives the same mesh on the same device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from PIL import Image

from genesis3d.assets import MeshAsset, PBRMaterial
from genesis3d.errors import ConfigError, ExtractionError, InputError
from genesis3d.geometry import frames
from genesis3d.geometry.clean import clean_mesh
from genesis3d.geometry.mesh_ops import vertex_normals
from genesis3d.models.triposg import components as parts
from genesis3d.models.triposg.extraction import ExtractionOptions, extract_mesh
from genesis3d.models.triposg.sampling import sample_latents
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline, flag_param, timed
from genesis3d.preprocess import load_image
from genesis3d.preprocess.matte import remove_background
from genesis3d.progress import ProgressCallback, StageReporter

logger = logging.getLogger(__name__)

#: the official helper scales pictures down to this longest side first
MAX_SIDE = 2000
#: memory for one batch of SDF queries (attention scores and MLP activations)
QUERY_BUDGET_BYTES = 1 << 30
RESOLUTIONS = (32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class TripoSGParams:
    """Parameters of a TripoSG call (defaults: the official script's).

    Attributes:
        steps: Euler steps of the flow sampler.
        guidance_scale: classifier-free guidance strength (<= 1 skips the unconditional pass).
        octree_resolution: cells per axis of the final extraction grid, a power of two
            from 32 to 1024 (512: the official 504-cell flash grid).
        faces: decimate the mesh to at most this many faces (None: keep every face).
        clean: clean the extracted mesh with the export toolkit before any decimation:
            weld, drop degenerate and duplicate faces and floating debris (pieces under
            1e-5 of the area), fill small holes, orient outward (the report goes into the
            metadata). False keeps marching cubes' surface as it is.
        extraction: "flash" (coarse to fine, default), "hierarchical" or "dense".
        tokens: latent tokens (the released model is trained on 2048).
    """

    steps: int = 50
    guidance_scale: float = 7.0
    octree_resolution: int = 512
    faces: int | None = None
    clean: bool = True
    extraction: Literal["flash", "hierarchical", "dense"] = "flash"
    tokens: int = 2048

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 500:
            raise ConfigError(f"steps must be between 1 and 500, got {self.steps}")
        if not 0.0 <= self.guidance_scale <= 30.0:
            raise ConfigError(f"guidance_scale must be between 0 and 30, got {self.guidance_scale}")
        if self.octree_resolution not in RESOLUTIONS:
            raise ConfigError(
                f"octree_resolution must be one of {', '.join(map(str, RESOLUTIONS))}, "
                f"got {self.octree_resolution}"
            )
        if self.faces is not None and self.faces < 4:
            raise ConfigError(f"faces must be at least 4 (e.g. 100000), got {self.faces}")
        if self.extraction not in ("flash", "hierarchical", "dense"):
            raise ConfigError(
                f"extraction must be flash, hierarchical or dense, got {self.extraction!r}"
            )
        if not 1 <= self.tokens <= 8192:
            raise ConfigError(f"tokens must be between 1 and 8192, got {self.tokens}")

    @property
    def extraction_options(self) -> ExtractionOptions:
        depth = self.octree_resolution.bit_length() - 1
        return ExtractionOptions(
            method=self.extraction, octree_depth=depth, dense_depth=max(1, depth - 1)
        )

    @classmethod
    def parse(cls, params: dict[str, Any]) -> TripoSGParams:
        names = {f.name for f in fields(cls)}
        aliases = {"cfg": "guidance_scale", "target_faces": "faces"}
        values: dict[str, Any] = {}
        for key, value in params.items():
            name = aliases.get(key, key)
            if name not in names:
                raise ConfigError(
                    f"triposg has no parameter {key!r}; it takes {', '.join(sorted(names))} "
                    "(cfg is guidance_scale)"
                )
            if name == "extraction":
                values[name] = str(value)
            elif name == "clean":
                values[name] = flag_param(name, value)
            elif name == "faces" and value in (None, -1, 0, "none"):
                values[name] = None
            else:
                values[name] = _number(name, value, float if name == "guidance_scale" else int)
        return cls(**values)


def _number(name: str, value: Any, kind: type) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be a number, got {value!r}") from error
    if kind is int:
        if number != int(number):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number


# ----------------------------------------------------------------------- step 1: picture


def alpha_is_valid(alpha: np.ndarray) -> bool:
    """The official test: a 20-bin histogram whose lowest and highest bins each hold >= 1%."""
    counts, _ = np.histogram(alpha, bins=20, range=(0, 255))
    return bool(counts[0] >= 0.01 * alpha.size and counts[-1] >= 0.01 * alpha.size)


def object_box(alpha: np.ndarray, *, hard: bool) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The mask to composite with and the object's box (x0, y0, x1, y1), end exclusive.

    A real matte (``hard=False``) is used as is, boxed around every pixel with alpha > 0.
    A predicted one becomes a hard mask (Otsu threshold, specks under 200 px removed) boxed
    around its largest connected part, as the official helper does.

    Args:
        alpha: (H, W) uint8.

    Returns:
        ((H, W) float32 mask in [0, 1], box).

    Raises:
        InputError: nothing of the object is left.
    """
    if hard:
        from scipy import ndimage
        from skimage.filters import threshold_otsu

        level = threshold_otsu(alpha) if alpha.min() < alpha.max() else 127
        labels, count = ndimage.label(alpha > level)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[0] = 0
        if count == 0 or sizes.max() < 200:
            raise InputError(
                "background removal found no object in the picture (no part of 200 px or more); "
                "check the picture or choose another --bg backend"
            )
        weights = (sizes[labels] >= 200).astype(np.float32)  # specks under 200 px removed
        ys, xs = np.nonzero(labels == int(sizes.argmax()))
    else:
        ys, xs = np.nonzero(alpha > 0)
        weights = alpha.astype(np.float32) / 255
    if len(xs) == 0:
        raise InputError("the picture's matte is empty: no object to reconstruct")
    return weights, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def frame_object(rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Composite on white, crop to the box and pad to a square with a 10% margin (spec 2.2).

    Args:
        rgb: (H, W, 3) uint8.
        mask: (H, W) float32 in [0, 1].
        box: (x0, y0, x1, y1).

    Returns:
        (S, S, 3) uint8 with S about 1.2 max(w, h).
    """
    x0, y0, x1, y1 = box
    on_white = rgb.astype(np.float32) * mask[..., None] + 255.0 * (1 - mask[..., None])
    crop = on_white[y0:y1, x0:x1]
    height, width = crop.shape[:2]
    if width > height:
        side, across = int(0.1 * width), int(0.1 * width + (width - height) / 2)
        pads = ((across, across), (side, side))
    else:
        side, across = int(0.1 * height), int(0.1 * height + (height - width) / 2)
        pads = ((side, side), (across, across))
    padded = np.pad(crop, (*pads, (0, 0)), constant_values=255.0)
    return np.clip(np.rint(padded), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ImageProcessorConfig:
    """The parts of ``feature_extractor_dinov2/preprocessor_config.json`` that matter."""

    shortest_edge: int = 256
    crop: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rescale_factor: float = 1 / 255

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageProcessorConfig:
        size = config.get("size", {"shortest_edge": 256})
        crop = config.get("crop_size", {"height": 224, "width": 224})
        if "shortest_edge" not in size or not config.get("do_center_crop", True):
            raise ConfigError(
                f"the DINOv2 processor must resize the shortest edge and centre-crop, got size {size}"
            )
        return cls(
            shortest_edge=int(size["shortest_edge"]),
            crop=(int(crop["height"]), int(crop["width"])),
            mean=tuple(config.get("image_mean", cls.mean)),
            std=tuple(config.get("image_std", cls.std)),
            rescale_factor=float(config.get("rescale_factor", 1 / 255)),
        )


def dinov2_pixels(square: np.ndarray, config: ImageProcessorConfig) -> torch.Tensor:
    """BitImageProcessor: short side -> 256 (bicubic), centre crop 224, rescale, normalise.

    Args:
        square: (S, S, 3) uint8.

    Returns:
        (1, 3, 224, 224) float32.
    """
    image = Image.fromarray(square, "RGB")
    width, height = image.size
    scale = config.shortest_edge / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    crop_h, crop_w = config.crop
    left, top = (size[0] - crop_w) // 2, (size[1] - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    pixels = np.asarray(image, np.float32) * config.rescale_factor
    pixels = (pixels - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()


def _shrink(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    height, width = rgb.shape[:2]
    if max(height, width) <= MAX_SIDE:
        return rgb, alpha
    scale = MAX_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BOX))
    return rgb, alpha


# ----------------------------------------------------------------------- the pipeline


class TripoSGPipeline(Pipeline):
    """Image to untextured mesh with the official TripoSG checkpoints."""

    name: ClassVar[str] = "triposg"
    outputs: ClassVar[tuple[OutputKind, ...]] = ("mesh",)
    params_class: ClassVar[type] = TripoSGParams

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> TripoSGParams:
        return TripoSGParams.parse(params)

    def __init__(self, store: parts.ComponentStore, processor: ImageProcessorConfig) -> None:
        self.store = store
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        offload: str = "none",
    ) -> TripoSGPipeline:
        """Load from a folder in the official layout (see :mod:`genesis3d.models.triposg.components`).

        Args:
            folder: the layout root (``transformer/``, ``vae/``, ``image_encoder_dinov2/``, ...).
            device: "auto", "cpu", "cuda[:N]" or "mps".
            dtype: None/"auto" (float16 on CUDA and MPS, float32 on the CPU) or one dtype.
            offload: "none" keeps every network on the device; "model" loads each one for
                its stage only.
        """
        root = Path(folder)
        processor = ImageProcessorConfig.from_config(
            parts.read_json(root, parts.PREPROCESSOR_CONFIG)
        )
        return cls(
            parts.ComponentStore(root, device=device, dtype=dtype, offload=offload), processor
        )

    @staticmethod
    def verify(folder: str | Path) -> dict[str, Any]:
        """Check every component file of a weights folder (see ``genesis3d models verify``)."""
        return parts.verify(folder)

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
                    f"triposg makes meshes, not {kind!r}; use --model triposplat for splats"
                )
        device, dtype = self.store.device, self.store.dtype
        generator = torch.Generator(device).manual_seed(int(seed))
        timings: dict[str, float] = {}

        with timed(timings, "preprocess"):
            stage = StageReporter(progress, "preprocess").start()
            square, condition = self._prepare(image, background)
            pixels = dinov2_pixels(square, self.processor).to(device, dtype)
            stage.done()

        with timed(timings, "encode"), torch.inference_mode():
            stage = StageReporter(progress, "encode").start()
            with self.store.use("image_encoder") as encoder:
                tokens = encoder(pixels)
            stage.done()

        with timed(timings, "sample"), torch.inference_mode():
            stage = StageReporter(progress, "sample", settings.steps).start()
            with self.store.use("transformer") as transformer:
                noise = torch.randn(
                    (1, settings.tokens, transformer.config.in_channels),
                    generator=generator,
                    device=device,
                    dtype=torch.float32,
                )
                latents = sample_latents(
                    transformer,
                    noise,
                    tokens,
                    steps=settings.steps,
                    guidance_scale=settings.guidance_scale,
                    shift=self.store.scheduler.shift,
                    callback=lambda step, total, _x: stage.advance(),
                )
            stage.done()

        options = settings.extraction_options
        with timed(timings, "extract"), torch.inference_mode():
            stage = StageReporter(progress, "extract").start()
            with self.store.use("vae") as vae:
                field = vae.field(latents.to(dtype))
                batch = max(1024, QUERY_BUDGET_BYTES // field.bytes_per_point())
                vertices, faces = extract_mesh(
                    lambda points: field(points[None])[0, :, 0],
                    options,
                    batch_points=batch,
                    device=device,
                )
            stage.done()

        cleaning = None
        with timed(timings, "postprocess"):
            if settings.clean:
                cleaned = clean_mesh(vertices, faces)
                vertices, faces, cleaning = cleaned.positions, cleaned.faces, cleaned.report
                if not len(faces):
                    raise ExtractionError(
                        "cleaning left no surface (every piece was degenerate debris); "
                        "try another seed, or -p clean=false to keep the raw surface"
                    )
            if settings.faces is not None and len(faces) > settings.faces:
                from genesis3d.geometry.decimate import decimate

                vertices, faces = decimate(vertices, faces, settings.faces)
            world = frames.rotate_points(vertices, frames.TRIPOSG_TO_WORLD)
        metadata = {
            "model": "triposg",
            "seed": int(seed),
            "steps": settings.steps,
            "guidance_scale": settings.guidance_scale,
            "octree_resolution": settings.octree_resolution,
            "extraction": settings.extraction,
            "clean": cleaning.to_dict() if cleaning is not None else False,
        }
        mesh = MeshAsset(
            positions=world,
            faces=faces,
            normals=vertex_normals(world, faces),
            material=PBRMaterial(
                base_color_factor=(0.8, 0.8, 0.8, 1.0),
                metallic_factor=0.0,
                roughness_factor=0.7,
                name="triposg_neutral",
            ),
            metadata=metadata,
        )
        return Generation(mesh=mesh, condition=condition, timings=timings)

    def _prepare(self, image: Any, background: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(square RGB on white for DINOv2, the same as opaque RGBA for the report)."""
        picture = load_image(image)
        rgb, alpha = _shrink(picture.rgb, picture.alpha)
        backend = (background or "").strip().lower() or None
        if backend is None:
            backend = "alpha" if alpha is not None and alpha_is_valid(alpha) else "birefnet"
        if backend == "alpha":
            if alpha is None or not alpha_is_valid(alpha):
                raise InputError(
                    f"{picture.source} has no usable alpha matte; use --bg auto for an object "
                    "on a plain backdrop, or --bg rembg"
                )
            mask, box = object_box(alpha, hard=False)
        elif backend == "birefnet":
            with torch.inference_mode(), self.store.use("birefnet") as birefnet:
                from genesis3d.models.birefnet import predict_alpha

                mask, box = object_box(predict_alpha(birefnet, rgb), hard=True)
        else:
            matted = remove_background(load_image(rgb), backend)
            mask, box = object_box(matted[..., 3], hard=True)
        square = frame_object(rgb, mask, box)
        return square, np.dstack([square, np.full(square.shape[:2], 255, np.uint8)])


__all__ = [
    "ImageProcessorConfig",
    "TripoSGParams",
    "TripoSGPipeline",
    "alpha_is_valid",
    "dinov2_pixels",
    "frame_object",
    "object_box",
]
