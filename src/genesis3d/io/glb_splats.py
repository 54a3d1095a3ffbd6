"""Gaussian splats in a GLB, with the ``KHR_gaussian_splatting`` glTF extension.

Layout (Khronos KHR_gaussian_splatting, review draft of 2025): one node, one mesh, one
``POINTS`` primitive whose attributes are

| attribute | accessor | holds |
| --- | --- | --- |
| ``POSITION`` | VEC3 float, with bounds | centres in metres (glTF frame: Y up, +Z forward) |
| ``COLOR_0`` | VEC4 float | 0.5 + SH_C0 * sh0 clipped to [0, 1], and the opacity: the point-cloud fallback |
| ``KHR_gaussian_splatting:ROTATION`` | VEC4 float | unit quaternion, (x, y, z, w) |
| ``KHR_gaussian_splatting:SCALE`` | VEC3 float | log of the standard deviations |
| ``KHR_gaussian_splatting:OPACITY`` | SCALAR float | opacity in [0, 1] |
| ``KHR_gaussian_splatting:SH_DEGREE_0_COEF_0`` | VEC3 float | SH band 0 (RGB) |
| ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_n`` | VEC3 float | higher bands, when the asset has them |

and the primitive extension ``{"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
"sortingMethod": "cameraDistance", "projection": "perspective"}``. Genesis' world frame is
glTF's, so nothing is converted. A viewer without the extension shows a coloured point
cloud.

The reader takes such files (from Genesis or other tools): float, normalised byte/short
attributes, and node transforms made of rotation, uniform scale and translation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genesis3d.assets import SplatAsset
from genesis3d.errors import AssetError, FormatError
from genesis3d.io.glb import _ARRAY_BUFFER, _POINTS, _accessor, _mesh_instances

EXTENSION = "KHR_gaussian_splatting"
PREFIX = f"{EXTENSION}:"
SH_C0 = 0.28209479177387814
_COEFFICIENTS_BY_DEGREE = {1: 3, 2: 5, 3: 7}
_PRIMITIVE_EXTENSION = {
    "kernel": "ellipse",
    "colorSpace": "srgb_rec709_display",
    "sortingMethod": "cameraDistance",
    "projection": "perspective",
}


def _rest_semantics(coefficients: int) -> list[str]:
    """Attribute names of the SH bands above 0, in the asset's coefficient order."""
    names = []
    for degree, count in _COEFFICIENTS_BY_DEGREE.items():
        if len(names) >= coefficients:
            break
        names.extend(f"{PREFIX}SH_DEGREE_{degree}_COEF_{n}" for n in range(count))
    return names


def splat_document(splats: SplatAsset, builder: Any) -> dict[str, Any]:
    """The mesh primitive of ``splats`` (accessors added to ``builder``)."""
    if splats.n_splats == 0:
        raise AssetError("a splat GLB needs at least one Gaussian, got none")
    colour = np.clip(0.5 + SH_C0 * splats.sh0, 0.0, 1.0)
    fallback = np.concatenate([colour, splats.opacities[:, None]], axis=1).astype(np.float32)
    xyzw = np.concatenate([splats.rotations[:, 1:], splats.rotations[:, :1]], axis=1)

    def add(array: np.ndarray, kind: str, bounds: bool = False) -> int:
        return builder.accessor(
            np.ascontiguousarray(array, np.float32), kind, target=_ARRAY_BUFFER, bounds=bounds
        )

    attributes = {
        "POSITION": add(splats.means, "VEC3", bounds=True),
        "COLOR_0": add(fallback, "VEC4"),
        f"{PREFIX}ROTATION": add(xyzw, "VEC4"),
        f"{PREFIX}SCALE": add(np.log(splats.scales), "VEC3"),
        f"{PREFIX}OPACITY": add(splats.opacities, "SCALAR"),
        f"{PREFIX}SH_DEGREE_0_COEF_0": add(splats.sh0, "VEC3"),
    }
    if splats.sh_rest is not None:
        for index, name in enumerate(_rest_semantics(splats.sh_rest.shape[1])):
            attributes[name] = add(splats.sh_rest[:, index], "VEC3")
    return {
        "attributes": attributes,
        "mode": _POINTS,
        "extensions": {EXTENSION: dict(_PRIMITIVE_EXTENSION)},
    }


def has_splats(document: dict) -> bool:
    """Whether any primitive of the document carries the splat extension."""
    return any(
        EXTENSION in primitive.get("extensions", {})
        for mesh in document.get("meshes", [])
        for primitive in mesh.get("primitives", [])
    )


def _quaternion_of_matrix(rotation: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a 3x3 rotation matrix (largest-component branch, stable)."""
    m = rotation
    trace = np.trace(m)
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    return np.asarray(q)


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (w, x, y, z) quaternions a (4,) and b (n, 4)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b.T
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=1,
    )


def _similarity(world: np.ndarray, source: str) -> tuple[float, np.ndarray]:
    """(uniform scale, rotation) of a node transform, refusing shear, mirror, uneven scale."""
    linear = world[:3, :3]
    determinant = float(np.linalg.det(linear))
    if determinant <= 0:
        raise FormatError(
            f"{source}: a node mirrors or collapses its splats (determinant {determinant:.3g}); "
            "Gaussians cannot be mirrored in place, apply the transform in the tool that made it"
        )
    scale = determinant ** (1.0 / 3.0)
    rotation = linear / scale
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4):
        raise FormatError(
            f"{source}: a node scales its splats unevenly or shears them, which has no exact "
            "Gaussian equivalent here; apply the transform in the tool that made the file"
        )
    return scale, rotation


def _attribute(
    document: dict, binary: bytes, attributes: dict, name: str, width: int, source: str
) -> np.ndarray:
    if name not in attributes:
        raise FormatError(f"{source}: a {EXTENSION} primitive lacks its {name} attribute")
    values = _accessor(document, binary, attributes[name], source).astype(np.float32)
    if values.shape[1] != width:
        raise FormatError(f"{source}: {name} has {values.shape[1]} components, expected {width}")
    return values


def _read_primitive(
    document: dict, binary: bytes, primitive: dict, world: np.ndarray, source: str
) -> dict[str, np.ndarray]:
    attributes = primitive["attributes"]

    def get(name: str, width: int) -> np.ndarray:
        return _attribute(document, binary, attributes, name, width, source)

    scale, rotation = _similarity(world, source)
    xyzw = get(f"{PREFIX}ROTATION", 4)
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1).astype(np.float64)
    norms = np.linalg.norm(wxyz, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise FormatError(f"{source}: {PREFIX}ROTATION holds zero quaternions")
    wxyz = _multiply(_quaternion_of_matrix(rotation), wxyz / norms)
    part = {
        "means": get("POSITION", 3).astype(np.float64) @ world[:3, :3].T + world[:3, 3],
        "rotations": wxyz / np.linalg.norm(wxyz, axis=1, keepdims=True),
        "scales": np.exp(get(f"{PREFIX}SCALE", 3).astype(np.float64)) * scale,
        "opacities": get(f"{PREFIX}OPACITY", 1)[:, 0],
    }
    sh0_name = f"{PREFIX}SH_DEGREE_0_COEF_0"
    if sh0_name in attributes:
        part["sh0"] = get(sh0_name, 3)
    elif "COLOR_0" in attributes:  # lighting by another method: recover band 0 from the colour
        colours = _accessor(document, binary, attributes["COLOR_0"], source)[:, :3]
        part["sh0"] = (colours.astype(np.float32) - 0.5) / SH_C0
    else:
        raise FormatError(f"{source}: a {EXTENSION} primitive has neither {sh0_name} nor COLOR_0")
    rest = []
    for name in _rest_semantics(15):
        if name not in attributes:
            break
        rest.append(get(name, 3))
    if len(rest) not in (0, 3, 8, 15):
        raise FormatError(
            f"{source}: spherical-harmonic bands are partly defined ({len(rest)} coefficients); "
            "the extension requires whole degrees"
        )
    if rest:
        part["sh_rest"] = np.stack(rest, axis=1)
    return part


def read_splats(document: dict, binary: bytes, source: str) -> SplatAsset:
    """Every ``KHR_gaussian_splatting`` primitive of the default scene, merged."""
    parts = []
    for mesh_index, world in _mesh_instances(document):
        for primitive in document["meshes"][mesh_index]["primitives"]:
            if EXTENSION in primitive.get("extensions", {}):
                parts.append(_read_primitive(document, binary, primitive, world, source))
    if not parts:
        raise FormatError(f"{source} holds no {EXTENSION} primitive in its scene")
    merged: dict[str, Any] = {
        key: np.concatenate([part[key] for part in parts]).astype(np.float32)
        for key in ("means", "scales", "rotations", "opacities", "sh0")
    }
    if (
        all("sh_rest" in part for part in parts)
        and len({part["sh_rest"].shape[1] for part in parts}) == 1
    ):
        merged["sh_rest"] = np.concatenate([part["sh_rest"] for part in parts]).astype(np.float32)
    extras = document.get("asset", {}).get("extras", {})
    try:
        return SplatAsset(metadata=extras if isinstance(extras, dict) else {}, **merged)
    except AssetError as error:
        raise FormatError(f"{source} holds splats Genesis cannot use: {error}") from error
