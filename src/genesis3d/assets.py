"""Typed, shape-checked 3D assets: :class:`MeshAsset` and :class:`SplatAsset`.

World frame (the one frame every asset is in, whatever model made it): glTF 2.0, that is
right-handed, **+Y up, +Z is the asset's front** (the side the input picture shows faces the
viewer on +Z), **-X is the asset's right**, and lengths are **metres**. Models produce their
own native frames; :mod:`genesis3d.geometry.frames` holds one explicit conversion per model.

UV convention: glTF's, origin at the top-left of the image, ``u`` to the right and ``v``
down, so texel row ``r`` of an ``H``-row texture is sampled at ``v = (r + 0.5) / H``.

Arrays are checked on construction: a wrong shape or dtype raises :class:`AssetError`
naming the field, what was expected and what came. Safe conversions (float64 to float32,
any integer type to int32 indices) are made silently; unsafe ones are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from genesis3d.errors import AssetError

AlphaMode = Literal["OPAQUE", "MASK", "BLEND"]
ALPHA_MODES: tuple[str, ...] = ("OPAQUE", "MASK", "BLEND")

#: Spherical-harmonics constant of band 0: display colour = 0.5 + SH_C0 * sh0.
SH_C0 = 0.28209479177387814

#: Number of SH coefficients per colour channel beyond band 0, by SH degree.
SH_REST_COUNT = {0: 0, 1: 3, 2: 8, 3: 15}


def _as_float_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise AssetError(
            f"`{name}` must be a float array of shape {_shape_text(shape)}, got dtype {array.dtype}"
        )
    _check_shape(name, array, shape)
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = (
            int((~np.isfinite(array)).any(axis=tuple(range(1, array.ndim))).sum())
            if array.ndim > 1
            else int((~np.isfinite(array)).sum())
        )
        raise AssetError(
            f"`{name}` must be finite, got {bad} rows with NaN or infinity; remove or repair them first"
        )
    return array


def _check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = array.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, array.shape, strict=True)
    )
    if not ok:
        raise AssetError(f"`{name}` must have shape {_shape_text(shape)}, got {tuple(array.shape)}")


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"


def _as_texture(name: str, value: Any, channels: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype != np.uint8:
        raise AssetError(
            f"`{name}` must be a uint8 image of shape (H, W, {'|'.join(map(str, channels))}), got dtype {array.dtype}"
        )
    if (
        array.ndim != 3
        or array.shape[2] not in channels
        or array.shape[0] < 1
        or array.shape[1] < 1
    ):
        raise AssetError(
            f"`{name}` must have shape (H, W, {'|'.join(map(str, channels))}), got {tuple(array.shape)}"
        )
    return np.ascontiguousarray(array)


@dataclass
class PBRMaterial:
    """A glTF metallic-roughness material.

    Attributes:
        base_color_texture: (H, W, 4) uint8 sRGB colour with straight (not premultiplied)
            alpha, or (H, W, 3) uint8 without alpha; None for a constant colour.
        base_color_factor: linear RGBA multiplier of the texture, or the colour itself.
        metallic_roughness_texture: (H, W, 3) uint8 in glTF channels: G = roughness,
            B = metallic, R unused; None to use the factors alone.
        metallic_factor: in [0, 1].
        roughness_factor: in [0, 1].
        normal_texture: (H, W, 3) uint8 tangent-space normal map, or None.
        alpha_mode: OPAQUE (default), MASK (cut at ``alpha_cutoff``) or BLEND.
        alpha_cutoff: threshold of MASK, in [0, 1].
        double_sided: whether back faces are drawn.
        name: material name written to files.
    """

    base_color_texture: np.ndarray | None = None
    base_color_factor: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    metallic_roughness_texture: np.ndarray | None = None
    metallic_factor: float = 0.0
    roughness_factor: float = 1.0
    normal_texture: np.ndarray | None = None
    alpha_mode: AlphaMode = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    name: str = "material"

    def __post_init__(self) -> None:
        if self.base_color_texture is not None:
            self.base_color_texture = _as_texture(
                "material.base_color_texture", self.base_color_texture, (3, 4)
            )
        if self.metallic_roughness_texture is not None:
            self.metallic_roughness_texture = _as_texture(
                "material.metallic_roughness_texture", self.metallic_roughness_texture, (3,)
            )
        if self.normal_texture is not None:
            self.normal_texture = _as_texture("material.normal_texture", self.normal_texture, (3,))
        factor = tuple(float(x) for x in self.base_color_factor)
        if len(factor) != 4 or not all(0.0 <= x <= 1.0 for x in factor):
            raise AssetError(
                f"`material.base_color_factor` must be 4 numbers in [0, 1], got {self.base_color_factor!r}"
            )
        self.base_color_factor = factor  # type: ignore[assignment]
        for key in ("metallic_factor", "roughness_factor", "alpha_cutoff"):
            value = float(getattr(self, key))
            if not 0.0 <= value <= 1.0:
                raise AssetError(f"`material.{key}` must be in [0, 1], got {value}")
            setattr(self, key, value)
        if self.alpha_mode not in ALPHA_MODES:
            raise AssetError(
                f"`material.alpha_mode` must be one of {', '.join(ALPHA_MODES)}, got {self.alpha_mode!r}"
            )


@dataclass
class MeshAsset:
    """A triangle mesh with an optional PBR material, in the world frame.

    Attributes:
        positions: (n, 3) float32 vertex positions in metres.
        faces: (m, 3) int32 vertex indices, counter-clockwise seen from outside.
        normals: (n, 3) float32 unit vertex normals, or None.
        uvs: (n, 2) float32 texture coordinates (glTF convention, top-left origin), or None.
        colors: (n, 4) float32 linear RGBA vertex colours in [0, 1], or None.
        material: the PBR material.
        metadata: free-form JSON-serialisable facts (generator, model, seed, ...),
            written to files where the format allows.
    """

    positions: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    uvs: np.ndarray | None = None
    colors: np.ndarray | None = None
    material: PBRMaterial = field(default_factory=PBRMaterial)
    metadata: dict[str, Any] = field(default_factory=dict)

    kind = "mesh"

    def __post_init__(self) -> None:
        self.positions = _as_float_array("positions", self.positions, (None, 3))
        faces = np.asarray(self.faces)
        if faces.dtype.kind not in "iu":
            raise AssetError(
                f"`faces` must be an integer array of shape (m, 3), got dtype {faces.dtype}"
            )
        _check_shape("faces", faces, (None, 3))
        n = len(self.positions)
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise AssetError(
                f"`faces` must index vertices 0..{n - 1}, got indices from {faces.min()} to {faces.max()}"
            )
        if n > np.iinfo(np.int32).max:
            raise AssetError(f"a mesh may have at most {np.iinfo(np.int32).max} vertices, got {n}")
        self.faces = np.ascontiguousarray(faces, dtype=np.int32)
        if self.normals is not None:
            self.normals = _as_float_array("normals", self.normals, (n, 3))
        if self.uvs is not None:
            self.uvs = _as_float_array("uvs", self.uvs, (n, 2))
        if self.colors is not None:
            self.colors = _as_float_array("colors", self.colors, (n, 4))
            if self.colors.min() < 0.0 or self.colors.max() > 1.0:
                raise AssetError("`colors` must be in [0, 1]; clip or rescale them first")
        if not isinstance(self.material, PBRMaterial):
            raise AssetError(
                f"`material` must be a PBRMaterial, got {type(self.material).__name__}"
            )
        textured = (
            self.material.base_color_texture is not None
            or self.material.metallic_roughness_texture is not None
            or self.material.normal_texture is not None
        )
        if textured and self.uvs is None:
            raise AssetError(
                "the material has a texture but the mesh has no `uvs`; pass uvs of shape (n, 2)"
            )

    @property
    def n_vertices(self) -> int:
        return len(self.positions)

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def bounds(self) -> np.ndarray:
        """Axis-aligned bounds: (2, 3) float32, min row then max row."""
        if self.n_vertices == 0:
            return np.zeros((2, 3), np.float32)
        return np.stack([self.positions.min(axis=0), self.positions.max(axis=0)])

    def with_positions(self, positions: np.ndarray, normals: np.ndarray | None = None) -> MeshAsset:
        """A copy with new positions (and normals); faces, UVs and material are shared."""
        return replace(
            self, positions=positions, normals=normals if normals is not None else self.normals
        )


@dataclass
class SplatAsset:
    """3D Gaussian splats in the world frame.

    Attributes:
        means: (n, 3) float32 centres in metres.
        scales: (n, 3) float32 standard deviations along the local axes, linear and > 0.
        rotations: (n, 4) float32 unit quaternions, (w, x, y, z) order.
        opacities: (n,) float32 in [0, 1] (after the sigmoid).
        sh0: (n, 3) float32 SH band-0 coefficients (RGB); colour = 0.5 + SH_C0 * sh0.
        sh_rest: (n, k, 3) float32 higher SH bands, k in {3, 8, 15} for degree 1, 2, 3
            (coefficient-major, channel last), or None for degree 0.
        metadata: free-form JSON-serialisable facts.
    """

    means: np.ndarray
    scales: np.ndarray
    rotations: np.ndarray
    opacities: np.ndarray
    sh0: np.ndarray
    sh_rest: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    kind = "splats"

    def __post_init__(self) -> None:
        self.means = _as_float_array("means", self.means, (None, 3))
        n = len(self.means)
        self.scales = _as_float_array("scales", self.scales, (n, 3))
        if n and self.scales.min() <= 0.0:
            raise AssetError(
                f"`scales` must be linear and > 0, got minimum {self.scales.min():.3g}; if they are log-scales pass np.exp(scales)"
            )
        self.rotations = _as_float_array("rotations", self.rotations, (n, 4))
        if n:
            norms = np.linalg.norm(self.rotations, axis=1)
            worst = float(np.abs(norms - 1.0).max())
            if worst > 1e-3:
                raise AssetError(
                    f"`rotations` must be unit quaternions (w, x, y, z), got norms off by up to {worst:.3g}; divide by np.linalg.norm(q, axis=1, keepdims=True)"
                )
        self.opacities = _as_float_array("opacities", self.opacities, (n,))
        if n and (self.opacities.min() < 0.0 or self.opacities.max() > 1.0):
            raise AssetError(
                "`opacities` must be in [0, 1] (after the sigmoid); if they are logits pass 1 / (1 + np.exp(-opacities))"
            )
        self.sh0 = _as_float_array("sh0", self.sh0, (n, 3))
        if self.sh_rest is not None:
            self.sh_rest = _as_float_array("sh_rest", self.sh_rest, (n, None, 3))
            if self.sh_rest.shape[1] not in (3, 8, 15):
                raise AssetError(
                    f"`sh_rest` must have 3, 8 or 15 coefficients per channel (SH degree 1, 2, 3), got {self.sh_rest.shape[1]}"
                )

    @property
    def n_splats(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        if self.sh_rest is None:
            return 0
        return {3: 1, 8: 2, 15: 3}[self.sh_rest.shape[1]]

    def colors(self) -> np.ndarray:
        """Band-0 display colour: (n, 3) float32 in [0, 1]."""
        return np.clip(0.5 + SH_C0 * self.sh0, 0.0, 1.0)

    def bounds(self) -> np.ndarray:
        """Axis-aligned bounds of the centres: (2, 3) float32, min row then max row."""
        if self.n_splats == 0:
            return np.zeros((2, 3), np.float32)
        return np.stack([self.means.min(axis=0), self.means.max(axis=0)])

    @staticmethod
    def sh0_from_colors(colors: np.ndarray) -> np.ndarray:
        """SH band-0 coefficients of display colours: (n, 3) in [0, 1] -> (n, 3) float32."""
        return ((np.asarray(colors, np.float32) - 0.5) / SH_C0).astype(np.float32)


Asset = MeshAsset | SplatAsset
