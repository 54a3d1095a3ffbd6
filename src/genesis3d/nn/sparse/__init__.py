"""Sparse voxel tensors and the operations on them (convolution, subdivision, attention, norms).

Pure PyTorch: neighbour lookups use sorted keys and ``searchsorted``; there is no compiled
extension and one parameter layout whatever the device.
"""

from genesis3d.nn.sparse.attention import SparseMultiHeadAttention, varlen_attention
from genesis3d.nn.sparse.conv import (
    SparseConv3d,
    neighbor_map,
    reference_submanifold_conv3d,
    submanifold_conv3d,
)
from genesis3d.nn.sparse.norm import SparseGroupNorm32, SparseLayerNorm32
from genesis3d.nn.sparse.spatial import (
    channel_to_spatial,
    downsample,
    spatial_to_channel,
    subdivide,
    upsample,
)
from genesis3d.nn.sparse.tensor import SparseTensor, batch_layout, sparse_cat

__all__ = [
    "SparseConv3d",
    "SparseGroupNorm32",
    "SparseLayerNorm32",
    "SparseMultiHeadAttention",
    "SparseTensor",
    "batch_layout",
    "channel_to_spatial",
    "downsample",
    "neighbor_map",
    "reference_submanifold_conv3d",
    "spatial_to_channel",
    "sparse_cat",
    "subdivide",
    "submanifold_conv3d",
    "upsample",
    "varlen_attention",
]
