"""The one validated configuration of the studio server, read from CLI flags and the environment.

This is the only server module that reads environment variables. Precedence: a CLI flag,
then ``GENESIS_<NAME>`` in the environment, then the default below.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis3d.errors import ConfigError

ENV_PREFIX = "GENESIS_"
DEFAULT_WORKSPACE = Path("genesis-studio")


@dataclass(frozen=True)
class Settings:
    """Everything the server, its job store and its workers need.

    Attributes:
        workspace: folder holding the database, the pictures, the artifacts and the token.
        host: address to listen on; anything but loopback requires a bearer token.
        port: TCP port.
        token: bearer token; None on a non-loopback host means "generate one on first start
            and keep it in the workspace".
        database_url: SQLAlchemy URL of the job store; None is SQLite in the workspace. A
            PostgreSQL URL (``postgresql+psycopg://...``) works too.
        devices: devices the workers run on, e.g. ("cuda:0", "cuda:1"); worker i uses
            ``devices[i % len(devices)]``.
        workers: number of worker processes (0 runs the API without generating).
        max_upload_bytes: largest accepted picture file.
        max_pixels: largest accepted picture, width x height.
        max_queue: queued jobs beyond which a submit is answered 429.
        max_attempts: attempts of a job before it fails (an attempt ends early when its
            worker dies).
        lease_seconds: how long a worker's claim on a job lasts without a heartbeat.
        cors_origins: origins allowed by CORS; empty turns CORS off.
        worker_nice: scheduling niceness added to worker processes (0-19, POSIX), so the
            API answers promptly while a generation keeps the CPU busy.
        weights: weights folder per model family (official layout, as ``--weights`` of
            ``genesis3d generate`` takes it), e.g. ``{"triposplat": Path("/srv/weights/tsp")}``;
            a family not named here loads from the Hugging Face cache.
    """

    workspace: Path = DEFAULT_WORKSPACE
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    database_url: str | None = None
    devices: tuple[str, ...] = ("auto",)
    workers: int = 1
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_queue: int = 100
    max_attempts: int = 3
    lease_seconds: float = 30.0
    worker_nice: int = 10
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    weights: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "workspace", Path(self.workspace))
        object.__setattr__(self, "weights", _check_weights(self.weights))
        _check_int("port", self.port, 0, 65535)
        _check_int("workers", self.workers, 0, 64)
        _check_int("max_upload_bytes", self.max_upload_bytes, 1024, 2**31)
        _check_int("max_pixels", self.max_pixels, 64 * 64, 2**31)
        _check_int("max_queue", self.max_queue, 1, 1_000_000)
        _check_int("max_attempts", self.max_attempts, 1, 100)
        _check_int("worker_nice", self.worker_nice, 0, 19)
        if not isinstance(self.lease_seconds, int | float) or not 0.5 <= self.lease_seconds <= 3600:
            raise ConfigError(
                f"lease_seconds must be a number between 0.5 and 3600, got {self.lease_seconds!r}"
            )
        if not self.devices or not all(isinstance(d, str) and d for d in self.devices):
            raise ConfigError(
                f"devices must name at least one device (auto, cpu, cuda:N, mps), got {self.devices!r}"
            )
        if self.token is not None and len(self.token) < 16:
            raise ConfigError(
                f"the token must be at least 16 characters long, got {len(self.token)}; "
                "leave it unset to have one generated"
            )
        if not self.host:
            raise ConfigError("host must be an address such as 127.0.0.1 or 0.0.0.0, got ''")

    @property
    def loopback(self) -> bool:
        """Whether the server listens on loopback only (then no token is required)."""
        return is_loopback(self.host)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.workspace / 'studio.db').resolve()}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form, to hand the settings to a worker process."""
        data = dataclasses.asdict(self)
        data["workspace"] = str(self.workspace)
        data["devices"] = list(self.devices)
        data["cors_origins"] = list(self.cors_origins)
        data["weights"] = {name: str(folder) for name, folder in self.weights.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        values = dict(data)
        values["devices"] = tuple(values["devices"])
        values["cors_origins"] = tuple(values["cors_origins"])
        values["weights"] = {name: Path(folder) for name, folder in values["weights"].items()}
        return cls(**values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_weights(weights: Mapping[str, Any]) -> dict[str, Path]:
    """Family name -> absolute weights folder, refusing names that are not weighted families."""
    from genesis3d.registry import FAMILIES

    weighted = [name for name, family in FAMILIES.items() if family.needs_weights]
    checked: dict[str, Path] = {}
    for name, folder in dict(weights).items():
        key = str(name).strip().lower()
        if key not in weighted:
            reason = "needs no weights" if key in FAMILIES else "is not a model family"
            raise ConfigError(
                f"weights are set per model family as MODEL=DIR with MODEL one of "
                f"{', '.join(weighted)}; got {name!r}, which {reason}"
            )
        if not str(folder).strip():
            raise ConfigError(f"the weights folder of {key} must be a path, got {folder!r}")
        checked[key] = Path(folder).expanduser().resolve()
    return checked


def parse_weights(items: Iterable[str], source: str) -> dict[str, Path]:
    """``MODEL=DIR`` items (of a repeated flag or a comma-separated variable) as a mapping.

    Raises:
        ConfigError: for an item without ``=``, naming ``source``.
    """
    weights: dict[str, Path] = {}
    for item in items:
        name, sign, folder = item.partition("=")
        if not sign or not name.strip() or not folder.strip():
            raise ConfigError(
                f"{source} takes MODEL=DIR items such as triposplat=/srv/weights/triposplat, "
                f"got {item!r}"
            )
        weights[name.strip().lower()] = Path(folder.strip())
    return weights


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer between {low} and {high}, got {value!r}")


_INTEGERS = (
    "port",
    "workers",
    "max_upload_bytes",
    "max_pixels",
    "max_queue",
    "max_attempts",
    "worker_nice",
)
_LISTS = ("devices", "cors_origins")


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from CLI flags (``overrides``, None values ignored) and the environment.

    Args:
        overrides: values given on the command line, by field name (``weights`` is merged
            per model over the environment's).
        environ: the environment; None reads ``os.environ``.

    Raises:
        ConfigError: naming the variable or flag, what is accepted and what came.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for item in dataclasses.fields(Settings):
        key = ENV_PREFIX + item.name.upper()
        if key in environ and environ[key] != "":
            values[item.name] = _parse_env(item.name, key, environ[key])
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name == "weights":  # a flag names some models; the others keep the environment's
            values["weights"] = {**values.get("weights", {}), **value}
        else:
            values[name] = tuple(value) if name in _LISTS else value
    return Settings(**values)


def _parse_env(name: str, key: str, text: str) -> Any:
    if name in _LISTS:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if name in _INTEGERS:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, got {text!r}") from None
    if name == "lease_seconds":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key} must be a number of seconds, got {text!r}") from None
    if name == "workspace":
        return Path(text)
    if name == "weights":
        return parse_weights((part for part in text.split(",") if part.strip()), key)
    return text
