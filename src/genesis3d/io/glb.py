"""glTF 2.0 binary (.glb) with a metallic-roughness PBR material, written by our own code.

Writer: one scene, one node, one mesh with one triangle primitive (POSITION with bounds,
NORMAL, TEXCOORD_0, TANGENT when there is a normal map, COLOR_0, uint16 or uint32 indices)
and one material (base colour with alpha, metallic-roughness with G = roughness and
B = metallic, normal map, alpha mode, double-sidedness); textures are lossless PNG with
one LINEAR / LINEAR_MIPMAP_LINEAR sampler that clamps to the edge (Genesis textures are
atlases, where wrapping would bleed one chart into another). ``asset.extras`` carries the
asset's metadata. Gaussian splats are one POINTS primitive with the ``KHR_gaussian_splatting``
extension (see :mod:`genesis3d.io.glb_splats`).

Reader: what this writer writes and what other tools commonly write: several nodes (TRS
or matrix, nested), meshes and triangle primitives, merged into one MeshAsset with node
transforms baked in; the material of the first primitive. A file whose primitives carry
``KHR_gaussian_splatting`` and no triangles is read as a SplatAsset; other POINTS primitives
are skipped;
lines, strips and fans, sparse accessors, external buffers and required extensions are
refused with :class:`FormatError`.
"""

from __future__ import annotations

import io as _io
import json
import logging
import struct
from typing import Any

import numpy as np

from genesis3d.assets import MeshAsset, PBRMaterial, SplatAsset
from genesis3d.errors import AssetError, FormatError
from genesis3d.geometry.mesh_ops import unit_vectors, vertex_normals, vertex_tangents
from genesis3d.io import json_metadata
from genesis3d.io.atomic import Destination, Source, read_source, write_output

logger = logging.getLogger(__name__)

_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _CLAMP_TO_EDGE = 9729, 9987, 33071
_POINTS, _TRIANGLES = 0, 4
_MODE_NAMES = {1: "LINES", 2: "LINE_LOOP", 3: "LINE_STRIP", 5: "TRIANGLE_STRIP", 6: "TRIANGLE_FAN"}
_COMPONENT_DTYPES = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_COMPONENT_TYPES = {np.dtype(dtype): code for code, dtype in _COMPONENT_DTYPES.items()}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
#: Extensions a file may require that this reader still reads correctly.
_READABLE_EXTENSIONS = {"KHR_mesh_quantization", "KHR_materials_unlit", "KHR_gaussian_splatting"}


def _generator() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"genesis3d {version('genesis3d')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "genesis3d"


# ----------------------------------------------------------------------------- writing


class _Builder:
    """Accumulates the binary chunk, buffer views, accessors, images and textures of one GLB."""

    def __init__(self) -> None:
        self.binary = bytearray()
        self.buffer_views: list[dict] = []
        self.accessors: list[dict] = []
        self.images: list[dict] = []
        self.textures: list[dict] = []

    def _view(self, data: bytes, target: int | None) -> int:
        while len(self.binary) % 4:  # every view starts 4-byte aligned
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
        """Add an accessor of ``array`` ((count,) or (count, width)); returns its index."""
        array = np.ascontiguousarray(array)
        accessor: dict[str, Any] = {
            "bufferView": self._view(array.astype(array.dtype.newbyteorder("<")).tobytes(), target),
            "componentType": _COMPONENT_TYPES[array.dtype],
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
        """Add a PNG texture of ``pixels`` ((H, W, 3|4) uint8); returns its index."""
        from PIL import Image

        buffer = _io.BytesIO()
        mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
        Image.fromarray(pixels, mode).save(buffer, format="PNG", compress_level=6)
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


def _unit_normals(mesh: MeshAsset) -> np.ndarray:
    if mesh.normals is None:
        return vertex_normals(mesh.positions, mesh.faces)
    lengths = np.linalg.norm(mesh.normals.astype(np.float64), axis=1)
    if np.all(np.abs(lengths - 1.0) < 1e-5):
        return mesh.normals  # written unchanged so that a round trip is exact
    # glTF requires unit normals; zero ones (no direction at all) become +Z.
    return unit_vectors(mesh.normals)


def _mesh_primitive(mesh: MeshAsset, builder: _Builder, material: int) -> dict[str, Any]:
    """The primitive of a triangle mesh; its arrays go into ``builder``."""
    normals = _unit_normals(mesh)
    attributes = {
        "POSITION": builder.accessor(mesh.positions, "VEC3", target=_ARRAY_BUFFER, bounds=True),
        "NORMAL": builder.accessor(normals, "VEC3", target=_ARRAY_BUFFER),
    }
    if mesh.uvs is not None:
        attributes["TEXCOORD_0"] = builder.accessor(mesh.uvs, "VEC2", target=_ARRAY_BUFFER)
        if mesh.material.normal_texture is not None:
            tangents = vertex_tangents(mesh.positions, mesh.faces, normals, mesh.uvs)
            attributes["TANGENT"] = builder.accessor(tangents, "VEC4", target=_ARRAY_BUFFER)
    if mesh.colors is not None:
        attributes["COLOR_0"] = builder.accessor(mesh.colors, "VEC4", target=_ARRAY_BUFFER)
    # 65535 is the primitive-restart value of uint16 indices, which glTF forbids.
    index_dtype = np.uint16 if mesh.n_vertices < 65535 else np.uint32
    indices = builder.accessor(
        mesh.faces.reshape(-1).astype(index_dtype), "SCALAR", target=_ELEMENT_ARRAY_BUFFER
    )
    return {"attributes": attributes, "indices": indices, "material": material, "mode": _TRIANGLES}


def _container(document: dict[str, Any], binary: bytes) -> bytes:
    """Pack a glTF document and its binary chunk into GLB bytes (chunks 4-byte aligned)."""
    binary = binary + b"\x00" * (-len(binary) % 4)
    document["buffers"] = [{"byteLength": len(binary)}]
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<4sII", _MAGIC, 2, total),
            struct.pack("<II", len(text), _JSON_CHUNK),
            text,
            struct.pack("<II", len(binary), _BIN_CHUNK),
            binary,
        ]
    )


def encode(mesh: MeshAsset | SplatAsset) -> bytes:
    """The bytes of a GLB holding ``mesh`` (or Gaussian splats, see the module docstring).

    Args:
        mesh: the mesh or splats, in the world frame (which is glTF's).

    Returns:
        The complete file content.

    Raises:
        AssetError: for a mesh without faces, splats without Gaussians, or metadata that JSON
            cannot hold.
    """
    if isinstance(mesh, SplatAsset):
        return _encode_splats(mesh)
    if mesh.n_faces == 0:
        raise AssetError("a GLB needs at least one face, got a mesh with none")
    extras = json_metadata(mesh.metadata)
    builder = _Builder()
    materials = [_material_json(mesh.material, builder)]
    primitive = _mesh_primitive(mesh, builder, material=0)
    asset: dict[str, Any] = {"version": "2.0", "generator": _generator()}
    if extras:
        asset["extras"] = extras
    document: dict[str, Any] = {
        "asset": asset,
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": str(mesh.metadata.get("name", "asset"))}],
        "meshes": [{"primitives": [primitive]}],
        "materials": materials,
        "accessors": builder.accessors,
        "bufferViews": builder.buffer_views,
    }
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
    return _container(document, bytes(builder.binary))


def _encode_splats(splats: SplatAsset) -> bytes:
    from genesis3d.io.glb_splats import EXTENSION, splat_document

    extras = json_metadata(splats.metadata)
    builder = _Builder()
    primitive = splat_document(splats, builder)
    asset: dict[str, Any] = {"version": "2.0", "generator": _generator()}
    if extras:
        asset["extras"] = extras
    document: dict[str, Any] = {
        "asset": asset,
        "extensionsUsed": [EXTENSION],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": str(splats.metadata.get("name", "splats"))}],
        "meshes": [{"primitives": [primitive]}],
        "accessors": builder.accessors,
        "bufferViews": builder.buffer_views,
    }
    return _container(document, bytes(builder.binary))


def write_glb(mesh: MeshAsset | SplatAsset, destination: Destination) -> None:
    """Write ``mesh`` (or splats) as a GLB file (atomically) or to an open binary stream.

    Args:
        mesh: the mesh or splats.
        destination: a path or a binary stream.

    Raises:
        AssetError: see :func:`encode`.
    """
    write_output(encode(mesh), destination)


# ----------------------------------------------------------------------------- reading


def read_glb(source: Source) -> MeshAsset | SplatAsset:
    """Read a GLB file or its bytes into one MeshAsset or SplatAsset (see :func:`decode`).

    Raises:
        InputError: a path that does not exist.
        FormatError: see :func:`decode`.
    """
    data, name = read_source(source)
    return decode(data, name)


def _chunks(data: bytes, source: str) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != _MAGIC:
        raise FormatError(f"{source} is not a GLB file (it does not start with a glTF header)")
    _, version, length = struct.unpack_from("<4sII", data, 0)
    if version != 2:
        raise FormatError(f"{source} is glTF version {version}; only glTF 2.0 is supported")
    if length > len(data):
        raise FormatError(
            f"{source} is truncated: its header says {length} bytes, the file has {len(data)}"
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
    if not isinstance(document, dict):
        raise FormatError(f"{source} has no JSON chunk with a glTF document")
    return document, binary


def _view_bytes(document: dict, binary: bytes, index: int, source: str) -> tuple[bytes, int | None]:
    view = document["bufferViews"][index]
    buffer = view.get("buffer", 0)
    if buffer != 0 or "uri" in document["buffers"][buffer]:
        raise FormatError(
            f"{source} refers to an external buffer; only self-contained GLB files are supported"
        )
    start = view.get("byteOffset", 0)
    end = start + view["byteLength"]
    if end > len(binary):
        raise FormatError(
            f"{source} is truncated: buffer view {index} ends at byte {end}, the binary chunk has {len(binary)}"
        )
    return binary[start:end], view.get("byteStride")


def _accessor(document: dict, binary: bytes, index: int, source: str) -> np.ndarray:
    """An accessor's values: (count, width), float32 for normalised integers."""
    accessor = document["accessors"][index]
    if "sparse" in accessor:
        raise FormatError(
            f"{source} uses a sparse accessor ({index}), which Genesis does not read; "
            "re-export it without sparse accessors"
        )
    dtype = np.dtype(_COMPONENT_DTYPES[accessor["componentType"]]).newbyteorder("<")
    width = _TYPE_SIZES[accessor["type"]]
    count = accessor["count"]
    if "bufferView" not in accessor:
        return np.zeros((count, width), dtype)  # glTF: an accessor without a view is zeros
    data, stride = _view_bytes(document, binary, accessor["bufferView"], source)
    element = dtype.itemsize * width
    stride = stride or element
    offset = accessor.get("byteOffset", 0)
    needed = offset + stride * (count - 1) + element if count else offset
    if needed > len(data):
        raise FormatError(f"{source} is truncated: accessor {index} reads past its buffer view")
    raw = np.frombuffer(data, np.uint8, count=needed - offset, offset=offset)
    if stride == element:
        values = raw.view(dtype).reshape(count, width)
    else:  # interleaved: gather each element's bytes, then reinterpret
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, element), strides=(stride, 1))
        values = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    if accessor.get("normalized") and dtype.kind in "iu":
        return np.maximum(values.astype(np.float32) / np.iinfo(dtype).max, -1.0)
    return values.copy()


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.array(node["matrix"], np.float64).reshape(4, 4).T  # column-major in glTF
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
    """(mesh index, world matrix) of every node that shows a mesh in the default scene."""
    nodes = document.get("nodes", [])
    scenes = document.get("scenes")
    if scenes:
        roots = scenes[document.get("scene", 0)].get("nodes", [])
    else:
        children = {child for node in nodes for child in node.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    # Depth first in document order: push in reverse so the first root pops first.
    instances, stack, seen = [], [(root, np.eye(4)) for root in reversed(roots)], set()
    while stack:
        index, parent = stack.pop()
        if index in seen:
            raise FormatError("the node hierarchy has a cycle or a node with two parents")
        seen.add(index)
        node = nodes[index]
        world = parent @ _node_matrix(node)
        if "mesh" in node:
            instances.append((node["mesh"], world))
        stack.extend((child, world) for child in reversed(node.get("children", [])))
    if not instances and not nodes:  # a bare list of meshes, no nodes at all
        instances = [(i, np.eye(4)) for i in range(len(document.get("meshes", [])))]
    return instances


def _image(
    document: dict, binary: bytes, texture_info: dict | None, source: str, alpha: bool
) -> np.ndarray | None:
    if texture_info is None:
        return None
    from PIL import Image, UnidentifiedImageError

    texture = document["textures"][texture_info["index"]]
    image_index = texture.get("source")
    if image_index is None:  # e.g. EXT_texture_webp keeps its image in the extension
        for extension in texture.get("extensions", {}).values():
            if isinstance(extension, dict) and "source" in extension:
                image_index = extension["source"]
                break
    if image_index is None:
        raise FormatError(f"{source}: texture {texture_info['index']} has no image")
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
    return np.asarray(picture.convert("RGBA" if alpha and has_alpha else "RGB"))


def decode(data: bytes, source: str = "<bytes>") -> MeshAsset | SplatAsset:
    """Decode GLB bytes into one MeshAsset, merging every triangle primitive.

    A file whose only primitives are ``KHR_gaussian_splatting`` splats gives a SplatAsset.

    Args:
        data: the file content.
        source: a name for messages.

    Returns:
        The mesh, with node transforms baked into positions and normals.

    Raises:
        FormatError: for bytes that are not a valid GLB, or hold no triangles.
    """
    document, binary = _chunks(data, source)
    unsupported = sorted(set(document.get("extensionsRequired", [])) - _READABLE_EXTENSIONS)
    if unsupported:
        raise FormatError(
            f"{source} requires the glTF extension(s) {', '.join(unsupported)}, which Genesis "
            "does not read; re-export it without them (e.g. without Draco or Meshopt compression)"
        )
    ignored = sorted(set(document.get("extensionsUsed", [])) - _READABLE_EXTENSIONS)
    if ignored:
        logger.warning("%s: ignoring glTF extension(s) %s", source, ", ".join(ignored))
    try:
        if _only_splats(document):
            from genesis3d.io.glb_splats import read_splats

            return read_splats(document, binary, source)
        return _assemble(document, binary, source)
    except FormatError:
        raise
    except AssetError as error:
        raise FormatError(f"{source} holds a mesh Genesis cannot use: {error}") from error
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise FormatError(
            f"{source} is not a valid glTF document ({type(error).__name__}: {error}); "
            "check it with the Khronos glTF validator"
        ) from error


def _only_splats(document: dict) -> bool:
    from genesis3d.io.glb_splats import has_splats

    primitives = [p for mesh in document.get("meshes", []) for p in mesh.get("primitives", [])]
    triangles = any(p.get("mode", _TRIANGLES) != _POINTS for p in primitives)
    return has_splats(document) and not triangles


def _primitive_part(
    document: dict, binary: bytes, primitive: dict, world: np.ndarray, source: str
) -> dict[str, np.ndarray]:
    attributes = primitive["attributes"]
    positions = _accessor(document, binary, attributes["POSITION"], source).astype(np.float64)
    count = len(positions)
    if "indices" in primitive:
        flat = _accessor(document, binary, primitive["indices"], source).reshape(-1)
        if len(flat) % 3:
            raise FormatError(f"{source}: a triangle primitive has {len(flat)} indices")
        faces = flat.astype(np.int64).reshape(-1, 3)
    else:
        faces = np.arange(count - count % 3).reshape(-1, 3)
    part: dict[str, np.ndarray] = {"faces": faces}
    linear = world[:3, :3]
    part["positions"] = positions @ linear.T + world[:3, 3]
    if "NORMAL" in attributes:
        normals = _accessor(document, binary, attributes["NORMAL"], source).astype(np.float64)
        part["normals"] = unit_vectors(normals @ np.linalg.inv(linear))  # inverse transpose
    if "TEXCOORD_0" in attributes:
        part["uvs"] = _accessor(document, binary, attributes["TEXCOORD_0"], source)
    if "COLOR_0" in attributes:
        colors = _accessor(document, binary, attributes["COLOR_0"], source).astype(np.float32)
        if colors.shape[1] == 3:
            colors = np.concatenate([colors, np.ones((count, 1), np.float32)], axis=1)
        part["colors"] = colors
    if np.linalg.det(linear) < 0:  # a mirroring transform turns the winding inside out
        part["faces"] = part["faces"][:, ::-1]
    return part


def _assemble(document: dict, binary: bytes, source: str) -> MeshAsset:
    parts: list[dict[str, np.ndarray]] = []
    materials: list[int | None] = []
    points = 0
    for mesh_index, world in _mesh_instances(document):
        for primitive in document["meshes"][mesh_index]["primitives"]:
            mode = primitive.get("mode", _TRIANGLES)
            if mode == _POINTS:
                points += 1
                continue
            if mode != _TRIANGLES:
                raise FormatError(
                    f"{source} holds a {_MODE_NAMES.get(mode, mode)} primitive; Genesis reads "
                    "triangle lists only (re-export with triangulated meshes)"
                )
            parts.append(_primitive_part(document, binary, primitive, world, source))
            materials.append(primitive.get("material"))
    if points:
        logger.warning("%s: skipped %d POINTS primitive(s)", source, points)
    if not parts:
        raise FormatError(
            f"{source} holds no triangle mesh"
            + (
                f" (only {points} POINTS primitive(s), which Genesis does not read)"
                if points
                else ""
            )
        )
    if len(set(materials)) > 1:
        logger.warning(
            "%s: primitives use %d different materials; keeping the first one for the whole mesh",
            source,
            len(set(materials)),
        )
    offsets = np.cumsum([0] + [len(part["positions"]) for part in parts])
    merged: dict[str, Any] = {
        "positions": np.concatenate([part["positions"] for part in parts]),
        "faces": np.concatenate(
            [part["faces"] + offset for part, offset in zip(parts, offsets[:-1], strict=True)]
        ),
    }
    for key in ("normals", "uvs", "colors"):
        if all(key in part for part in parts):
            merged[key] = np.concatenate([part[key] for part in parts])
        elif any(key in part for part in parts):
            logger.warning("%s: only some primitives have %s; dropping them all", source, key)
    material = _read_material(document, binary, materials[0], source)
    if "uvs" not in merged:
        material = _untextured(material, source)
    extras = document.get("asset", {}).get("extras", {})
    return MeshAsset(
        material=material, metadata=extras if isinstance(extras, dict) else {}, **merged
    )


def _untextured(material: PBRMaterial, source: str) -> PBRMaterial:
    textured = [
        name
        for name in ("base_color_texture", "metallic_roughness_texture", "normal_texture")
        if getattr(material, name) is not None
    ]
    if textured:
        logger.warning("%s: the mesh has no UVs; dropping textures %s", source, textured)
        for name in textured:
            setattr(material, name, None)
    return material


def _read_material(document: dict, binary: bytes, index: int | None, source: str) -> PBRMaterial:
    if index is None:
        return PBRMaterial()
    entry = document["materials"][index]
    pbr = entry.get("pbrMetallicRoughness", {})
    # Defaults are glTF's, which differ from PBRMaterial's (metallic 1 in glTF).
    return PBRMaterial(
        base_color_texture=_image(document, binary, pbr.get("baseColorTexture"), source, True),
        base_color_factor=tuple(pbr.get("baseColorFactor", (1.0, 1.0, 1.0, 1.0))),
        metallic_roughness_texture=_image(
            document, binary, pbr.get("metallicRoughnessTexture"), source, False
        ),
        metallic_factor=pbr.get("metallicFactor", 1.0),
        roughness_factor=pbr.get("roughnessFactor", 1.0),
        normal_texture=_image(document, binary, entry.get("normalTexture"), source, False),
        alpha_mode=entry.get("alphaMode", "OPAQUE"),
        alpha_cutoff=entry.get("alphaCutoff", 0.5),
        double_sided=bool(entry.get("doubleSided", False)),
        name=entry.get("name", "material"),
    )
