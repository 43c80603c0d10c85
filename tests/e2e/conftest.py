"""Browser tests: a live shoprelay server in a thread, driven by Playwright in Debian's chromium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("SHOPRELAY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SHOPRELAY_ARTIFACTS", "test-artifacts")) / "screenshots"
PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture()
def live_server(app, user) -> Iterator[str]:  # noqa: ANN001
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, live_server):  # noqa: ANN001, ANN201
    """A browser page on the live server; the test fails if the Content-Security-Policy refused anything the
    pages use (an inline script, style or handler, eval, a foreign script) while it ran."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(f"{page.url}: {message.text[:160]} {message.location}")
            if "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert refused == [], refused


@pytest.fixture()
def logged_in_page(page, user):  # noqa: ANN001, ANN201
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    return page


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    """Save a full-page screenshot as a test artifact and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # caret="initial": Playwright's caret hiding leaves style="" on every input, which htmx's settle then copies
    # onto swapped-in inputs (an inline style the CSP reports); browsers of real users do no such thing.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path
