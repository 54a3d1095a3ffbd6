"""Inflation of analytic silhouettes: closed, clean solids whose topology follows the shape."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import InputError
from genesis3d.geometry import inflate
from genesis3d.geometry.measure import mesh_health

SIZE = 256


def soft_matte(inside, size: int = SIZE, supersample: int = 4) -> np.ndarray:
    """An anti-aliased (H, W) uint8 matte of ``inside(x, y) -> bool`` over pixel coordinates."""
    step = (np.arange(size * supersample) + 0.5) / supersample
    x, y = np.meshgrid(step, step)
    mask = inside(x, y).astype(np.float32)
    coverage = mask.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return np.round(coverage * 255).astype(np.uint8)


def disc(x, y):
    return (x - 128) ** 2 + (y - 128) ** 2 < 100**2


def ring(x, y):
    radius2 = (x - 128) ** 2 + (y - 128) ** 2
    return (radius2 < 110**2) & (radius2 > 55**2)


def two_blobs(x, y):
    return ((x - 70) ** 2 + (y - 128) ** 2 < 50**2) | ((x - 190) ** 2 + (y - 128) ** 2 < 45**2)


def thin_bar(x, y):
    return (np.abs(x - 128) < 115) & (np.abs(y - 128) < 6)


def l_shape(x, y):
    return ((x > 30) & (x < 80) & (y > 20) & (y < 236)) | (
        (x > 30) & (x < 226) & (y > 186) & (y < 236)
    )


def solid(alpha: np.ndarray, resolution: int = 128, thickness: float = 0.8, back: float = 0.5):
    """Vertices (n, 3) in cells and faces (m, 3) of the inflated matte."""
    field = inflate.silhouette_field(alpha, resolution)
    front, _ = inflate.height_profile(field.distance, thickness)
    return inflate.extract_solid(front, back)


def assert_clean_closed(health) -> None:
    assert health.watertight, health
    assert health.edge_manifold and health.vertex_manifold and health.consistently_oriented
    assert health.degenerate_faces == 0 and health.duplicate_faces == 0
    assert health.volume > 0  # wound outward
    assert health.welded_vertices == health.vertices  # one welded vertex set


@pytest.mark.parametrize(
    ("shape", "components", "genus"),
    [(disc, 1, 0), (ring, 1, 1), (two_blobs, 2, 0), (thin_bar, 1, 0), (l_shape, 1, 0)],
    ids=["disc", "ring", "two-blobs", "thin-bar", "L"],
)
def test_analytic_silhouettes_give_clean_closed_solids(shape, components, genus):
    points, faces = solid(soft_matte(shape))
    health = mesh_health(points, faces)
    assert_clean_closed(health)
    assert health.components == components
    assert health.genus == genus  # the ring's hole stays a hole
    assert health.sliver_faces_100 <= 0.002 * health.faces


def test_disc_is_a_rounded_solid_with_a_gentler_back():
    points, faces = solid(soft_matte(disc), resolution=128, thickness=1.0, back=0.5)
    cells = 128 / SIZE  # cells per pixel
    radius = 100 * cells
    centre = 128 * cells - 0.5  # pixel centre of the grid, in cell coordinates
    spread = np.hypot(points[:, 0] - centre, points[:, 1] - centre)
    assert spread.max() == pytest.approx(radius, abs=1.0)
    front, back = points[:, 2].max(), -points[:, 2].min()
    # thickness 1.0: the front is about a half sphere of the disc's radius
    assert front == pytest.approx(radius, rel=0.1)
    assert back == pytest.approx(0.5 * front, rel=0.05)
    # Rounded: the front height falls off towards the rim like a quarter circle.
    top = points[points[:, 2] > 0]
    ring_half = top[np.abs(np.hypot(top[:, 0] - centre, top[:, 1] - centre) - radius / 2) < 1]
    expected = radius * np.sqrt(1 - 0.5**2)
    assert np.median(ring_half[:, 2]) == pytest.approx(expected, rel=0.1)


def test_thickness_and_resolution_scale_the_solid():
    alpha = soft_matte(disc)
    thin, _ = solid(alpha, resolution=64, thickness=0.2)
    thick, thick_faces = solid(alpha, resolution=64, thickness=1.0)
    assert thick[:, 2].max() > 3 * thin[:, 2].max()
    _, fine_faces = solid(alpha, resolution=128, thickness=1.0)
    assert len(fine_faces) > 3 * len(thick_faces)


def test_an_empty_matte_is_refused():
    with pytest.raises(InputError, match="too small to inflate"):
        inflate.silhouette_field(np.zeros((64, 64), np.uint8), 64)


def test_signed_distance_is_positive_inside_and_sub_cell():
    field = inflate.silhouette_field(soft_matte(disc), 256)
    distance = field.distance
    assert distance[128, 128] == pytest.approx(100, abs=1.5)
    assert distance[5, 5] < 0
    # along a row through the centre the edge (distance 0) sits at the disc's radius
    row = distance[128, 128:]
    edge = np.argmax(row < 0)
    crossing = edge - 1 + row[edge - 1] / (row[edge - 1] - row[edge])
    assert crossing + 0.5 == pytest.approx(100, abs=0.5)


def test_texture_atlas_has_the_picture_left_and_a_darker_mirror_right():
    rgba = np.zeros((100, 50, 4), np.uint8)
    rgba[10:90, 5:45] = [200, 100, 50, 255]
    rgba[10:90, 5:15, :3] = [20, 200, 20]  # the object's left side is green
    atlas, layout = inflate.texture_atlas(rgba, 256, back_shade=0.5)
    assert atlas.shape == (256, 256, 4) and (atlas[..., 3] == 255).all()
    # Colours bleed past the silhouette: no black backdrop anywhere in the atlas.
    assert atlas[..., :3].max(axis=2).min() > 0
    uvs = inflate.project_uvs(
        np.array([[10.0, 50.0], [10.0, 50.0]]), np.array([False, True]), layout
    )
    front_px = (uvs[0] * 256).astype(int)
    back_px = (uvs[1] * 256).astype(int)
    assert front_px[0] < 128 <= back_px[0]
    front_colour = atlas[front_px[1], front_px[0], :3].astype(int)
    back_colour = atlas[back_px[1], back_px[0], :3].astype(int)
    assert np.abs(front_colour - [20, 200, 20]).max() <= 3
    assert np.abs(back_colour - np.array([20, 200, 20]) * 0.5).max() <= 3
    assert (uvs >= 0).all() and (uvs <= 1).all()
