"""The web studio driven end to end in a real headless Chromium (Playwright, Debian chromium).

The server listens beyond loopback, so every request of the page (REST, the progress
stream, downloads) must carry the bearer token, which the page takes from its URL fragment.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.server.conftest import Server, free_port

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
#: No GPU and no network here: WebGL through SwiftShader, nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
BACKGROUND = np.array([0x1D, 0x20, 0x26])
#: The viewer's caption floats over its canvas; hidden so only drawn pixels count.
HIDE_TITLES = ".viewer-title { visibility: hidden; }"
JOB_TIMEOUT_MS = 180_000
VIEW_TIMEOUT_MS = 90_000


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found is None:
        # Never skip: the studio's page is only tested here.
        raise AssertionError(
            "the web studio test needs Chromium at /usr/bin/chromium; install it with "
            "`apt-get install -y chromium` (Debian/Ubuntu)"
        )
    return found


@pytest.fixture(scope="module")
def web_server(studio_bundle, tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("web") / "workspace",
        free_port(),
        {"host": "0.0.0.0", "workers": 1},
    )
    server.start()
    server.token = (server.workspace / "token").read_text().strip()
    server.headers = {"Authorization": f"Bearer {server.token}"}
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the dev extra (playwright)")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        yield page
        context.close()


def drawn_fraction(png: bytes) -> float:
    """Fraction of the pixels of a screenshot that differ from the viewer's background."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    differs = np.abs(pixels - BACKGROUND).sum(axis=-1) > 30
    return float(differs.mean())


def test_webgl_works_in_headless_chromium(page, web_server):
    page.goto(web_server.url + "/api/health")
    renderer = page.evaluate(
        """() => {
            const gl = document.createElement('canvas').getContext('webgl2');
            return gl ? gl.getParameter(gl.RENDERER) : null;
        }"""
    )
    assert renderer, f"no WebGL2 in headless Chromium with {CHROMIUM_FLAGS}"


def test_page_without_token_asks_for_it(page, web_server):
    page.goto(web_server.url + "/")
    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#token-box").get_attribute("open") is not None
    assert "token" in page.locator("#form-message").inner_text()


def test_submit_follow_view_compare_and_download(page, web_server, testdata_images, tmp_path):
    picture = sorted(testdata_images.glob("*.webp"))[0]
    page.goto(f"{web_server.url}/#token={web_server.token}")
    page.wait_for_selector("body[data-ready=true]")
    assert "token" not in page.url  # taken out of the address bar

    page.select_option("#model-select", "inflate")
    # Official defaults and help come from /api/models.
    resolution = page.locator('[data-param="resolution"]')
    assert resolution.input_value() == "160"
    assert "grid cells" in page.locator("#params").inner_text()
    resolution.fill("48")
    page.locator('[data-param="texture_size"]').fill("256")
    page.locator('[data-param="splats"]').fill("8192")
    formats = page.locator("#formats input:checked").evaluate_all(
        "boxes => boxes.map(b => b.value)"
    )
    assert formats == ["glb", "ply", "splat", "spz"]
    page.set_input_files("#picture-input", str(picture))
    page.click("#submit-button")

    done = page.locator("#job-list li[data-status=completed]").first
    done.wait_for(timeout=JOB_TIMEOUT_MS)
    assert int(page.locator("body").get_attribute("data-events") or 0) >= 1
    page.screenshot(path=tmp_path / "page.png")
    assert page.errors == []

    # The mesh, lit, with its health figures.
    done.locator("button.view").click()
    slot = page.locator('.slot[data-slot="0"]')
    slot.locator('.viewer[data-state=ready][data-file="mesh.glb"]').wait_for(
        timeout=VIEW_TIMEOUT_MS
    )
    solid = slot.locator("canvas").screenshot(path=tmp_path / "mesh.png", style=HIDE_TITLES)
    mesh = drawn_fraction(solid)
    assert mesh > 0.02, f"the mesh covers {mesh:.2%} of the viewer"
    slot.locator(".health dt", has_text="watertight").wait_for(timeout=VIEW_TIMEOUT_MS)
    page.check("#wireframe-toggle")
    page.wait_for_timeout(500)
    wire = slot.locator("canvas").screenshot(path=tmp_path / "wireframe.png", style=HIDE_TITLES)
    assert drawn_fraction(wire) > 0.005 and wire != solid
    page.uncheck("#wireframe-toggle")
    downloads = slot.locator("button.download").all_inner_texts()
    assert [text.split(" ")[0] for text in downloads] == [
        "mesh.glb",
        "splats.ply",
        "splats.splat",
        "splats.spz",
    ]

    # The splats (Spark).
    slot.locator('[data-artifact="splats.ply"]').click()
    slot.locator('.viewer[data-state=ready][data-file="splats.ply"]').wait_for(
        timeout=VIEW_TIMEOUT_MS
    )
    splats = drawn_fraction(
        slot.locator("canvas").screenshot(path=tmp_path / "splats.png", style=HIDE_TITLES)
    )
    assert splats > 0.02, f"the splats cover {splats:.2%} of the viewer"
    slot.locator('[data-artifact="splats.spz"]').click()
    slot.locator('.viewer[data-state=ready][data-file="splats.spz"]').wait_for(
        timeout=VIEW_TIMEOUT_MS
    )
    compressed = drawn_fraction(
        slot.locator("canvas").screenshot(path=tmp_path / "spz.png", style=HIDE_TITLES)
    )
    assert compressed > 0.02, f"the .spz splats cover {compressed:.2%} of the viewer"

    # Side by side: the same job's first artifact in the second viewer.
    done.locator("button.compare").click()
    second = page.locator('.slot[data-slot="1"]')
    second.locator(".viewer[data-state=ready]").wait_for(timeout=VIEW_TIMEOUT_MS)
    assert drawn_fraction(second.locator("canvas").screenshot(style=HIDE_TITLES)) > 0.02
    assert drawn_fraction(slot.locator("canvas").screenshot(style=HIDE_TITLES)) > 0.02

    # A download goes through the token-carrying fetch and arrives whole.
    job = web_server.request("GET", "/api/jobs").json()["items"][0]
    spz = next(item for item in job["artifacts"] if item["name"] == "splats.spz")
    with page.expect_download() as info:
        slot.locator("button.download", has_text="splats.spz").click()
    assert Path(info.value.path()).stat().st_size == spz["bytes"]
    assert info.value.suggested_filename == f"{job['id'][:8]}-splats.spz"
    page.screenshot(path=tmp_path / "page.png")
    assert page.errors == []


def test_page_fits_a_phone_and_offers_its_camera(page, web_server):
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(f"{web_server.url}/#token={web_server.token}")
        page.wait_for_selector("body[data-ready=true]")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone screen"
        camera = page.locator("#camera-input")
        assert camera.get_attribute("capture") == "environment"
        assert camera.get_attribute("accept") == "image/*"
        # One column: the form first, then the queue; the compare view stays hidden.
        form = page.locator("#submit-panel").bounding_box()
        queue = page.locator("#jobs-panel").bounding_box()
        assert form["y"] < 100
        assert queue["y"] >= form["y"] + form["height"] - 1
        assert not page.locator('.slot[data-slot="1"]').is_visible()
        assert page.errors == []
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
