"""Uploads, the token and the queue bound (the shared server listens beyond loopback)."""

from __future__ import annotations

from tests.server.conftest import picture_bytes


def test_token_required_off_loopback(studio, disc_png):
    server = studio
    server.headers = {}
    token_file = server.workspace / "token"
    assert token_file.exists() and token_file.stat().st_mode & 0o077 == 0
    token = token_file.read_text().strip()
    assert token in server.log.read_text()  # shown once on the first start
    refused = server.request("GET", "/api/jobs")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "token" in refused.json()["message"]
    wrong = server.request("GET", "/api/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert server.submit(disc_png).status_code == 401
    server.headers = {"Authorization": f"Bearer {token}"}
    assert server.request("GET", "/api/jobs").status_code == 200
    assert server.request("GET", "/api/health").status_code == 200


def test_uploads_are_checked_by_content(server):
    gif = _gif()
    answer = server.submit(gif, name="looks-like.png")
    assert answer.status_code == 415, answer.text
    body = answer.json()
    assert body["error"] == "unsupported_media_type" and body["received"] == "GIF"
    text = server.submit(b"<html>not a picture</html>", name="x.png")
    assert text.status_code == 415 and "text" in text.json()["received"]
    truncated = server.submit(picture_bytes(fmt="PNG")[:300])
    assert truncated.status_code == 422 and truncated.json()["error"] == "damaged_picture"
    huge = server.submit(picture_bytes(size=300))
    assert huge.status_code == 422 and huge.json()["error"] == "too_many_pixels"
    assert "300x300" in huge.json()["received"]
    big = server.submit(b"\x89PNG" + bytes(200_000))
    assert big.status_code == 413 and big.json()["error"] == "upload_too_large"
    for fmt in ("PNG", "JPEG", "WEBP"):
        accepted = server.submit(picture_bytes(size=64 + len(fmt), fmt=fmt), name="x.bin")
        assert accepted.status_code == 201, (fmt, accepted.text)
        server.request("POST", f"/api/jobs/{accepted.json()['id']}/cancel")
        server.wait(accepted.json()["id"])
        assert server.request("DELETE", f"/api/jobs/{accepted.json()['id']}").status_code == 204


def test_queue_full_answers_429_with_retry_after(server, disc_png):
    # Keep the worker busy so that the next jobs stay queued.
    busy = server.submit(disc_png, params={"resolution": 320, "texture_size": 2048}).json()
    server.wait(busy["id"], statuses=("running",))
    ids = [busy["id"]]
    for _ in range(3):
        answer = server.submit(disc_png)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    full = server.submit(disc_png)
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) >= 1
    assert full.json()["error"] == "queue_full"
    # One picture stored once by content, shared by the jobs.
    stored = [path.name for path in (server.workspace / "pictures").iterdir()]
    assert stored.count(f"{busy['picture']['sha256']}.png") == 1
    server.request("POST", f"/api/jobs/{ids[1]}/cancel")
    last = server.submit(disc_png)
    assert last.status_code == 201
    for job_id in [*ids[1:], last.json()["id"]]:
        server.request("POST", f"/api/jobs/{job_id}/cancel")
        assert server.job(job_id)["status"] == "cancelled"
    # The busy job stops at its next step; nothing waits for it.
    assert server.request("POST", f"/api/jobs/{busy['id']}/cancel").status_code == 200


def _gif() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, format="GIF")
    return buffer.getvalue()
