"""Run the Khronos glTF validator (npm ``gltf-validator``) on GLB files written by the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VALIDATOR_VERSION = "2.0.0-dev.3.10"
INSTALL_DIR = REPO / ".cache" / "gltf-validator"
SCRIPT = Path(__file__).with_name("validate_gltf.mjs")


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        # Never skip: every GLB the tests write must pass the validator.
        raise AssertionError(
            f"the Khronos glTF validator needs Node.js, and `{tool}` is not on PATH; install "
            "Node.js 18 or newer with npm (https://nodejs.org, or `apt-get install nodejs npm`)"
        )
    return found


def _node_modules() -> Path:
    """The folder that holds the pinned ``gltf-validator``, installed there on first use."""
    package = INSTALL_DIR / "node_modules" / "gltf-validator"
    if (package / "package.json").is_file():
        installed = json.loads((package / "package.json").read_text())["version"]
        if installed == VALIDATOR_VERSION:
            return INSTALL_DIR / "node_modules"
    npm = _require("npm")
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(INSTALL_DIR),
            f"gltf-validator@{VALIDATOR_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"npm could not install gltf-validator@{VALIDATOR_VERSION}:\n{result.stderr}"
        )
    return INSTALL_DIR / "node_modules"


#: Errors of this validator release that a newer glTF extension makes valid: the
#: validator predates KHR_gaussian_splatting, whose attributes are named
#: ``KHR_gaussian_splatting:NAME`` instead of the core's ``_NAME`` for custom attributes.
EXTENSION_ATTRIBUTE_PREFIXES = ("KHR_gaussian_splatting:",)


def _allowed(message: dict) -> bool:
    if message["code"] != "MESH_PRIMITIVE_INVALID_ATTRIBUTE":
        return False
    name = message.get("pointer", "").rsplit("/", 1)[-1]
    return name.startswith(EXTENSION_ATTRIBUTE_PREFIXES)


def validate_glb(path: str | Path) -> dict:
    """Validate a GLB with the Khronos glTF validator.

    Attribute names of a glTF extension newer than the validator (see
    :data:`EXTENSION_ATTRIBUTE_PREFIXES`) are not counted as errors; every other error is.

    Args:
        path: the GLB file.

    Returns:
        The validator's JSON report; ``report["issues"]`` holds ``numErrors``,
        ``numWarnings``, ``numInfos``, ``numHints`` and the ``messages``.

    Raises:
        AssertionError: when the file has errors (all listed), or Node.js is missing.
    """
    node = _require("node")
    modules = _node_modules()
    result = subprocess.run(
        [node, str(SCRIPT), str(modules), str(path)], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(f"the glTF validator crashed on {path}:\n{result.stderr}")
    report = json.loads(result.stdout)
    issues = report["issues"]
    allowed = [m for m in issues["messages"] if m["severity"] == 0 and _allowed(m)]
    issues["numErrors"] -= len(allowed)
    issues["messages"] = [m for m in issues["messages"] if not (m["severity"] == 0 and _allowed(m))]
    if issues["numErrors"]:
        errors = [
            f"{m['code']}: {m['message']} ({m.get('pointer', '')})"
            for m in issues["messages"]
            if m["severity"] == 0
        ]
        raise AssertionError(
            f"{path} has {issues['numErrors']} glTF error(s):\n" + "\n".join(errors)
        )
    return report
