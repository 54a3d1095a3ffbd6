"""The choice between compiled (numba) kernels and their NumPy twins, made once per call.

Every compiled kernel of :mod:`genesis3d.geometry` has a NumPy twin that gives the same
result; numba (the ``export`` extra) only changes the speed. A caller passes a
:data:`Backend`: ``"numba"`` demands the compiled kernel, ``"numpy"`` the twin, and
``"auto"`` takes numba when it is installed and otherwise logs, once per operation, that
the slower twin runs.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from typing import Literal

from genesis3d.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

__all__ = ["KERNEL_LOCK", "NUMBA_INSTALL", "Backend", "use_numba"]

Backend = Literal["auto", "numba", "numpy"]

#: numba's fallback threading layer (workqueue, where neither OpenMP nor TBB is found)
#: aborts the process when two threads launch parallel kernels at once, as concurrent
#: server jobs would: parallel kernels run under this lock (each uses every core anyway).
KERNEL_LOCK = threading.Lock()
NUMBA_INSTALL = "pip install 'genesis3d[export]'  (or: pip install numba)"


def use_numba(backend: Backend, operation: str) -> bool:
    """Whether ``operation`` runs its compiled kernel under ``backend``.

    Raises:
        ConfigError: ``backend`` is not one of "auto", "numba", "numpy".
        MissingDependencyError: ``backend="numba"`` without numba installed.
    """
    if backend not in ("auto", "numba", "numpy"):
        raise ConfigError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy":
        return False
    if importlib.util.find_spec("numba") is not None:
        return True
    if backend == "numba":
        raise MissingDependencyError(f"the compiled {operation}", "numba", NUMBA_INSTALL)
    log_numpy_fallback(operation)
    return False


@functools.cache
def log_numpy_fallback(operation: str) -> None:
    """Say once per operation that its NumPy twin runs (same result, slower)."""
    logger.info(
        "%s: numba is not installed, computing in NumPy (same result, several times "
        "slower); for speed: %s",
        operation,
        NUMBA_INSTALL,
    )
