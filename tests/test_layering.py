"""The dependency rules of CONVENTIONS section 1, checked on the source's import statements."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genesis3d"

#: For each layer, the genesis3d layers it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "geometry": {
        "models",
        "pipelines",
        "server",
        "api",
        "cli",
        "nn",
        "schedulers",
        "weights",
        "preprocess",
        "registry",
    },
    "io": {
        "models",
        "pipelines",
        "server",
        "api",
        "cli",
        "nn",
        "schedulers",
        "weights",
        "preprocess",
        "registry",
    },
    "preprocess": {"models", "pipelines", "server", "api", "cli"},
    "nn": {"models", "pipelines", "server", "api", "cli", "schedulers"},
    "models": {"pipelines", "server", "api", "cli"},
    "schedulers": {"models", "pipelines", "server", "api", "cli", "nn"},
    "weights": {"pipelines", "server", "api", "cli"},
    "pipelines": {"server", "api", "cli"},
    "api": {"server", "cli"},
    # The server reaches models only through the api verbs.
    "server": {"cli", "models", "pipelines", "nn", "schedulers", "weights", "geometry"},
    "assets": {"models", "pipelines", "server", "api", "cli", "geometry", "io"},
    "errors": {"models", "pipelines", "server", "api", "cli", "geometry", "io", "assets"},
}

#: The only modules allowed to read environment variables.
ENVIRONMENT_READERS = {"cli", "server/settings.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    layers = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "genesis3d" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def test_every_module_respects_the_layering():
    violations = []
    for path in _modules():
        layer = _layer(path)
        bad = _imported_layers(path) & FORBIDDEN.get(layer, set())
        if bad:
            violations.append(
                f"{path.relative_to(PACKAGE)} ({layer}) imports {', '.join(sorted(bad))}"
            )
    assert not violations, "layering rule broken:\n" + "\n".join(violations)


def test_no_relative_imports_hide_the_layering():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if any(
            isinstance(n, ast.ImportFrom) and n.level > 0
            for n in ast.walk(ast.parse(p.read_text()))
        )
    ]
    assert not offenders, (
        f"use absolute genesis3d imports so the layering test sees them: {offenders}"
    )


def test_only_cli_and_server_settings_read_the_environment():
    offenders = []
    for path in _modules():
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] in ENVIRONMENT_READERS or relative in ENVIRONMENT_READERS:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "putenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, f"environment read outside the CLI and server settings: {offenders}"


def test_the_rule_catches_a_violation(tmp_path):
    # The checker must see a forbidden import, or the test above could pass vacuously.
    fake = tmp_path / "bad.py"
    fake.write_text("from genesis3d.pipelines.base import Pipeline\nimport genesis3d.server.app\n")
    assert _imported_layers(fake) == {"pipelines", "server"}


@pytest.mark.parametrize(
    ("statement", "heavy"),
    [
        (
            "import genesis3d",
            ("torch", "scipy", "skimage", "PIL", "genesis3d.api", "genesis3d.pipelines"),
        ),
        (
            "import genesis3d.registry as r; list(r.FAMILIES.values())",
            ("torch", "scipy", "skimage", "genesis3d.pipelines.inflate", "huggingface_hub"),
        ),
        ("import genesis3d.io", ("torch", "scipy", "skimage")),
    ],
)
def test_light_imports(statement, heavy):
    code = f"import sys; {statement}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"`{statement}` imported heavy modules: {loaded}"
