"""TRELLIS.2 fixture cases and key inventories through the parity runner."""

import pytest

from genesis3d.testing.parity import run_case, run_keys

CASES = [
    "sparse_structure_flow",
    "sparse_structure_decoder",
    "slat_flow_shape",
    "slat_flow_texture",
    "flow_euler_sampler",
    "flow_euler_sampler_sparse",
]

INVENTORIES = [
    "ss_flow_img_dit_1_3B_64_bf16.json",
    "ss_dec_conv3d_16l8_fp16.json",
    "slat_flow_img2shape_dit_1_3B_512_bf16.json",
    "slat_flow_img2shape_dit_1_3B_1024_bf16.json",
    "slat_flow_imgshape2tex_dit_1_3B_512_bf16.json",
    "slat_flow_imgshape2tex_dit_1_3B_1024_bf16.json",
]


@pytest.mark.parametrize("case", CASES)
def test_case(fixtures_dir, case):
    result = run_case(fixtures_dir / "trellis2" / case)
    assert result.passed, result.detail


def test_key_inventories_of_the_ported_components(fixtures_dir):
    results = {r.name.rsplit("/", 1)[-1]: r for r in run_keys(fixtures_dir / "trellis2" / "keys")}
    for name in INVENTORIES:
        assert results[name].passed, f"{name}: {results[name].detail}"
