"""Helpers shared by tests: small real assets built from seeded generators.

The glTF validator harness lives in :mod:`tests.support.gltf`.
"""

from __future__ import annotations

import numpy as np

from genesis3d.assets import MeshAsset, PBRMaterial, SplatAsset

#: Faces of the unit cube :func:`textured_box` builds, counter-clockwise from outside.
BOX_FACES = np.array(
    [
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
    ]
)  # fmt: skip


def random_splats(n: int = 500, degree: int = 0, seed: int = 0) -> SplatAsset:
    """``n`` splats in [-1, 1]^3 with random shapes, colours and SH of ``degree``."""
    rng = np.random.default_rng(seed)
    quaternions = rng.normal(size=(n, 4))
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    rest = {0: 0, 1: 3, 2: 8, 3: 15}[degree]
    return SplatAsset(
        means=rng.uniform(-1, 1, (n, 3)),
        scales=np.exp(rng.uniform(-6, -2, (n, 3))),
        rotations=quaternions,
        opacities=rng.uniform(0.02, 0.98, n),
        sh0=rng.normal(0, 0.8, (n, 3)),
        sh_rest=rng.uniform(-0.5, 0.5, (n, rest, 3)) if rest else None,
        metadata={"model": "test", "seed": seed},
    )


def textured_box(alpha_mode: str = "OPAQUE", seed: int = 1) -> MeshAsset:
    """A unit cube with unit normals, UVs, vertex colours and all three PBR textures."""
    rng = np.random.default_rng(seed)
    positions = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32)
    normals = positions - 0.5
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    material = PBRMaterial(
        base_color_texture=rng.integers(0, 256, (16, 32, 4), dtype=np.uint8),
        metallic_roughness_texture=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        normal_texture=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        alpha_mode=alpha_mode,
        alpha_cutoff=0.3,
        double_sided=alpha_mode == "BLEND",
        metallic_factor=0.2,
        roughness_factor=0.7,
        base_color_factor=(1.0, 0.9, 0.8, 1.0),
        name="box",
    )
    return MeshAsset(
        positions=positions,
        faces=BOX_FACES,
        normals=normals,
        uvs=rng.uniform(0, 1, (8, 2)),
        colors=rng.uniform(0, 1, (8, 4)),
        material=material,
        metadata={"model": "test", "seed": seed},
    )


def same_rotations(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    """Whether (n, 4) unit quaternions ``a`` and ``b`` are the same rotations (q ~ -q)."""
    return bool(np.abs(np.abs((a * b).sum(axis=1)) - 1.0).max() <= atol)
