"""The API's copy of the jobs: fresh from the store, never older than the API's own writes."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("sqlalchemy", reason="the server extra is not installed")

from genesis3d.server.routes import serialise_job  # noqa: E402
from genesis3d.server.snapshots import JobSnapshots  # noqa: E402
from genesis3d.server.store import JobStore  # noqa: E402
from tests.server.test_store import FIELDS  # noqa: E402


@pytest.fixture
def store(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'studio.db'}")
    yield store
    store.close()


def test_refresh_brings_a_workers_progress(store):
    snapshots = JobSnapshots(store, serialise_job)
    job = store.submit(max_queue=10, max_attempts=1, **FIELDS)
    snapshots.start()
    try:
        assert snapshots.get(job.id) == job  # read at the start
        claimed = store.claim("host:1", lease_seconds=30)
        store.progress(claimed, "host:1", "geometry", 2, 5)
        deadline = time.monotonic() + 5
        while snapshots.get(job.id).stage != "geometry" and time.monotonic() < deadline:
            time.sleep(0.02)
        body = json.loads(snapshots.body(job.id))
        assert body["status"] == "running" and body["progress"] == {
            "stage": "geometry",
            "step": 2,
            "total": 5,
        }
    finally:
        snapshots.stop()


def test_a_refresh_older_than_the_apis_write_does_not_undo_it(store):
    snapshots = JobSnapshots(store, serialise_job)
    job = store.submit(max_queue=10, max_attempts=1, **FIELDS)
    began = time.monotonic()
    before = store.changed_since(0.0)  # a refresh reading the row before the cancel
    snapshots.put(store.cancel(job.id))
    snapshots._apply(before[0], began)  # that refresh's result arrives after the write
    assert snapshots.get(job.id).status == "cancelled"
    snapshots.refresh()  # a later refresh reads the row as it is
    assert snapshots.get(job.id).status == "cancelled"


def test_a_deleted_job_stays_gone(store):
    snapshots = JobSnapshots(store, serialise_job)
    job = store.submit(max_queue=10, max_attempts=1, **FIELDS)
    snapshots.put(job)
    store.cancel(job.id)
    read_before_delete = store.get(job.id)
    store.delete(job.id)
    snapshots.drop(job.id)
    snapshots.put(read_before_delete)
    snapshots.refresh()
    assert snapshots.get(job.id) is None and snapshots.body(job.id) is None


def test_least_recently_read_jobs_leave_first(store):
    snapshots = JobSnapshots(store, serialise_job, capacity=2)
    jobs = [store.submit(max_queue=10, max_attempts=1, **FIELDS) for _ in range(3)]
    snapshots.put(jobs[0])
    snapshots.put(jobs[1])
    assert snapshots.get(jobs[0].id) is not None  # read: now the most recent
    snapshots.put(jobs[2])
    assert snapshots.get(jobs[1].id) is None
    assert snapshots.get(jobs[0].id) is not None and snapshots.get(jobs[2].id) is not None
