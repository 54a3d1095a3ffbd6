"""Reading and writing assets: one module per format and a small dispatch table.

| format | extension | holds | module |
| --- | --- | --- | --- |
| glb | .glb | mesh, or Gaussian splats (``KHR_gaussian_splatting``) | :mod:`genesis3d.io.glb` |
| ply | .ply | Gaussian splats (INRIA 3DGS layout) or a mesh | :mod:`genesis3d.io.ply` |
| splat | .splat | Gaussian splats (antimatter15 32-byte records) | :mod:`genesis3d.io.splat` |
| spz | .spz | Gaussian splats (Niantic, gzip-compressed) | :mod:`genesis3d.io.spz` |
| obj | .obj | mesh (+ .mtl material and PNG textures beside it) | :mod:`genesis3d.io.obj` |

Each module has ``write_<format>(asset, path_or_stream, **options)`` and
``read_<format>(path_or_bytes)``. Every writer goes through
:func:`genesis3d.io.atomic.atomic_write`. :func:`load` recognises a file by its content,
not its extension (except .splat and .obj, which have no magic number).

Frames: GLB (meshes and splats), mesh PLY, OBJ and .spz hold the world frame (glTF's RUB) unchanged; splat PLY and
.splat hold the RDF frame of 3DGS captures, converted on write and read (see
:mod:`genesis3d.io._splat_frame`).
"""

from __future__ import annotations

import importlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from genesis3d.errors import AssetError, ConfigError, FormatError, InputError

if TYPE_CHECKING:
    from genesis3d.assets import MeshAsset, SplatAsset

AssetKind = Literal["mesh", "splats"]


@dataclass(frozen=True)
class FormatSpec:
    """One file format.

    Attributes:
        name: the format's name, as ``format=`` takes it.
        extensions: file extensions with the dot, lower case.
        kinds: the asset kinds it holds ("mesh", "splats"), the one it is written from for a
            model that makes both first.
        description: one line for help texts.
        options: keyword options its writer accepts.
        sidecars: written to a path, it also writes files beside it (OBJ's .mtl and
            textures), so it is not one downloadable file.
    """

    name: str
    extensions: tuple[str, ...]
    kinds: tuple[AssetKind, ...]
    description: str
    options: tuple[str, ...] = ()
    sidecars: bool = False


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "glb",
            (".glb",),
            ("mesh", "splats"),
            "glTF 2.0 binary: a mesh with a PBR material, or splats (KHR_gaussian_splatting)",
        ),
        FormatSpec(
            "ply",
            (".ply",),
            ("splats", "mesh"),
            "PLY: Gaussian splats in the INRIA 3DGS layout, or a binary triangle mesh",
        ),
        FormatSpec(
            "splat", (".splat",), ("splats",), "antimatter15 .splat, 32-byte records, no SH"
        ),
        FormatSpec(
            "spz",
            (".spz",),
            ("splats",),
            "Niantic .spz, quantised and gzip-compressed splats",
            ("version", "compression_level", "antialiased"),
        ),
        FormatSpec(
            "obj",
            (".obj",),
            ("mesh",),
            "Wavefront OBJ text mesh, with an .mtl material and PNG textures beside it",
            sidecars=True,
        ),
    )
}

_KIND_WORDS = {"mesh": "a mesh", "splats": "Gaussian splats"}
_SPZ_MAGIC = b"NGSP"
_SPLAT_RECORD_BYTES = 32


def format_from_path(path: str | Path) -> str:
    """The format named by a file's extension.

    Args:
        path: a file name.

    Returns:
        A key of :data:`FORMATS`.

    Raises:
        ConfigError: for an extension no format uses.
    """
    suffix = Path(path).suffix.lower()
    for spec in FORMATS.values():
        if suffix in spec.extensions:
            return spec.name
    known = ", ".join(ext for spec in FORMATS.values() for ext in spec.extensions)
    raise ConfigError(
        f"cannot tell the format of {path}: the extension must be one of {known}, got {suffix or 'none'!r}"
    )


def sniff_format(path: str | Path) -> str:
    """The format of a file, from its content.

    GLB starts with ``glTF``, PLY with ``ply`` and a line end, .spz is a gzip stream whose
    content starts with ``NGSP``; .splat has no magic number and is recognised by its
    extension and a size that is a whole number of 32-byte records; OBJ by its extension
    and text content.

    Args:
        path: an existing file.

    Returns:
        A key of :data:`FORMATS`.

    Raises:
        InputError: when the file does not exist.
        FormatError: when the content is none of the formats.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}; check the path")
    with path.open("rb") as stream:
        head = stream.read(64)
    if head[:4] == b"glTF":
        return "glb"
    if head[:4] in (b"ply\n", b"ply\r"):
        return "ply"
    if head[:4] == _SPZ_MAGIC:  # NGSP containers of version 4 and later are not gzipped
        return "spz"
    if head[:2] == b"\x1f\x8b":
        if _gzip_head(path) == _SPZ_MAGIC:
            return "spz"
        raise FormatError(
            f"{path} is gzip-compressed but not an .spz file (its content does not start with NGSP); decompress it and try again"
        )
    if path.suffix.lower() == ".obj":
        if b"\x00" not in head:
            return "obj"
        raise FormatError(f"{path} is not an OBJ file: it holds binary data, OBJ is text")
    if path.suffix.lower() == ".splat":
        size = path.stat().st_size
        if size % _SPLAT_RECORD_BYTES == 0:
            return "splat"
        raise FormatError(
            f"{path} is not a .splat file: its size {size} is not a multiple of {_SPLAT_RECORD_BYTES} bytes (it may be truncated)"
        )
    raise FormatError(
        f"{path} is not a GLB, PLY, OBJ, .splat or .spz file (it starts with {head[:8]!r}); check the file or its extension"
    )


def _gzip_head(path: Path) -> bytes:
    # Decompress just the first bytes: enough to see the magic of the content.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with path.open("rb") as stream:
        try:
            return inflater.decompress(stream.read(4096), 4)
        except zlib.error as error:
            raise FormatError(f"{path} is a broken gzip stream: {error}") from error


def json_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """An asset's metadata as plain JSON values, for the writers that store it.

    Args:
        metadata: the asset's metadata.

    Returns:
        A copy made of dict, list, str, int, float, bool and None only.

    Raises:
        AssetError: for values JSON cannot hold (objects, arrays, NaN, infinity).
    """
    try:
        # allow_nan=False: NaN and infinity are not JSON and break strict parsers.
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise AssetError(
            f"asset metadata must be JSON-serialisable to go into a file, got: {error}; "
            "convert the values to str, int, float, bool, list or dict"
        ) from error


def _module(name: str):
    return importlib.import_module(f"genesis3d.io.{name}")


def _check_format(format: str) -> str:
    name = format.lower().lstrip(".")
    if name not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return name


def save(
    asset: MeshAsset | SplatAsset, path: str | Path, format: str | None = None, **options: Any
) -> Path:
    """Write an asset atomically: the file appears complete, or not at all.

    Args:
        asset: a MeshAsset or SplatAsset.
        path: destination file; its folder is created if missing.
        format: a key of :data:`FORMATS`; None takes it from the extension.
        **options: options of the format's writer (see ``FORMATS[name].options``).

    Returns:
        The path written.

    Raises:
        ConfigError: unknown format or option, or an asset kind the format cannot hold.
        AssetError: the asset cannot be written (e.g. metadata that JSON cannot hold).
    """
    path = Path(path)
    name = format_from_path(path) if format is None else _check_format(format)
    spec = FORMATS[name]
    kind = getattr(asset, "kind", None)
    if kind not in _KIND_WORDS:
        raise ConfigError(f"save takes a MeshAsset or a SplatAsset, got {type(asset).__name__}")
    if kind not in spec.kinds:
        holders = [other.extensions[0] for other in FORMATS.values() if kind in other.kinds]
        raise ConfigError(
            f"{spec.extensions[0]} holds {' or '.join(_KIND_WORDS[k] for k in spec.kinds)}; "
            f"write {_KIND_WORDS[kind]} as {' or '.join(holders)}"
        )
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(spec.options) if spec.options else "none"
        raise ConfigError(
            f"the {name} writer has no option {', '.join(unknown)}; its options are: {accepted}"
        )
    getattr(_module(name), f"write_{name}")(asset, path, **options)
    return path


def load(path: str | Path, format: str | None = None) -> MeshAsset | SplatAsset:
    """Read a mesh or splats file; the format is recognised from its content.

    Args:
        path: an existing file.
        format: a key of :data:`FORMATS` to skip recognition, or None.

    Returns:
        A MeshAsset or a SplatAsset in the world frame.

    Raises:
        InputError: the file does not exist.
        ConfigError: an unknown ``format``.
        FormatError: the content is not a valid file of the format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}; check the path")
    name = sniff_format(path) if format is None else _check_format(format)
    return getattr(_module(name), f"read_{name}")(path)
