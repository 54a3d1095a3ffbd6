"""Load on the studio server: 200 submits from 20 concurrent clients, status polls meanwhile.

Starts ``genesis3d serve`` on a free loopback port with one worker and a fresh workspace,
submits the jobs (``inflate``, small parameters), polls their status from the same 20
clients while the worker generates, then cancels what is left and checks every accepted job
is still there, exactly once. Prints accepted / rejected / lost counts and the latency
percentiles of ``GET /api/jobs/{id}``. Target: zero lost, p99 below 50 ms.

    python benchmarks/server.py [--jobs 200] [--clients 20] [--poll-seconds 20]
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--poll-seconds", type=float, default=20.0)
    parser.add_argument("--max-queue", type=int, default=100)
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="genesis-bench-")) / "workspace"
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genesis3d",
            "serve",
            "--workspace",
            str(workspace),
            "--port",
            str(port),
            "--workers",
            "1",
            "--max-queue",
            str(args.max_queue),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        time.sleep(3)  # let the worker import its libraries
        picture = _picture()
        accepted: list[str] = []
        rejected = errors = 0
        submit_seconds: list[float] = []
        poll_seconds: list[float] = []
        lock = threading.Lock()
        per_client = [
            args.jobs // args.clients + (i < args.jobs % args.clients) for i in range(args.clients)
        ]
        generating = threading.Event()

        def client(count: int) -> None:
            nonlocal rejected, errors
            with httpx.Client(base_url=url, timeout=30) as http:
                for _ in range(count):
                    start = time.perf_counter()
                    answer = http.post(
                        "/api/jobs",
                        files={"image": ("disc.png", picture)},
                        data={"params": '{"resolution": 32, "texture_size": 256}'},
                    )
                    with lock:
                        submit_seconds.append(time.perf_counter() - start)
                        if answer.status_code == 201:
                            accepted.append(answer.json()["id"])
                        elif answer.status_code == 429:
                            rejected += 1
                        else:
                            errors += 1
                end = time.monotonic() + args.poll_seconds
                index = 0
                while time.monotonic() < end:
                    with lock:
                        job_id = accepted[index % len(accepted)] if accepted else None
                    index += 7
                    if job_id is None:
                        break
                    start = time.perf_counter()
                    answer = http.get(f"/api/jobs/{job_id}")
                    elapsed = time.perf_counter() - start
                    if answer.status_code == 200 and answer.json()["status"] == "running":
                        generating.set()
                    with lock:
                        poll_seconds.append(elapsed)
                        if answer.status_code != 200:
                            errors += 1
                    time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(n,)) for n in per_client]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started

        with httpx.Client(base_url=url, timeout=30) as http:
            counts = http.get("/api/health").json()["jobs"]
            for job_id in accepted:
                http.post(f"/api/jobs/{job_id}/cancel")
            listing = http.get("/api/jobs", params={"limit": 500}).json()
            listed = [item["id"] for item in listing["items"]]
            lost = len(set(accepted) - set(listed))
            duplicated = len(listed) - len(set(listed)) + len(set(listed) - set(accepted))

        rows = [
            ("submitted", args.jobs),
            ("accepted", len(accepted)),
            ("rejected (429)", rejected),
            ("other errors", errors),
            ("lost", lost),
            ("duplicated", duplicated),
            ("completed during the run", counts["completed"]),
            ("worker was generating", generating.is_set()),
            ("status polls", len(poll_seconds)),
            ("status p50 ms", f"{1000 * statistics.median(poll_seconds):.1f}"),
            ("status p99 ms", f"{1000 * _percentile(poll_seconds, 0.99):.1f}"),
            ("status max ms", f"{1000 * max(poll_seconds):.1f}"),
            ("submit p50 ms", f"{1000 * statistics.median(submit_seconds):.1f}"),
            ("submit p99 ms", f"{1000 * _percentile(submit_seconds, 0.99):.1f}"),
            ("wall s", f"{wall:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"{'measure':<{width}}  value")
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
