"""TRELLIS.2's components in the official folder layout, their loaders and the store.

Layout (HF ``microsoft/TRELLIS.2-4B``, spec 1.1)::

    pipeline.json                                  {"name": "Trellis2ImageTo3DPipeline", "args": {...}}
    ckpts/<model>.json, ckpts/<model>.safetensors  {"name": class, "args": {...}} + weights

``pipeline.json`` names each network by a path without extension. A path is looked up
under the weights folder first; a path that is not there and reads ``owner/repo/sub/path``
is taken from that Hugging Face repository (the structure decoder lives in
``microsoft/TRELLIS-image-large``), downloaded into the Hub cache once. The image encoder
(``image_cond_model.args.model_name``, DINOv3 ViT-L/16) and the background-removal model
(``rembg_model.args.model_name``, a BiRefNet) are Hub repositories holding
``model.safetensors``, looked up the same way (``<folder>/<repo>/model.safetensors`` first);
``background_removal/birefnet.safetensors`` in the folder, the file the other families use,
takes precedence for background removal.

Precision when none is asked for (spec 2.1, "manual_cast"): on CUDA and MPS the transformer
blocks of the flows run in bfloat16 and the blocks of the decoders in float16, with their
embeddings, input and output layers and the DINOv3 encoder in float32; on the CPU
everything is float32. An explicit dtype applies to the blocks of every network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genesis3d.errors import ConfigError, WeightsError
from genesis3d.models.store import ComponentStore, parse_dtype
from genesis3d.models.trellis2.config import (
    FlexiDualGridDecoderConfig,
    FlowConfig,
    SparseUnetDecoderConfig,
    StructureDecoderConfig,
)
from genesis3d.models.trellis2.flow import (
    ElasticSLatFlowModel,
    SLatFlowModel,
    SparseStructureFlowModel,
)
from genesis3d.models.trellis2.sc_vae import FlexiDualGridVaeDecoder, SparseUnetVaeDecoder
from genesis3d.models.trellis2.structure_decoder import SparseStructureDecoder
from genesis3d.weights.loading import load_into, load_safetensors, read_header

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.json"
BIREFNET_FILE = "background_removal/birefnet.safetensors"

#: Networks named in ``pipeline.json``'s ``models``, and the official class names they may have.
NETWORKS: dict[str, tuple[str, ...]] = {
    "sparse_structure_flow_model": ("SparseStructureFlowModel",),
    "sparse_structure_decoder": ("SparseStructureDecoder",),
    "shape_slat_flow_model_512": ("ElasticSLatFlowModel", "SLatFlowModel"),
    "shape_slat_flow_model_1024": ("ElasticSLatFlowModel", "SLatFlowModel"),
    "shape_slat_decoder": ("FlexiDualGridVaeDecoder",),
    "tex_slat_flow_model_512": ("ElasticSLatFlowModel", "SLatFlowModel"),
    "tex_slat_flow_model_1024": ("ElasticSLatFlowModel", "SLatFlowModel"),
    "tex_slat_decoder": ("SparseUnetVaeDecoder",),
}
IMAGE_ENCODER = "image_cond_model"
BACKGROUND_REMOVAL = "rembg_model"
#: The official flows keep the dense RoPE phases in a buffer their files do not hold; this
#: port computes them, so no key is skipped.
DINOV3_SKIP = ("embeddings.mask_token",)
SAMPLERS = ("sparse_structure_sampler", "shape_slat_sampler", "tex_slat_sampler")
LICENSES = {
    IMAGE_ENCODER: "DINOv3 License (Meta)",
    BACKGROUND_REMOVAL: "per repository (briaai/RMBG-2.0: CC BY-NC 4.0; ZhengPeng7/BiRefNet: MIT)",
}


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of a structured latent (pipeline.json, spec appendix A)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ConfigError(
                f"latent normalisation needs a mean and a std of the same length, got {len(self.mean)} and {len(self.std)}"
            )
        if min(self.std) <= 0:
            raise ConfigError("latent normalisation std must be positive")

    def denormalize(self, feats: torch.Tensor) -> torch.Tensor:
        """(T, C) model output -> latent: x std + mean."""
        mean, std = self._tensors(feats)
        return feats * std + mean

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """(T, C) latent -> model space: (x - mean) / std."""
        mean, std = self._tensors(feats)
        return (feats - mean) / std

    def _tensors(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if feats.shape[-1] != len(self.mean):
            raise ConfigError(
                f"latent has {feats.shape[-1]} channels, its normalisation {len(self.mean)}"
            )
        mean = torch.tensor(self.mean, dtype=feats.dtype, device=feats.device)
        return mean, torch.tensor(self.std, dtype=feats.dtype, device=feats.device)


@dataclass(frozen=True)
class PipelineConfig:
    """What ``pipeline.json`` says: network paths, sampler settings, normalisations."""

    models: Mapping[str, str]
    samplers: Mapping[str, Mapping[str, Any]]
    shape_normalization: Normalization
    tex_normalization: Normalization
    image_encoder: str
    background_removal: str

    @classmethod
    def read(cls, root: Path) -> PipelineConfig:
        data = read_json(root / PIPELINE_FILE)
        if data.get("name") != "Trellis2ImageTo3DPipeline" or "args" not in data:
            raise WeightsError(
                f"{root / PIPELINE_FILE} is not a Trellis2ImageTo3DPipeline config "
                f"(name {data.get('name')!r}); pass the TRELLIS.2 image-to-3D folder"
            )
        args = data["args"]
        try:
            models = dict(args["models"])
            missing = sorted(set(NETWORKS) - set(models))
            if missing:
                raise WeightsError(f"{root / PIPELINE_FILE} names no {', '.join(missing)}")
            samplers = {}
            for name in SAMPLERS:
                sampler = args[name]
                if sampler.get("name") != "FlowEulerGuidanceIntervalSampler":
                    raise WeightsError(
                        f"{name} must be FlowEulerGuidanceIntervalSampler, got {sampler.get('name')!r}"
                    )
                samplers[name] = {**sampler.get("params", {}), **sampler.get("args", {})}
            return cls(
                models=models,
                samplers=samplers,
                shape_normalization=_normalization(args["shape_slat_normalization"]),
                tex_normalization=_normalization(args["tex_slat_normalization"]),
                image_encoder=str(args[IMAGE_ENCODER]["args"]["model_name"]),
                background_removal=str(args[BACKGROUND_REMOVAL]["args"]["model_name"]),
            )
        except (KeyError, TypeError) as error:
            raise WeightsError(
                f"{root / PIPELINE_FILE} lacks {error} or has it in the wrong form; "
                "download the official pipeline.json again"
            ) from error


def _normalization(entry: Mapping[str, Any]) -> Normalization:
    return Normalization(tuple(map(float, entry["mean"])), tuple(map(float, entry["std"])))


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"{path} not found; the folder is not TRELLIS.2's layout")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path} is not valid JSON ({error}); download it again") from error


def locate(root: Path, path: str, suffixes: tuple[str, ...], *, download: bool = True) -> Path:
    """The folder-relative base of a named file set: ``root/path`` or a Hub snapshot.

    Args:
        root: the weights folder.
        path: a path without extension as ``pipeline.json`` gives it, or ``owner/repo/sub``.
        suffixes: the files needed, appended to ``path`` (".json", ".safetensors", "/x").
        download: fetch from the Hub when not local (False: local files or the Hub cache only).

    Returns:
        ``base`` such that ``base + suffix`` are the files.
    """
    local = root / path
    if all(Path(f"{local}{suffix}").is_file() for suffix in suffixes):
        return local
    parts = path.split("/")
    # ``owner/repo/sub/path`` names a file of another repository; ``owner/repo`` with
    # "/file" suffixes names a whole repository; anything else belongs to this folder.
    from_hub = len(parts) >= 3 or (len(parts) == 2 and all(s.startswith("/") for s in suffixes))
    if not from_hub:
        raise WeightsError(
            f"{', '.join(path + s for s in suffixes)} not found in {root}; the folder is incomplete, "
            "download the official TRELLIS.2 layout again (`genesis3d models pull trellis2`)"
        )
    repo, inner = "/".join(parts[:2]), "/".join(parts[2:])
    files = [f"{inner}{suffix}".lstrip("/") for suffix in suffixes]
    if not download:
        from huggingface_hub import try_to_load_from_cache

        hits = [try_to_load_from_cache(repo, name) for name in files]
        if not all(isinstance(hit, str) for hit in hits):
            raise WeightsError(
                f"{path} is neither in {root} nor in the Hugging Face cache; it is downloaded "
                f"from {repo} on first use"
            )
        snapshot = Path(hits[0]).parents[len(Path(files[0]).parts) - 1]
        return snapshot / inner if inner else snapshot
    from genesis3d.weights.hub import pull

    logger.info("%s is not in %s; taking it from the Hub repository %s", path, root, repo)
    snapshot = pull(repo, files)
    return snapshot / inner if inner else snapshot


def _build(name: str, config: Mapping[str, Any], source: Path) -> nn.Module:
    cls_name, args = config.get("name"), config.get("args")
    if cls_name not in NETWORKS[name] or not isinstance(args, Mapping):
        raise WeightsError(
            f"{source} must hold {{'name': one of {NETWORKS[name]}, 'args': {{...}}}}, got name {cls_name!r}"
        )
    if cls_name == "SparseStructureFlowModel":
        return SparseStructureFlowModel(FlowConfig.from_args(args))
    if cls_name == "ElasticSLatFlowModel":
        return ElasticSLatFlowModel(FlowConfig.from_args(args))
    if cls_name == "SLatFlowModel":
        return SLatFlowModel(FlowConfig.from_args(args))
    if cls_name == "SparseStructureDecoder":
        return SparseStructureDecoder(StructureDecoderConfig.from_args(args))
    if cls_name == "FlexiDualGridVaeDecoder":
        return FlexiDualGridVaeDecoder(FlexiDualGridDecoderConfig.from_args(args))
    return SparseUnetVaeDecoder(SparseUnetDecoderConfig.from_args(args))


def _torso(module: nn.Module) -> tuple[str, ...]:
    """Key prefixes of the parts the official ``convert_to`` casts to the low precision."""
    if isinstance(module, SparseStructureDecoder):
        return ("middle_block.", "blocks.")
    return ("blocks.",)


def torso_dtype(name: str, device: torch.device, dtype: str | None) -> torch.dtype:
    """The precision of a network's blocks under the pipeline's dtype policy."""
    asked = parse_dtype(dtype)
    if asked is not None:
        return asked
    if device.type == "cpu":
        return torch.float32
    return torch.bfloat16 if "flow" in name else torch.float16


class Trellis2Components(ComponentStore):
    """The networks of one TRELLIS.2 folder under the pipeline's policies."""

    def __init__(
        self, root: Path, *, device: str = "auto", dtype: str | None = None, offload: str = "none"
    ) -> None:
        super().__init__(root, device=device, offload=offload)
        parse_dtype(dtype)  # refuse a bad dtype before loading anything
        self.dtype = dtype
        self.config = PipelineConfig.read(self.root)
        self._located: dict[tuple[str, tuple[str, ...]], Path] = {}

    def _locate(self, path: str, suffixes: tuple[str, ...]) -> Path:
        """:func:`locate`, once per file set (a Hub lookup is not repeated per stage)."""
        key = (path, suffixes)
        if key not in self._located:
            self._located[key] = locate(self.root, path, suffixes)
        return self._located[key]

    def load(self, name: str) -> nn.Module:
        if name == IMAGE_ENCODER:
            return self._load_dinov3()
        if name == BACKGROUND_REMOVAL:
            return self._load_birefnet()
        if name not in NETWORKS:
            raise KeyError(name)
        base = self._locate(self.config.models[name], (".json", ".safetensors"))
        config_path, weights = Path(f"{base}.json"), Path(f"{base}.safetensors")
        with torch.device("meta"):
            module = _build(name, read_json(config_path), config_path)
        # Block weights are read straight into their runtime precision, the rest in float32,
        # so a 16-bit file never passes through a float32 copy of its blocks.
        keys = list(read_header(weights))
        low = [key for key in keys if key.startswith(_torso(module))]
        state = load_safetensors(
            weights,
            dtype=torch.float32,
            device=self.device,
            keys=[key for key in keys if key not in set(low)],
        )
        state.update(
            load_safetensors(
                weights,
                dtype=torso_dtype(name, self.device, self.dtype),
                device=self.device,
                keys=low,
            )
        )
        load_into(module, state, source=str(weights), assign=True)
        return module.to(self.device).eval()

    def _load_dinov3(self) -> nn.Module:
        from genesis3d.nn.dinov3 import build_dinov3

        base = self._locate(self.config.image_encoder, ("/model.safetensors",))
        path = Path(f"{base}/model.safetensors")
        header = read_header(path)
        with torch.device("meta"):
            module = build_dinov3(header, str(path))
        keys = [key for key in header if not key.startswith(DINOV3_SKIP)]
        state = load_safetensors(path, dtype=torch.float32, device=self.device, keys=keys)
        load_into(module, state, source=str(path), assign=True)
        return module.to(self.device).eval()

    def _load_birefnet(self) -> nn.Module:
        from genesis3d.models.birefnet import load_birefnet

        path = self.root / BIREFNET_FILE
        if not path.is_file():
            base = self._locate(self.config.background_removal, ("/model.safetensors",))
            path = Path(f"{base}/model.safetensors")
        asked = parse_dtype(self.dtype)
        dtype = asked or (torch.float16 if self.device.type == "cuda" else torch.float32)
        return load_birefnet(path, device=self.device, dtype=dtype)


def verify(folder: str | Path) -> dict[str, Any]:
    """Check every network of a folder (keys, shapes) without loading weights or downloading.

    Returns:
        ``{"folder", "ok", "files": [{component, file, required, license, size_mb, problems}]}``;
        ``ok`` is False when a network has a problem (background removal is optional).
    """
    root = Path(folder)
    config = PipelineConfig.read(root)
    files, ok = [], True
    for name in NETWORKS:
        path = config.models[name]
        problems: list[str] = []
        weights = root / f"{path}.safetensors"
        try:
            base = locate(root, path, (".json", ".safetensors"), download=False)
            weights = Path(f"{base}.safetensors")
            with torch.device("meta"):
                module = _build(name, read_json(Path(f"{base}.json")), Path(f"{base}.json"))
            problems = _key_problems(module.state_dict(), read_header(weights), weights.name)
        except (WeightsError, ConfigError) as error:
            problems = [str(error)]
        ok = ok and not problems
        files.append(
            {
                "component": name,
                "file": str(weights.relative_to(root))
                if weights.is_relative_to(root)
                else str(weights),
                "required": True,
                "license": "MIT (Microsoft)",
                "size_mb": weights.stat().st_size / 1e6 if weights.is_file() else 0.0,
                "problems": problems,
            }
        )
    return {"folder": str(root), "ok": ok, "files": files}


def _key_problems(expected: Mapping[str, Any], header: Mapping[str, Any], source: str) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing:
        problems.append(f"{source}: {len(missing)} missing keys, e.g. {', '.join(missing[:5])}")
    if unexpected:
        problems.append(
            f"{source}: {len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:5])}"
        )
    for key in sorted(set(header) & set(expected)):
        if tuple(header[key].shape) != tuple(expected[key].shape):
            problems.append(
                f"{source}: {key} has shape {tuple(header[key].shape)}, the model needs {tuple(expected[key].shape)}"
            )
    return problems
