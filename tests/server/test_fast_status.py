"""Status polls answered before routing: same answers as the route, same token rule."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from genesis3d.server.fast_status import FastJobStatus, token_accepted  # noqa: E402
from genesis3d.server.routes import serialise_job  # noqa: E402
from genesis3d.server.snapshots import JobSnapshots  # noqa: E402
from genesis3d.server.store import JobStore  # noqa: E402
from tests.server.test_store import FIELDS  # noqa: E402


@pytest.mark.parametrize(
    ("token", "header", "accepted"),
    [
        (None, None, True),
        ("s3cret", None, False),
        ("s3cret", "Bearer s3cret", True),
        ("s3cret", "bearer  s3cret", True),
        ("s3cret", "Bearer wrong", False),
        ("s3cret", "Basic s3cret", False),
        ("s3cret", "s3cret", False),
    ],
)
def test_token_rule(token, header, accepted):
    assert token_accepted(token, header) is accepted


@pytest.fixture
def snapshots(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'studio.db'}")
    yield JobSnapshots(store, serialise_job), store
    store.close()


def _call(middleware, path, headers=(), method="GET", query=b""):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers),
             "query_string": query}  # fmt: skip
    asyncio.run(middleware(scope, receive, send))
    return sent


async def _downstream(scope, receive, send):
    await send({"type": "http.response.start", "status": 599, "headers": []})
    await send({"type": "http.response.body", "body": b"routed"})


def test_a_followed_job_is_answered_without_routing(snapshots):
    snapshots, store = snapshots
    job = store.submit(max_queue=10, max_attempts=1, **FIELDS)
    snapshots.put(job)
    middleware = FastJobStatus(_downstream, snapshots=snapshots, token="s3cret")
    sent = _call(middleware, f"/api/jobs/{job.id}", [(b"authorization", b"Bearer s3cret")])
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    assert sent[1]["body"] == serialise_job(job)
    assert int(dict(sent[0]["headers"])[b"content-length"]) == len(sent[1]["body"])


def test_everything_it_cannot_answer_goes_to_the_app(snapshots):
    snapshots, store = snapshots
    job = store.submit(max_queue=10, max_attempts=1, **FIELDS)
    snapshots.put(job)
    middleware = FastJobStatus(_downstream, snapshots=snapshots, token="s3cret")
    good = [(b"authorization", b"Bearer s3cret")]
    for path, headers, method, query in [
        (f"/api/jobs/{job.id}", [], "GET", b""),  # no token: the route's 401
        (f"/api/jobs/{job.id}", [(b"authorization", b"Bearer x")], "GET", b""),
        (f"/api/jobs/{'f' * 32}", good, "GET", b""),  # not followed: the route reads the store
        (f"/api/jobs/{job.id.upper()}", good, "GET", b""),  # malformed id: the route's 422
        (f"/api/jobs/{job.id}", good, "DELETE", b""),
        (f"/api/jobs/{job.id}/events", good, "GET", b""),
        (f"/api/jobs/{job.id}", good, "GET", b"x=1"),
    ]:
        sent = _call(middleware, path, headers, method, query)
        assert sent[0]["status"] == 599, (path, method)


def test_the_app_answers_polls_the_same_with_and_without_the_fast_path(tmp_path):
    from fastapi.testclient import TestClient

    from genesis3d.server.app import create_app
    from genesis3d.server.settings import Settings

    app = create_app(
        Settings(workspace=tmp_path / "workspace", workers=0, host="0.0.0.0"),
        start_workers=False,
        static_dir=tmp_path / "static",
    )
    token = (tmp_path / "workspace" / "token").read_text().strip()
    with TestClient(app) as client:
        job = app.state.store.submit(max_queue=10, max_attempts=1, **FIELDS)
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get(f"/api/jobs/{job.id}", headers=headers)  # routed, then kept
        again = client.get(f"/api/jobs/{job.id}", headers=headers)  # answered by the fast path
        assert first.status_code == again.status_code == 200
        assert first.content == again.content
        assert first.headers["content-type"] == again.headers["content-type"]
        refused = client.get(f"/api/jobs/{job.id}")
        assert refused.status_code == 401 and "token" in refused.json()["message"]
        missing = client.get(f"/api/jobs/{'e' * 32}", headers=headers)
        assert missing.status_code == 404
