"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _testdata_dir() -> Path:
    # The test pictures live beside the checkout; CI clones the repo next to them.
    override = os.environ.get("GENESIS_TESTDATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "testdata" / "images"


@pytest.fixture(scope="session")
def testdata_images() -> Path:
    """Folder of the shared test pictures; fails loudly where it is missing."""
    folder = _testdata_dir()
    if not folder.is_dir():
        pytest.fail(f"test pictures not found in {folder}; set GENESIS_TESTDATA to their folder")
    return folder


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """Folder of the example pictures bundled with the repository."""
    return REPO_ROOT / "examples"


@pytest.fixture(scope="session")
def gltf_validator():
    """``validate(path) -> report``: fails the test when the Khronos validator finds an error."""
    from tests.support.gltf import validate_glb

    return validate_glb


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Folder of the known-answer fixtures beside the checkout (GENESIS_FIXTURES overrides)."""
    override = os.environ.get("GENESIS_FIXTURES")
    folder = Path(override) if override else REPO_ROOT.parent / "shared" / "fixtures"
    if not folder.is_dir():
        pytest.fail(f"fixtures not found in {folder}; set GENESIS_FIXTURES to their folder")
    return folder


@pytest.fixture(scope="session")
def tiny_triposplat(tmp_path_factory) -> Path:
    """A tiny TripoSplat checkpoint folder in the official layout (seeded random weights)."""
    from tests.support.triposplat import write_tiny_triposplat

    return write_tiny_triposplat(tmp_path_factory.mktemp("triposplat") / "ckpts")


@pytest.fixture(scope="session")
def tiny_triposg(tmp_path_factory) -> Path:
    """A tiny TripoSG folder in the official diffusers layout (seeded random weights)."""
    from tests.support.triposg import write_tiny_triposg

    return write_tiny_triposg(tmp_path_factory.mktemp("triposg") / "TripoSG")


@pytest.fixture(scope="session")
def tiny_trellis2(tmp_path_factory) -> Path:
    """A tiny TRELLIS.2 folder in the official layout (pipeline.json + ckpts/, seeded weights)."""
    from tests.support.trellis2 import write_tiny_trellis2

    return write_tiny_trellis2(tmp_path_factory.mktemp("trellis2") / "TRELLIS.2-4B")
