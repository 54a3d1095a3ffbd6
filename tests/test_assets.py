import numpy as np
import pytest

from genesis3d.assets import MeshAsset, PBRMaterial, SplatAsset
from genesis3d.errors import AssetError


def _triangle(**kwargs):
    return MeshAsset(
        positions=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float64),
        faces=np.array([[0, 1, 2]], np.int64),
        **kwargs,
    )


def test_mesh_converts_safe_dtypes():
    mesh = _triangle()
    assert mesh.positions.dtype == np.float32 and mesh.faces.dtype == np.int32
    assert mesh.n_vertices == 3 and mesh.n_faces == 1
    np.testing.assert_array_equal(mesh.bounds(), [[0, 0, 0], [1, 1, 0]])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"positions": np.zeros((3, 2))}, "`positions` must have shape (n, 3)"),
        ({"faces": np.array([[0, 1, 3]])}, "`faces` must index vertices 0..2"),
        ({"faces": np.array([[0.0, 1.0, 2.0]])}, "`faces` must be an integer array"),
        ({"normals": np.zeros((2, 3))}, "`normals` must have shape (3, 3)"),
        ({"uvs": np.zeros((3, 3))}, "`uvs` must have shape (3, 2)"),
        (
            {"positions": np.array([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]])},
            "`positions` must be finite",
        ),
        ({"colors": np.full((3, 4), 2.0)}, "`colors` must be in [0, 1]"),
    ],
)
def test_mesh_refuses_bad_fields_by_name(kwargs, fragment):
    base = {
        "positions": np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32),
        "faces": np.array([[0, 1, 2]]),
    }
    base.update(kwargs)
    with pytest.raises(AssetError) as error:
        MeshAsset(**base)
    assert fragment in str(error.value)


def test_textured_material_needs_uvs():
    material = PBRMaterial(base_color_texture=np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(AssetError, match="no `uvs`"):
        _triangle(material=material)
    assert _triangle(material=material, uvs=np.zeros((3, 2))).material.base_color_texture.shape == (
        4,
        4,
        4,
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"base_color_texture": np.zeros((4, 4, 4), np.float32)}, "must be a uint8 image"),
        ({"metallic_roughness_texture": np.zeros((4, 4, 4), np.uint8)}, "(H, W, 3)"),
        ({"alpha_mode": "MIXED"}, "alpha_mode` must be one of OPAQUE, MASK, BLEND"),
        ({"roughness_factor": 1.5}, "roughness_factor` must be in [0, 1]"),
        ({"base_color_factor": (1, 1, 1)}, "4 numbers in [0, 1]"),
    ],
)
def test_material_refuses_bad_fields(kwargs, fragment):
    with pytest.raises(AssetError) as error:
        PBRMaterial(**kwargs)
    assert fragment in str(error.value)


def _splats(n=4, **overrides):
    fields = {
        "means": np.zeros((n, 3)),
        "scales": np.full((n, 3), 0.01),
        "rotations": np.tile([1.0, 0, 0, 0], (n, 1)),
        "opacities": np.full(n, 0.5),
        "sh0": np.zeros((n, 3)),
    }
    fields.update(overrides)
    return SplatAsset(**fields)


def test_splats_valid_and_colours():
    splats = _splats(sh_rest=np.zeros((4, 15, 3)))
    assert splats.sh_degree == 3 and splats.n_splats == 4
    np.testing.assert_allclose(splats.colors(), 0.5)
    colors = np.array([[0.0, 0.25, 1.0]])
    np.testing.assert_allclose(
        0.5 + 0.28209479177387814 * SplatAsset.sh0_from_colors(colors), colors, atol=1e-6
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"scales": np.full((4, 3), -4.0)}, "if they are log-scales pass np.exp(scales)"),
        ({"rotations": np.tile([2.0, 0, 0, 0], (4, 1))}, "must be unit quaternions"),
        ({"opacities": np.full(4, 3.0)}, "if they are logits"),
        ({"sh_rest": np.zeros((4, 5, 3))}, "3, 8 or 15 coefficients"),
        ({"sh0": np.zeros((3, 3))}, "`sh0` must have shape (4, 3)"),
    ],
)
def test_splats_refuse_bad_fields(overrides, fragment):
    with pytest.raises(AssetError) as error:
        _splats(**overrides)
    assert fragment in str(error.value)
