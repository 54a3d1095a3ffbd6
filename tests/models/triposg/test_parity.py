"""TripoSG fixture cases through the parity runner, and the checks that make them meaningful."""

import pytest
import torch
from safetensors.torch import load_file

from genesis3d.models.triposg import layers
from genesis3d.models.triposg.vae import farthest_point_sampling
from genesis3d.testing.parity import discover, run_case, run_keys

MODEL_CASES = ["dit", "vae_decode", "vae_encode", "sampler"]


def test_every_case_is_found(fixtures_dir):
    names = {path.name for path in discover([fixtures_dir / "triposg"])}
    assert set(MODEL_CASES) | {"keys"} <= names


@pytest.mark.parametrize("case", MODEL_CASES)
def test_case(fixtures_dir, case):
    result = run_case(fixtures_dir / "triposg" / case)
    assert result.passed, result.detail


def test_key_inventories_of_the_released_configs(fixtures_dir):
    results = run_keys(fixtures_dir / "triposg" / "keys")
    assert {r.name for r in results} == {
        "triposg/keys/transformer.json",
        "triposg/keys/vae.json",
    }
    failing = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failing


def test_a_standard_head_split_fails_the_dit_case(fixtures_dir, monkeypatch):
    """The interleaved q/k/v layout is what the case checks: the usual split must fail it."""
    original = layers.TripoSGAttention.forward

    def standard_split(self, x, context=None, *, key_value=None):
        if self.is_cross:
            return original(self, x, context, key_value=key_value)
        batch, length, _ = x.shape

        def heads(t):
            return t.view(batch, length, self.heads, self.head_dim)

        query, key = self.norm_q(heads(self.to_q(x))), self.norm_k(heads(self.to_k(x)))
        value = heads(self.to_v(x))
        out = torch.nn.functional.scaled_dot_product_attention(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
        )
        return self.to_out[0](out.transpose(1, 2).reshape(batch, length, -1))

    monkeypatch.setattr(layers.TripoSGAttention, "forward", standard_split)
    result = run_case(fixtures_dir / "triposg" / "dit")
    assert not result.passed and "values outside" in result.detail


def test_farthest_point_sampling_reproduces_the_fixture_subsample(fixtures_dir):
    inputs = load_file(str(fixtures_dir / "triposg" / "vae_encode" / "inputs.safetensors"))
    selected = inputs["x"][:, inputs["rng_indices"]]
    per_element = selected.shape[1]
    tokens = per_element // 4
    for b in range(selected.shape[0]):
        picked = farthest_point_sampling(selected[b, :, :3], tokens)
        expected = inputs["fps_indices"][b * tokens : (b + 1) * tokens] - b * per_element
        assert torch.equal(picked, expected)
