"""Every TripoSplat fixture case through the parity runner."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from genesis3d.testing.parity import compare_bytes_with_math_floats, discover, run_case, run_keys


def _cases(fixtures):
    return discover([fixtures / "triposplat"])


def test_every_case_is_found(fixtures_dir):
    names = {path.name for path in _cases(fixtures_dir)}
    assert {"flow_dit", "flow_sampler", "octree_sampling", "export_ply", "keys"} <= names


@pytest.mark.parametrize(
    "case",
    [
        "flow_dit",
        "flow_sampler",
        "octree_decoder",
        "systematic_resample",
        "octree_sampling",
        "gaussian_decoder",
        "build_gaussians",
        "export_ply",
        "export_splat",
    ],
)
def test_case(fixtures_dir, case):
    result = run_case(fixtures_dir / "triposplat" / case)
    assert result.passed, result.detail


def test_key_inventories(fixtures_dir):
    results = run_keys(fixtures_dir / "triposplat" / "keys")
    names = {r.name for r in results}
    assert {"triposplat/keys/flow_model.json", "triposplat/keys/decoder.json",
            "triposplat/keys/dinov3_checkpoint.json", "triposplat/keys/flux2_vae_checkpoint.json"} <= names  # fmt: skip
    failing = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failing


def test_runner_prints_one_line_per_case_and_fails_on_a_wrong_answer(fixtures_dir, tmp_path):
    case = tmp_path / "systematic_resample"
    case.mkdir()
    source = fixtures_dir / "triposplat" / "systematic_resample"
    for name in ("inputs.safetensors", "outputs.safetensors"):
        (case / name).write_bytes((source / name).read_bytes())
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["rng"]["torch_manual_seed"] = 503  # other draws: the counts must differ
    (case / "manifest.json").write_text(json.dumps(manifest))
    good = subprocess.run(
        [sys.executable, "-m", "genesis3d.testing.parity", str(source)],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("PASS triposplat/systematic_resample max_abs_err=")
    bad = subprocess.run(
        [sys.executable, "-m", "genesis3d.testing.parity", str(case)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stdout.startswith("FAIL triposplat/systematic_resample")
    assert "differ (exact)" in bad.stdout
    assert len(bad.stdout.strip().splitlines()) == 1


def test_runner_refuses_a_folder_without_cases(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "genesis3d.testing.parity", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "no fixture cases found" in out.stderr


def _record_bytes(values):
    return torch.from_numpy(np.asarray(values, dtype="<f4").view(np.uint8).copy())


def test_byte_outputs_allow_ulps_only_in_the_named_exp_log_floats():
    expected = _record_bytes([1.5, 0.25, 3.0])
    float_offsets = [4]  # only the second float comes from exp/log
    one_ulp = np.nextafter(np.float32(0.25), np.float32(1))
    ok, note = compare_bytes_with_math_floats(
        "b", _record_bytes([1.5, one_ulp, 3.0]), expected, float_offsets, 2
    )
    assert ok and "1 exp/log floats within 1 ulp" in note

    far = np.float32(0.25) + np.float32(1e-6)
    ok, message = compare_bytes_with_math_floats(
        "b", _record_bytes([1.5, far, 3.0]), expected, float_offsets, 2
    )
    assert not ok and "more than 2 ulp" in message

    next_to_first = np.nextafter(np.float32(1.5), np.float32(2))
    ok, message = compare_bytes_with_math_floats(
        "b", _record_bytes([next_to_first, 0.25, 3.0]), expected, float_offsets, 2
    )
    assert not ok and "outside the exp/log floats" in message

    ok, note = compare_bytes_with_math_floats("b", expected, expected, float_offsets, 2)
    assert ok and note == ""
