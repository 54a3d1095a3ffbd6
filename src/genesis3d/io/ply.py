"""PLY: Gaussian splats in the INRIA 3DGS layout, or a binary triangle mesh.

Splats (binary little-endian, float32 per property), the layout of the 3DGS reference
code that viewers (SuperSplat, Spark, antimatter15) read:
``x y z nx ny nz f_dc_0..2 [f_rest_0..3k-1] opacity scale_0..2 rot_0..3``, with opacity as a
logit, scales as natural logarithms, rotation as (w, x, y, z), ``f_rest`` channel-major
(all red coefficients, then green, then blue) and centres and rotations in the RDF frame of
3DGS captures (see :mod:`genesis3d.io._splat_frame`); a ``comment genesis3d frame RDF``
header line says so.

Meshes: ``vertex`` with ``x y z`` (+ ``nx ny nz``, + ``s t``, + ``red green blue alpha`` as
uchar) and ``face`` with a ``uchar``-counted ``int`` list ``vertex_indices``, in the world
frame. UVs are stored with the bottom-left origin most PLY tools use (``t = 1 - v``).

Both carry the asset's metadata as JSON in a ``comment genesis3d metadata`` line. The
reader takes binary PLY of either byte order, any property order and extra properties;
faces may be polygons (fan-triangulated). ASCII PLY is refused with a clear message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import FormatError
from genesis3d.io import json_metadata
from genesis3d.io._splat_frame import flip
from genesis3d.io.atomic import Destination, Source, read_source, write_output

logger = logging.getLogger(__name__)

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_BYTE_ORDERS = {"binary_little_endian": "<", "binary_big_endian": ">"}
_LOGIT_LIMIT = 1e-6  # opacity 0 or 1 would give an infinite logit
_METADATA_COMMENT = "genesis3d metadata "
_SPLAT_REQUIRED = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
_UV_NAMES = (("s", "t"), ("u", "v"), ("texture_u", "texture_v"), ("texture_s", "texture_t"))


# ----------------------------------------------------------------------------- writing


def _header(elements: list[tuple[str, int, list[str]]], comments: list[str]) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments)]
    for name, count, properties in elements:
        lines.append(f"element {name} {count}")
        lines.extend(properties)
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def _metadata_comments(metadata: dict[str, Any]) -> list[str]:
    extras = json_metadata(metadata)
    # ensure_ascii: a PLY header is ASCII, and escaped text cannot hold a line break.
    return [_METADATA_COMMENT + json.dumps(extras, ensure_ascii=True)] if extras else []


def splat_properties(sh_rest_count: int) -> list[str]:
    """Property names of the INRIA layout for ``sh_rest_count`` coefficients per channel."""
    rest = [f"f_rest_{i}" for i in range(3 * sh_rest_count)]
    return [
        *("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"),
        *rest,
        *("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"),
    ]


def encode_splats(splats: SplatAsset) -> bytes:
    """The bytes of an INRIA-layout PLY of ``splats``.

    Raises:
        AssetError: for metadata that JSON cannot hold.
    """
    n = splats.n_splats
    k = 0 if splats.sh_rest is None else splats.sh_rest.shape[1]
    comments = ["genesis3d frame RDF", *_metadata_comments(splats.metadata)]
    means, rotations = flip(splats.means, splats.rotations)
    opacity = np.clip(splats.opacities.astype(np.float64), _LOGIT_LIMIT, 1 - _LOGIT_LIMIT)
    columns = [means, np.zeros((n, 3), np.float32), splats.sh0]
    if k:
        columns.append(splats.sh_rest.transpose(0, 2, 1).reshape(n, 3 * k))  # channel-major
    columns += [np.log(opacity / (1 - opacity))[:, None], np.log(splats.scales), rotations]
    table = np.concatenate([np.asarray(c, "<f4").reshape(n, -1) for c in columns], axis=1)
    header = _header(
        [("vertex", n, [f"property float {name}" for name in splat_properties(k)])], comments
    )
    return header + table.tobytes()


def encode_mesh(mesh: MeshAsset) -> bytes:
    """The bytes of a binary PLY of ``mesh`` (positions, normals, UVs, colours, faces).

    The material is not written (PLY has no standard for it).

    Raises:
        AssetError: for metadata that JSON cannot hold.
    """
    comments = ["genesis3d mesh", *_metadata_comments(mesh.metadata)]
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if mesh.normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if mesh.uvs is not None:
        fields += [("s", "<f4"), ("t", "<f4")]
    if mesh.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    vertices = np.empty(mesh.n_vertices, dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = mesh.positions.T
    if mesh.normals is not None:
        vertices["nx"], vertices["ny"], vertices["nz"] = mesh.normals.T
    if mesh.uvs is not None:
        vertices["s"] = mesh.uvs[:, 0]
        vertices["t"] = 1.0 - mesh.uvs[:, 1].astype(np.float64)
    if mesh.colors is not None:
        rgba = np.round(mesh.colors * 255).astype(np.uint8)
        vertices["red"], vertices["green"], vertices["blue"], vertices["alpha"] = rgba.T
    faces = np.empty(mesh.n_faces, dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    faces["count"] = 3
    faces["indices"] = mesh.faces
    type_names = {"<f4": "float", "u1": "uchar"}
    header = _header(
        [
            ("vertex", mesh.n_vertices, [f"property {type_names[t]} {n}" for n, t in fields]),
            ("face", mesh.n_faces, ["property list uchar int vertex_indices"]),
        ],
        comments,
    )
    return header + vertices.tobytes() + faces.tobytes()


def write_ply(asset: SplatAsset | MeshAsset, destination: Destination) -> None:
    """Write splats (INRIA layout) or a mesh as a binary PLY, atomically or to a stream.

    Args:
        asset: a SplatAsset or a MeshAsset.
        destination: a path or a binary stream.

    Raises:
        AssetError: for metadata that JSON cannot hold.
    """
    data = encode_mesh(asset) if isinstance(asset, MeshAsset) else encode_splats(asset)
    write_output(data, destination)


# ----------------------------------------------------------------------------- reading


def _parse_header(data: bytes, source: str) -> tuple[list[dict], int, str, list[str]]:
    """(elements, offset of the body, byte order '<' or '>', comments) of a PLY."""
    if not data.startswith((b"ply\n", b"ply\r\n")):
        raise FormatError(f"{source} is not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header", 0, 1 << 20)
    newline = data.find(b"\n", end) if end >= 0 else -1
    if newline < 0:
        raise FormatError(f"{source} is not a complete PLY file: no end_header line")
    elements: list[dict] = []
    comments: list[str] = []
    fmt = None
    for number, raw in enumerate(data[:end].decode("ascii", "replace").splitlines()[1:], 2):
        words = raw.split()
        try:
            if not words or words[0] == "obj_info":
                continue
            if words[0] == "comment":
                comments.append(raw.strip()[len("comment") :].strip())
            elif words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append({"name": words[1], "count": int(words[2]), "properties": []})
            elif words[0] == "property" and elements:
                if words[1] == "list":
                    count_type, item_type = _type(words[2], source), _type(words[3], source)
                    elements[-1]["properties"].append((words[4], count_type, item_type))
                else:
                    elements[-1]["properties"].append((words[2], _type(words[1], source), None))
                names = [prop[0] for prop in elements[-1]["properties"]]
                if len(set(names)) != len(names):
                    raise ValueError(f"property {names[-1]} appears twice")
            else:
                raise ValueError(words[0])
        except FormatError:
            raise
        except (IndexError, ValueError) as error:
            raise FormatError(
                f"{source} has a malformed PLY header line {number}: {raw!r}"
            ) from error
    if fmt == "ascii":
        raise FormatError(
            f"{source} is an ASCII PLY; Genesis reads binary PLY only (re-save it as binary, "
            "e.g. in MeshLab or with trimesh)"
        )
    if fmt not in _BYTE_ORDERS:
        raise FormatError(f"{source} has the unknown PLY format {fmt!r}")
    return elements, newline + 1, _BYTE_ORDERS[fmt], comments


def _type(name: str, source: str) -> str:
    if name not in _PLY_TYPES:
        raise FormatError(f"{source} uses the unknown PLY type {name!r}")
    return _PLY_TYPES[name]


def _truncated(source: str, element: dict) -> FormatError:
    return FormatError(
        f"{source} is truncated: element '{element['name']}' ({element['count']} records) "
        "runs past the end of the file"
    )


class _Columns(dict):
    """The columns of a list-free element, keeping its table for fast multi-column reads."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__((name, table[name]) for name in table.dtype.names or ())
        self.table = table


def _read_element(
    data: bytes, offset: int, element: dict, order: str, source: str
) -> tuple[dict[str, Any], int]:
    """Columns of one element and the offset after it.

    Scalar properties become (count,) arrays; list properties become (lengths (count,)
    int64, values (total,)) pairs.
    """
    count, properties = element["count"], element["properties"]
    if all(item is None for _, _, item in properties):
        dtype = np.dtype([(name, order + kind) for name, kind, _ in properties])
        if offset + dtype.itemsize * count > len(data):
            raise _truncated(source, element)
        table = np.frombuffer(data, dtype, count=count, offset=offset)
        return _Columns(table), offset + dtype.itemsize * count
    if count == 0:
        return {
            name: (np.zeros(0, np.int64), np.zeros(0, order + item))
            if item
            else np.zeros(0, order + kind)
            for name, kind, item in properties
        }, offset
    # Fast path: every record's lists as long as the first record's (triangles, usually).
    fields, position = [], offset
    for name, kind, item in properties:
        size = np.dtype(kind).itemsize
        if position + size > len(data):
            raise _truncated(source, element)
        if item is None:
            fields.append((name, order + kind))
        else:
            length = int(np.frombuffer(data, order + kind, count=1, offset=position)[0])
            fields += [(f"{name}\0count", order + kind), (name, order + item, (length,))]
            size += np.dtype(item).itemsize * length
        position += size
    dtype = np.dtype(fields)
    if offset + dtype.itemsize * count <= len(data):
        table = np.frombuffer(data, dtype, count=count, offset=offset)
        lists = [name for name, _, item in properties if item is not None]
        if all((table[f"{name}\0count"] == table.dtype[name].shape[0]).all() for name in lists):
            columns: dict[str, Any] = {}
            for name, _, item in properties:
                values = table[name]
                columns[name] = (
                    values
                    if item is None
                    else (np.full(count, values.shape[1], np.int64), values.reshape(-1))
                )
            return columns, offset + dtype.itemsize * count
    return _read_element_slowly(data, offset, element, order, source)


def _read_element_slowly(
    data: bytes, offset: int, element: dict, order: str, source: str
) -> tuple[dict[str, Any], int]:
    # Records of different lengths (mixed polygons): walk them one by one. Slower, same result.
    logger.info("%s: element '%s' has lists of varying length", source, element["name"])
    properties = element["properties"]
    scalars: dict[str, list] = {name: [] for name, _, item in properties if item is None}
    lengths: dict[str, list[int]] = {name: [] for name, _, item in properties if item}
    values: dict[str, list[np.ndarray]] = {name: [] for name in lengths}
    for _ in range(element["count"]):
        for name, kind, item in properties:
            size = np.dtype(kind).itemsize
            if offset + size > len(data):
                raise _truncated(source, element)
            value = np.frombuffer(data, order + kind, count=1, offset=offset)[0]
            offset += size
            if item is None:
                scalars[name].append(value)
                continue
            length = int(value)
            end = offset + np.dtype(item).itemsize * length
            if length < 0 or end > len(data):
                raise _truncated(source, element)
            lengths[name].append(length)
            values[name].append(np.frombuffer(data, order + item, count=length, offset=offset))
            offset = end
    columns: dict[str, Any] = {
        name: np.array(column, order + kind)
        for (name, kind, item), column in zip(
            [p for p in properties if p[2] is None], scalars.values(), strict=True
        )
    }
    for name, _, item in properties:
        if item is not None:
            flat = np.concatenate(values[name]) if values[name] else np.zeros(0, order + item)
            columns[name] = (np.array(lengths[name], np.int64), flat)
    return columns, offset


def read_ply(source: Source) -> SplatAsset | MeshAsset:
    """Read a PLY file or its bytes: splats when vertices carry ``f_dc_0`` and ``opacity``, else a mesh.

    Args:
        source: a path or the bytes of a file.

    Returns:
        A SplatAsset or a MeshAsset, in the world frame.

    Raises:
        InputError: a path that does not exist.
        FormatError: a malformed, truncated or ASCII PLY, or one that holds neither.
    """
    data, name = read_source(source)
    elements, offset, order, comments = _parse_header(data, name)
    columns: dict[str, dict[str, Any]] = {}
    for element in elements:
        columns[element["name"]], offset = _read_element(data, offset, element, order, name)
    metadata = _metadata_from(comments, name)
    vertices = columns.get("vertex")
    if vertices is None:
        raise FormatError(f"{name} has no 'vertex' element")
    if {"f_dc_0", "opacity"} <= set(vertices):
        missing = [key for key in _SPLAT_REQUIRED if key not in vertices]
        if missing:
            raise FormatError(
                f"{name} looks like Gaussian splats (f_dc_0, opacity) but lacks {', '.join(missing)}"
            )
        return _splats_from(vertices, metadata, name)
    if "face" in columns:
        return _mesh_from(vertices, columns["face"], metadata, name)
    raise FormatError(
        f"{name} holds neither Gaussian splats (vertex properties f_dc_0, opacity, ...) nor "
        "a mesh (a 'face' element); a bare point cloud cannot be loaded"
    )


def _metadata_from(comments: list[str], source: str) -> dict[str, Any]:
    for comment in comments:
        if comment.startswith(_METADATA_COMMENT):
            try:
                metadata = json.loads(comment[len(_METADATA_COMMENT) :])
            except json.JSONDecodeError as error:
                raise FormatError(f"{source} has a broken metadata comment: {error}") from error
            return metadata if isinstance(metadata, dict) else {}
    return {}


def _stack(columns: dict[str, Any], names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Columns ``names`` side by side: (count, len(names)) float32."""
    if isinstance(columns, _Columns):
        # A strided view of the table, converted in one pass: much faster than np.stack.
        from numpy.lib.recfunctions import structured_to_unstructured

        view = structured_to_unstructured(columns.table[list(names)], dtype=np.float32)
        return np.array(view, np.float32, order="C")  # a writable copy, not a view of the file
    return np.stack([np.asarray(columns[name], np.float32) for name in names], axis=1)


def _splats_from(vertices: dict[str, Any], metadata: dict, source: str) -> SplatAsset:
    rest_names = sorted(
        (key for key in vertices if key.startswith("f_rest_") and key[7:].isdigit()),
        key=lambda key: int(key[7:]),
    )
    if len(rest_names) not in (0, 9, 24, 45):
        raise FormatError(
            f"{source} has {len(rest_names)} f_rest properties; expected 0, 9, 24 or 45 (SH degree 0 to 3)"
        )
    k = len(rest_names) // 3
    sh_rest = _stack(vertices, rest_names).reshape(-1, 3, k).transpose(0, 2, 1) if k else None
    rotations = _stack(vertices, ("rot_0", "rot_1", "rot_2", "rot_3")).astype(np.float64)
    norms = np.linalg.norm(rotations, axis=1, keepdims=True)
    # Trained files hold unnormalised quaternions; a zero one is taken as no rotation.
    rotations = np.where(norms > 0, rotations / np.maximum(norms, 1e-30), [1.0, 0.0, 0.0, 0.0])
    means, rotations = flip(_stack(vertices, ("x", "y", "z")), rotations)
    logits = np.asarray(vertices["opacity"], np.float64)
    log_scales = _stack(vertices, ("scale_0", "scale_1", "scale_2")).astype(np.float64)
    if not (np.isfinite(logits).all() and np.isfinite(log_scales).all()):
        raise FormatError(f"{source} holds NaN or infinite opacities or scales")
    return SplatAsset(
        means=means,
        scales=np.exp(log_scales),
        rotations=rotations,
        opacities=1.0 / (1.0 + np.exp(-logits)),
        sh0=_stack(vertices, ("f_dc_0", "f_dc_1", "f_dc_2")),
        sh_rest=sh_rest,
        metadata=metadata,
    )


def _triangles(lengths: np.ndarray, flat: np.ndarray, source: str) -> np.ndarray:
    """Fan-triangulate polygons given as (lengths (m,), flat indices): (t, 3) int64."""
    flat = flat.astype(np.int64)
    if (lengths == 3).all():
        return flat.reshape(-1, 3)
    if (lengths < 3).any():
        logger.warning(
            "%s: dropped %d faces with fewer than 3 vertices", source, (lengths < 3).sum()
        )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    per_face = np.maximum(lengths - 2, 0)
    face = np.repeat(np.arange(len(lengths)), per_face)
    corner = np.arange(len(face)) - np.repeat(np.cumsum(per_face) - per_face, per_face) + 1
    first = starts[face]
    return np.stack([flat[first], flat[first + corner], flat[first + corner + 1]], axis=1)


def _mesh_from(
    vertices: dict[str, Any], faces: dict[str, Any], metadata: dict, source: str
) -> MeshAsset:
    if not {"x", "y", "z"} <= set(vertices):
        raise FormatError(f"{source}: vertices lack x, y, z")
    index_name = next(
        (key for key in ("vertex_indices", "vertex_index") if isinstance(faces.get(key), tuple)),
        None,
    )
    if index_name is None:
        raise FormatError(f"{source}: the face element has no vertex_indices list")
    positions = _stack(vertices, ("x", "y", "z"))
    triangles = _triangles(*faces[index_name], source)
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(positions)):
        raise FormatError(
            f"{source}: faces index vertices {triangles.min()}..{triangles.max()}, "
            f"but there are {len(positions)} vertices"
        )
    normals = _stack(vertices, ("nx", "ny", "nz")) if {"nx", "ny", "nz"} <= set(vertices) else None
    uv_names = next((pair for pair in _UV_NAMES if set(pair) <= set(vertices)), None)
    uvs = None
    if uv_names:
        uvs = _stack(vertices, uv_names).astype(np.float64)
        uvs[:, 1] = 1.0 - uvs[:, 1]  # PLY tools put the UV origin bottom-left, glTF top-left
    colors = None
    if {"red", "green", "blue"} <= set(vertices):
        channels = [
            _unit_color(vertices[key])
            for key in ("red", "green", "blue", "alpha")
            if key in vertices
        ]
        if len(channels) == 3:
            channels.append(np.ones(len(positions), np.float32))
        colors = np.stack(channels, axis=1)
    return MeshAsset(
        positions=positions,
        faces=triangles,
        normals=normals,
        uvs=uvs,
        colors=colors,
        metadata=metadata,
    )


def _unit_color(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind in "iu":
        return column.astype(np.float32) / float(np.iinfo(column.dtype).max)
    return np.clip(column.astype(np.float32), 0.0, 1.0)
