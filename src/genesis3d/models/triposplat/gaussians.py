"""From decoder features to Gaussians: activations, the official file layouts, and SplatAsset.

``build_gaussians`` reproduces the official ``_build_gaussians``: the stored (pre-activation)
fields and their activations. ``official_ply_bytes`` / ``official_splat_bytes`` write the
files exactly as the official exporter does (its export transform (x, y, z) -> (x, -z, y),
i.e. -Y up with the front along +X). ``to_splat_asset`` maps the Gaussians into Genesis'
world frame (glTF: +Y up, +Z front, metres) for every other writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genesis3d.assets import SplatAsset
from genesis3d.geometry.frames import TRIPOSPLAT_TO_WORLD, rotate_points, rotate_quaternions
from genesis3d.models.triposplat.config import RepresentationConfig
from genesis3d.models.triposplat.decoders import ElasticGaussianFixedlenDecoder

SH_C0 = 0.28209479177387814
#: The official export transform: +90 degrees about x, (x, y, z) -> (x, -z, y).
OFFICIAL_FILE_TRANSFORM = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.int64)
PLY_PROPERTIES = (
    "x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3"
).split()


@dataclass
class GaussianFields:
    """The stored fields of N Gaussians, as the official ``Gaussian`` object holds them.

    Attributes:
        xyz: (N, 3) normalised centres in [0, 1]^3 (world centre = xyz - 0.5), internal Z-up frame.
        features_dc: (N, 3) SH band-0 coefficients.
        scaling_raw: (N, 3) pre-activation scales.
        rotation_raw: (N, 4) 0.1 * raw rotation; quaternion = rotation_raw + (1, 0, 0, 0), wxyz.
        opacity_raw: (N, 1) pre-activation opacity.
        representation: the activation constants.
    """

    xyz: torch.Tensor
    features_dc: torch.Tensor
    scaling_raw: torch.Tensor
    rotation_raw: torch.Tensor
    opacity_raw: torch.Tensor
    representation: RepresentationConfig

    def __len__(self) -> int:
        return self.xyz.shape[0]

    @property
    def world_xyz(self) -> torch.Tensor:
        """(N, 3) centres in the internal world box [-0.5, 0.5]^3."""
        return self.xyz * 1 + (-0.5)

    @property
    def scaling(self) -> torch.Tensor:
        """(N, 3) linear scales: sqrt(softplus(raw + softplus^-1(bias))^2 + filter^2)."""
        rep = self.representation
        bias = _inverse_softplus(rep.scaling_bias)
        scales = F.softplus(self.scaling_raw + bias)
        return torch.sqrt(scales.square() + rep.filter_kernel_size_3d**2)

    @property
    def rotation(self) -> torch.Tensor:
        """(N, 4) unnormalised wxyz quaternions."""
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=self.rotation_raw.dtype)
        return self.rotation_raw + identity.to(self.rotation_raw.device)

    @property
    def opacity(self) -> torch.Tensor:
        """(N, 1) opacity in [0, 1]: sigmoid(raw + logit(bias))."""
        bias = self.representation.opacity_bias
        logit = torch.log(torch.tensor(bias / (1 - bias), dtype=torch.float32))
        return torch.sigmoid(self.opacity_raw + logit.to(self.opacity_raw.device))


def _inverse_softplus(value: float) -> torch.Tensor:
    """softplus^-1(value) = value + log(-expm1(-value)), float32 (accurate for small values)."""
    x = torch.tensor(value, dtype=torch.float32)
    return x + torch.log(-torch.expm1(-x))


def build_gaussians(
    decoder: ElasticGaussianFixedlenDecoder, points: torch.Tensor, features: torch.Tensor
) -> tuple[list[GaussianFields], torch.Tensor]:
    """Split decoder features into Gaussians (32 per point), in float32.

    Args:
        decoder: the Gaussian decoder (for its representation config and offset buffers).
        points: (B, P, 3) points in [0, 1)^3.
        features: (B, P, 480) decoder output; slices [xyz 96 | dc 96 | scaling 96 |
            rotation 128 | opacity 32 | offset scale 32], Gaussian-major inside each slice.

    Returns:
        (one :class:`GaussianFields` per batch element with N = 32 P, offsets (B, P, 32, 3)).
        Gaussian g = 32 * point + j.
    """
    rep = decoder.config.representation_config
    count = rep.num_gaussians
    features = features.float()
    offsets = decoder.offsets(features)
    batch, num_points = points.shape[:2]
    total = num_points * count

    def field(start: int, width: int, name: str) -> torch.Tensor:
        values = features[..., start * count : (start + width) * count]
        return values.reshape(batch, total, width) * rep.lr[name]

    xyz = (points.float().unsqueeze(2) + offsets).reshape(batch, total, 3)
    features_dc = field(3, 3, "_features_dc")
    scaling = field(6, 3, "_scaling")
    rotation = field(9, 4, "_rotation")
    opacity = field(13, 1, "_opacity")
    fields = [
        GaussianFields(xyz[b], features_dc[b], scaling[b], rotation[b], opacity[b], rep)
        for b in range(batch)
    ]
    return fields, offsets


def _quaternions_to_matrices(quaternions: torch.Tensor) -> torch.Tensor:
    """(N, 4) unit wxyz -> (N, 3, 3) rotation matrices (standard formula)."""
    w, x, y, z = quaternions.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


def _matrices_to_quaternions_w_branch(matrices: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N, 4) wxyz via the trace (w) branch, normalised (the official routine).

    Only valid away from 180-degree rotations (trace + 1 > 0); callers check that.
    """
    m = matrices
    w = np.sqrt(np.maximum(1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 0)) / 2
    quaternions = np.stack(
        [
            w,
            (m[:, 2, 1] - m[:, 1, 2]) / (4 * w),
            (m[:, 0, 2] - m[:, 2, 0]) / (4 * w),
            (m[:, 1, 0] - m[:, 0, 1]) / (4 * w),
        ],
        axis=-1,
    )
    return quaternions / np.linalg.norm(quaternions, axis=-1, keepdims=True)


def _transformed_rotations(fields: GaussianFields, precision: type[np.floating]) -> np.ndarray:
    """Normalised wxyz of T R(q), computed in ``precision`` from the float32 rotation matrix."""
    quaternions = F.normalize(fields.rotation.float(), dim=-1)
    matrices = _quaternions_to_matrices(quaternions).cpu().numpy()
    composed = OFFICIAL_FILE_TRANSFORM.astype(precision) @ matrices.astype(precision)
    trace = composed[:, 0, 0] + composed[:, 1, 1] + composed[:, 2, 2]
    result = _matrices_to_quaternions_w_branch(composed)
    # Near 180 degrees the trace branch is ill-conditioned; use a robust conversion there.
    fragile = trace + 1 <= 1e-6
    if fragile.any():
        from genesis3d.geometry.frames import matrices_to_quaternions

        result[fragile] = matrices_to_quaternions(composed[fragile].astype(np.float64)).astype(
            precision
        )
    return result.astype(np.float32)


def official_ply_bytes(fields: GaussianFields) -> bytes:
    """The PLY file exactly as the official exporter writes it (17 float32 per Gaussian).

    Positions and rotations carry the official export transform; opacity is the logit of the
    activated opacity (+-inf where it saturates, as upstream writes it); scales are logs.
    """
    xyz = fields.world_xyz.float().cpu().numpy()
    positions = (OFFICIAL_FILE_TRANSFORM.astype(np.float64) @ xyz.astype(np.float64).T).T
    opacity = fields.opacity.float()
    with np.errstate(divide="ignore"):
        logits = torch.log(opacity / (1 - opacity))
    records = np.concatenate(
        [
            positions.astype(np.float32),
            np.zeros((len(fields), 3), np.float32),
            fields.features_dc.float().cpu().numpy().reshape(-1, 3),
            logits.cpu().numpy().reshape(-1, 1),
            torch.log(fields.scaling.float()).cpu().numpy(),
            _transformed_rotations(fields, np.float64),
        ],
        axis=1,
    ).astype("<f4")
    header = "ply\nformat binary_little_endian 1.0\n"
    header += f"element vertex {len(fields)}\n"
    header += "".join(f"property float {name}\n" for name in PLY_PROPERTIES)
    header += "end_header\n"
    return header.encode("ascii") + records.tobytes()


def official_splat_order(fields: GaussianFields) -> np.ndarray:
    """Record order of the .splat file: descending opacity * sx * sy * sz (stable)."""
    key = (fields.opacity.float() * fields.scaling.float().prod(-1, keepdim=True)).squeeze(-1)
    return np.argsort(-key.cpu().numpy(), kind="stable")


def official_splat_bytes(fields: GaussianFields) -> bytes:
    """The .splat file exactly as the official exporter writes it (32 bytes per Gaussian)."""
    order = official_splat_order(fields)
    transform = OFFICIAL_FILE_TRANSFORM.astype(np.float32)
    positions = fields.world_xyz.float().cpu().numpy() @ transform.T
    rotations = _transformed_rotations(fields, np.float32)
    colour = (0.5 + SH_C0 * fields.features_dc.float().cpu().numpy().reshape(-1, 3)) * 255
    alpha = fields.opacity.float().cpu().numpy().reshape(-1, 1) * 255
    rgba = np.clip(np.concatenate([colour, alpha], axis=1), 0, 255).astype(np.uint8)
    quantised = np.clip(rotations * 128 + 128, 0, 255).astype(np.uint8)
    records = np.zeros(
        len(fields), dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)]
    )
    records["p"] = positions[order]
    records["s"] = fields.scaling.float().cpu().numpy()[order]
    records["c"] = rgba[order]
    records["q"] = quantised[order]
    return records.tobytes()


def to_splat_asset(fields: GaussianFields, *, metadata: dict | None = None) -> SplatAsset:
    """The Gaussians in Genesis' world frame (glTF: +Y up, +Z front; the object spans ~1 m)."""
    world = fields.world_xyz.float().cpu().numpy()
    quaternions = F.normalize(fields.rotation.float(), dim=-1).cpu().numpy()
    return SplatAsset(
        means=rotate_points(world, TRIPOSPLAT_TO_WORLD),
        scales=fields.scaling.float().cpu().numpy(),
        rotations=rotate_quaternions(quaternions, TRIPOSPLAT_TO_WORLD),
        opacities=fields.opacity.float().cpu().numpy().reshape(-1),
        sh0=fields.features_dc.float().cpu().numpy().reshape(-1, 3),
        metadata=dict(metadata or {}),
    )


__all__ = [
    "OFFICIAL_FILE_TRANSFORM",
    "GaussianFields",
    "build_gaussians",
    "official_ply_bytes",
    "official_splat_bytes",
    "official_splat_order",
    "to_splat_asset",
]
