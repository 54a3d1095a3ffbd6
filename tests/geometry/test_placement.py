import numpy as np
import pytest

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import ConfigError
from genesis3d.geometry.placement import place, placement_transform


def _box_mesh(low, high):
    corners = np.array(
        [
            [x, y, z]
            for x in (low[0], high[0])
            for y in (low[1], high[1])
            for z in (low[2], high[2])
        ],
        np.float32,
    )
    return MeshAsset(positions=corners, faces=np.array([[0, 1, 2], [1, 3, 2]]))


def test_size_scales_longest_side():
    mesh = place(_box_mesh([0, 0, 0], [2, 1, 0.5]), size=3.0, pivot="keep")
    extent = mesh.bounds()[1] - mesh.bounds()[0]
    np.testing.assert_allclose(extent, [3.0, 1.5, 0.75], rtol=1e-6)
    assert mesh.metadata["size_m"] == 3.0


def test_bottom_pivot_puts_base_centre_at_origin():
    mesh = place(_box_mesh([1, 2, 3], [3, 6, 5]), pivot="bottom")
    low, high = mesh.bounds()
    assert low[1] == pytest.approx(0.0)
    assert (low[0] + high[0]) / 2 == pytest.approx(0.0) and (low[2] + high[2]) / 2 == pytest.approx(
        0.0
    )
    assert high[1] == pytest.approx(4.0)


def test_center_pivot_and_splat_scales():
    n = 5
    rng = np.random.default_rng(0)
    splats = SplatAsset(
        means=rng.uniform(1, 3, (n, 3)),
        scales=np.full((n, 3), 0.1),
        rotations=np.tile([1.0, 0, 0, 0], (n, 1)),
        opacities=np.ones(n),
        sh0=np.zeros((n, 3)),
    )
    scale, _ = placement_transform(splats.bounds(), size=2.0)
    placed = place(splats, size=2.0, pivot="center")
    low, high = placed.bounds()
    np.testing.assert_allclose((low + high) / 2, 0, atol=1e-6)
    assert (high - low).max() == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_allclose(placed.scales, 0.1 * scale, rtol=1e-6)


@pytest.mark.parametrize(("size", "pivot"), [(-1.0, "keep"), (float("nan"), "keep"), (None, "top")])
def test_bad_placement_refused(size, pivot):
    with pytest.raises(ConfigError):
        placement_transform(np.array([[0, 0, 0], [1, 1, 1.0]]), size, pivot)
