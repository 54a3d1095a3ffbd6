import math

import numpy as np
import torch

from genesis3d.nn.embeddings import (
    point_embedding_pow2,
    pow2_exponents,
    sobol_anchors,
    timestep_embedding,
)
from genesis3d.nn.rope import (
    RePo3DRotaryEmbedding,
    apply_half_rotary,
    apply_interleaved_rotary,
    rope_axis_pairs,
)


def test_sobol_anchors_known_answers():
    anchors = sobol_anchors(8192)
    np.testing.assert_allclose(anchors[0], [0.09025133, 0.58111054, 0.40774369], atol=1e-7)
    np.testing.assert_allclose(anchors[2], [0.63360190, 0.76574665, 0.04099670], atol=1e-7)
    np.testing.assert_allclose(anchors[8191], [0.09019839, 0.20313361, 0.63940632], atol=1e-7)
    assert torch.equal(sobol_anchors(64), anchors[:64])


def test_anchor_embedding_known_answers():
    embedding = point_embedding_pow2(sobol_anchors(1), 1024)[0]
    np.testing.assert_allclose(
        embedding[:4], [0.53715944, 0.90616727, 0.76647151, -0.98457605], atol=2e-6
    )
    np.testing.assert_allclose(float(embedding[1019]), 0.51066607, atol=2e-6)
    assert embedding[1020:].abs().sum() == 0
    exponents = pow2_exponents(170)
    assert exponents[:17].tolist() == [*range(16), 0.0]
    assert abs(float(exponents[17]) - 16 / 154) < 1e-6


def test_timestep_embedding_layout():
    emb = timestep_embedding(torch.tensor([0.0, 500.0]), 256)
    assert emb.shape == (2, 256)
    assert torch.equal(emb[0, :128], torch.ones(128)) and torch.equal(
        emb[0, 128:], torch.zeros(128)
    )
    assert abs(float(emb[1, 128]) - math.sin(500.0)) < 1e-4


def test_axis_pairs():
    assert rope_axis_pairs(64) == (10, 10, 12)
    assert rope_axis_pairs(58) == (9, 9, 11)


def test_interleaved_rotation_equals_complex_multiplication():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 8, generator=generator)
    angles = torch.randn(2, 5, 3, 4, generator=generator) * 50
    expected = torch.view_as_real(
        torch.view_as_complex(x.unflatten(-1, (-1, 2)))
        * torch.polar(torch.ones_like(angles), angles)
    ).flatten(-2)
    torch.testing.assert_close(apply_interleaved_rotary(x, angles), expected, atol=1e-5, rtol=1e-5)
    # A rotation keeps each pair's length.
    torch.testing.assert_close(apply_interleaved_rotary(x, angles).norm(dim=-1), x.norm(dim=-1))


def test_half_rotation_pairs_the_two_halves():
    x = torch.tensor([1.0, 0.0, 0.0, 0.0])
    angle = torch.tensor([math.pi / 2, 0.0, math.pi / 2, 0.0])
    out = apply_half_rotary(x, torch.cos(angle), torch.sin(angle))
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_repo_angles_follow_learned_frequencies():
    repo = RePo3DRotaryEmbedding(channels=64, heads=2, head_dim=32)
    assert [getattr(repo, f"freqs_{i}").shape[0] for i in range(3)] == list(rope_axis_pairs(32))
    hidden = torch.randn(1, 7, 64, generator=torch.Generator().manual_seed(1))
    angles = repo(hidden)
    assert angles.shape == (1, 7, 2, 16) and angles.dtype == torch.float32
    with torch.no_grad():
        repo.freqs_0.mul_(2)
    doubled = repo(hidden)
    torch.testing.assert_close(doubled[..., :5], 2 * angles[..., :5])
    torch.testing.assert_close(doubled[..., 5:], angles[..., 5:])


def test_grid_rotary_angles_are_axis_major_with_unrotated_tail():
    from genesis3d.nn.rope import grid_rotary_angles

    angles = grid_rotary_angles(torch.tensor([[1, 2, 3]]), head_dim=32)
    assert angles.shape == (1, 16)
    freqs = 1.0 / 10000 ** (torch.arange(5) / 5)
    torch.testing.assert_close(angles[0, :15], torch.cat([1 * freqs, 2 * freqs, 3 * freqs]))
    assert angles[0, 15] == 0


def test_attention_rotary_rotates_after_the_rms_norm():
    from genesis3d.nn.layers import MultiHeadAttention
    from genesis3d.nn.rope import apply_interleaved_rotary

    torch.manual_seed(0)  # module initialisation only
    attn = MultiHeadAttention(8, 2)
    with torch.no_grad():
        attn.q_rms_norm.gamma.uniform_(0.5, 1.5)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 5, 8, generator=generator)
    angles = torch.randn(5, 2, generator=generator)
    query, key, value = attn.project(x)
    query = apply_interleaved_rotary(query, angles[:, None])
    key = apply_interleaved_rotary(key, angles[:, None])
    scores = torch.einsum("blhd,bmhd->bhlm", query, key) / 2.0
    out = torch.einsum("bhlm,bmhd->blhd", scores.softmax(-1), value).reshape(1, 5, 8)
    torch.testing.assert_close(attn(x, rotary=angles), attn.to_out(out), atol=1e-6, rtol=1e-5)


def test_timestep_embedding_sin_first_swaps_the_halves():
    import torch

    from genesis3d.nn.embeddings import timestep_embedding

    t = torch.tensor([1000.0, 3.0])
    cos_sin = timestep_embedding(t, 8)
    sin_cos = timestep_embedding(t, 8, sin_first=True)
    assert torch.equal(sin_cos, torch.cat([cos_sin[:, 4:], cos_sin[:, :4]], dim=1))
