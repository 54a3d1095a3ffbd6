"""A worker killed mid-job and a server restarted: every accepted job ends, once."""

from __future__ import annotations

import os
import signal
import time

from tests.server.conftest import TERMINAL

JOB = {"resolution": 160, "texture_size": 1024}
FAST = {"resolution": 32, "texture_size": 256}


def test_killed_worker_and_restarted_server_lose_no_job(make_server, disc_png):
    server = make_server(workers=1, lease_seconds=2, max_attempts=3).start()
    server.wait_for_workers()
    accepted = [server.submit(disc_png, params=JOB).json()["id"]]
    accepted += [server.submit(disc_png, params=FAST, seed=seed).json()["id"] for seed in (1, 2)]
    victim = server.wait(accepted[0], statuses=("running",))
    deadline = time.monotonic() + 30
    while victim["progress"]["stage"] in (None, "starting", "load") and time.monotonic() < deadline:
        victim = server.job(accepted[0])
    assert victim["status"] == "running", victim
    pid = int(victim["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)  # mid-job: no chance to clean up or give the job back
    server.stop()

    # The restarted server gives new jobs one attempt only; the old ones keep their three.
    restarted = make_server(
        workspace=server.workspace, workers=1, lease_seconds=2, max_attempts=1
    ).start()
    ended = [restarted.wait(job_id, statuses=TERMINAL, timeout=90) for job_id in accepted]
    listing = restarted.request("GET", "/api/jobs", params={"limit": 500}).json()
    assert sorted(item["id"] for item in listing["items"]) == sorted(accepted)  # none lost or added
    for job in ended:
        assert job["status"] in ("completed", "failed"), job
        if job["status"] == "failed":
            assert job["error"]["message"], job
        else:
            names = sorted(os.listdir(restarted.workspace / "artifacts" / job["id"]))
            assert names == ["mesh.glb"], names
    assert ended[0]["attempts"] >= 2  # the killed attempt counted, then the job ran again
    leftovers = [p for p in os.listdir(restarted.workspace / "artifacts") if p.endswith(".tmp")]
    assert leftovers == []

    # A job whose worker dies on its only attempt fails, saying why.
    job_id = restarted.submit(disc_png, params=JOB).json()["id"]
    job = restarted.wait(job_id, statuses=("running",))
    os.kill(int(job["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    failed = restarted.wait(job_id, timeout=30)
    assert failed["status"] == "failed" and failed["error"]["type"] == "WorkerLost"
    assert "stopped" in failed["error"]["message"] and failed["attempts"] == 1
