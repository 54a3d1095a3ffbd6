"""The job store's leases and the settings, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("sqlalchemy", reason="the server extra is not installed")

from genesis3d.errors import ConfigError  # noqa: E402
from genesis3d.server.settings import Settings, load_settings  # noqa: E402
from genesis3d.server.store import JobConflict, JobStore, QueueFull  # noqa: E402

FIELDS = dict(
    model="inflate",
    params={},
    seed=0,
    formats=["glb"],
    background=None,
    size=None,
    pivot="center",
    picture="0" * 64 + ".png",
    picture_name="x.png",
    picture_width=8,
    picture_height=8,
)


def exercise(store: JobStore) -> None:
    """Claim with a lease, heartbeat, losing the lease, reaping, finishing once, the queue bound."""
    first = store.submit(max_queue=2, retry_after=1, max_attempts=2, **FIELDS)
    second = store.submit(max_queue=2, retry_after=1, max_attempts=1, **FIELDS)
    with pytest.raises(QueueFull):
        store.submit(max_queue=2, retry_after=1, max_attempts=1, **FIELDS)
    claimed = store.claim("host:1", lease_seconds=0.5)
    assert claimed.id == first.id and claimed.attempts == 1 and claimed.status == "running"
    assert store.heartbeat(claimed, "host:1", 0.5) is False
    assert store.claim("host:2", lease_seconds=0.5).id == second.id
    assert store.claim("host:3", lease_seconds=0.5) is None
    time.sleep(0.6)
    assert store.reap_expired() == 2  # first back to the queue, second out of attempts
    assert store.get(second.id).status == "failed"
    assert store.get(second.id).error_type == "WorkerLost"
    assert store.get(first.id).status == "queued"
    # The presumed-dead worker cannot write any more.
    assert store.heartbeat(claimed, "host:1", 0.5) is None
    assert store.finish(claimed, "host:1", "completed") is False
    again = store.claim("host:4", lease_seconds=30)
    assert again.id == first.id and again.attempts == 2
    assert store.progress(again, "host:4", "geometry", 1, 2) is False
    store.cancel(first.id)
    assert store.progress(again, "host:4", "geometry", 2, 2) is True
    assert store.finish(again, "host:4", "cancelled", error="cancelled on request") is True
    with pytest.raises(JobConflict):
        store.cancel(first.id)
    assert store.retry(first.id, max_queue=2, retry_after=1).attempts == 0
    jobs, total = store.list(status="queued")
    assert total == 1 and jobs[0].id == first.id
    assert store.counts()["failed"] == 1


def test_store_on_sqlite(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'studio.db'}")
    try:
        exercise(store)
    finally:
        store.close()


def test_store_on_postgresql(postgres_url):
    store = JobStore(postgres_url)
    try:
        exercise(store)
    finally:
        store.close()


def concurrent_submits(url: str, *, limit: int = 5, clients: int = 24) -> None:
    """Submits racing from two stores (two API processes, say) never pass the queue bound."""
    stores = [JobStore(url), JobStore(url)]
    start = threading.Barrier(clients)
    accepted, refused, failed = [], [], []

    def client(index: int) -> None:
        start.wait()
        try:
            job = stores[index % 2].submit(max_queue=limit, max_attempts=1, **FIELDS)
            accepted.append(job.id)
        except QueueFull as error:
            refused.append(error)
        except Exception as error:  # collected and reported below
            failed.append(error)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failed, failed
        assert len(accepted) == limit and len(refused) == clients - limit
        assert stores[0].counts()["queued"] == limit
        assert all(error.queued == limit for error in refused)
    finally:
        for store in stores:
            store.close()


def test_queue_bound_holds_under_concurrent_submits_on_sqlite(tmp_path):
    concurrent_submits(f"sqlite:///{tmp_path / 'studio.db'}")


def test_queue_bound_holds_under_concurrent_submits_on_postgresql(postgres_url):
    concurrent_submits(postgres_url)


def test_settings_from_flags_and_environment(tmp_path):
    environ = {
        "GENESIS_WORKSPACE": str(tmp_path),
        "GENESIS_PORT": "9000",
        "GENESIS_DEVICES": "cuda:0, cuda:1",
        "GENESIS_LEASE_SECONDS": "12.5",
    }
    settings = load_settings({"port": 9100, "workers": None}, environ)
    assert settings.port == 9100 and settings.workspace == tmp_path  # a flag beats the environment
    assert settings.devices == ("cuda:0", "cuda:1") and settings.lease_seconds == 12.5
    assert settings.loopback and not Settings(host="0.0.0.0").loopback
    assert settings.resolved_database_url.endswith("studio.db")
    with pytest.raises(ConfigError, match="GENESIS_PORT must be a whole number, got 'x'"):
        load_settings({}, {"GENESIS_PORT": "x"})
    with pytest.raises(ConfigError, match="max_queue must be an integer between 1"):
        load_settings({"max_queue": 0}, {})
    with pytest.raises(ConfigError, match="token must be at least 16"):
        Settings(token="short")


def test_worker_niceness_setting(tmp_path):
    assert Settings().worker_nice == 10
    assert load_settings({}, {"GENESIS_WORKER_NICE": "0"}).worker_nice == 0
    with pytest.raises(ConfigError, match="worker_nice must be an integer between 0 and 19"):
        load_settings({"worker_nice": 25}, {})
    assert Settings.from_json(Settings(worker_nice=3).to_json()).worker_nice == 3


def test_weights_folder_per_model(tmp_path):
    environ = {"GENESIS_WEIGHTS": f"triposplat={tmp_path / 'tsp'}, trellis2={tmp_path / 't2'}"}
    settings = load_settings({}, environ)
    assert settings.weights == {"triposplat": tmp_path / "tsp", "trellis2": tmp_path / "t2"}
    # A flag replaces the environment's folder of the models it names, not the others'.
    flagged = load_settings({"weights": {"TripoSplat": tmp_path / "other"}}, environ)
    assert flagged.weights == {"triposplat": tmp_path / "other", "trellis2": tmp_path / "t2"}
    assert Settings.from_json(flagged.to_json()).weights == flagged.weights
    assert Settings().weights == {}
    with pytest.raises(ConfigError, match="got 'inflate', which needs no weights"):
        Settings(weights={"inflate": tmp_path})
    with pytest.raises(ConfigError, match="got 'nope', which is not a model family"):
        load_settings({}, {"GENESIS_WEIGHTS": "nope=/srv"})
    with pytest.raises(ConfigError, match="GENESIS_WEIGHTS takes MODEL=DIR items"):
        load_settings({}, {"GENESIS_WEIGHTS": "/srv/weights"})
