"""Decimate one slab of a mesh in a process of its own.

    python -m genesis3d.geometry.slab_worker IN.npz OUT.npz

``IN.npz`` holds ``points`` (n, 3) float64, ``triangles`` (m, 3) int32, ``target`` and
``aggressiveness``; ``OUT.npz`` receives the decimated ``points`` and ``triangles``, the
slab's border vertices kept in place. fast-simplification keeps the mesh it works on in
global state, so slabs decimated at the same time need processes of their own (see
:func:`genesis3d.geometry.decimate.decimate`). This module imports only NumPy and the
library, so a worker starts in well under a second.
"""

from __future__ import annotations

import sys

import numpy as np


def simplify_slab(
    points: np.ndarray, triangles: np.ndarray, target: int, aggressiveness: float
) -> tuple[np.ndarray, np.ndarray]:
    """One slab through fast-simplification with its border vertices locked."""
    import fast_simplification

    return fast_simplification.simplify(
        points,
        triangles,
        target_count=int(target),
        agg=float(aggressiveness),
        preserve_border=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m genesis3d.geometry.slab_worker IN.npz OUT.npz\n")
        return 2
    with np.load(argv[0]) as data:
        points, triangles = simplify_slab(
            data["points"], data["triangles"], int(data["target"]), float(data["aggressiveness"])
        )
    with open(argv[1], "wb") as handle:
        np.savez(handle, points=points, triangles=triangles)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
