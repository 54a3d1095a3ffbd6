"""The studio's page and the API calls only it makes: parameter help, artifact health."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from genesis3d.server.app import create_app
from genesis3d.server.settings import Settings
from genesis3d.server.studio import build_studio, studio_built


def test_models_carry_help_for_every_default_parameter(server):
    models = {model["name"]: model for model in server.request("GET", "/api/models").json()}
    inflate = models["inflate"]
    assert set(inflate["param_help"]) == set(inflate["default_params"])
    assert "grid cells" in inflate["param_help"]["resolution"]
    assert "power of two" in inflate["param_help"]["texture_size"]


def test_inspect_gives_the_health_of_mesh_and_splats(server, disc_png):
    job = server.submit(disc_png, model="inflate", params={"resolution": 32}, formats="glb,ply")
    assert job.status_code == 201, job.text
    done = server.wait(job.json()["id"])
    assert done["status"] == "completed", done
    mesh = server.request("GET", f"/api/jobs/{done['id']}/artifacts/mesh.glb/inspect")
    assert mesh.status_code == 200, mesh.text
    assert mesh.json()["kind"] == "mesh"
    assert mesh.json()["watertight"] is True
    splats = server.request("GET", f"/api/jobs/{done['id']}/artifacts/splats.ply/inspect")
    assert splats.status_code == 200, splats.text
    assert splats.json()["kind"] == "splats"
    assert splats.json()["count"] > 0
    missing = server.request("GET", f"/api/jobs/{done['id']}/artifacts/mesh.obj/inspect")
    assert missing.status_code == 404
    assert "mesh.glb" in missing.json()["message"]


def test_inspect_needs_the_token(server):
    answer = server.request(
        "GET", f"/api/jobs/{'0' * 32}/artifacts/mesh.glb/inspect", headers={"Authorization": ""}
    )
    assert answer.status_code == 401


def test_page_says_how_to_build_the_studio_while_it_is_missing(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(
        Settings(workspace=tmp_path / "workspace", workers=0),
        start_workers=False,
        static_dir=tmp_path / "static",
    )
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 503
        assert "genesis3d studio build" in page.text
        assert client.get("/api/health").status_code == 200
        unknown = client.get("/api/nothing-here")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"


def test_built_studio_is_served_at_the_root(tmp_path):
    from fastapi.testclient import TestClient

    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>Genesis studio</title>")
    (static / "assets" / "app.js").write_text("export {};")
    assert studio_built(static)
    app = create_app(
        Settings(workspace=tmp_path / "workspace", workers=0),
        start_workers=False,
        static_dir=static,
    )
    with TestClient(app) as client:
        assert "Genesis studio" in client.get("/").text
        assert client.get("/assets/app.js").status_code == 200
        assert client.get("/assets/../../secret").status_code == 404


def test_build_without_sources_names_the_fix(tmp_path):
    from genesis3d.errors import ConfigError

    with pytest.raises(ConfigError, match="source checkout"):
        build_studio(web_dir=tmp_path / "web", static_dir=tmp_path / "static")


def test_studio_build_command_keeps_a_present_build(studio_bundle):
    result = subprocess.run(
        [sys.executable, "-m", "genesis3d", "studio", "build"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert str(studio_bundle) in result.stderr
    assert studio_built(studio_bundle)


@pytest.mark.slow
def test_app_builds_a_missing_studio_in_the_background(studio_bundle, tmp_path):
    """What `genesis3d serve` does on a start without the bundle: the API answers at once,
    the page says it is being built, then appears without a restart."""
    from fastapi.testclient import TestClient

    app = create_app(
        Settings(workspace=tmp_path / "workspace", workers=0),
        start_workers=False,
        build_studio=True,
        static_dir=tmp_path / "static",
    )
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 200
        first = client.get("/")
        if first.status_code == 503:
            assert "being built" in first.text
        deadline = time.monotonic() + 600
        while client.get("/").status_code != 200:
            assert time.monotonic() < deadline, "the studio was not built in 600 s"
            time.sleep(1)
        assert "Genesis studio" in client.get("/").text
