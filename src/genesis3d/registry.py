"""The one table of model families.

Listing the table imports nothing heavy (no torch, no model code): a family names its
pipeline class by a dotted path that is imported only when the pipeline is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genesis3d.errors import UnknownModelError, WeightsError

logger = logging.getLogger(__name__)

Task = Literal["mesh", "splats"]


@dataclass(frozen=True)
class ModelFamily:
    """One model family of the registry.

    Attributes:
        name: the name users type (``--model NAME``).
        title: human-readable name.
        task: the primary kind of asset ("mesh" or "splats").
        outputs: every kind of asset the family can produce, the primary one first.
        pipeline: ``"module:Class"`` path of the pipeline class.
        hub_id: Hugging Face repository of the official weights, or None.
        license: licence of the weights and the official code.
        extras: pip extras of ``genesis3d`` the family needs beyond the base install.
        weight_files: files (relative to the weights folder) whose presence means the
            weights are there; empty for a family that needs no weights.
        description: one line on what it does.
        optional_files: further weight files used only in some cases (fetched by
            ``models pull``, not needed for availability).
    """

    name: str
    title: str
    task: Task
    outputs: tuple[Task, ...]
    pipeline: str
    hub_id: str | None
    license: str
    extras: tuple[str, ...]
    weight_files: tuple[str, ...]
    description: str
    optional_files: tuple[str, ...] = ()

    @property
    def needs_weights(self) -> bool:
        return bool(self.weight_files)


@dataclass(frozen=True)
class Availability:
    """Whether a family can run here, and if not, why and what to do."""

    available: bool
    reason: str
    weights: Path | None = None


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily(
            name="inflate",
            title="Silhouette inflation (built in)",
            task="mesh",
            outputs=("mesh", "splats"),
            pipeline="genesis3d.pipelines.inflate:InflatePipeline",
            hub_id=None,
            license="MIT",
            extras=(),
            weight_files=(),
            description="Geometric inflation of the object's silhouette, textured from the picture. Not AI; needs no weights.",
        ),
        ModelFamily(
            name="triposplat",
            title="TripoSplat (VAST)",
            task="splats",
            outputs=("splats",),
            pipeline="genesis3d.pipelines.triposplat:TripoSplatPipeline",
            hub_id="VAST-AI/TripoSplat",
            license="MIT",
            extras=(),
            weight_files=(
                "diffusion_models/triposplat_fp16.safetensors",
                "vae/triposplat_vae_decoder_fp16.safetensors",
                "clip_vision/dino_v3_vit_h.safetensors",
                "vae/flux2-vae.safetensors",
            ),
            optional_files=("background_removal/birefnet.safetensors",),
            description="Image to 3D Gaussian splats.",
        ),
        ModelFamily(
            name="trellis2",
            title="TRELLIS.2 (Microsoft)",
            task="mesh",
            outputs=("mesh",),
            pipeline="genesis3d.pipelines.trellis2:Trellis2ImageTo3DPipeline",
            hub_id="microsoft/TRELLIS.2-4B",
            license="MIT",
            extras=(),
            weight_files=("pipeline.json",),
            # The networks of this repository; the structure decoder (TRELLIS-image-large),
            # DINOv3 and the background-removal model come from their own repositories on
            # first use (see genesis3d.models.trellis2.components).
            optional_files=tuple(
                f"ckpts/{name}.{ext}"
                for name in (
                    "ss_flow_img_dit_1_3B_64_bf16",
                    "slat_flow_img2shape_dit_1_3B_512_bf16",
                    "slat_flow_img2shape_dit_1_3B_1024_bf16",
                    "shape_dec_next_dc_f16c32_fp16",
                    "slat_flow_imgshape2tex_dit_1_3B_512_bf16",
                    "slat_flow_imgshape2tex_dit_1_3B_1024_bf16",
                    "tex_dec_next_dc_f16c32_fp16",
                )
                for ext in ("json", "safetensors")
            ),
            description="Image to textured PBR mesh.",
        ),
        ModelFamily(
            name="triposg",
            title="TripoSG (VAST)",
            task="mesh",
            outputs=("mesh",),
            pipeline="genesis3d.pipelines.triposg:TripoSGPipeline",
            hub_id="VAST-AI/TripoSG",
            license="MIT",
            extras=(),
            weight_files=(
                "model_index.json",
                "transformer/config.json",
                "transformer/diffusion_pytorch_model.safetensors",
                "vae/config.json",
                "vae/diffusion_pytorch_model.safetensors",
                "scheduler/scheduler_config.json",
                "image_encoder_dinov2/config.json",
                "image_encoder_dinov2/model.safetensors",
                "feature_extractor_dinov2/preprocessor_config.json",
            ),
            description="Image to detailed untextured mesh.",
        ),
    )
}

#: Preference order when the user names no model: the first available neural family, else inflate.
DEFAULT_ORDER: tuple[str, ...] = ("trellis2", "triposg", "triposplat", "inflate")


def get_family(name: str) -> ModelFamily:
    """Look a family up by name.

    Raises:
        UnknownModelError: with the list of known names.
    """
    key = name.strip().lower()
    if key not in FAMILIES:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of: {', '.join(FAMILIES)} (see `genesis3d models`)"
        )
    return FAMILIES[key]


def is_implemented(family: ModelFamily) -> bool:
    """Whether this version of Genesis ships the family's pipeline (checked without importing it)."""
    module = family.pipeline.split(":")[0]
    return importlib.util.find_spec(module) is not None


def availability(family: ModelFamily, weights: str | Path | None = None) -> Availability:
    """Check whether a family can run on this machine, and say why not.

    Args:
        family: the registry entry.
        weights: a weights folder in the official layout; None looks in the Hugging
            Face cache for ``family.hub_id`` (no network access).

    Returns:
        An :class:`Availability` with a reason that names the fix.
    """
    if not is_implemented(family):
        return Availability(
            False, f"the {family.title} pipeline is not part of this version of genesis3d yet"
        )
    if not family.needs_weights:
        return Availability(True, "built in, needs no weights")
    if weights is not None:
        from genesis3d.weights.hub import describe_missing, find_layout_root

        root = find_layout_root(weights, family.weight_files)
        if root is None:
            return Availability(
                False,
                f"weights not found: {describe_missing(weights, family.weight_files)}; pass --weights DIR pointing at a folder in the official layout of {family.hub_id} (or its ckpts/ or ComfyUI models/ folder), or run `genesis3d models pull {family.name}`",
            )
        return Availability(True, f"weights in {root}", root)
    cached = _cached_snapshot(family)
    if cached is None:
        return Availability(
            False,
            f"weights of {family.hub_id} not found in the Hugging Face cache; run `genesis3d models pull {family.name}` on a connected machine, or pass --weights DIR",
        )
    return Availability(True, f"weights in {cached}", cached)


def _cached_snapshot(family: ModelFamily) -> Path | None:
    """The cached snapshot folder of the family's Hub repository, when it holds every weight file."""
    from huggingface_hub import try_to_load_from_cache

    if family.hub_id is None:
        return None
    hits = [try_to_load_from_cache(family.hub_id, name) for name in family.weight_files]
    if not all(isinstance(hit, str) for hit in hits):
        return None
    # The snapshot root, not the subfolder of a nested file such as diffusion_models/x.safetensors.
    depth = len(Path(family.weight_files[0]).parts)
    return Path(hits[0]).parents[depth - 1]


def resolve_weights(family: ModelFamily, weights: str | Path | None) -> Path | None:
    """The weights folder to load, or raise a :class:`WeightsError` with the reason and the fix."""
    if not family.needs_weights:
        return None
    status = availability(family, weights)
    if not status.available:
        raise WeightsError(status.reason)
    return status.weights


def pipeline_class(family: ModelFamily) -> type:
    """Import the family's pipeline class (the only place that imports model code)."""
    module_name, class_name = family.pipeline.split(":")
    if not is_implemented(family):
        raise UnknownModelError(
            f"the {family.title} pipeline is not part of this version of genesis3d yet; use --model inflate"
        )
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def default_family_name(weights: str | Path | None = None) -> str:
    """The family used when the user names none: the first available in :data:`DEFAULT_ORDER`."""
    for name in DEFAULT_ORDER:
        family = FAMILIES[name]
        if availability(family, weights if family.needs_weights else None).available:
            if name == "inflate":
                logger.info(
                    "no neural model weights found; using the built-in geometric inflation (not AI)"
                )
            return name
    raise WeightsError(f"no model can run here; none of {', '.join(DEFAULT_ORDER)} is available")
