"""glTF 2.0 binary (.glb) with a metallic-roughness PBR material, written by our own code.

Writer: one scene, one node, one mesh with one triangle primitive (POSITION with bounds,
NORMAL, TEXCOORD_0, COLOR_0, uint16/uint32 indices) and one material (base colour with
alpha, metallic-roughness with G = roughness and B = metallic, normal map, alpha mode,
double-sidedness); textures are PNG. ``asset.extras`` carries the asset's metadata.

Reader: what this writer writes and what other tools commonly write: several nodes (TRS
or matrix, nested), meshes and triangle primitives, merged into one MeshAsset with node
transforms applied; the material of the first primitive.
"""

from __future__ import annotations

import io as _io
import json
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np

from genesis3d.assets import MeshAsset, PBRMaterial
from genesis3d.errors import AssetError, FormatError
from genesis3d.geometry.mesh_ops import unit_vectors as _unit
from genesis3d.geometry.mesh_ops import vertex_normals
from genesis3d.io.atomic import atomic_write

logger = logging.getLogger(__name__)

_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _CLAMP_TO_EDGE = 9729, 9987, 33071
_COMPONENT_DTYPES = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


def _generator() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"genesis3d {version('genesis3d')}"
    except PackageNotFoundError:
        return "genesis3d"


class _Builder:
    """Accumulates buffer views, accessors and images of one GLB."""

    def __init__(self) -> None:
        self.binary = bytearray()
        self.buffer_views: list[dict] = []
        self.accessors: list[dict] = []
        self.images: list[dict] = []
        self.textures: list[dict] = []

    def _view(self, data: bytes, target: int | None) -> int:
        while len(self.binary) % 4:
            self.binary.append(0)
        view: dict[str, Any] = {
            "buffer": 0,
            "byteOffset": len(self.binary),
            "byteLength": len(data),
        }
        if target is not None:
            view["target"] = target
        self.binary.extend(data)
        self.buffer_views.append(view)
        return len(self.buffer_views) - 1

    def accessor(self, array: np.ndarray, kind: str, *, target: int, bounds: bool = False) -> int:
        component = {
            np.dtype(np.float32): 5126,
            np.dtype(np.uint32): 5125,
            np.dtype(np.uint16): 5123,
        }[array.dtype]
        accessor: dict[str, Any] = {
            "bufferView": self._view(np.ascontiguousarray(array).tobytes(), target),
            "componentType": component,
            "count": int(array.shape[0]),
            "type": kind,
        }
        if bounds:
            flat = array.reshape(array.shape[0], -1)
            accessor["min"] = [_json_number(v) for v in flat.min(axis=0)]
            accessor["max"] = [_json_number(v) for v in flat.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def texture(self, pixels: np.ndarray) -> int:
        from PIL import Image

        buffer = _io.BytesIO()
        Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB").save(
            buffer, format="PNG", compress_level=6
        )
        self.images.append(
            {"bufferView": self._view(buffer.getvalue(), None), "mimeType": "image/png"}
        )
        self.textures.append({"sampler": 0, "source": len(self.images) - 1})
        return len(self.textures) - 1


def _json_number(value: Any) -> float | int:
    return int(value) if np.issubdtype(type(value), np.integer) else float(value)


def _material_json(material: PBRMaterial, builder: _Builder) -> dict[str, Any]:
    pbr: dict[str, Any] = {
        "baseColorFactor": list(material.base_color_factor),
        "metallicFactor": material.metallic_factor,
        "roughnessFactor": material.roughness_factor,
    }
    if material.base_color_texture is not None:
        pbr["baseColorTexture"] = {"index": builder.texture(material.base_color_texture)}
    if material.metallic_roughness_texture is not None:
        pbr["metallicRoughnessTexture"] = {
            "index": builder.texture(material.metallic_roughness_texture)
        }
    result: dict[str, Any] = {
        "name": material.name,
        "pbrMetallicRoughness": pbr,
        "alphaMode": material.alpha_mode,
        "doubleSided": material.double_sided,
    }
    if material.alpha_mode == "MASK":
        result["alphaCutoff"] = material.alpha_cutoff
    if material.normal_texture is not None:
        result["normalTexture"] = {"index": builder.texture(material.normal_texture)}
    return result


def encode(mesh: MeshAsset) -> bytes:
    """The bytes of a GLB holding ``mesh``.

    Raises:
        AssetError: for a mesh without faces or metadata that JSON cannot hold.
    """
    if mesh.n_faces == 0:
        raise AssetError("a GLB needs at least one face; the mesh has none")
    try:
        extras = json.loads(json.dumps(mesh.metadata))
    except (TypeError, ValueError) as error:
        raise AssetError(
            f"mesh metadata must be JSON-serialisable to go into a GLB: {error}"
        ) from error
    builder = _Builder()
    normals = (
        mesh.normals if mesh.normals is not None else vertex_normals(mesh.positions, mesh.faces)
    )
    attributes = {
        "POSITION": builder.accessor(mesh.positions, "VEC3", target=_ARRAY_BUFFER, bounds=True),
        "NORMAL": builder.accessor(_unit(normals), "VEC3", target=_ARRAY_BUFFER),
    }
    if mesh.uvs is not None:
        attributes["TEXCOORD_0"] = builder.accessor(mesh.uvs, "VEC2", target=_ARRAY_BUFFER)
    if mesh.colors is not None:
        attributes["COLOR_0"] = builder.accessor(mesh.colors, "VEC4", target=_ARRAY_BUFFER)
    index_dtype = np.uint16 if mesh.n_vertices < 65535 else np.uint32
    indices = builder.accessor(
        mesh.faces.reshape(-1).astype(index_dtype), "SCALAR", target=_ELEMENT_ARRAY_BUFFER
    )
    material = _material_json(mesh.material, builder)

    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": _generator()},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": str(mesh.metadata.get("name", "asset"))}],
        "meshes": [
            {
                "primitives": [
                    {"attributes": attributes, "indices": indices, "material": 0, "mode": 4}
                ]
            }
        ],
        "materials": [material],
        "accessors": builder.accessors,
        "bufferViews": builder.buffer_views,
        "buffers": [{"byteLength": 0}],
    }
    if extras:
        document["asset"]["extras"] = extras
    if builder.textures:
        document["samplers"] = [
            {
                "magFilter": _LINEAR,
                "minFilter": _LINEAR_MIPMAP_LINEAR,
                "wrapS": _CLAMP_TO_EDGE,
                "wrapT": _CLAMP_TO_EDGE,
            }
        ]
        document["images"] = builder.images
        document["textures"] = builder.textures
    while len(builder.binary) % 4:
        builder.binary.append(0)
    document["buffers"][0]["byteLength"] = len(builder.binary)
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(builder.binary)
    return b"".join(
        [
            struct.pack("<4sII", _MAGIC, 2, total),
            struct.pack("<II", len(text), _JSON_CHUNK),
            text,
            struct.pack("<II", len(builder.binary), _BIN_CHUNK),
            bytes(builder.binary),
        ]
    )


def write(mesh: MeshAsset, path: str | Path) -> None:
    """Write ``mesh`` as a GLB file, atomically."""
    data = encode(mesh)
    with atomic_write(path) as stream:
        stream.write(data)


# ----------------------------------------------------------------------------- reading


def read(path: str | Path) -> MeshAsset:
    """Read a GLB file into one MeshAsset (see :func:`decode`)."""
    return decode(Path(path).read_bytes(), str(path))


def _chunks(data: bytes, source: str) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != _MAGIC:
        raise FormatError(f"{source} is not a GLB file (no glTF header)")
    _, version, length = struct.unpack_from("<4sII", data, 0)
    if version != 2:
        raise FormatError(f"{source} is glTF version {version}; only glTF 2.0 is supported")
    if length > len(data):
        raise FormatError(
            f"{source} is truncated: the header says {length} bytes, the file has {len(data)}"
        )
    offset, document, binary = 12, None, b""
    while offset + 8 <= length:
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        body = data[offset + 8 : offset + 8 + chunk_length]
        if len(body) != chunk_length:
            raise FormatError(f"{source} is truncated inside a chunk")
        if chunk_type == _JSON_CHUNK and document is None:
            try:
                document = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise FormatError(f"{source} has a broken JSON chunk: {error}") from error
        elif chunk_type == _BIN_CHUNK and not binary:
            binary = body
        offset += 8 + chunk_length
    if document is None:
        raise FormatError(f"{source} has no JSON chunk")
    return document, binary


def _view_bytes(document: dict, binary: bytes, index: int, source: str) -> tuple[bytes, int | None]:
    view = document["bufferViews"][index]
    if view.get("buffer", 0) != 0 or "uri" in document["buffers"][view.get("buffer", 0)]:
        raise FormatError(
            f"{source} refers to an external buffer; only self-contained GLB files are supported"
        )
    start = view.get("byteOffset", 0)
    end = start + view["byteLength"]
    if end > len(binary):
        raise FormatError(f"{source} has a buffer view past the end of its binary chunk")
    return binary[start:end], view.get("byteStride")


def _accessor(document: dict, binary: bytes, index: int, source: str) -> np.ndarray:
    accessor = document["accessors"][index]
    if "sparse" in accessor:
        raise FormatError(f"{source} uses sparse accessors, which are not supported")
    dtype = np.dtype(_COMPONENT_DTYPES[accessor["componentType"]])
    width = _TYPE_SIZES[accessor["type"]]
    count = accessor["count"]
    if "bufferView" not in accessor:
        return np.zeros((count, width), dtype)
    data, stride = _view_bytes(document, binary, accessor["bufferView"], source)
    element = dtype.itemsize * width
    stride = stride or element
    offset = accessor.get("byteOffset", 0)
    needed = offset + stride * (count - 1) + element if count else 0
    if needed > len(data):
        raise FormatError(f"{source}: accessor {index} reads past its buffer view")
    raw = (
        np.frombuffer(data, np.uint8, count=needed - offset, offset=offset)
        if count
        else np.zeros(0, np.uint8)
    )
    if stride == element:
        values = raw.view(dtype).reshape(count, width)
    else:
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, element), strides=(stride, 1))
        values = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    if accessor.get("normalized") and dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.maximum(values.astype(np.float32) / info.max, -1.0)
    return values.copy()


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.array(node["matrix"], np.float64).reshape(4, 4).T
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.array(node.get("scale", [1.0, 1.0, 1.0]))
    matrix[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return matrix


def _mesh_instances(document: dict) -> list[tuple[int, np.ndarray]]:
    nodes = document.get("nodes", [])
    scenes = document.get("scenes")
    if scenes:
        roots = scenes[document.get("scene", 0)].get("nodes", [])
    else:
        children = {child for node in nodes for child in node.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    instances, stack = [], [(root, np.eye(4)) for root in roots]
    while stack:
        index, parent = stack.pop()
        node = nodes[index]
        world = parent @ _node_matrix(node)
        if "mesh" in node:
            instances.append((node["mesh"], world))
        stack.extend((child, world) for child in node.get("children", []))
    if not instances and not scenes:
        instances = [(i, np.eye(4)) for i in range(len(document.get("meshes", [])))]
    return instances


def _image(
    document: dict, binary: bytes, texture_info: dict | None, source: str, channels: tuple[str, ...]
) -> np.ndarray | None:
    if texture_info is None:
        return None
    from PIL import Image, UnidentifiedImageError

    image_index = document["textures"][texture_info["index"]].get("source")
    if image_index is None:
        return None
    image = document["images"][image_index]
    if "bufferView" not in image:
        raise FormatError(
            f"{source} refers to an external image; only self-contained GLB files are supported"
        )
    data, _ = _view_bytes(document, binary, image["bufferView"], source)
    try:
        picture = Image.open(_io.BytesIO(data))
        picture.load()
    except (UnidentifiedImageError, OSError) as error:
        raise FormatError(f"{source} holds a texture that cannot be decoded: {error}") from error
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    mode = "RGBA" if has_alpha and "RGBA" in channels else "RGB"
    return np.asarray(picture.convert(mode))


def decode(data: bytes, source: str = "<bytes>") -> MeshAsset:
    """Decode GLB bytes into one MeshAsset, merging every triangle primitive.

    Raises:
        FormatError: for a file that is not a valid GLB or holds no triangles.
    """
    document, binary = _chunks(data, source)
    try:
        return _assemble(document, binary, source)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        if isinstance(error, FormatError | AssetError):
            raise
        raise FormatError(
            f"{source} is not a valid glTF document: {type(error).__name__} {error}"
        ) from error


def _assemble(document: dict, binary: bytes, source: str) -> MeshAsset:
    parts: list[dict[str, np.ndarray]] = []
    materials: list[int | None] = []
    skipped = 0
    for mesh_index, world in _mesh_instances(document):
        for primitive in document["meshes"][mesh_index]["primitives"]:
            if primitive.get("mode", 4) != 4:
                skipped += 1
                continue
            attributes = primitive["attributes"]
            part = {
                "positions": _accessor(document, binary, attributes["POSITION"], source).astype(
                    np.float64
                )
            }
            count = len(part["positions"])
            if "indices" in primitive:
                part["faces"] = (
                    _accessor(document, binary, primitive["indices"], source)
                    .reshape(-1, 3)
                    .astype(np.int64)
                )
            else:
                part["faces"] = np.arange(count - count % 3).reshape(-1, 3)
            if "NORMAL" in attributes:
                part["normals"] = _accessor(document, binary, attributes["NORMAL"], source).astype(
                    np.float64
                )
            if "TEXCOORD_0" in attributes:
                part["uvs"] = _accessor(document, binary, attributes["TEXCOORD_0"], source).astype(
                    np.float32
                )
            if "COLOR_0" in attributes:
                colors = _accessor(document, binary, attributes["COLOR_0"], source).astype(
                    np.float32
                )
                part["colors"] = (
                    colors
                    if colors.shape[1] == 4
                    else np.concatenate([colors, np.ones((count, 1), np.float32)], axis=1)
                )
            linear = world[:3, :3]
            part["positions"] = part["positions"] @ linear.T + world[:3, 3]
            if "normals" in part:
                part["normals"] = _unit(part["normals"] @ np.linalg.inv(linear))
            if np.linalg.det(linear) < 0:
                part["faces"] = part["faces"][:, ::-1]
            parts.append(part)
            materials.append(primitive.get("material"))
    if skipped:
        logger.warning("%s: ignored %d primitive(s) that are not triangles", source, skipped)
    if not parts:
        raise FormatError(f"{source} holds no triangle mesh")
    if len(set(materials)) > 1:
        logger.warning(
            "%s: primitives use %d materials; keeping the first", source, len(set(materials))
        )

    offsets = np.cumsum([0] + [len(part["positions"]) for part in parts])
    merged: dict[str, Any] = {
        "positions": np.concatenate([part["positions"] for part in parts]),
        "faces": np.concatenate(
            [part["faces"] + offset for part, offset in zip(parts, offsets, strict=False)]
        ),
    }
    for key in ("normals", "uvs", "colors"):
        if all(key in part for part in parts):
            merged[key] = np.concatenate([part[key] for part in parts])
        elif any(key in part for part in parts):
            logger.warning("%s: only some primitives have %s; dropping them", source, key)
    material = _read_material(document, binary, materials[0], source)
    extras = document.get("asset", {}).get("extras", {})
    return MeshAsset(
        material=material, metadata=extras if isinstance(extras, dict) else {}, **merged
    )


def _read_material(document: dict, binary: bytes, index: int | None, source: str) -> PBRMaterial:
    if index is None:
        return PBRMaterial()
    entry = document["materials"][index]
    pbr = entry.get("pbrMetallicRoughness", {})
    return PBRMaterial(
        base_color_texture=_image(
            document, binary, pbr.get("baseColorTexture"), source, ("RGBA", "RGB")
        ),
        base_color_factor=tuple(pbr.get("baseColorFactor", (1.0, 1.0, 1.0, 1.0))),
        metallic_roughness_texture=_image(
            document, binary, pbr.get("metallicRoughnessTexture"), source, ("RGB",)
        ),
        metallic_factor=pbr.get("metallicFactor", 1.0),
        roughness_factor=pbr.get("roughnessFactor", 1.0),
        normal_texture=_image(document, binary, entry.get("normalTexture"), source, ("RGB",)),
        alpha_mode=entry.get("alphaMode", "OPAQUE"),
        alpha_cutoff=entry.get("alphaCutoff", 0.5),
        double_sided=bool(entry.get("doubleSided", False)),
        name=entry.get("name", "material"),
    )
