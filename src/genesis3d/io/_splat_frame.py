"""The RDF file frame of INRIA 3DGS PLY and antimatter15 .splat files.

3DGS captures and the viewers built for them (SuperSplat, Spark, antimatter15) use
COLMAP's RDF frame (x right, y down, z away from the viewer). Genesis's world frame is RUB
(glTF), so both writers turn splats by :data:`genesis3d.geometry.frames.RDF_TO_WORLD`,
a half turn about X that is its own inverse, and both readers turn them back.
"""

from __future__ import annotations

import numpy as np

from genesis3d.geometry.frames import RDF_TO_WORLD, rotate_points, rotate_quaternions


def flip(means: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert centres (n, 3) and quaternions (n, 4, wxyz) between the world and RDF frames."""
    if len(means) == 0:
        return means.astype(np.float32), rotations.astype(np.float32)
    return rotate_points(means, RDF_TO_WORLD), rotate_quaternions(rotations, RDF_TO_WORLD)
