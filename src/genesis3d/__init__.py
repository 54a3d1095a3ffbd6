"""Genesis: one picture in, a 3D asset out, on your own machine.

Importing this package is cheap: the verbs below are loaded on first use, and nothing
here imports torch or model code.

    import genesis3d
    mesh = genesis3d.generate("chair.png", model="inflate")
    genesis3d.export(mesh, "chair.glb", size=0.9, pivot="bottom")
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("genesis3d")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

_LAZY = {
    "generate": "genesis3d.api",
    "run": "genesis3d.api",
    "load_pipeline": "genesis3d.api",
    "export": "genesis3d.api",
    "export_lods": "genesis3d.api",
    "load": "genesis3d.api",
    "inspect": "genesis3d.api",
    "MeshAsset": "genesis3d.assets",
    "SplatAsset": "genesis3d.assets",
    "PBRMaterial": "genesis3d.assets",
    "GenesisError": "genesis3d.errors",
    "ProgressEvent": "genesis3d.progress",
    "FAMILIES": "genesis3d.registry",
}

__all__ = [
    "FAMILIES",
    "GenesisError",
    "MeshAsset",
    "PBRMaterial",
    "ProgressEvent",
    "SplatAsset",
    "__version__",
    "export",
    "export_lods",
    "generate",
    "inspect",
    "load",
    "load_pipeline",
    "run",
]

if TYPE_CHECKING:
    from genesis3d.api import export, export_lods, generate, inspect, load, load_pipeline, run
    from genesis3d.assets import MeshAsset, PBRMaterial, SplatAsset
    from genesis3d.errors import GenesisError
    from genesis3d.progress import ProgressEvent
    from genesis3d.registry import FAMILIES


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genesis3d' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
