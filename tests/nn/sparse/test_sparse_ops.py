import pytest
import torch

from genesis3d.errors import InputError
from genesis3d.nn.attention import attention_backend
from genesis3d.nn.sparse import (
    SparseConv3d,
    SparseGroupNorm32,
    SparseMultiHeadAttention,
    SparseTensor,
    channel_to_spatial,
    downsample,
    neighbor_map,
    reference_submanifold_conv3d,
    spatial_to_channel,
    subdivide,
    submanifold_conv3d,
    upsample,
    varlen_attention,
)
from genesis3d.nn.sparse.conv import neighbor_pairs
from genesis3d.nn.sparse.norm import item_population_std


def _voxels(seed: int, counts=(40, 27), size: int = 6) -> torch.Tensor:
    """Sorted unique (b, x, y, z) rows, ``counts[b]`` per item, in a size^3 box."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for b, count in enumerate(counts):
        flat = torch.randperm(size**3, generator=generator)[:count].sort().values
        xyz = torch.stack([flat // size**2, flat // size % size, flat % size], dim=1)
        rows.append(torch.cat([torch.full((count, 1), b), xyz], dim=1))
    return torch.cat(rows).to(torch.int32)


def test_neighbor_map_finds_exactly_the_present_neighbours_in_kernel_order():
    coords = _voxels(0)
    nmap = neighbor_map(coords)
    index = {tuple(c): i for i, c in enumerate(coords.tolist())}
    for p, (b, x, y, z) in enumerate(coords.tolist()):
        for v in range(27):
            dx, dy, dz = v // 9 - 1, v // 3 % 3 - 1, v % 3 - 1
            assert nmap[p, v] == index.get((b, x + dx, y + dy, z + dz), -1)


@pytest.mark.parametrize("chunk_rows", [1 << 19, 7])
def test_submanifold_conv_matches_dense_conv3d_with_x_as_the_first_kernel_axis(chunk_rows):
    generator = torch.Generator().manual_seed(1)
    coords = _voxels(1)
    feats = torch.randn(len(coords), 5, generator=generator)
    weight = torch.randn(4, 3, 3, 3, 5, generator=generator)
    bias = torch.randn(4, generator=generator)
    pairs = neighbor_pairs(neighbor_map(coords))
    out = submanifold_conv3d(feats, pairs, weight, bias, chunk_rows=chunk_rows)
    reference = reference_submanifold_conv3d(coords, feats, weight, bias)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    # One voxel at x=1 with a neighbour at x+1 only: weight[:, 2, 1, 1] must carry it.
    lone = torch.tensor([[0, 1, 1, 1], [0, 2, 1, 1]], dtype=torch.int32)
    single = torch.zeros(1, 3, 3, 3, 1)
    single[0, 2, 1, 1, 0] = 1.0
    result = submanifold_conv3d(
        torch.tensor([[0.0], [5.0]]), neighbor_pairs(neighbor_map(lone)), single
    )
    assert result.flatten().tolist() == [5.0, 0.0]


def test_sparse_conv_module_caches_the_map_and_keeps_rows():
    generator = torch.Generator().manual_seed(2)
    coords = _voxels(2)
    x = SparseTensor(coords, torch.randn(len(coords), 3, generator=generator))
    conv = SparseConv3d(3, 6)
    y = conv(x)
    assert torch.equal(y.coords, coords) and y.feats.shape == (len(coords), 6)
    z = conv(y.replace(y.feats[:, :3]))
    assert "submanifold3_pairs" in z._cache
    reference = reference_submanifold_conv3d(
        coords, x.feats, conv.weight.detach(), conv.bias.detach()
    )
    torch.testing.assert_close(y.feats.detach(), reference, atol=1e-5, rtol=1e-5)


def test_layout_refuses_unsorted_batches():
    coords = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.int32)
    with pytest.raises(InputError, match="grouped by batch"):
        SparseTensor(coords, torch.zeros(2, 1))


def test_subdivision_orders_children_parent_major_with_x_as_the_low_bit():
    parents = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]], dtype=torch.int32)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, [1, 6]] = True
    mask[1, [0, 7]] = True
    children, flat = subdivide(parents, mask)
    assert children.tolist() == [[0, 3, 4, 6], [0, 2, 5, 7], [0, 0, 0, 0], [0, 1, 1, 1]]
    assert flat.tolist() == [1, 6, 8, 15]
    feats = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 16)
    split = channel_to_spatial(SparseTensor(parents, feats), mask)
    assert split.feats.tolist() == [[2, 3], [12, 13], [16, 17], [30, 31]]
    copied = upsample(SparseTensor(parents, feats[:, :1]), mask)
    assert copied.feats.flatten().tolist() == [0, 0, 16, 16]


def test_spatial_to_channel_inverts_channel_to_spatial_and_pools():
    generator = torch.Generator().manual_seed(3)
    parents = _voxels(3, counts=(9, 5), size=4)
    mask = torch.rand(len(parents), 8, generator=generator) > 0.4
    mask[:, 0] = True
    feats = torch.randn(len(parents), 8 * 3, generator=generator)
    fine = channel_to_spatial(SparseTensor(parents, feats), mask)
    coarse = spatial_to_channel(fine)
    assert torch.equal(coarse.coords, parents)
    expected = (feats.reshape(-1, 8, 3) * mask[..., None]).reshape(len(parents), -1)
    assert torch.equal(coarse.feats, expected)
    pooled = downsample(fine, "mean")
    per_parent = expected.reshape(-1, 8, 3).sum(1) / mask.sum(1, keepdim=True)
    torch.testing.assert_close(pooled.feats, per_parent)


def _loop_attention(query, key, value, q_layout, k_layout):
    outs = []
    for q_rows, k_rows in zip(q_layout, k_layout, strict=True):
        scores = torch.einsum("thd,shd->hts", query[q_rows], key[k_rows]) / query.shape[-1] ** 0.5
        outs.append(torch.einsum("hts,shd->thd", scores.softmax(-1), value[k_rows]))
    return torch.cat(outs)


@pytest.mark.parametrize("lengths", [(5, 9, 2), (4, 4), (3, 0, 2)])
def test_varlen_attention_keeps_items_apart(lengths):
    generator = torch.Generator().manual_seed(4)
    total = sum(lengths)
    layout, start = [], 0
    for n in lengths:
        layout.append(slice(start, start + n))
        start += n
    k_layout = [slice(3 * i, 3 * i + 3) for i in range(len(lengths))]
    query = torch.randn(total, 2, 8, generator=generator)
    key = torch.randn(3 * len(lengths), 2, 8, generator=generator)
    value = torch.randn(3 * len(lengths), 2, 6, generator=generator)
    expected = _loop_attention(query, key, value, layout, k_layout)
    torch.testing.assert_close(varlen_attention(query, key, value, layout, k_layout), expected)
    with attention_backend("reference"):
        torch.testing.assert_close(varlen_attention(query, key, value, layout, k_layout), expected)


def test_sparse_attention_of_a_batch_equals_each_item_alone():
    torch.manual_seed(0)  # module initialisation only
    attn = SparseMultiHeadAttention(16, 2, kind="cross", context_channels=12)
    generator = torch.Generator().manual_seed(5)
    coords = _voxels(5, counts=(7, 4))
    x = torch.randn(11, 16, generator=generator)
    context = torch.randn(2, 3, 12, generator=generator)
    layout = [slice(0, 7), slice(7, 11)]
    both = attn(x, layout, context)
    alone = attn(x[7:], [slice(0, 4)], context[1:])
    torch.testing.assert_close(both[7:], alone, atol=1e-6, rtol=1e-5)
    assert coords.shape[0] == 11


def test_group_norm_and_population_std_are_per_item():
    generator = torch.Generator().manual_seed(6)
    coords = _voxels(6, counts=(6, 10))
    x = SparseTensor(coords, torch.randn(16, 4, generator=generator) * 3 + 1)
    norm = SparseGroupNorm32(2, 4)
    out = norm(x).feats.detach()
    alone = norm(
        SparseTensor(coords[6:] * torch.tensor([0, 1, 1, 1], dtype=torch.int32), x.feats[6:])
    )
    torch.testing.assert_close(out[6:], alone.feats.detach())
    stds = item_population_std(x.feats, x.layout)
    torch.testing.assert_close(stds[1], x.feats[6:].std(unbiased=False), atol=1e-5, rtol=1e-5)
