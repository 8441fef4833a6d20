"""End to end in a real browser: Playwright driving Debian's Chromium against ``wf ui``
started as a subprocess. Skipped only where no Chromium binary exists, and never under
``CI=true`` (CI installs it: see .ci/run).

Set ``WFKIT_UI_SCREENSHOTS=DIR`` to save the README's screenshots there (docs/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wfkit.stores.sqlite import SqliteStore

from .conftest import WfUi, process_env, wait_for_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip(
        "no Chromium binary on PATH (apt-get install -y chromium); CI runs these tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM is not None, "CI=true, but there is no Chromium binary on PATH"
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; the test fails if it, or any page opened beside it, logged a console
    error or threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    context.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    context.on("weberror", lambda error: errors.append(str(error.error)))
    opened = context.new_page()
    yield opened
    context.close()
    assert errors == [], errors


def test_filter_by_state_then_open_a_retried_run_and_see_its_attempts(
    page: Any, wf_ui: Callable[..., WfUi]
) -> None:
    server = wf_ui()
    page.goto(server.url)
    assert page.locator("table.runs tbody tr").count() == 6
    _screenshot(page, "ui-runs.png")

    page.select_option("select[name=state]", "Failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/?*state=Failed*")
    assert page.locator("table.runs tbody tr").all_inner_texts()[0].startswith("Failed\tboom")

    page.goto(server.url)
    page.click("text=pipeline-3")
    page.wait_for_selector("svg.timeline")
    titles = page.locator("svg.timeline rect.bar title").all_text_contents()
    assert [t for t in titles if t.startswith("flaky:")] == [
        "flaky: retry wait, 5.00s",  # (drawn first: under the attempts)
        "flaky: attempt 1, 1.00s, then AwaitingRetry",
        "flaky: attempt 2, 2.00s, then Completed",
    ]
    assert page.locator("svg.timeline path.mark.cached").count() == 1
    _screenshot(page, "ui-run.png")

    page.select_option("select[name=level]", "WARNING")  # htmx swaps the log lines in
    page.wait_for_selector("#logs >> text=No log lines.")


_SLOW = textwrap.dedent(
    """
    import pathlib, sys, time
    from wfkit import flow, task

    @task(task_run_name="wait-for-go")
    def wait_for_go(path):
        while not pathlib.Path(path).exists():
            time.sleep(0.05)

    @flow(flow_run_name="slowpoke")
    def slowpoke(path):
        wait_for_go(path)

    slowpoke(sys.argv[1])
    """
)


def test_a_running_row_changes_state_without_a_reload(
    page: Any, wf_ui: Callable[..., WfUi], tmp_path: Path
) -> None:
    store, go = tmp_path / "runs.db", tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW, str(go)],
        env=process_env(WFKIT_STORE=f"sqlite:///{store}"),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_run(store, "slowpoke")
        server = wf_ui(store=store)
        page.goto(server.url)
        row = page.locator("tr.run-row", has_text="slowpoke")
        assert row.locator(".badge").inner_text() == "Running"
        page.evaluate("window.notReloaded = true")
        run_page = page.context.new_page()
        run_page.goto(f"{server.url}runs/{_run_id(store, 'slowpoke')}")
        assert run_page.locator("h1 .badge").inner_text() == "Running"
        run_page.evaluate("window.notReloaded = true")

        go.touch()
        page.wait_for_selector("tr.run-row .badge.completed", timeout=30_000)
        assert page.evaluate("window.notReloaded") is True
        assert row.get_attribute("hx-trigger") is None  # a finished row stops polling
        run_page.wait_for_selector("h1 .badge.completed", timeout=30_000)  # the run's page too
        assert run_page.evaluate("window.notReloaded") is True
        assert run_page.locator("#run-live").get_attribute("hx-trigger") is None
    finally:
        go.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0


def _run_id(store: Path, name: str) -> str:
    with SqliteStore(store, read_only=True) as reader:
        return reader.find_flow_runs(name)[0].id


def _screenshot(page: Any, name: str) -> None:
    where = os.environ.get("WFKIT_UI_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / name), full_page=False)
