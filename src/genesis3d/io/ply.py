"""PLY: Gaussian splats in the INRIA 3DGS layout, or a binary triangle mesh.

Splats (binary little-endian, float32 per property):
``x y z nx ny nz f_dc_0..2 [f_rest_0..3k-1] opacity scale_0..2 rot_0..3``, with opacity as a
logit, scales as natural logarithms, rotation as (w, x, y, z), ``f_rest`` channel-major
(all red coefficients, then green, then blue) and positions in the RDF frame 3DGS viewers
expect (see :mod:`genesis3d.io._splat_frame`).

Meshes: ``vertex`` with ``x y z`` (+ ``nx ny nz``, + ``s t``, + ``red green blue alpha`` as
uchar) and ``face`` with a ``uchar``-counted ``int`` list ``vertex_indices``; world frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import FormatError
from genesis3d.io._splat_frame import flip
from genesis3d.io.atomic import atomic_write

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_LOGIT_LIMIT = 1e-6  # opacity 0 or 1 would give an infinite logit


def _header(elements: list[tuple[str, int, list[str]]], comments: list[str]) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments)]
    for name, count, properties in elements:
        lines.append(f"element {name} {count}")
        lines.extend(properties)
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def splat_properties(sh_rest_count: int) -> list[str]:
    """Property names of the INRIA layout for ``sh_rest_count`` coefficients per channel."""
    rest = [f"f_rest_{i}" for i in range(3 * sh_rest_count)]
    return [
        "x",
        "y",
        "z",
        "nx",
        "ny",
        "nz",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        *rest,
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]


def encode_splats(splats: SplatAsset) -> bytes:
    """The bytes of an INRIA-layout PLY of ``splats``."""
    n = splats.n_splats
    k = 0 if splats.sh_rest is None else splats.sh_rest.shape[1]
    names = splat_properties(k)
    means, rotations = flip(splats.means, splats.rotations)
    opacity = np.clip(splats.opacities.astype(np.float64), _LOGIT_LIMIT, 1 - _LOGIT_LIMIT)
    columns = [means, np.zeros((n, 3), np.float32), splats.sh0]
    if k:
        columns.append(splats.sh_rest.transpose(0, 2, 1).reshape(n, 3 * k))  # channel-major
    columns += [np.log(opacity / (1 - opacity))[:, None], np.log(splats.scales), rotations]
    table = np.concatenate(
        [np.asarray(c, np.float32).reshape(n, -1) for c in columns], axis=1
    ).astype("<f4")
    header = _header(
        [("vertex", n, [f"property float {name}" for name in names])], ["genesis3d frame RDF"]
    )
    return header + table.tobytes()


def encode_mesh(mesh: MeshAsset) -> bytes:
    """The bytes of a binary PLY of ``mesh`` (positions, normals, UVs, colours, faces)."""
    n = mesh.n_vertices
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if mesh.normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if mesh.uvs is not None:
        fields += [("s", "<f4"), ("t", "<f4")]
    if mesh.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    vertices = np.empty(n, dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = mesh.positions.T
    if mesh.normals is not None:
        vertices["nx"], vertices["ny"], vertices["nz"] = mesh.normals.T
    if mesh.uvs is not None:
        vertices["s"], vertices["t"] = mesh.uvs.T
    if mesh.colors is not None:
        rgba = np.round(mesh.colors * 255).astype(np.uint8)
        vertices["red"], vertices["green"], vertices["blue"], vertices["alpha"] = rgba.T
    faces = np.empty(mesh.n_faces, dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    faces["count"] = 3
    faces["indices"] = mesh.faces
    type_names = {"<f4": "float", "u1": "uchar"}
    vertex_props = [f"property {type_names[kind]} {name}" for name, kind in fields]
    header = _header(
        [
            ("vertex", n, vertex_props),
            ("face", mesh.n_faces, ["property list uchar int vertex_indices"]),
        ],
        ["genesis3d mesh"],
    )
    return header + vertices.tobytes() + faces.tobytes()


def write(asset: SplatAsset | MeshAsset, path: str | Path) -> None:
    """Write splats (INRIA layout) or a mesh as a binary PLY file, atomically."""
    data = encode_mesh(asset) if isinstance(asset, MeshAsset) else encode_splats(asset)
    with atomic_write(path) as stream:
        stream.write(data)


# ----------------------------------------------------------------------------- reading


def _parse_header(data: bytes, source: str) -> tuple[list[dict], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise FormatError(f"{source} is not a PLY file (no ply header)")
    body = data.index(b"\n", end) + 1
    elements: list[dict] = []
    fmt = None
    for raw in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        words = raw.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append({"name": words[1], "count": int(words[2]), "properties": []})
        elif words[0] == "property" and elements:
            if words[1] == "list":
                elements[-1]["properties"].append(
                    (words[4], "list", _type(words[2], source), _type(words[3], source))
                )
            else:
                elements[-1]["properties"].append((words[2], _type(words[1], source)))
    if fmt != "binary_little_endian":
        raise FormatError(
            f"{source} is a {fmt} PLY; only binary_little_endian PLY files are supported (re-save it as binary)"
        )
    return elements, body


def _type(name: str, source: str) -> str:
    if name not in _PLY_TYPES:
        raise FormatError(f"{source} uses the unknown PLY type {name!r}")
    return "<" + _PLY_TYPES[name]


def read(path: str | Path) -> SplatAsset | MeshAsset:
    """Read a PLY file: Gaussian splats when its vertices carry ``f_dc_0`` and ``opacity``, else a mesh.

    Raises:
        FormatError: for a malformed, truncated or non-binary PLY.
    """
    data = Path(path).read_bytes()
    elements, offset = _parse_header(data, str(path))
    arrays: dict[str, np.ndarray] = {}
    for element in elements:
        array, offset = _read_element(data, offset, element, str(path))
        arrays[element["name"]] = array
    vertices = arrays.get("vertex")
    if vertices is None:
        raise FormatError(f"{path} has no vertex element")
    names = set(vertices.dtype.names or ())
    if {"f_dc_0", "opacity", "scale_0", "rot_0"} <= names:
        return _splats_from(vertices, str(path))
    if "face" in arrays:
        return _mesh_from(vertices, arrays["face"], str(path))
    raise FormatError(
        f"{path} holds neither Gaussian splats (f_dc_0, opacity, scale_0, rot_0) nor faces"
    )


def _read_element(data: bytes, offset: int, element: dict, source: str) -> tuple[np.ndarray, int]:
    count, properties = element["count"], element["properties"]
    if all(p[1] != "list" for p in properties):
        dtype = np.dtype([(p[0], p[1]) for p in properties])
        if offset + dtype.itemsize * count > len(data):
            raise FormatError(
                f"{source} is truncated: element {element['name']} needs {dtype.itemsize * count} bytes"
            )
        return np.frombuffer(
            data, dtype, count=count, offset=offset
        ), offset + dtype.itemsize * count
    # faces: the common case is one list with a constant length; read it as fixed records
    if len(properties) != 1:
        raise FormatError(
            f"{source}: element {element['name']} mixes lists and scalars, which is not supported"
        )
    name, _, count_type, item_type = properties[0]
    if count == 0:
        return np.zeros((0, 3), np.int64), offset
    first = int(np.frombuffer(data, count_type, count=1, offset=offset)[0])
    dtype = np.dtype([("count", count_type), (name, item_type, (first,))])
    if offset + dtype.itemsize * count > len(data):
        raise FormatError(f"{source} is truncated inside element {element['name']}")
    records = np.frombuffer(data, dtype, count=count, offset=offset)
    if (records["count"] != first).any():
        raise FormatError(
            f"{source}: faces with different vertex counts are not supported; triangulate the mesh first"
        )
    if first != 3:
        raise FormatError(f"{source}: faces have {first} vertices; only triangles are supported")
    return records[name].astype(np.int64), offset + dtype.itemsize * count


def _splats_from(vertices: np.ndarray, source: str) -> SplatAsset:
    def columns(names: list[str]) -> np.ndarray:
        return np.stack([vertices[name].astype(np.float32) for name in names], axis=1)

    rest_names = sorted(
        (n for n in vertices.dtype.names if n.startswith("f_rest_")),
        key=lambda n: int(n.split("_")[2]),
    )
    if len(rest_names) % 3 or len(rest_names) // 3 not in (0, 3, 8, 15):
        raise FormatError(
            f"{source} has {len(rest_names)} f_rest properties; expected 0, 9, 24 or 45"
        )
    k = len(rest_names) // 3
    sh_rest = columns(rest_names).reshape(-1, 3, k).transpose(0, 2, 1) if k else None
    rotations = columns(["rot_0", "rot_1", "rot_2", "rot_3"]).astype(np.float64)
    norms = np.linalg.norm(rotations, axis=1, keepdims=True)
    rotations = np.where(norms > 0, rotations / np.maximum(norms, 1e-30), [1.0, 0.0, 0.0, 0.0])
    means, rotations = flip(columns(["x", "y", "z"]), rotations)
    logits = vertices["opacity"].astype(np.float64)
    return SplatAsset(
        means=means,
        scales=np.exp(columns(["scale_0", "scale_1", "scale_2"]).astype(np.float64)),
        rotations=rotations,
        opacities=1.0 / (1.0 + np.exp(-logits)),
        sh0=columns(["f_dc_0", "f_dc_1", "f_dc_2"]),
        sh_rest=sh_rest,
    )


def _mesh_from(vertices: np.ndarray, faces: np.ndarray, source: str) -> MeshAsset:
    names = set(vertices.dtype.names)
    positions = np.stack([vertices[a].astype(np.float32) for a in "xyz"], axis=1)
    normals = (
        np.stack([vertices[a].astype(np.float32) for a in ("nx", "ny", "nz")], axis=1)
        if {"nx", "ny", "nz"} <= names
        else None
    )
    uv_names = ("s", "t") if {"s", "t"} <= names else ("u", "v") if {"u", "v"} <= names else None
    uvs = np.stack([vertices[a].astype(np.float32) for a in uv_names], axis=1) if uv_names else None
    colors = None
    if {"red", "green", "blue"} <= names:
        channels = [vertices[a].astype(np.float32) / 255.0 for a in ("red", "green", "blue")]
        channels.append(
            vertices["alpha"].astype(np.float32) / 255.0
            if "alpha" in names
            else np.ones(len(vertices), np.float32)
        )
        colors = np.stack(channels, axis=1)
    return MeshAsset(
        positions=positions,
        faces=faces,
        normals=normals,
        uvs=uvs,
        colors=colors,
        metadata={"source": source},
    )
