"""TripoSplat (VAST, MIT): one picture -> 3D Gaussian splats.

Steps of a call:
  1. prepare the picture (spec 2.1): real alpha or BiRefNet matte, 3x3 erosion, 1.2x square
     crop around the object, 1024 px Lanczos (premultiplied), composite on black;
  2. encode it: DINOv3 ViT-H/16+ -> feature1, FLUX.2 VAE encoder (seeded posterior sample)
     -> feature2;
  3. sample the flow latent: 20 Euler steps, shift 3, CFG 3 against all-zero features;
  4. sample the octree points for the Gaussian budget (32 Gaussians per point);
  5. decode the Gaussians and map them into the world frame.

Every random draw (VAE sample, initial noise, octree resampling, jitter) comes from one
``torch.Generator`` seeded with the call's seed, in that order, so the same seed gives the
same splats on the same device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image, ImageFilter

from genesis3d.errors import ConfigError, InputError
from genesis3d.models.triposplat import components as parts
from genesis3d.models.triposplat.gaussians import build_gaussians, to_splat_asset
from genesis3d.models.triposplat.octree import sample_octree_points
from genesis3d.models.triposplat.sampling import sample_flow
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline, timed
from genesis3d.preprocess import load_image
from genesis3d.preprocess.matte import remove_background
from genesis3d.progress import ProgressCallback, StageReporter

logger = logging.getLogger(__name__)

CANVAS = 1024
GAUSSIANS_PER_POINT = 32
MIN_GAUSSIANS, MAX_GAUSSIANS = 32_768, 1_048_576


@dataclass(frozen=True)
class TripoSplatParams:
    """Parameters of a TripoSplat call (defaults: the official demo's).

    Attributes:
        gaussians: number of Gaussians, a multiple of 32 in [32768, 1048576]. Above 262144
            several points share a leaf cell: denser, not more detailed.
        steps: Euler steps of the flow sampler.
        guidance_scale: classifier-free guidance strength (1 disables the unconditional pass).
        shift: timestep shift of the schedule.
        erode_radius: alpha erosion before cropping (0 disables it).
        temperature: octree sampling temperature.
    """

    gaussians: int = 262_144
    steps: int = 20
    guidance_scale: float = 3.0
    shift: float = 3.0
    erode_radius: int = 1
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (MIN_GAUSSIANS <= self.gaussians <= MAX_GAUSSIANS) or self.gaussians % 32:
            raise ConfigError(
                f"gaussians must be a multiple of 32 between {MIN_GAUSSIANS} and {MAX_GAUSSIANS}, "
                f"got {self.gaussians} (e.g. 32768, 65536, 131072 or 262144)"
            )
        if not 1 <= self.steps <= 200:
            raise ConfigError(f"steps must be between 1 and 200, got {self.steps}")
        if not 0.0 <= self.guidance_scale <= 20.0:
            raise ConfigError(f"guidance_scale must be between 0 and 20, got {self.guidance_scale}")
        if not 0.0 < self.shift <= 20.0:
            raise ConfigError(f"shift must be in (0, 20], got {self.shift}")
        if not 0 <= self.erode_radius <= 8:
            raise ConfigError(f"erode_radius must be between 0 and 8, got {self.erode_radius}")
        if not 0.0 < self.temperature <= 10.0:
            raise ConfigError(f"temperature must be in (0, 10], got {self.temperature}")

    @classmethod
    def parse(cls, params: dict[str, Any]) -> TripoSplatParams:
        names = {f.name: f.type for f in fields(cls)}
        aliases = {"cfg": "guidance_scale", "num_gaussians": "gaussians"}
        values: dict[str, Any] = {}
        for key, value in params.items():
            name = aliases.get(key, key)
            if name not in names:
                raise ConfigError(
                    f"triposplat has no parameter {key!r}; it takes {', '.join(names)} (cfg is guidance_scale)"
                )
            values[name] = _coerce(name, value, int if names[name] == "int" else float)
        return cls(**values)


def _coerce(name: str, value: Any, kind: type) -> Any:
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


def prepare_picture(
    rgba: np.ndarray, *, erode_radius: int = 1, canvas: int = CANVAS
) -> tuple[np.ndarray, np.ndarray]:
    """Frame a matted picture the way the official preprocessing does (spec 2.1, steps 3-6).

    Args:
        rgba: (H, W, 4) uint8 straight-alpha picture, already resized so its short side is
            ``canvas`` (step 1) and matted (step 2).
        erode_radius: minimum-filter radius applied to the alpha (0: none).
        canvas: output size.

    Returns:
        (prepared (canvas, canvas, 3) uint8 RGB on black, cropped (canvas, canvas, 4) uint8 RGBA).

    Raises:
        InputError: when the matte is empty.
    """
    image = Image.fromarray(rgba, "RGBA")
    if erode_radius > 0:
        alpha = image.getchannel("A").filter(ImageFilter.MinFilter(2 * erode_radius + 1))
        image.putalpha(alpha)
    alpha = np.asarray(image.getchannel("A"))
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        raise InputError(
            "the picture has no object left after background removal (empty alpha); "
            "check the picture or choose another --bg backend"
        )
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = 1.2 * max(x1 - x0, y1 - y0) / 2
    box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
    cropped = image.crop(box).resize((canvas, canvas), Image.Resampling.LANCZOS)
    prepared = Image.new("RGB", (canvas, canvas), (0, 0, 0))
    prepared.paste(cropped, mask=cropped.getchannel("A"))
    return np.asarray(prepared), np.asarray(cropped)


def resize_short_side(rgba: np.ndarray, side: int = CANVAS) -> np.ndarray:
    """Lanczos resize so the short side is ``side`` (spec 2.1 step 1). (H, W, C) uint8."""
    height, width = rgba.shape[:2]
    scale = side / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    mode = "RGBA" if rgba.shape[2] == 4 else "RGB"
    return np.asarray(Image.fromarray(rgba, mode).resize(size, Image.Resampling.LANCZOS))


# ----------------------------------------------------------------------- the pipeline


class TripoSplatPipeline(Pipeline):
    """Image to Gaussian splats with the official TripoSplat checkpoints."""

    name: ClassVar[str] = "triposplat"
    outputs: ClassVar[tuple[OutputKind, ...]] = ("splats",)
    params_class: ClassVar[type] = TripoSplatParams

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> TripoSplatParams:
        return TripoSplatParams.parse(params)

    def __init__(self, store: parts.ComponentStore) -> None:
        self.store = store

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        offload: str = "none",
    ) -> TripoSplatPipeline:
        """Load from a weights folder in the official layout (see :mod:`genesis3d.weights.hub`).

        Args:
            folder: the layout root (``diffusion_models/``, ``vae/``, ``clip_vision/``, ...).
            device: "auto", "cpu", "cuda[:N]" or "mps".
            dtype: None/"auto" for the precision map of the device (CUDA: float16 DiT and
                decoders, bfloat16 encoders; MPS: float16; CPU: float32), or one dtype for all.
            offload: "none" keeps every component on the device; "model" loads each one onto
                the device for its stage only and frees it afterwards.
        """
        return cls(parts.ComponentStore(Path(folder), device=device, dtype=dtype, offload=offload))

    @staticmethod
    def verify(folder: str | Path) -> dict[str, Any]:
        """Check every component file of a weights folder (see ``genesis3d models verify``)."""
        return _verify(folder)

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
        for kind in outputs or ("splats",):
            if kind != "splats":
                raise ConfigError(
                    f"triposplat makes Gaussian splats, not {kind!r}; use --model inflate or a mesh model"
                )
        device = self.store.device
        generator = torch.Generator(device.type if device.type != "cuda" else device).manual_seed(
            int(seed)
        )
        timings: dict[str, float] = {}

        with timed(timings, "preprocess"):
            stage = StageReporter(progress, "preprocess").start()
            prepared, cropped = self._prepare(image, background, settings)
            stage.done()

        with timed(timings, "encode"), torch.inference_mode():
            stage = StageReporter(progress, "encode", 2).start()
            pixels = (
                torch.from_numpy(np.array(prepared))
                .permute(2, 0, 1)[None]
                .float()
                .div(255)
                .to(device)
            )
            with self.store.use("dinov3") as dino:
                feature1 = parts.image_features(dino, pixels)
            stage.advance()
            with self.store.use("flux2_vae") as vae:
                feature2 = parts.vae_features(vae, pixels, generator)
            stage.done()

        with (
            timed(timings, "sample"),
            torch.inference_mode(),
            self.store.use("flow_model") as flow,
        ):
            stage = StageReporter(progress, "sample", settings.steps).start()
            config = flow.config
            noise = {
                "latent": torch.randn(
                    1, config.q_token_length, config.in_channels, generator=generator, device=device
                ),
                "camera": torch.randn(
                    1, 1, config.cam_channels, generator=generator, device=device
                ),
            }
            negative = (torch.zeros_like(feature1), torch.zeros_like(feature2))
            state = sample_flow(
                flow,
                noise,
                (feature1, feature2),
                negative,
                steps=settings.steps,
                shift=settings.shift,
                guidance_scale=settings.guidance_scale,
                callback=lambda step, total, _state: stage.advance(),
            )
            latent = state["latent"].float()
            stage.done()

        with (
            timed(timings, "decode"),
            torch.inference_mode(),
            self.store.use("decoder") as decoder,
        ):
            stage = StageReporter(progress, "decode", 2).start()
            points = sample_octree_points(
                decoder.octree,
                latent,
                settings.gaussians // GAUSSIANS_PER_POINT,
                temperature=settings.temperature,
                generator=generator,
            ).points
            stage.advance()
            features = decoder.gs(points, latent)
            gaussians, _ = build_gaussians(decoder.gs, points, features)
            stage.done()

        metadata = {
            "model": "triposplat",
            "seed": int(seed),
            "gaussians": settings.gaussians,
            "steps": settings.steps,
            "guidance_scale": settings.guidance_scale,
            "shift": settings.shift,
        }
        splats = to_splat_asset(gaussians[0], metadata=metadata)
        return Generation(splats=splats, condition=cropped, timings=timings)

    def _prepare(
        self, image: Any, background: str | None, settings: TripoSplatParams
    ) -> tuple[np.ndarray, np.ndarray]:
        picture = load_image(image)
        backend = (background or "").strip().lower() or None
        if backend is None:
            backend = "alpha" if picture.has_real_alpha else "birefnet"
        if backend == "birefnet":
            rgb = resize_short_side(picture.rgb)
            with torch.inference_mode(), self.store.use("birefnet") as birefnet:
                alpha = parts.matte(birefnet, rgb)
            rgba = np.dstack([rgb, alpha])
        else:
            rgba = resize_short_side(remove_background(picture, backend))
        return prepare_picture(rgba, erode_radius=settings.erode_radius)


__all__ = ["TripoSplatParams", "TripoSplatPipeline", "prepare_picture", "resize_short_side"]


def _verify(folder: str | Path) -> dict[str, Any]:
    """Check every component file; ``ok`` is False when a required one has a problem."""
    root = Path(folder)
    files, ok = [], True
    for name, component in parts.COMPONENTS.items():
        path = root / component.file
        problems = parts.verify_component(root, name)
        ok = ok and (not problems or not component.required)
        files.append(
            {
                "component": name,
                "file": component.file,
                "required": component.required,
                "license": component.license,
                "size_mb": path.stat().st_size / 1e6 if path.is_file() else 0.0,
                "problems": problems,
            }
        )
    return {"folder": str(root), "ok": ok, "files": files}
