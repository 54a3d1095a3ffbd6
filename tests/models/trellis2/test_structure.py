import pytest
import torch

from genesis3d.errors import ConfigError
from genesis3d.models.trellis2.structure import cascade_coords, occupancy_coords, quantize_coords


def test_occupancy_pools_children_and_lists_sorted_voxels():
    logits = torch.full((2, 1, 8, 8, 8), -1.0)
    logits[0, 0, 5, 2, 7] = 0.5  # parent (2, 1, 3) at grid 4
    logits[1, 0, 0, 0, 1] = 2.0
    logits[1, 0, 0, 1, 0] = 0.0  # not occupied: the test is > 0
    assert occupancy_coords(logits, 8).tolist() == [[0, 5, 2, 7], [1, 0, 0, 1]]
    assert occupancy_coords(logits, 4).tolist() == [[0, 2, 1, 3], [1, 0, 0, 0]]
    assert occupancy_coords(logits, 4).dtype == torch.int32
    with pytest.raises(ConfigError, match="must divide"):
        occupancy_coords(logits, 3)


def test_quantize_maps_voxel_centres_and_removes_duplicates():
    coords = torch.tensor([[0, 0, 7, 8], [0, 1, 6, 9], [1, 511, 0, 255]], dtype=torch.int32)
    assert quantize_coords(coords, 512, 64).tolist() == [[0, 0, 0, 1], [1, 63, 0, 31]]


def test_cascade_lowers_only_above_1024_and_only_over_the_cap():
    generator = torch.Generator().manual_seed(0)
    xyz = torch.randint(0, 160, (6000, 3), generator=generator)
    coords = torch.cat([torch.zeros(6000, 1, dtype=torch.long), xyz], 1).int()
    counts = {r: len(quantize_coords(coords, 512, r // 16)) for r in range(1024, 1537, 128)}
    assert counts[1536] > counts[1408] > counts[1280] > counts[1152]
    latent, resolution = cascade_coords(coords, 1536, max_tokens=counts[1536] + 1)
    assert resolution == 1536 and len(latent) == counts[1536]
    latent, resolution = cascade_coords(coords, 1536, max_tokens=counts[1280] + 1)
    assert resolution == 1280
    assert torch.equal(latent, quantize_coords(coords, 512, 80))
    _, resolution = cascade_coords(coords, 1024, max_tokens=10)
    assert resolution == 1024
