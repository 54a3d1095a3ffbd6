"""TRELLIS.2 fixture cases and key inventories through the parity runner."""

import pytest

from genesis3d.testing.parity import discover, run_case, run_keys

CASES = [
    "sparse_structure_flow",
    "sparse_structure_decoder",
    "slat_flow_shape",
    "slat_flow_texture",
    "flow_euler_sampler",
    "flow_euler_sampler_sparse",
    "shape_decoder",
    "texture_decoder",
    "flexible_dual_grid_to_mesh",
    "flexible_dual_grid_to_mesh_no_split",
]


def test_every_case_is_covered(fixtures_dir):
    found = {path.name for path in discover([fixtures_dir / "trellis2"])}
    assert found == set(CASES) | {"keys"}


@pytest.mark.parametrize("case", CASES)
def test_case(fixtures_dir, case):
    result = run_case(fixtures_dir / "trellis2" / case)
    assert result.passed, result.detail


def test_key_inventories(fixtures_dir):
    results = run_keys(fixtures_dir / "trellis2" / "keys")
    assert len(results) == 10
    failing = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failing
