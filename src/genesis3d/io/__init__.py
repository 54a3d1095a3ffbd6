"""Reading and writing assets: one module per format and a small dispatch table.

| format | extension | holds | module |
| --- | --- | --- | --- |
| glb | .glb | mesh | :mod:`genesis3d.io.glb` |
| ply | .ply | splats (INRIA 3DGS layout) or mesh | :mod:`genesis3d.io.ply` |
| splat | .splat | splats (antimatter15 32-byte records) | :mod:`genesis3d.io.splat` |
| spz | .spz | splats (Niantic, gzip-compressed) | :mod:`genesis3d.io.spz` |

Every writer goes through :func:`genesis3d.io.atomic.atomic_write`. Readers recognise a
file by its content, not its extension (except .splat, which has no magic number).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesis3d.errors import ConfigError, FormatError, InputError


@dataclass(frozen=True)
class FormatSpec:
    """One file format: its name, extensions, the asset kinds it holds, a description."""

    name: str
    extensions: tuple[str, ...]
    kinds: tuple[str, ...]
    description: str


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec("glb", (".glb",), ("mesh",), "glTF 2.0 binary with PBR material"),
        FormatSpec(
            "ply", (".ply",), ("splats", "mesh"), "PLY: INRIA 3DGS splats or a binary triangle mesh"
        ),
        FormatSpec("splat", (".splat",), ("splats",), "antimatter15 .splat, 32-byte records"),
        FormatSpec("spz", (".spz",), ("splats",), "Niantic .spz, compressed splats"),
    )
}


def format_from_path(path: str | Path) -> str:
    """The format named by a file's extension.

    Raises:
        ConfigError: for an extension no format uses.
    """
    suffix = Path(path).suffix.lower()
    for spec in FORMATS.values():
        if suffix in spec.extensions:
            return spec.name
    known = ", ".join(ext for spec in FORMATS.values() for ext in spec.extensions)
    raise ConfigError(f"cannot tell the format of {path}: the extension must be one of {known}")


def sniff_format(path: str | Path) -> str:
    """The format of a file, from its first bytes.

    Raises:
        InputError: when the file does not exist.
        FormatError: when the content is none of the formats.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    with path.open("rb") as stream:
        head = stream.read(4)
    if head == b"glTF":
        return "glb"
    if head[:3] == b"ply":
        return "ply"
    if head[:2] == b"\x1f\x8b":
        return "spz"
    if path.suffix.lower() == ".splat":
        return "splat"
    raise FormatError(
        f"{path} is not a GLB, PLY, .splat or .spz file (it starts with {head!r}); check the file or its extension"
    )


def _module(name: str):
    return importlib.import_module(f"genesis3d.io.{name}")


def save(asset: Any, path: str | Path, format: str | None = None, **options: Any) -> Path:
    """Write an asset atomically.

    Args:
        asset: a MeshAsset or SplatAsset.
        path: destination file.
        format: a name of :data:`FORMATS`; None takes it from the extension.
        **options: passed to the format's writer.

    Returns:
        The path written.

    Raises:
        ConfigError: unknown format, or an asset kind the format cannot hold.
    """
    path = Path(path)
    name = format_from_path(path) if format is None else format.lower()
    if name not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    spec = FORMATS[name]
    if asset.kind not in spec.kinds:
        holders = [other.name for other in FORMATS.values() if asset.kind in other.kinds]
        raise ConfigError(
            f".{name} holds {' or '.join(spec.kinds)}, not {asset.kind}; write {asset.kind} as .{' or .'.join(holders)}"
        )
    _module(name).write(asset, path, **options)
    return path


def load(path: str | Path, format: str | None = None) -> Any:
    """Read a mesh or splats file; the format is recognised from its content.

    Raises:
        InputError: the file does not exist.
        FormatError: the content is not a valid file of the format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    name = sniff_format(path) if format is None else format.lower()
    if name not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return _module(name).read(path)
