"""SC-VAE pieces beyond the fixtures: the cascade's upsample and the encoder."""

import json

import torch
from safetensors.torch import load_file

from genesis3d.models.trellis2.config import SparseUnetEncoderConfig
from genesis3d.models.trellis2.sc_vae import SparseUnetVaeEncoder
from genesis3d.nn.sparse import SparseTensor
from genesis3d.testing.trellis2_cases import SHAPE_DECODER, build
from genesis3d.weights.loading import load_into


@torch.inference_mode()
def test_upsample_returns_the_decoders_final_voxels(fixtures_dir):
    folder = fixtures_dir / "trellis2" / "shape_decoder"
    manifest = json.loads((folder / "manifest.json").read_text())
    decoder = build(SHAPE_DECODER, manifest["config"]).eval()
    load_into(decoder, load_file(str(folder / "weights.safetensors")))
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "outputs.safetensors"))
    latent = SparseTensor(inputs["x.coords"], inputs["x.feats"])
    assert torch.equal(decoder.upsample(latent, 4), expected["out_raw.coords"])
    assert torch.equal(decoder.upsample(latent, 2), expected["subs.2.coords"])


@torch.inference_mode()
def test_encoder_pools_each_stage_onto_sorted_parents():
    config = SparseUnetEncoderConfig(
        model_channels=(8, 16, 16),
        latent_channels=4,
        num_blocks=(0, 1, 1),
        block_type=("SparseConvNeXtBlock3d",) * 3,
        down_block_type=("SparseResBlockS2C3d",) * 2,
        block_args=({},) * 3,
    )
    torch.manual_seed(0)  # module initialisation only
    encoder = SparseUnetVaeEncoder(config).eval()
    generator = torch.Generator().manual_seed(1)
    xyz = torch.unique(torch.randint(0, 12, (60, 3), generator=generator), dim=0)
    coords = torch.cat([torch.zeros(len(xyz), 1, dtype=torch.long), xyz], 1).to(torch.int32)
    mean, logvar = encoder(SparseTensor(coords, torch.randn(len(xyz), 6, generator=generator)))
    parents = torch.unique(torch.div(xyz, 4, rounding_mode="floor"), dim=0)
    assert mean.coords[:, 1:].tolist() == parents.tolist()
    assert mean.feats.shape == logvar.feats.shape == (len(parents), 4)
    assert torch.isfinite(mean.feats).all()
