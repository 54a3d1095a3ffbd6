"""Run known-answer fixture cases: ``python -m genesis3d.testing.parity DIR...``.

A case folder holds ``manifest.json`` plus ``inputs``/``outputs``/``weights`` safetensors
(see the fixtures README). Each case is run through Genesis' own implementation of the
``official`` component named in the manifest and compared output by output within the
manifest's tolerance (integer, boolean and byte outputs exactly). A ``keys/`` folder of
state-dict inventories is checked against our modules built on the meta device.

Byte outputs (file bytes) are exact, except the float32 fields that an adapter names as
results of exp/log (``MATH_FLOATS``): their last bit depends on the CPU's vector math, so they
are decoded and compared within ``MATH_ULPS`` units in the last place.

Prints one line per case, ``PASS|FAIL <family>/<case> max_abs_err=...``, and exits non-zero
if any case fails. A folder may be a case, a family folder of cases, or the fixtures root.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from genesis3d.testing import trellis2_cases, triposg_cases, triposplat_cases

Adapter = Callable[["Case"], dict[str, torch.Tensor]]
KeysCheck = Callable[[Path], list[str]]


@dataclass
class Case:
    """One fixture case folder, loaded."""

    path: Path
    manifest: dict[str, Any]
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.manifest.get('family', self.path.parent.name)}/{self.manifest.get('case', self.path.name)}"

    def weights(self) -> dict[str, torch.Tensor]:
        file = self.manifest.get("model", {}).get("weights", "weights.safetensors")
        return load_file(str(self.path / file))

    def input(self, name: str) -> torch.Tensor:
        return self.inputs[name]


@dataclass
class Result:
    name: str
    passed: bool
    detail: str


ADAPTERS: dict[str, Adapter] = {
    **triposplat_cases.ADAPTERS,
    **trellis2_cases.ADAPTERS,
    **triposg_cases.ADAPTERS,
}
KEY_CHECKS: dict[str, KeysCheck] = {
    "triposplat": triposplat_cases.check_key_inventories,
    "trellis2": trellis2_cases.check_key_inventories,
    "triposg": triposg_cases.check_key_inventories,
}


def compare(
    name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float
) -> tuple[bool, float, str]:
    """Compare one output; returns (ok, max_abs_err, message)."""
    if tuple(actual.shape) != tuple(expected.shape):
        return (
            False,
            math.inf,
            f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}",
        )
    exact = not expected.is_floating_point()
    if exact:
        diff = (actual.to(expected.dtype) != expected).sum().item()
        return diff == 0, float(diff), "" if diff == 0 else f"{name}: {diff} values differ (exact)"
    actual64, expected64 = actual.double(), expected.double()
    same_inf = torch.isinf(expected64) & (actual64 == expected64)
    both_nan = torch.isnan(expected64) & torch.isnan(actual64)
    error = (actual64 - expected64).abs()
    error = torch.where(same_inf | both_nan, torch.zeros_like(error), error)
    allowed = atol + rtol * expected64.abs().nan_to_num(posinf=0, neginf=0)
    bad = ~(error <= allowed)
    worst = float(error.max()) if error.numel() else 0.0
    if bad.any():
        return (
            False,
            worst,
            f"{name}: {int(bad.sum())} values outside atol={atol} rtol={rtol} (max abs err {worst:.3g})",
        )
    return True, worst, ""


def compare_bytes_with_math_floats(
    name: str, actual: torch.Tensor, expected: torch.Tensor, float_offsets: Any, max_ulps: int
) -> tuple[bool, str]:
    """Exact byte comparison, except float32 fields at ``float_offsets`` (within max_ulps)."""
    import numpy as np

    a = actual.to(torch.uint8).numpy()
    e = expected.numpy()
    if a.shape != e.shape:
        return False, f"{name}: {a.size} bytes != expected {e.size}"
    offsets = np.asarray(float_offsets, dtype=np.int64)
    in_float = np.zeros(a.size, dtype=bool)
    for k in range(4):
        in_float[offsets + k] = True
    other = int(((a != e) & ~in_float).sum())
    if other:
        return False, f"{name}: {other} bytes differ outside the exp/log floats (exact)"
    index = offsets[:, None] + np.arange(4)[None, :]
    fa = a[index].reshape(-1).view("<i4").astype(np.int64)
    fe = e[index].reshape(-1).view("<i4").astype(np.int64)
    ulps = np.abs(fa - fe)
    both_inf = np.isinf(fa.astype(np.int32).view(np.float32)) & (fa == fe)
    ulps[both_inf] = 0
    worst = int(ulps.max()) if ulps.size else 0
    if worst > max_ulps:
        bad = int((ulps > max_ulps).sum())
        return False, f"{name}: {bad} exp/log floats differ by more than {max_ulps} ulp"
    changed = int((ulps > 0).sum())
    note = (
        f"{name}: {changed} exp/log floats within {worst} ulp, all other bytes exact"
        if changed
        else ""
    )
    return True, note


def run_case(path: Path) -> Result:
    """Run one case folder and compare its outputs."""
    manifest = json.loads((path / "manifest.json").read_text())
    case = Case(path, manifest)
    official = manifest.get("official", "?")
    adapter = ADAPTERS.get(official)
    if adapter is None:
        return Result(case.name, False, f"no implementation of {official}")
    case.inputs = (
        load_file(str(path / "inputs.safetensors"))
        if (path / "inputs.safetensors").exists()
        else {}
    )
    expected = load_file(str(path / "outputs.safetensors"))
    try:
        actual = adapter(case)
    except Exception as error:  # a failing case is reported, the run goes on
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return Result(case.name, False, f"raised {last}")
    tolerance = manifest.get("tolerance", {})
    worst, problems, notes = 0.0, [], []
    for name, value in expected.items():
        if name not in actual:
            problems.append(f"{name}: not produced")
            continue
        override = tolerance.get("per_output", {}).get(name, {})
        atol = override.get("atol", tolerance.get("atol", 0.0))
        rtol = override.get("rtol", tolerance.get("rtol", 0.0))
        math_floats = triposplat_cases.MATH_FLOATS.get((official, name))
        if math_floats is not None and not value.is_floating_point():
            ok, message = compare_bytes_with_math_floats(
                name,
                actual[name],
                value,
                math_floats(case, value.numpy()),
                triposplat_cases.MATH_ULPS,
            )
            if message:
                (notes if ok else problems).append(message)
            continue
        ok, error, message = compare(name, actual[name], value, atol, rtol)
        if value.is_floating_point():
            worst = max(worst, error)
        if not ok:
            problems.append(message)
    detail = f"max_abs_err={worst:.3g}"
    if problems or notes:
        detail += " " + "; ".join(problems + notes)
    return Result(case.name, not problems, detail)


def run_keys(path: Path) -> list[Result]:
    family = path.parent.name
    check = KEY_CHECKS.get(family)
    if check is None:
        return [Result(f"{family}/keys", False, "no key inventory check for this family")]
    results = []
    try:
        lines = check(path)
    except Exception as error:  # reported as a failure of the inventory check
        return [Result(f"{family}/keys", False, f"raised {type(error).__name__}: {error}")]
    for line in lines:
        status, name, detail = line.split(" ", 2)
        results.append(Result(f"{family}/keys/{name}", status == "PASS", detail))
    return results


def discover(paths: Sequence[Path]) -> list[Path]:
    """Case folders (with manifest.json) and keys folders under the given paths, sorted."""
    found: list[Path] = []
    for path in paths:
        if (path / "manifest.json").exists() or path.name == "keys":
            found.append(path)
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a fixture folder")
        for child in sorted(path.iterdir()):
            if child.is_dir():
                found.extend(discover([child]))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genesis3d.testing.parity",
        description="Run fixture cases against Genesis and print PASS/FAIL per case.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="case, family or fixtures folders")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    try:
        folders = discover(args.dirs)
    except FileNotFoundError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    if not folders:
        sys.stderr.write("error: no fixture cases found (a case folder has a manifest.json)\n")
        return 2
    failed = 0
    for folder in folders:
        results = run_keys(folder) if folder.name == "keys" else [run_case(folder)]
        for result in results:
            failed += not result.passed
            sys.stdout.write(
                f"{'PASS' if result.passed else 'FAIL'} {result.name} {result.detail}\n"
            )
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
