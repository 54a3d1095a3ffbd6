"""The ``genesis3d`` command: parse, turn into settings, call :mod:`genesis3d.api`.

Errors Genesis raises on purpose are printed as one line naming the problem and the fix,
with a non-zero exit code; nothing partial is written (every file goes through an atomic
write).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from genesis3d.cli.output import (
    DEFAULT_OUTPUT_DIR,
    FORMAT_KINDS,
    OutputPlan,
    expand_inputs,
    parse_formats,
    parse_params,
    plan_outputs,
)
from genesis3d.cli.progress import ProgressDisplay
from genesis3d.errors import GenesisError
from genesis3d.progress import StageReporter

app = typer.Typer(
    name="genesis3d",
    help="Genesis: turn one picture into a 3D asset (mesh GLB or Gaussian splats) on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(
    help="The model families, their availability and licences.", invoke_without_command=True
)
app.add_typer(models_app, name="models")
studio_app = typer.Typer(help="The web studio served by `genesis3d serve`.", no_args_is_help=True)
app.add_typer(studio_app, name="studio")

logger = logging.getLogger("genesis3d.cli")


def _stdout():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _version_callback(value: bool) -> None:
    if value:
        from genesis3d import __version__

        typer.echo(f"genesis3d {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=_stderr(), show_path=False)],
        force=True,
    )


@dataclass
class ImageResult:
    image: str
    ok: bool
    files: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "image": self.image,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }
        if self.ok:
            data["files"] = self.files
            data["timings"] = {key: round(value, 3) for key, value in self.timings.items()}
        else:
            data["error"] = self.error
            data["error_type"] = self.error_type
        return data


@app.command()
def generate(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Pictures (PNG, JPEG or WebP) or folders of them; several make a batch.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=f"Output folder, or a file name for a single picture. Default: ./{DEFAULT_OUTPUT_DIR}/",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model family (see `genesis3d models`). Default: the first with weights present, else inflate.",
        ),
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="glb, ply, splat or spz; repeat or comma-separate for several. ply is splats and glb a mesh when the model makes both; glb holds splats (KHR_gaussian_splatting) for a splat-only model. Default: the model's primary output.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of every random draw; the same seed gives the same asset.")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[str | None, typer.Option(help="auto, float32, float16 or bfloat16.")] = None,
    background: Annotated[
        str | None,
        typer.Option(
            "--bg",
            help="Background removal: alpha (use the picture's matte), auto (flat backdrop, no weights) or rembg. Default: alpha when the picture has one, else auto.",
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            help="Weights folder in the official layout (default: the Hugging Face cache)."
        ),
    ] = None,
    size: Annotated[
        float | None, typer.Option(help="Length of the longest side in metres.")
    ] = None,
    pivot: Annotated[
        str, typer.Option(help="center, bottom (bottom-centre, for props on the ground) or keep.")
    ] = "center",
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Model parameter KEY=VALUE (repeatable), e.g. -p resolution=192."
        ),
    ] = None,
    gaussians: Annotated[
        int | None,
        typer.Option(
            help="triposplat: number of Gaussians, a multiple of 32 in 32768..1048576 (default 262144)."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Sampler steps of a neural model (triposplat: 20, triposg: 50, trellis2: 12 per stage)."
        ),
    ] = None,
    cfg: Annotated[
        float | None,
        typer.Option(help="Classifier-free guidance strength (triposplat: 3.0, triposg: 7.0)."),
    ] = None,
    octree_resolution: Annotated[
        int | None,
        typer.Option(
            help="triposg: cells per axis of the final extraction grid, 32..1024, a power of two (default 512)."
        ),
    ] = None,
    faces: Annotated[
        int | None,
        typer.Option(
            help="triposg, trellis2: decimate the mesh to at most this many faces (default: triposg keeps all, trellis2 500000)."
        ),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(
            help="trellis2: output voxel resolution 512, 1024 (default, a cascade from 512) or 1536 (a cascade, capped by its token budget); inflate: grid cells along the longest side."
        ),
    ] = None,
    texture_size: Annotated[
        int | None,
        typer.Option(
            help="trellis2, inflate: texture side in pixels, a power of two from 256 to 8192 (trellis2: 2048)."
        ),
    ] = None,
    offload: Annotated[
        str,
        typer.Option(
            help="none: keep every model component on the device; model: load each one only for its stage (less memory)."
        ),
    ] = "none",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON report on stdout instead of text.")
    ] = False,
) -> None:
    """Generate 3D assets from pictures."""
    from genesis3d import api
    from genesis3d.registry import FAMILIES, default_family_name, get_family

    wanted = parse_formats(formats)
    extra = parse_params(params)
    for key, value in (
        ("gaussians", gaussians),
        ("steps", steps),
        ("guidance_scale", cfg),
        ("octree_resolution", octree_resolution),
        ("faces", faces),
        ("resolution", resolution),
        ("texture_size", texture_size),
    ):
        if value is not None:
            extra[key] = value
    family = get_family(model) if model is not None else FAMILIES[default_family_name(weights)]
    plans = plan_outputs(expand_inputs(images), output, wanted, family)
    err = _stderr()
    if family.name == "inflate" and not as_json:
        err.print(
            "[dim]model: inflate, a geometric inflation of the silhouette (not AI); see `genesis3d models` for the neural families[/dim]"
        )
    pipeline = api.load_pipeline(
        family.name, weights=weights, device=device, dtype=dtype, offload=offload
    )

    results: list[ImageResult] = []
    with ProgressDisplay(enabled=not as_json, console=err) as display:
        for index, plan in enumerate(plans, start=1):
            results.append(
                _generate_one(
                    api,
                    pipeline,
                    plan,
                    index,
                    len(plans),
                    display,
                    seed=seed,
                    background=background,
                    size=size,
                    pivot=pivot,
                    params=extra,
                )
            )
            if not as_json:
                _print_result(err, results[-1])

    failed = [result for result in results if not result.ok]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "model": family.name,
                    "results": [result.to_dict() for result in results],
                    "failed": len(failed),
                },
                indent=2,
            )
        )
    else:
        _print_summary(err, results, plans)
    if failed:
        raise typer.Exit(code=1)


def _generate_one(
    api,
    pipeline,
    plan: OutputPlan,
    index: int,
    count: int,
    display: ProgressDisplay,
    **options: Any,
) -> ImageResult:
    start = time.perf_counter()
    try:
        kinds = tuple(dict.fromkeys(kind for _, kind, _ in plan.targets))
        with display.job(f"[{index}/{count}] {plan.image.name}") as callback:
            generation = api.run(
                plan.image,
                pipeline=pipeline,
                seed=options["seed"],
                outputs=kinds,
                background=options["background"],
                progress=callback,
                **options["params"],
            )
            files = []
            writing = StageReporter(callback, "write", len(plan.targets)).start()
            for fmt, kind, path in plan.targets:
                asset = generation.asset(kind)
                written = api.export(
                    asset, path, format=fmt, size=options["size"], pivot=options["pivot"]
                )
                files.append(
                    {"path": str(written), "format": fmt, "kind": kind, **_asset_counts(asset)}
                )
                writing.advance(message=str(written))
        return ImageResult(
            str(plan.image), True, files, time.perf_counter() - start, generation.timings
        )
    except GenesisError as error:
        return ImageResult(
            str(plan.image),
            False,
            seconds=time.perf_counter() - start,
            error=str(error),
            error_type=type(error).__name__,
        )
    except Exception as error:  # batch boundary: one broken picture must not stop the others
        logger.debug("unexpected failure on %s", plan.image, exc_info=True)
        return ImageResult(
            str(plan.image),
            False,
            seconds=time.perf_counter() - start,
            error=f"unexpected {type(error).__name__}: {error}",
            error_type=type(error).__name__,
        )


def _asset_counts(asset) -> dict[str, int]:
    if asset.kind == "mesh":
        return {"vertices": asset.n_vertices, "faces": asset.n_faces}
    return {"splats": asset.n_splats}


def _print_result(console, result: ImageResult) -> None:
    if result.ok:
        parts = []
        for item in result.files:
            counts = f"{item['faces']:,} faces" if "faces" in item else f"{item['splats']:,} splats"
            parts.append(f"{item['path']} ({counts})")
        console.print(
            f"[green]ok[/green] {result.image} -> "
            + ", ".join(parts)
            + f" in {result.seconds:.1f} s"
        )
    else:
        console.print(f"[red]failed[/red] {result.image}: {result.error}")


def _print_summary(console, results: list[ImageResult], plans: list[OutputPlan]) -> None:
    done = [result for result in results if result.ok]
    if not done:
        return
    folders = sorted({str(Path(item["path"]).parent) for result in done for item in result.files})
    kinds = {item["kind"] for result in done for item in result.files}
    console.print(
        f"{len(done)} of {len(results)} picture(s) done; files are in {', '.join(folders)}"
    )
    if "mesh" in kinds:
        console.print(
            "  view a .glb in Blender (File > Import > glTF 2.0), any glTF viewer, or check it with `genesis3d inspect FILE`"
        )
    if "splats" in kinds:
        console.print(
            "  view a splat .ply/.splat/.spz in a Gaussian-splat viewer such as SuperSplat or Spark"
        )


@app.command()
def inspect(
    file: Annotated[
        Path, typer.Argument(help="A .glb, .ply, .splat or .spz file.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    compare: Annotated[
        Path | None,
        typer.Option(
            help="A reference mesh: add Chamfer, F-score, normal consistency and Hausdorff of FILE against it."
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="F-score distance, as a fraction of the reference's diagonal.")
    ] = 0.01,
) -> None:
    """Health and statistics of a mesh or splats file."""
    from genesis3d import api

    report = api.inspect(file, compare=compare, threshold=threshold)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table(title=str(file), show_header=False)
    for key, value in report.items():
        table.add_row(key, _format_value(value))
    _stdout().print(table)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}={_format_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    return str(value)


@app.command()
def convert(
    source: Annotated[
        Path, typer.Argument(help="Input file (.glb, .ply, .splat, .spz).", show_default=False)
    ],
    destination: Annotated[
        Path,
        typer.Argument(help="Output file; its extension picks the format.", show_default=False),
    ],
    size: Annotated[
        float | None, typer.Option(help="Length of the longest side in metres.")
    ] = None,
    pivot: Annotated[str, typer.Option(help="center, bottom or keep.")] = "keep",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Convert between the formats (splats: ply, splat, spz, glb; meshes: glb, ply, obj)."""
    from genesis3d import api
    from genesis3d.io import format_from_path

    fmt = format_from_path(destination)
    kinds = FORMAT_KINDS[fmt]
    asset = api.load(source)
    if asset.kind not in kinds:
        from genesis3d.errors import ConfigError

        raise ConfigError(
            f"{source} holds {asset.kind} and .{fmt} holds {' or '.join(kinds)}; choose another output extension"
        )
    written = api.export(asset, destination, format=fmt, size=size, pivot=pivot)
    facts = {
        "source": str(source),
        "path": str(written),
        "format": fmt,
        "kind": asset.kind,
        **_asset_counts(asset),
    }
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
    else:
        _stderr().print(f"[green]ok[/green] {source} -> {written}")


@app.command()
def lods(
    source: Annotated[
        Path,
        typer.Argument(help="Dense mesh with vertex colours (.glb, .ply).", show_default=False),
    ],
    destination: Annotated[
        Path,
        typer.Argument(
            help="Output .glb; several budgets write NAME_lod0.glb, NAME_lod1.glb...",
            show_default=False,
        ),
    ],
    faces: Annotated[
        str, typer.Option(help="Face budget of each level, comma-separated.")
    ] = "100000",
    texture: Annotated[int, typer.Option(help="Texture side in pixels (power of two).")] = 2048,
    normal_map: Annotated[
        bool, typer.Option("--normal-map/--no-normal-map", help="Bake a normal map.")
    ] = True,
    size: Annotated[
        float | None, typer.Option(help="Length of the longest side in metres.")
    ] = None,
    pivot: Annotated[str, typer.Option(help="center, bottom or keep.")] = "keep",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Clean, decimate, UV-unwrap and bake a dense coloured mesh into light textured GLBs."""
    from genesis3d import api
    from genesis3d.errors import ConfigError

    try:
        budgets = tuple(int(part) for part in faces.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--faces takes comma-separated face counts, got {faces!r}; e.g. --faces 100000,20000"
        ) from None
    written = api.export_lods(
        source,
        destination,
        face_budgets=budgets,
        texture_size=texture,
        normal_map=normal_map,
        size=size,
        pivot=pivot,
    )
    facts = [
        {"path": str(path), "faces_budget": budget, **_asset_counts(api.load(path))}
        for path, budget in zip(written, budgets, strict=True)
    ]
    if as_json:
        typer.echo(json.dumps({"source": str(source), "levels": facts}, indent=2))
    else:
        for fact in facts:
            _stderr().print(f"[green]ok[/green] {fact['path']} ({fact['faces']} faces)")


@models_app.callback()
def models(
    ctx: typer.Context,
    weights: Annotated[Path | None, typer.Option(help="Also check this weights folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the model families with availability and licence."""
    if ctx.invoked_subcommand is not None:
        return
    from genesis3d.registry import FAMILIES, availability

    rows = []
    for family in FAMILIES.values():
        status = availability(family, weights if family.needs_weights else None)
        rows.append(
            {
                "name": family.name,
                "title": family.title,
                "task": family.task,
                "outputs": list(family.outputs),
                "license": family.license,
                "hub_id": family.hub_id,
                "available": status.available,
                "reason": status.reason,
                "description": family.description,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title="Genesis model families")
    for column in ("name", "makes", "licence", "available", "why / how"):
        table.add_column(column)
    for row in rows:
        mark = "[green]yes[/green]" if row["available"] else "[red]no[/red]"
        table.add_row(row["name"], ", ".join(row["outputs"]), row["license"], mark, row["reason"])
    _stdout().print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="Model family, e.g. triposplat.")],
) -> None:
    """Download a family's official weights from the Hugging Face Hub into its cache."""
    from genesis3d.registry import get_family
    from genesis3d.weights.hub import pull

    family = get_family(name)
    if not family.needs_weights or family.hub_id is None:
        _stderr().print(f"{family.name} is built in and needs no weights")
        return
    files = (*family.weight_files, *family.optional_files)
    _stderr().print(
        f"downloading {len(files)} files of {family.hub_id} (licence: {family.license}) ..."
    )
    folder = pull(family.hub_id, files)
    _stderr().print(f"[green]ok[/green] {family.name} weights in {folder}")


@models_app.command("verify")
def models_verify(
    name: Annotated[str, typer.Argument(help="Model family, e.g. triposplat.")],
    weights: Annotated[
        Path | None, typer.Option(help="Weights folder (default: the Hugging Face cache).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Check a family's weight files: presence, sizes, key sets, shapes and dtypes."""
    from genesis3d.registry import get_family, pipeline_class, resolve_weights

    family = get_family(name)
    folder = resolve_weights(family, weights)
    if folder is None:
        _stderr().print(f"{family.name} is built in and needs no weights")
        return
    cls = pipeline_class(family)
    report = cls.verify(folder)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        console = _stdout()
        for entry in report["files"]:
            mark = "[green]ok[/green]" if not entry["problems"] else "[red]problem[/red]"
            console.print(f"{mark} {entry['file']} ({entry['size_mb']:.1f} MB, {entry['license']})")
            for problem in entry["problems"]:
                console.print(f"    {problem}", markup=False)
    if not report["ok"]:
        raise typer.Exit(code=3)


SERVER_INSTALL = "pip install 'genesis3d[server]'"


@app.command()
def serve(
    workspace: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the job database, pictures, artifacts and token (GENESIS_WORKSPACE; default ./genesis-studio)."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (GENESIS_HOST; default 127.0.0.1). Anything but loopback needs the bearer token."
        ),
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (GENESIS_PORT; default 8765).")] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated devices of the workers, e.g. cuda:0,cuda:1 (GENESIS_DEVICES; default auto)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (GENESIS_WORKERS; default 1).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Job store URL, e.g. postgresql+psycopg://user@host/db (GENESIS_DATABASE_URL; default SQLite in the workspace)."
        ),
    ] = None,
    max_queue: Annotated[
        int | None,
        typer.Option(
            help="Queued jobs beyond which submits get 429 (GENESIS_MAX_QUEUE; default 100)."
        ),
    ] = None,
    max_upload_bytes: Annotated[
        int | None,
        typer.Option(help="Largest picture file (GENESIS_MAX_UPLOAD_BYTES; default 20 MiB)."),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(help="Largest picture in pixels (GENESIS_MAX_PIXELS; default 40 million)."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            help="Attempts of a job whose worker dies before it fails (GENESIS_MAX_ATTEMPTS; default 3)."
        ),
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds a worker's claim lasts without a heartbeat (GENESIS_LEASE_SECONDS; default 30)."
        ),
    ] = None,
    worker_nice: Annotated[
        int | None,
        typer.Option(
            help="Niceness of worker processes, 0-19, so the API stays responsive during a generation (GENESIS_WORKER_NICE; default 10)."
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Allow this browser origin (repeatable; GENESIS_CORS_ORIGINS; default none: CORS off)."
        ),
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(
            help="Weights folder of one model as MODEL=DIR, e.g. triposplat=/srv/weights/triposplat (repeatable; GENESIS_WEIGHTS=MODEL=DIR,MODEL=DIR; default: the Hugging Face cache)."
        ),
    ] = None,
    build_studio: Annotated[
        bool,
        typer.Option(
            help="In a source checkout with npm, build the web studio in the background when it is missing."
        ),
    ] = True,
) -> None:
    """Run the Genesis studio server: a job queue, worker processes and a REST API.

    The bearer token (GENESIS_TOKEN, or generated on first start and kept in the
    workspace) is required whenever the server listens on anything but loopback.
    """
    from genesis3d.errors import require

    for module in ("fastapi", "uvicorn", "sqlalchemy", "multipart"):
        require(module, feature="genesis3d serve", install=SERVER_INSTALL)
    from genesis3d.server.app import resolve_token, run_server
    from genesis3d.server.settings import load_settings, parse_weights

    settings = load_settings(
        {
            "workspace": workspace,
            "host": host,
            "port": port,
            "devices": devices.split(",") if devices else None,
            "workers": workers,
            "database_url": database_url,
            "max_queue": max_queue,
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": max_pixels,
            "max_attempts": max_attempts,
            "lease_seconds": lease_seconds,
            "worker_nice": worker_nice,
            "cors_origins": cors_origin,
            "weights": parse_weights(weights, "--weights") if weights else None,
        }
    )
    settings, created = resolve_token(settings)
    err = _stderr()
    if created:
        err.print(
            f"generated the access token (shown once, kept in {settings.workspace / 'token'}):"
        )
        err.print(settings.token, markup=False, emoji=False)
    err.print(
        f"Genesis studio on http://{settings.host}:{settings.port} with {settings.workers} worker(s); data in {settings.workspace}"
    )
    run_server(settings, build_studio=build_studio)


@studio_app.command("build")
def studio_build(
    force: Annotated[bool, typer.Option(help="Rebuild even when a build is present.")] = False,
) -> None:
    """Build the web studio from web/ into the package (needs a source checkout and Node.js/npm)."""
    from genesis3d.server.studio import build_studio as build

    _stderr().print("building the web studio (npm ci, vite build)...")
    folder = build(force=force)
    _stderr().print(f"the web studio is in {folder}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``genesis3d`` command."""
    try:
        app(args=argv, prog_name="genesis3d", standalone_mode=True)
    except GenesisError as error:
        console = _stderr()
        console.print("error:", style="red", end=" ")
        console.print(str(error), markup=False, emoji=False)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
