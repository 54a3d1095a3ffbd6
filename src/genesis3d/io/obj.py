"""Wavefront OBJ: a triangle mesh as text, with its material in an .mtl file beside it.

Written: ``v x y z`` (+ `` r g b`` vertex colours, the extension MeshLab, Blender and
trimesh read; alpha is dropped), ``vt u v`` with the bottom-left origin OBJ uses
(``v = 1 - v_gltf``), ``vn`` normals and ``f`` lines that reuse one index for all three
(``f a/a/a``), in the world frame (Y up, metres). Colours are written as stored, like the
PLY writer does. The asset's metadata goes into a ``# genesis3d metadata`` comment.

Written to a path, the mesh also gets ``NAME.mtl`` with the material as the PBR extension
of the MTL format (``Kd``/``d`` from the base colour, ``Pm``, ``Pr``, ``map_Kd``, ``map_Pm``,
``map_Pr``, ``norm``) and its textures as PNG files named after the mesh
(``NAME_basecolor.png``; metallic and roughness are split out of glTF's packed texture).
Every file is written atomically, the .obj last, so an .obj on disk always finds its
material. Written to a stream, only the .obj text is written and textures are refused.

The reader takes positions, texture coordinates, normals, vertex colours and polygons
(fan-triangulated); vertices are split where a face corner pairs a position with another
texture coordinate or normal. Materials are not read back.
"""

from __future__ import annotations

import io as _io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from genesis3d.assets import MeshAsset
from genesis3d.errors import ConfigError, FormatError
from genesis3d.io import json_metadata
from genesis3d.io.atomic import Destination, Source, atomic_write, read_source, write_output

_METADATA = "# genesis3d metadata "


def _rows(prefix: str, values: np.ndarray, digits: int) -> str:
    """``prefix a b c`` lines of a float array, with ``digits`` significant digits."""
    if not len(values):
        return ""
    text = np.char.mod(f"%.{digits}g", np.asarray(values, np.float64))
    return "".join(f"{prefix} {' '.join(row)}\n" for row in text)


def encode_obj(asset: MeshAsset, material_file: str | None = None) -> bytes:
    """The text of an OBJ file of a mesh.

    Args:
        asset: the mesh.
        material_file: the .mtl name to reference (``mtllib`` + ``usemtl``), or None.

    Returns:
        UTF-8 bytes.

    Raises:
        AssetError: for metadata that JSON cannot hold.
    """
    parts = ["# written by genesis3d\n"]
    if asset.metadata:
        parts.append(_METADATA + json.dumps(json_metadata(asset.metadata)) + "\n")
    if material_file is not None:
        parts.append(f"mtllib {material_file}\n")
    positions = asset.positions
    if asset.colors is not None:
        positions = np.concatenate([positions, asset.colors[:, :3]], axis=1)
    parts.append(_rows("v", positions, 9))
    if asset.uvs is not None:
        parts.append(_rows("vt", np.stack([asset.uvs[:, 0], 1.0 - asset.uvs[:, 1]], 1), 9))
    if asset.normals is not None:
        parts.append(_rows("vn", asset.normals, 7))
    if material_file is not None:
        parts.append(f"usemtl {asset.material.name}\n")
    corners = (asset.faces.astype(np.int64) + 1).astype(str)
    if asset.uvs is not None and asset.normals is not None:
        corners = np.char.add(np.char.add(np.char.add(corners, "/"), corners), "/")
        corners = np.char.add(corners, (asset.faces.astype(np.int64) + 1).astype(str))
    elif asset.uvs is not None:
        corners = np.char.add(np.char.add(corners, "/"), corners)
    elif asset.normals is not None:
        corners = np.char.add(corners, "//")
        corners = np.char.add(corners, (asset.faces.astype(np.int64) + 1).astype(str))
    parts.extend(f"f {a} {b} {c}\n" for a, b, c in corners)
    return "".join(parts).encode("utf-8")


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = _io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def material_files(asset: MeshAsset, stem: str) -> dict[str, bytes]:
    """The .mtl text and texture PNGs of a mesh's material, by file name.

    Args:
        asset: the mesh.
        stem: the base name of the files (the .obj name without its extension).

    Returns:
        ``{file name: bytes}``, the .mtl first.
    """
    material = asset.material
    red, green, blue, alpha = material.base_color_factor
    lines = [
        "# written by genesis3d: PBR extension of MTL (Pm metallic, Pr roughness)",
        f"newmtl {material.name}",
        f"Kd {red:.6g} {green:.6g} {blue:.6g}",
        f"d {alpha:.6g}",
        f"Pm {material.metallic_factor:.6g}",
        f"Pr {material.roughness_factor:.6g}",
        "illum 2",
    ]
    files: dict[str, bytes] = {}
    if material.base_color_texture is not None:
        files[f"{stem}_basecolor.png"] = _png(material.base_color_texture)
        lines.append(f"map_Kd {stem}_basecolor.png")
    if material.metallic_roughness_texture is not None:
        packed = material.metallic_roughness_texture
        files[f"{stem}_metallic.png"] = _png(packed[..., 2])
        files[f"{stem}_roughness.png"] = _png(packed[..., 1])
        lines += [f"map_Pm {stem}_metallic.png", f"map_Pr {stem}_roughness.png"]
    if material.normal_texture is not None:
        files[f"{stem}_normal.png"] = _png(material.normal_texture)
        lines.append(f"norm {stem}_normal.png")
    return {f"{stem}.mtl": ("\n".join(lines) + "\n").encode("utf-8"), **files}


def write_obj(asset: MeshAsset, destination: Destination) -> None:
    """Write a mesh as OBJ (+ .mtl and textures beside it when given a path), atomically.

    Args:
        asset: a MeshAsset.
        destination: a path, or a binary stream (the .obj text alone).

    Raises:
        ConfigError: a textured mesh written to a stream (its textures need files).
        AssetError: for metadata that JSON cannot hold.
    """
    if not isinstance(destination, str | os.PathLike):
        material = asset.material
        if any(
            texture is not None
            for texture in (
                material.base_color_texture,
                material.metallic_roughness_texture,
                material.normal_texture,
            )
        ):
            raise ConfigError(
                "an OBJ keeps its textures in files beside it: write a textured mesh to a "
                "path, not a stream (or write a GLB, which holds them)"
            )
        write_output(encode_obj(asset), destination)
        return
    path = Path(destination)
    extras = material_files(asset, path.stem)
    text = encode_obj(asset, material_file=f"{path.stem}.mtl")
    written: list[Path] = []
    try:
        for name, data in extras.items():
            with atomic_write(path.parent / name) as stream:
                stream.write(data)
            written.append(path.parent / name)
        with atomic_write(path) as stream:
            stream.write(text)
    except BaseException:
        # The .obj never appeared: take its material files back rather than leave strays.
        for extra in written:
            extra.unlink(missing_ok=True)
        raise


def _parse(data: bytes, source: str) -> dict[str, Any]:
    positions: list[list[float]] = []
    colors: list[list[float]] = []
    uvs: list[list[float]] = []
    normals: list[list[float]] = []
    corners: list[tuple[int, int, int]] = []
    metadata: dict[str, Any] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if line.startswith(_METADATA.strip()):
            try:
                metadata = json.loads(line[len(_METADATA) :])
            except json.JSONDecodeError as error:
                raise FormatError(f"{source} line {number}: broken metadata JSON") from error
            continue
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            if words[0] == "v":
                positions.append([float(w) for w in words[1:4]])
                if len(words) >= 7:
                    colors.append([float(w) for w in words[4:7]])
            elif words[0] == "vt":
                uvs.append([float(w) for w in words[1:3]])
            elif words[0] == "vn":
                normals.append([float(w) for w in words[1:4]])
            elif words[0] == "f":
                polygon = [
                    _corner(word, len(positions), len(uvs), len(normals)) for word in words[1:]
                ]
                if len(polygon) < 3:
                    raise ValueError("a face needs three corners")
                for k in range(1, len(polygon) - 1):
                    corners += [polygon[0], polygon[k], polygon[k + 1]]
        except (ValueError, IndexError) as error:
            raise FormatError(
                f"{source} has a malformed OBJ line {number}: {raw!r} ({error})"
            ) from error
    if colors and len(colors) != len(positions):
        raise FormatError(
            f"{source}: only some vertices have colours ({len(colors)} of {len(positions)})"
        )
    return {
        "positions": positions, "colors": colors, "uvs": uvs, "normals": normals,
        "corners": corners, "metadata": metadata,
    }  # fmt: skip


def _corner(word: str, positions: int, uvs: int, normals: int) -> tuple[int, int, int]:
    """(position, uv, normal) 0-based indices of one face corner; -1 where absent."""
    parts = word.split("/")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"bad face corner {word!r}")
    out = []
    for part, count in zip(parts + [""] * (3 - len(parts)), (positions, uvs, normals), strict=True):
        if not part:
            out.append(-1)
            continue
        index = int(part)
        index = index - 1 if index > 0 else count + index  # negative: relative to the end
        if not 0 <= index < count:
            raise ValueError(f"index {part} out of range (1..{count})")
        out.append(index)
    return out[0], out[1], out[2]


def read_obj(source: Source) -> MeshAsset:
    """Read an OBJ mesh (geometry, texture coordinates, normals, vertex colours).

    Args:
        source: a path or the file's bytes.

    Returns:
        A MeshAsset in the world frame, with the default material.

    Raises:
        FormatError: for a malformed file or one without faces.
    """
    data, name = read_source(source)
    parsed = _parse(data, name)
    if not parsed["corners"]:
        raise FormatError(f"{name} has no faces; Genesis reads OBJ triangle meshes")
    corners = np.asarray(parsed["corners"], np.int64)
    for column, key in ((1, "uvs"), (2, "normals")):
        used = corners[:, column] >= 0
        if used.any() and not used.all():
            raise FormatError(f"{name}: some face corners have {key} and others not")
    # One vertex per distinct (position, uv, normal) triple, so seams keep their uvs.
    unique, inverse = np.unique(corners, axis=0, return_inverse=True)
    positions = np.asarray(parsed["positions"], np.float32)[unique[:, 0]]
    uvs = normals = colors = None
    if (unique[:, 1] >= 0).all():
        table = np.asarray(parsed["uvs"], np.float32)[unique[:, 1]]
        uvs = np.stack([table[:, 0], 1.0 - table[:, 1]], axis=1)
    if (unique[:, 2] >= 0).all():
        normals = np.asarray(parsed["normals"], np.float32)[unique[:, 2]]
    if parsed["colors"]:
        rgb = np.clip(np.asarray(parsed["colors"], np.float32)[unique[:, 0]], 0.0, 1.0)
        colors = np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], axis=1)
    return MeshAsset(
        positions,
        inverse.reshape(-1, 3),
        normals=normals,
        uvs=uvs,
        colors=colors,
        metadata=parsed["metadata"],
    )
