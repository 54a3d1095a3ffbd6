"""What a job produces: the artifact files of its formats, and how they are named."""

from __future__ import annotations

from genesis3d.errors import ConfigError
from genesis3d.io import FORMATS
from genesis3d.registry import ModelFamily


def plan_artifacts(family: ModelFamily, formats: list[str]) -> list[tuple[str, str, str]]:
    """(artifact name, format, asset kind) for each requested format, names fixed by the server.

    A format holding both kinds takes the one it is usually opened as, as on the command
    line: ``.ply`` splats, ``.glb`` a mesh, when the family makes both.

    Raises:
        ConfigError: for an unknown format or one that cannot hold what the family makes.
    """
    if not formats:
        formats = ["glb" if family.task == "mesh" else "ply"]
    plan: list[tuple[str, str, str]] = []
    for fmt in dict.fromkeys(formats):
        if fmt not in FORMATS or FORMATS[fmt].sidecars:
            served = [name for name, spec in FORMATS.items() if not spec.sidecars]
            several = [name for name, spec in FORMATS.items() if spec.sidecars]
            raise ConfigError(
                f"formats must be among {', '.join(served)}, got {fmt!r} ("
                f"{', '.join(several)} write several files: convert a GLB with "
                "`genesis3d convert mesh.glb mesh.obj`)"
            )
        kinds = [kind for kind in FORMATS[fmt].kinds if kind in family.outputs]
        if not kinds:
            fitting = [
                name
                for name, spec in FORMATS.items()
                if set(spec.kinds) & set(family.outputs) and not spec.sidecars
            ]
            raise ConfigError(
                f"{family.name} makes {' and '.join(family.outputs)}, which .{fmt} cannot hold; "
                f"choose among {', '.join(fitting)}"
            )
        plan.append((f"{kinds[0]}.{fmt}", fmt, kinds[0]))
    return plan
