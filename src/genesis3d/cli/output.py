"""Where ``genesis3d generate`` writes: formats, output paths and model parameters."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesis3d.errors import ConfigError
from genesis3d.io import FORMATS
from genesis3d.registry import ModelFamily

DEFAULT_OUTPUT_DIR = "outputs"

#: Kinds of asset each format can hold.
FORMAT_KINDS: dict[str, tuple[str, ...]] = {name: spec.kinds for name, spec in FORMATS.items()}


@dataclass(frozen=True)
class OutputPlan:
    """One picture and the files to write for it: (format, asset kind, path) triples."""

    image: Path
    targets: tuple[tuple[str, str, Path], ...]


def parse_formats(values: list[str] | None) -> list[str]:
    """Formats from repeated and/or comma-separated ``--format`` values, in order, unique."""
    formats: list[str] = []
    for value in values or []:
        for item in value.split(","):
            name = item.strip().lower().lstrip(".")
            if not name:
                continue
            if name not in FORMAT_KINDS:
                raise ConfigError(
                    f"--format must be one of {', '.join(FORMAT_KINDS)}, got {item.strip()!r}"
                )
            if name not in formats:
                formats.append(name)
    return formats


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """Model parameters from ``KEY=VALUE`` strings; values are Python literals or plain text."""
    params: dict[str, Any] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ConfigError(
                f"--param must look like KEY=VALUE (e.g. resolution=192), got {value!r}"
            )
        try:
            params[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            params[key] = text.strip()
    return params


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def expand_inputs(images: list[Path]) -> list[Path]:
    """Replace each folder by the PNG, JPEG and WebP pictures directly inside it, sorted.

    Paths that are not folders are kept as given (a missing file is reported later, per
    picture, so the rest of the batch goes on).

    Raises:
        ConfigError: for a folder with no picture in it.
    """
    expanded: list[Path] = []
    for image in images:
        if image.is_dir():
            found = sorted(
                p for p in image.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
            )
            if not found:
                raise ConfigError(f"the folder {image} holds no .png, .jpg or .webp picture")
            expanded.extend(found)
        else:
            expanded.append(image)
    return expanded


def kind_for_format(fmt: str, family: ModelFamily) -> str:
    """The asset kind a format is written from for a family.

    A format that holds both kinds takes the one it is usually opened as when the family
    makes both: ``.ply`` splats (splat viewers open them), ``.glb`` a mesh (game engines and
    DCC tools import it); the order of ``FORMATS[fmt].kinds`` says which.
    """
    kinds = [kind for kind in FORMAT_KINDS[fmt] if kind in family.outputs]
    if kinds:
        return kinds[0]
    makes = " and ".join(family.outputs)
    fitting = [name for name, holds in FORMAT_KINDS.items() if set(holds) & set(family.outputs)]
    raise ConfigError(
        f"{family.name} makes {makes}, which .{fmt} cannot hold; choose --format {'|'.join(fitting)}"
    )


def plan_outputs(
    images: list[Path], output: Path | None, formats: list[str], family: ModelFamily
) -> list[OutputPlan]:
    """Decide every output path before any work starts.

    ``output`` is a folder (default ``./outputs``), or for a single picture a file name
    whose extension, when known, also gives the format. Files are named after the
    picture; two pictures with the same name get ``-2``, ``-3``... suffixes.
    """
    if not images:
        raise ConfigError("give at least one picture, e.g. `genesis3d generate chair.png`")
    folder: Path
    stem_override: str | None = None
    if output is not None and output.suffix.lower().lstrip(".") in FORMAT_KINDS:
        if len(images) > 1:
            raise ConfigError(
                f"{len(images)} pictures need an output folder, got the file name {output}; pass -o DIR"
            )
        folder, stem_override = output.parent, output.stem
        suffix_format = output.suffix.lower().lstrip(".")
        if not formats:
            formats = [suffix_format]
        elif suffix_format not in formats:
            raise ConfigError(
                f"-o {output} says .{suffix_format} but --format says {', '.join(formats)}; make them agree"
            )
    else:
        if output is not None and output.suffix and not output.is_dir():
            raise ConfigError(
                f"-o {output} has an unknown extension; use a folder or one of .{', .'.join(FORMAT_KINDS)}"
            )
        folder = output if output is not None else Path(DEFAULT_OUTPUT_DIR)
    if not formats:
        formats = [_primary_format(family)]
    kinds = [(fmt, kind_for_format(fmt, family)) for fmt in formats]

    plans: list[OutputPlan] = []
    used: set[str] = set()
    for image in images:
        stem = stem_override or image.stem
        name, counter = stem, 1
        while name in used:
            counter += 1
            name = f"{stem}-{counter}"
        used.add(name)
        targets = tuple((fmt, kind, folder / f"{name}.{fmt}") for fmt, kind in kinds)
        plans.append(OutputPlan(image, targets))
    return plans


def _primary_format(family: ModelFamily) -> str:
    return "glb" if family.task == "mesh" else "ply"
