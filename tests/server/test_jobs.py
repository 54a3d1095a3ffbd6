"""The job lifecycle through the real server and a real worker process, with ``inflate``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from genesis3d.io.glb import read_glb

FAST = {"resolution": 32, "texture_size": 256, "splats": 1024}
SLOW = {"resolution": 192, "texture_size": 1024}


def _events(server, job_id: str) -> list[tuple[str, dict]]:
    import httpx

    events, kind = [], None
    with httpx.stream(
        "GET", f"{server.url}/api/jobs/{job_id}/events", timeout=60, headers=server.headers
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: ") :])))
                if kind == "end":
                    break
    return events


def test_submit_follow_and_download(server, disc_png, tmp_path):
    answer = server.submit(disc_png, model="inflate", params=FAST, formats="glb,ply", seed=3)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] in ("queued", "running")
    assert job["params"]["resolution"] == 32 and job["params"]["thickness"] == 0.8
    events = _events(server, job["id"])
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end" and events[-1][1]["status"] == "completed"
    stages = {data["progress"]["stage"] for kind, data in events if kind == "job"}
    assert "done" in stages and len(kinds) >= 2
    done = server.job(job["id"])
    assert done["status"] == "completed" and done["attempts"] == 1 and done["error"] is None
    assert {"preprocess", "geometry", "texture", "write"} <= set(done["timings"]["stages"])
    names = [artifact["name"] for artifact in done["artifacts"]]
    assert names == ["mesh.glb", "splats.ply"]
    download = server.request("GET", done["artifacts"][0]["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "model/gltf-binary"
    assert len(download.content) == done["artifacts"][0]["bytes"]
    path = tmp_path / "mesh.glb"
    path.write_bytes(download.content)
    assert read_glb(path).n_faces > 0
    missing = server.request("GET", f"/api/jobs/{job['id']}/artifacts/..%2Fstudio.db")
    assert missing.status_code == 404 and missing.json()["error"] in ("not_found", "job_not_found")


def test_cancel_running_and_queued_then_retry_and_delete(server, disc_png):
    slow = server.submit(disc_png, params=SLOW).json()
    queued = server.submit(disc_png, params=FAST).json()
    server.wait(slow["id"], statuses=("running",))
    assert (
        server.request("POST", f"/api/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    )
    asked = server.request("POST", f"/api/jobs/{slow['id']}/cancel").json()
    assert asked["cancel_requested"] is True
    ended = server.wait(slow["id"])
    assert ended["status"] == "cancelled" and ended["artifacts"] == []
    again = server.request("POST", f"/api/jobs/{slow['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["message"]

    retried = server.request("POST", f"/api/jobs/{queued['id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    finished = server.wait(queued["id"])
    assert finished["status"] == "completed" and finished["attempts"] == 1
    assert server.request("POST", f"/api/jobs/{queued['id']}/retry").status_code == 409

    assert server.request("DELETE", f"/api/jobs/{queued['id']}").status_code == 204
    assert server.request("GET", f"/api/jobs/{queued['id']}").status_code == 404
    assert not (server.workspace / "artifacts" / queued["id"]).exists()
    assert server.request("DELETE", f"/api/jobs/{slow['id']}").status_code == 204


def test_list_filters_and_paging(server, disc_png):
    listing = server.request("GET", "/api/jobs", params={"status": "completed", "limit": 1})
    assert listing.status_code == 200
    body = listing.json()
    assert body["limit"] == 1 and len(body["items"]) <= 1
    assert all(item["status"] == "completed" for item in body["items"])
    every = server.request("GET", "/api/jobs", params={"limit": 500}).json()
    assert every["total"] == len(every["items"])
    bad = server.request("GET", "/api/jobs", params={"status": "exploded"})
    assert bad.status_code == 422 and "status" in bad.json()["message"]


def test_models_and_openapi(server):
    models = {item["name"]: item for item in server.request("GET", "/api/models").json()}
    assert models["inflate"]["available"] is True
    assert models["inflate"]["default_params"]["resolution"] == 160
    assert models["triposplat"]["default_params"]["steps"] == 20
    spec = server.request("GET", "/openapi.json").json()
    submit = spec["paths"]["/api/jobs"]["post"]["responses"]
    assert {"201", "413", "415", "422", "429"} <= set(submit)
    assert "JobOut" in spec["components"]["schemas"]
    assert "ErrorResponse" in spec["components"]["schemas"]


def test_bad_parameters(server, disc_png):
    cases = [
        ({"params": {"resolution": 5}}, "resolution must be an integer between 32 and 512"),
        ({"params": {"colour": 1}}, "inflate has no parameter colour"),
        ({"params": "[1, 2]"}, "params must be a JSON object"),
        ({"params": "{oops"}, "params must be a JSON object"),
        ({"model": "dalle"}, "unknown model 'dalle'"),
        ({"formats": "obj"}, "formats must be among"),
        ({"pivot": "left"}, "pivot"),
    ]
    for fields, expected in cases:
        answer = server.submit(disc_png, **fields)
        assert answer.status_code == 422, (fields, answer.text)
        assert expected in answer.json()["message"], (fields, answer.json())


def test_workers_run_niced_below_the_api(server):
    workers = server.request("GET", "/api/health").json()["workers"]
    assert workers and all(w["alive"] for w in workers)
    for worker in workers:
        # Field 19 of /proc/PID/stat is the niceness (after the parenthesised command name).
        deadline = time.monotonic() + 10
        while True:
            stat = Path(f"/proc/{worker['pid']}/stat").read_text()
            nice = int(stat.rsplit(")", 1)[1].split()[16])
            if nice >= 10 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the worker sets it as it starts
        assert nice >= 10


def test_models_report_the_configured_weights_folder(make_server, tmp_path):
    folder = tmp_path / "weights-of-triposplat"
    folder.mkdir()
    server = make_server(workers=0, weights=f"triposplat={folder}").start()
    models = {item["name"]: item for item in server.request("GET", "/api/models").json()}
    assert not models["triposplat"]["available"]
    assert str(folder) in models["triposplat"]["reason"]
    assert models["inflate"]["available"]
    server.stop()
