"""`lorakit review` in a real browser: Playwright driving Debian's chromium (never a downloaded one)
against the real server (uvicorn on 127.0.0.1), as a user works: load, filter, edit with a live
re-lint, apply a fix from its preview, replace over a filter, save, undo and redo across a server
restart, and a file changed on disk by another program."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")

from lora_core.review.app import ReviewState, create_app  # noqa: E402
from lora_core.session import DatasetSession  # noqa: E402
from lora_core.testing import make_sidecar_dataset  # noqa: E402

TOKEN = "browser-test-token"
CAPTIONS = {"a.png": "zyla, red coat, rain", "b.png": "zyla, umbrella,, night", "c.png": "zyla, neon city, fog",
            "d.png": "zyla, alley, signs", "e.png": "zyla, car, rain"}
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "images"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return found


@contextmanager
def serve(folder: Path, registry):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ReviewState(DatasetSession(folder, registry=registry)), TOKEN, {f"127.0.0.1:{port}"})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    page.set_default_timeout(60_000)  # a loaded 2-core CI machine
    page.goto(f"{url}/?token={TOKEN}")
    page.wait_for_selector("body[data-ready='1']")
    return page


def _card(page, image):
    return page.locator(".card", has=page.locator(".name", has_text=image))


def test_load_filter_edit_with_live_relint_fix_and_save(tmp_path, registry, browser):
    folder = make_sidecar_dataset(tmp_path / "ds", CAPTIONS)
    with serve(folder, registry) as url:
        page = _open(browser, url)
        assert page.locator(".card").count() == 5
        _card(page, "b.png").click()
        page.wait_for_selector("#caption-marked mark")  # the empty tag highlighted at its span
        # docs/images/review.png is this view (LORAKIT_SCREENSHOTS=1 rewrites it)
        shot = (SCREENSHOTS if os.environ.get("LORAKIT_SCREENSHOTS") else tmp_path) / "review.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.select_option("#filter-rule", "LK104")
        assert page.get_attribute("body", "data-shown") == "1"
        _card(page, "b.png").click()
        assert page.input_value("#caption") == "zyla, umbrella,, night"
        assert page.locator("#findings li[data-rule='LK104']").count() == 1
        # live re-lint: the empty tag typed away, the finding goes without a save
        page.fill("#caption", "zyla, umbrella, night")
        page.wait_for_function("document.querySelectorAll(\"#findings li[data-rule='LK104']\").length === 0")
        assert page.locator("#unsaved-note").inner_text() == "1 unsaved"
        assert (folder / "b.txt").read_text() == "zyla, umbrella,, night\n"
        page.click("#revert-one")
        page.wait_for_selector("#findings li[data-rule='LK104']")
        # the fix, from its preview
        page.click("#findings li[data-rule='LK104'] button.fix")
        page.wait_for_selector("#preview[open]")
        assert "+zyla, umbrella, night" in page.inner_text("#preview-body")
        page.click("#preview-apply")
        page.wait_for_function("document.getElementById('caption').value === 'zyla, umbrella, night'")
        page.keyboard.press("Control+s")
        page.wait_for_function("document.getElementById('unsaved-note').hidden")
        assert (folder / "b.txt").read_text() == "zyla, umbrella, night\n"


def test_replace_over_a_filter_then_undo_and_redo_across_a_restart(tmp_path, registry, browser):
    folder = make_sidecar_dataset(tmp_path / "ds", CAPTIONS)
    with serve(folder, registry) as url:
        page = _open(browser, url)
        page.fill("#filter-text", "rain")
        assert page.get_attribute("body", "data-shown") == "2"
        page.fill("#find", "rain")
        page.fill("#replace", "drizzle")
        page.click("#replace-preview")
        page.wait_for_selector("#preview[open]")
        preview = page.inner_text("#preview-body")
        assert "+zyla, red coat, drizzle" in preview and "+zyla, car, drizzle" in preview
        page.click("#preview-apply")
        page.wait_for_function("document.getElementById('unsaved-note').textContent === '2 unsaved'")
        page.click("#save")
        page.wait_for_function("!document.getElementById('undo').disabled")
    assert (folder / "a.txt").read_text() == "zyla, red coat, drizzle\n"
    with serve(folder, registry) as url:  # a new server: the journal is read back
        page = _open(browser, url)
        page.click("#undo")
        page.wait_for_function("!document.getElementById('redo').disabled")
        assert (folder / "a.txt").read_text() == "zyla, red coat, rain\n"
        assert (folder / "e.txt").read_text() == "zyla, car, rain\n"
        page.click("#redo")
        page.wait_for_function("document.getElementById('redo').disabled")
        assert (folder / "e.txt").read_text() == "zyla, car, drizzle\n"


def test_a_file_changed_on_disk_is_shown_and_not_overwritten(tmp_path, registry, browser):
    folder = make_sidecar_dataset(tmp_path / "ds", CAPTIONS)
    with serve(folder, registry) as url:
        page = _open(browser, url)
        _card(page, "d.png").click()
        page.fill("#caption", "zyla, alley, neon signs")
        page.wait_for_function("document.getElementById('unsaved-note').textContent === '1 unsaved'")
        (folder / "d.txt").write_text("someone else's words\n")
        page.click("#save")
        page.wait_for_selector("#banner.error")
        assert "changed on disk" in page.inner_text("#banner")
        assert (folder / "d.txt").read_text() == "someone else's words\n"
        page.click("#reload")
        page.wait_for_selector(".card .cap:text-is(\"someone else's words\")")  # the reload has answered
        _card(page, "d.png").click()
        assert page.input_value("#caption") == "someone else's words"
        # drop it, from its preview; Undo puts it back
        page.click("#drop-one")
        page.wait_for_selector("#preview[open]")
        assert "move d.png\n  -> .lorakit_dropped/d.png" in page.inner_text("#preview-body")
        page.click("#preview-apply")
        page.wait_for_function("document.body.dataset.shown === '4'")
        assert (folder / ".lorakit_dropped" / "d.txt").exists() and not (folder / "d.png").exists()
        page.click("#undo")
        page.wait_for_function("document.body.dataset.shown === '5'")
        assert (folder / "d.png").exists() and (folder / "d.txt").read_text() == "someone else's words\n"


def test_tag_autocomplete_and_the_panels(tmp_path, registry, browser):
    folder = make_sidecar_dataset(tmp_path / "ds", {"10_zyla/a.png": "zyla, red coat, rain",
                                                     "10_zyla/b.png": "zyla, umbrella, night",
                                                     "2_city/c.png": "neon city, fog"})
    with serve(folder, registry) as url:
        page = _open(browser, url)
        assert "config file" in page.inner_text("#settings")  # what --show-settings says
        page.wait_for_selector("#charts svg rect")  # lorakit stats' histograms
        assert "Caption length" in page.inner_text("#charts")
        concepts = page.inner_text("#concepts")
        assert "zyla\t2 img\t20 steps\t91%" in concepts and "city\t1 img\t2 steps\t9%" in concepts
        _card(page, "c.png").click()
        page.wait_for_selector("#facts span")
        assert "4 / 75 tokens" in page.inner_text("#facts") and "512x512 px" in page.inner_text("#facts")
        page.click("#caption")
        page.keyboard.press("End")
        page.keyboard.type(", umb")
        page.wait_for_selector("#suggestions button")
        assert page.inner_text("#suggestions") == "umbrella"
        page.keyboard.press("Tab")
        assert page.input_value("#caption") == "neon city, fog, umbrella"
        page.wait_for_function("document.getElementById('unsaved-note').textContent === '1 unsaved'")
