"""Uploads, the token and the queue bound (the shared server listens beyond loopback)."""

from __future__ import annotations

import threading

import pytest

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


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_submits_never_pass_the_queue_bound(database, make_server, disc_png, request):
    limit, clients = 4, 16
    options: dict[str, object] = {"workers": 0, "max_queue": limit}
    if database == "postgresql":
        options["database_url"] = request.getfixturevalue("postgres_url")
    server = make_server(**options).start()
    start = threading.Barrier(clients)
    answers = []

    def client() -> None:
        start.wait()
        answers.append(server.submit(disc_png))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * limit + [429] * (clients - limit), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"] == "queue_full"
    queued = server.request("GET", "/api/jobs", params={"status": "queued"}).json()
    assert queued["total"] == limit
    server.stop()


def _gif() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, format="GIF")
    return buffer.getvalue()


def _chunked_multipart(picture: bytes, padding: int, sent: list[int], chunk: int = 16 * 1024):
    """A multipart body of ``picture`` followed by ``padding`` zero bytes, as a generator (so
    the client sends it chunked, without Content-Length); ``sent[0]`` counts what was yielded."""
    boundary = "genesis-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="image"; filename="disc.png"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        for part in (head, picture):
            sent[0] += len(part)
            yield part
        left = padding
        while left > 0:
            piece = bytes(min(chunk, left))
            left -= len(piece)
            sent[0] += len(piece)
            yield piece
        sent[0] += len(tail)
        yield tail

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_chunked_upload_is_refused_as_soon_as_it_passes_the_limit(server, disc_png):
    import httpx

    total = 64 * 1024 * 1024
    sent = [0]
    body, headers = _chunked_multipart(disc_png, total, sent)
    with httpx.Client(timeout=60) as client:
        answer = client.post(
            server.url + "/api/jobs", content=body, headers={**server.headers, **headers}
        )
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "upload_too_large"
    # Refused while the body was still coming: most of the 64 MiB was never sent.
    assert sent[0] < total // 4, sent[0]
    # A chunked upload within the limits is accepted.
    sent = [0]
    body, headers = _chunked_multipart(disc_png, 0, sent)
    accepted = httpx.post(
        server.url + "/api/jobs", content=body, headers={**server.headers, **headers}, timeout=30
    )
    assert accepted.status_code == 201, accepted.text
    server.request("POST", f"/api/jobs/{accepted.json()['id']}/cancel")
