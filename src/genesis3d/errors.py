"""Errors raised by Genesis.

Every message follows one template: what was expected, what came, and the fix. The CLI
prints ``str(error)`` on one line and exits non-zero; the server turns the class into an
HTTP status. Catch :class:`GenesisError` to catch them all.
"""

from __future__ import annotations


class GenesisError(Exception):
    """Base class of every error Genesis raises on purpose."""

    exit_code = 1


class ConfigError(GenesisError, ValueError):
    """An argument, option or configuration value is invalid."""

    exit_code = 2


class InputError(GenesisError, ValueError):
    """An input file or picture cannot be used (missing, unsupported, empty mask, too big)."""

    exit_code = 3


class WeightsError(GenesisError):
    """Model weights are missing, incomplete or do not match the architecture."""

    exit_code = 4


class MissingDependencyError(GenesisError, ImportError):
    """An optional library is needed for this feature and is not installed."""

    exit_code = 5

    def __init__(self, feature: str, package: str, install: str) -> None:
        self.feature = feature
        self.package = package
        self.install = install
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed; run: {install}"
        )


class AssetError(GenesisError, ValueError):
    """An asset's arrays have the wrong shape, dtype or values."""

    exit_code = 6


class FormatError(GenesisError, ValueError):
    """A file is not a valid instance of the format it claims to be."""

    exit_code = 7


class ExtractionError(GenesisError):
    """A generated field has no surface to extract (empty, completely full, or not finite)."""

    exit_code = 8


class UnknownModelError(ConfigError):
    """A model family name is not in the registry."""


def require(module: str, *, feature: str, install: str):
    """Import an optional module or raise :class:`MissingDependencyError`.

    Args:
        module: dotted module name to import.
        feature: what the caller is trying to do, for the message.
        install: the exact command that installs it.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(feature, module.split(".")[0], install) from exc


class CancelledError(GenesisError):
    """The work was cancelled by its caller (raised from a progress callback)."""

    exit_code = 130
