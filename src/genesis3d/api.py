"""The verbs of Genesis: load_pipeline, generate, export, export_lods, load, inspect.

These are what the CLI and the server call; they are also the Python API, re-exported
lazily by :mod:`genesis3d`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import ConfigError
from genesis3d.pipelines.base import Generation, OutputKind, Pipeline
from genesis3d.progress import ProgressCallback
from genesis3d.registry import default_family_name, get_family, pipeline_class, resolve_weights

logger = logging.getLogger(__name__)

Offload = Literal["none", "model"]
OFFLOAD_POLICIES: tuple[str, ...] = ("none", "model")


def load_pipeline(
    name: str | None = None,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    offload: Offload = "none",
) -> Pipeline:
    """Build a family's pipeline once, with its policies, for many calls.

    Args:
        name: registry name ("inflate", "triposplat", ...); None picks the first family
            whose weights are present, else the built-in ``inflate``.
        weights: folder of the weights in the official layout; None uses the Hugging
            Face cache.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        dtype: "auto"/None, "float32", "float16" or "bfloat16" (families may keep some
            components in another precision where their spec says so).
        offload: "none" keeps every component on the device; "model" moves each one
            there only for its stage.

    Returns:
        The pipeline, ready to be called on pictures.

    Raises:
        UnknownModelError, WeightsError, ConfigError.
    """
    if offload not in OFFLOAD_POLICIES:
        raise ConfigError(f"offload must be one of {', '.join(OFFLOAD_POLICIES)}, got {offload!r}")
    family = get_family(name if name is not None else default_family_name(weights))
    if device != "auto":
        from genesis3d.devices import resolve_device

        resolve_device(device)  # refuse a device this machine lacks before any work
    folder = resolve_weights(family, weights)
    cls = pipeline_class(family)
    if family.needs_weights:
        return cls.from_pretrained(folder, device=device, dtype=dtype, offload=offload)
    return cls(device=device, dtype=dtype)


def validate_params(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a family's parameters without loading the pipeline (the same rules as a call).

    Args:
        model: registry name.
        params: family-specific parameters, e.g. ``{"resolution": 192}``.

    Returns:
        Every parameter of the family, the given ones validated and the others at their
        defaults, as a JSON-serialisable dict.

    Raises:
        UnknownModelError, ConfigError: naming the parameter, what is accepted and what came.
    """
    import dataclasses

    cls = pipeline_class(get_family(model))
    return dataclasses.asdict(cls.parse_params(dict(params)))


def default_params(model: str) -> dict[str, Any]:
    """The default parameters of a family, as a JSON-serialisable dict."""
    return validate_params(model, {})


def param_help(model: str) -> dict[str, str]:
    """One line of help per parameter of a family, from its parameter class's docstring.

    Returns:
        ``{name: help}`` for each parameter the ``Attributes:`` section documents.
    """
    import inspect as _inspect
    import re

    cls = pipeline_class(get_family(model)).params_class
    doc = _inspect.getdoc(cls) or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    found: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        match = re.match(r"^\s{4}(\w+):\s*(.*)$", line)
        if match:
            name = match.group(1)
            found[name] = match.group(2).strip()
        elif name is not None and line.strip():
            found[name] += " " + line.strip()
        elif not line.strip() and name is not None:
            name = None
    return found


def run(
    image: Any,
    *,
    model: str | None = None,
    seed: int = 0,
    outputs: tuple[OutputKind, ...] | None = None,
    background: str | None = None,
    progress: ProgressCallback | None = None,
    weights: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    pipeline: Pipeline | None = None,
    **params: Any,
) -> Generation:
    """Like :func:`generate`, but return every requested asset and the timings.

    Args:
        pipeline: an already loaded pipeline to reuse; ``model``, ``weights``, ``device``
            and ``dtype`` are then ignored.
        Other arguments as in :func:`generate`.
    """
    if pipeline is None:
        pipeline = load_pipeline(model, weights=weights, device=device, dtype=dtype)
    return pipeline(
        image, seed=seed, outputs=outputs, background=background, progress=progress, **params
    )


def generate(
    image: Any,
    *,
    model: str | None = None,
    seed: int = 0,
    output: OutputKind | None = None,
    background: str | None = None,
    progress: ProgressCallback | None = None,
    weights: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    **params: Any,
) -> MeshAsset | SplatAsset:
    """Turn one picture into a 3D asset.

    For many pictures, build the pipeline once with :func:`load_pipeline` and call it,
    or pass it to :func:`run`.

    Args:
        image: a path, bytes, PIL image or (H, W, 3|4) uint8 array.
        model: registry name; None picks the first available family (see ``genesis3d models``).
        seed: seed of every random draw; the same seed gives the same asset on the same device.
        output: "mesh" or "splats"; None gives the family's primary kind.
        background: background removal backend ("alpha", "auto", "rembg"); None uses the
            picture's alpha matte when it has one, else "auto".
        progress: callback receiving :class:`genesis3d.progress.ProgressEvent`.
        weights, device, dtype: as in :func:`load_pipeline`.
        **params: family-specific parameters.

    Returns:
        A :class:`MeshAsset` or :class:`SplatAsset` in the world frame (Y up, metres).
    """
    outputs = (output,) if output is not None else None
    result = run(
        image,
        model=model,
        seed=seed,
        outputs=outputs,
        background=background,
        progress=progress,
        weights=weights,
        device=device,
        dtype=dtype,
        **params,
    )
    if output is not None:
        return result.asset(output)
    return result.mesh if result.mesh is not None else result.asset("splats")


def export(
    asset: MeshAsset | SplatAsset,
    path: str | Path,
    format: str | None = None,
    *,
    size: float | None = None,
    pivot: str = "keep",
    **options: Any,
) -> Path:
    """Write an asset to a file, atomically (no partial file is ever left behind).

    Args:
        asset: the mesh or splats.
        path: destination; its extension picks the format unless ``format`` is given.
        format: "glb", "ply", "obj", "splat" or "spz".
        size: length of the longest side in metres; None keeps the asset's size.
        pivot: "center", "bottom" (bottom-centre, for props standing on the ground) or "keep".
        **options: format-specific options (see :mod:`genesis3d.io`).

    Returns:
        The path written.
    """
    from genesis3d import io
    from genesis3d.geometry.placement import place

    if size is not None or pivot != "keep":
        asset = place(asset, size=size, pivot=pivot)  # type: ignore[arg-type]
    return io.save(asset, path, format=format, **options)


def lod_paths(path: str | Path, count: int) -> list[Path]:
    """File of each level: ``path`` itself for one, ``NAME_lod0.EXT``, ``NAME_lod1.EXT``... for more."""
    path = Path(path)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_lod{index}{path.suffix}") for index in range(count)]


def export_lods(
    source: str | Path | MeshAsset,
    path: str | Path,
    *,
    face_budgets: tuple[int, ...] = (100_000,),
    texture_size: int = 2048,
    normal_map: bool = True,
    size: float | None = None,
    pivot: str = "keep",
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Turn a dense mesh with vertex colours into light textured GLBs, one per face budget.

    Runs :func:`genesis3d.geometry.export.postprocess_lods` (clean, decimate, unwrap, bake)
    with the mesh's vertex colours as the attribute source, and writes each level.

    Args:
        source: a mesh file or asset holding vertex colours (the raw model output).
        path: destination; one budget writes this file, several write ``NAME_lod0.EXT``
            (the first budget), ``NAME_lod1.EXT``... next to it (see :func:`lod_paths`).
        face_budgets: one level per budget, e.g. (100_000, 20_000).
        texture_size: texture side, a power of two in [256, 8192].
        normal_map: also bake a normal map carrying the dense surface's detail.
        size: longest side in metres; None keeps the size.
        pivot: "center", "bottom" or "keep".
        progress: stage callback (see :func:`postprocess_lods`).

    Returns:
        The paths written, in the order of ``face_budgets``.

    Raises:
        ConfigError: the source is not a mesh or has no vertex colours, or a bad option.
    """
    from genesis3d import io
    from genesis3d.geometry.attributes import VertexAttributes
    from genesis3d.geometry.export import ExportOptions, postprocess_lods

    asset = load(source) if isinstance(source, str | Path) else source
    if not isinstance(asset, MeshAsset):
        raise ConfigError(f"export_lods needs a mesh, got {asset.kind}; pass a .glb or .ply mesh")
    if asset.colors is None:
        raise ConfigError(
            "export_lods bakes the mesh's vertex colours, but the mesh has none; "
            "pass the raw mesh a model wrote (with COLOR_0), or call postprocess_lods with "
            "another attribute source"
        )
    options = ExportOptions(
        face_budgets=tuple(face_budgets),
        texture_size=texture_size,
        normal_map=normal_map,
        size=size,
        pivot=pivot,  # type: ignore[arg-type]
    )
    # Vertex colours are linear; base colour textures hold sRGB values.
    linear = np.clip(np.asarray(asset.colors, np.float64), 0.0, 1.0)
    rgb = np.where(
        linear[:, :3] <= 0.0031308,
        12.92 * linear[:, :3],
        1.055 * np.power(linear[:, :3], 1 / 2.4) - 0.055,
    )
    values = np.concatenate([rgb, linear[:, 3:4]], axis=1).astype(np.float32)
    meshes = postprocess_lods(
        asset.positions,
        asset.faces,
        VertexAttributes(asset.faces, values),
        options,
        progress=progress,
    )
    written = []
    for mesh, destination in zip(meshes, lod_paths(path, len(meshes)), strict=True):
        written.append(io.save(mesh, destination, format="glb"))
    return written


def load(path: str | Path, format: str | None = None) -> MeshAsset | SplatAsset:
    """Read a mesh or splats file written by Genesis or another tool (format by content)."""
    from genesis3d import io

    return io.load(path, format=format)


def inspect(
    source: str | Path | MeshAsset | SplatAsset,
    compare: str | Path | MeshAsset | None = None,
    *,
    threshold: float = 0.01,
    samples: int = 100_000,
) -> dict[str, Any]:
    """Health and statistics of a mesh or splats, as a JSON-serialisable dict.

    For a mesh: counts, bounds, watertight, manifold, degenerate and sliver faces,
    components, UV coverage, texture sizes and, per texture, the texels bilinear sampling
    reaches outside the UV triangles and the fraction of them left unfilled (see
    :mod:`genesis3d.geometry.texture_fill`). For splats: count, bounds, scale and opacity
    statistics.

    Args:
        source: the file or asset to inspect.
        compare: a reference mesh; adds ``comparison`` (Chamfer, F-score at
            ``threshold``, normal consistency, Hausdorff; see
            :func:`genesis3d.geometry.compare.compare_meshes`) of ``source`` against it.
        threshold: F-score distance as a fraction of the reference's bounding-box diagonal.
        samples: surface samples per mesh for the comparison.
    """
    from genesis3d.geometry.measure import mesh_health, splat_stats

    asset = load(source) if isinstance(source, str | Path) else source
    if isinstance(asset, SplatAsset):
        if compare is not None:
            raise ConfigError(
                "--compare needs two meshes, got splats to inspect; compare two .glb meshes"
            )
        return {"kind": "splats", **splat_stats(asset)}
    report = {"kind": "mesh", **mesh_health(asset.positions, asset.faces, uvs=asset.uvs).to_dict()}
    material = asset.material
    report["textures"] = {
        name: [int(texture.shape[1]), int(texture.shape[0])]
        for name, texture in (
            ("base_color", material.base_color_texture),
            ("metallic_roughness", material.metallic_roughness_texture),
            ("normal", material.normal_texture),
        )
        if texture is not None
    }
    if asset.uvs is not None:
        from genesis3d.geometry.texture_fill import texture_fill

        report["texture_fill"] = {
            name: texture_fill(asset.uvs, asset.faces, texture).to_dict()
            for name, texture in (
                ("base_color", material.base_color_texture),
                ("metallic_roughness", material.metallic_roughness_texture),
                ("normal", material.normal_texture),
            )
            if texture is not None
        }
    report["alpha_mode"] = material.alpha_mode
    if compare is not None:
        from genesis3d.geometry.compare import compare_meshes

        reference = load(compare) if isinstance(compare, str | Path) else compare
        if not isinstance(reference, MeshAsset):
            raise ConfigError(
                f"--compare needs a mesh as reference, got {reference.kind}; pass a .glb mesh"
            )
        report["comparison"] = compare_meshes(
            asset.positions,
            asset.faces,
            reference.positions,
            reference.faces,
            samples=samples,
            threshold=threshold,
        ).to_dict()
    return report
