"""Load on the studio server: 200 submits from 20 concurrent clients, status polls meanwhile.

Starts ``genesis3d serve`` on a free loopback port with one worker and a fresh workspace,
waits until the API has imported its model modules, then runs 20 clients at once, each
with its own connection: asyncio tasks spread over ``--processes`` processes, so that the
load generator, which shares the machine with the server, is neither one thread's share
of the CPU nor 20 threads contending for one interpreter. Each client submits its share
of the jobs (``inflate``, small parameters), then polls the status of the
accepted jobs for ``--poll-seconds`` while the worker generates, pausing
``--poll-interval`` between polls. Then it cancels what is left and checks that every
accepted job is still there, exactly once.

Prints accepted / rejected / lost counts, the 50th and 99th percentile latency of
``GET /api/jobs/{id}``, the machine's load average, and whether the target was met.
Target: zero lost, status p99 below 50 ms while a generation runs.

    python benchmarks/server.py [--jobs 200] [--clients 20] [--poll-seconds 20]
                                [--poll-interval 0.02] [--max-queue 100] [--processes 4]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TARGET_P99_MS = 50.0


def _picture() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((16, 16, 80, 80), fill=(200, 60, 40, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@dataclass
class Tally:
    accepted: list[str] = field(default_factory=list)
    rejected: int = 0
    errors: int = 0
    submit_seconds: list[float] = field(default_factory=list)
    poll_seconds: list[float] = field(default_factory=list)
    polls_while_running: int = 0


async def _client(url: str, count: int, picture: bytes, args, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(count):
            start = time.perf_counter()
            answer = await http.post(
                "/api/jobs",
                files={"image": ("disc.png", picture)},
                data={"params": '{"resolution": 32, "texture_size": 256}'},
            )
            tally.submit_seconds.append(time.perf_counter() - start)
            if answer.status_code == 201:
                tally.accepted.append(answer.json()["id"])
            elif answer.status_code == 429:
                tally.rejected += 1
            else:
                tally.errors += 1
        end = time.monotonic() + args.poll_seconds
        index = count  # clients start at different jobs
        while time.monotonic() < end and tally.accepted:
            job_id = tally.accepted[index % len(tally.accepted)]
            index += 7
            start = time.perf_counter()
            answer = await http.get(f"/api/jobs/{job_id}")
            elapsed = time.perf_counter() - start
            tally.poll_seconds.append(elapsed)
            if answer.status_code != 200:
                tally.errors += 1
            elif answer.json()["status"] == "running":
                tally.polls_while_running += 1
            await asyncio.sleep(args.poll_interval)


async def _clients(url: str, shares: list[int], args) -> Tally:
    """Clients of one process; they poll the jobs any of them had accepted."""
    picture = _picture()
    tally = Tally()
    await asyncio.gather(*(_client(url, count, picture, args, tally) for count in shares))
    return tally


def _process(url: str, shares: list[int], args, start, results) -> None:
    start.wait()
    results.put(asyncio.run(_clients(url, shares, args)))


def _load(url: str, args) -> tuple[Tally, float]:
    shares = [
        args.jobs // args.clients + (i < args.jobs % args.clients) for i in range(args.clients)
    ]
    processes = max(1, min(args.processes, args.clients))
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(processes + 1), context.Queue()
    children = [
        context.Process(target=_process, args=(url, shares[i::processes], args, start, results))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    start.wait()
    started = time.perf_counter()
    parts = [results.get() for _ in children]
    wall = time.perf_counter() - started
    for child in children:
        child.join()
    tally = Tally()
    for part in parts:
        tally.accepted += part.accepted
        tally.rejected += part.rejected
        tally.errors += part.errors
        tally.submit_seconds += part.submit_seconds
        tally.poll_seconds += part.poll_seconds
        tally.polls_while_running += part.polls_while_running
    return tally, wall


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_until_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            health = httpx.get(url + "/api/health", timeout=2)
            if health.status_code == 200 and all(w["alive"] for w in health.json()["workers"]):
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not answer within 120 s")
        time.sleep(0.2)
    # The model list imports the pipeline modules in the API process: done before measuring.
    httpx.get(url + "/api/models", timeout=120).raise_for_status()
    time.sleep(2)  # let the worker import its libraries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--poll-seconds", type=float, default=20.0)
    parser.add_argument(
        "--poll-interval", type=float, default=0.02, help="pause of each client between polls"
    )
    parser.add_argument("--max-queue", type=int, default=100)
    parser.add_argument("--processes", type=int, default=4, help="processes the clients run in")
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="genesis-bench-")) / "workspace"
    port = _port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "genesis3d", "serve", "--no-build-studio"]
    command += ["--workspace", str(workspace), "--port", str(port), "--workers", "1"]
    command += ["--max-queue", str(args.max_queue)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_ready(url, server)
        load_before, cpu_before = os.getloadavg()[0], _cpu_seconds(server.pid)
        tally, wall = _load(url, args)
        load_after, cpu_after = os.getloadavg()[0], _cpu_seconds(server.pid)
        requests = len(tally.poll_seconds) + len(tally.submit_seconds)
        # CPU the API process spent per request: the server's cost, whatever the machine's load.
        cpu_per_request = (
            f"{1000 * (cpu_after - cpu_before) / requests:.2f}"
            if cpu_before is not None and cpu_after is not None and requests
            else "n/a"
        )

        with httpx.Client(base_url=url, timeout=30) as http:
            counts = http.get("/api/health").json()["jobs"]
            for job_id in tally.accepted:
                http.post(f"/api/jobs/{job_id}/cancel")
            listing = http.get("/api/jobs", params={"limit": 500}).json()
        listed = [item["id"] for item in listing["items"]]
        lost = len(set(tally.accepted) - set(listed))
        duplicated = len(listed) - len(set(listed)) + len(set(listed) - set(tally.accepted))
        polls = tally.poll_seconds
        p50, p99 = 1000 * statistics.median(polls), 1000 * _percentile(polls, 0.99)
        # A poll saw the job the worker was on, or the worker is on one now.
        generating = tally.polls_while_running > 0 or counts["running"] > 0

        rows = [
            (
                "clients / processes",
                f"{args.clients} / {max(1, min(args.processes, args.clients))}",
            ),
            ("poll interval ms", f"{1000 * args.poll_interval:.0f}"),
            ("submitted", args.jobs),
            ("accepted", len(tally.accepted)),
            ("rejected (429)", tally.rejected),
            ("other errors", tally.errors),
            ("lost", lost),
            ("duplicated", duplicated),
            ("completed during the run", counts["completed"]),
            ("worker was generating", generating),
            ("status polls", len(polls)),
            ("status polls per s", f"{len(polls) / max(args.poll_seconds, 1e-9):.0f}"),
            ("status p50 ms", f"{p50:.1f}"),
            ("status p99 ms", f"{p99:.1f}"),
            ("status max ms", f"{1000 * max(polls):.1f}"),
            ("submit p50 ms", f"{1000 * statistics.median(tally.submit_seconds):.1f}"),
            ("submit p99 ms", f"{1000 * _percentile(tally.submit_seconds, 0.99):.1f}"),
            ("API process CPU ms per request", cpu_per_request),
            ("wall s", f"{wall:.1f}"),
            ("load average (1 min) before / after", f"{load_before:.1f} / {load_after:.1f}"),
            ("CPU cores", os.cpu_count()),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"{'measure':<{width}}  value")
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        met = lost == 0 and duplicated == 0 and generating and p99 < TARGET_P99_MS
        print(
            f"target (0 lost, status p99 < {TARGET_P99_MS:.0f} ms while generating): "
            + ("ok" if met else "MISSED")
        )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
