"""The artifacts section of a flow run's page, through Starlette's TestClient over a SQLite
store that a real flow run filled, opened read-only as ``wf ui`` opens it: every kind shown,
nothing from the store ever markup, links only to http(s) URLs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the `ui` extra is not installed")

from starlette.testclient import TestClient  # noqa: E402

from wfkit import flow, task  # noqa: E402
from wfkit.artifacts import (  # noqa: E402
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from wfkit.stores.sqlite import SqliteStore  # noqa: E402
from wfkit.testing import harness  # noqa: E402
from wfkit.ui import create_app  # noqa: E402

from .conftest import START  # noqa: E402


@task(task_run_name="publish-all")
def publish_all() -> None:
    create_markdown_artifact(
        "# Title\n<script>alert('md')</script>", key="notes", description="<i>described</i>"
    )
    create_table_artifact([{"city": "<b>Oslo</b>", "n": 3}, {"city": "Lima", "n": None}])
    create_table_artifact([[1, "a"], [2, "b"]], key="pairs")
    create_link_artifact("https://example.com/dash?a=1&b=2", link_text="Dashboard", key="dash")
    create_link_artifact("javascript:alert('link')", link_text="click me", key="sneaky")
    create_image_artifact("https://example.com/chart.png", key="chart")
    create_progress_artifact(40, key="load")


@flow(flow_run_name="with-artifacts")
def with_artifacts() -> None:
    publish_all()


@flow(flow_run_name="without-artifacts")
def without_artifacts() -> None:
    pass


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("ui-artifacts") / "runs.db"
    with harness(start=START, store=SqliteStore(path)):
        with_artifacts()
        without_artifacts()
    store = SqliteStore.from_url(f"sqlite:///{path}?mode=ro")
    with TestClient(create_app(store)) as test_client:
        yield test_client


def page(client: TestClient, name: str) -> str:
    listing = client.get("/").text
    run_id = re.search(rf'<a href="/runs/([^"]+)">{name}</a>', listing)
    assert run_id is not None, listing
    response = client.get(f"/runs/{run_id[1]}")
    assert response.status_code == 200
    return response.text


def section(html: str) -> str:
    start = html.index("<h2>Artifacts")
    return html[start : html.index("<h2>", start + 1)]  # (up to the next section)


def test_every_kind_of_artifact_is_shown_in_creation_order(client: TestClient) -> None:
    shown = section(page(client, "with-artifacts"))
    assert "<h2>Artifacts <small>7</small></h2>" in shown
    keys = re.findall(r"<tr>\n    <td>([^<]*)</td>\n    <td>(\w+)</td>", shown)
    assert keys == [
        ("notes", "markdown"), ("-", "table"), ("pairs", "table"), ("dash", "link"),
        ("sneaky", "link"), ("chart", "image"), ("load", "progress"),
    ]  # fmt: skip
    assert "<th>city</th><th>n</th>" in shown
    assert "<td>Lima</td><td></td>" in shown  # (None shows as an empty cell)
    assert "<th>0</th><th>1</th>" in shown and "<td>2</td><td>b</td>" in shown
    assert '<progress max="100" value="40.0"></progress> 40%' in shown
    assert "<td>2026-01-01 00:00:00Z</td>" in shown


def test_store_values_are_escaped_never_markup(client: TestClient) -> None:
    shown = section(page(client, "with-artifacts"))
    assert "<script>" not in shown and "<b>Oslo" not in shown and "<i>described" not in shown
    assert "&lt;script&gt;alert(&#39;md&#39;)&lt;/script&gt;" in shown
    assert "<td>&lt;b&gt;Oslo&lt;/b&gt;</td>" in shown
    assert "<pre>&lt;i&gt;described&lt;/i&gt;</pre>" in shown


def test_only_http_urls_become_links(client: TestClient) -> None:
    shown = section(page(client, "with-artifacts"))
    hrefs = re.findall(r'<a href="([^"]*)"', shown)
    assert hrefs == ["https://example.com/dash?a=1&amp;b=2", "https://example.com/chart.png"]
    assert ">Dashboard</a>" in shown
    assert "javascript:" not in "".join(hrefs)
    assert "click me <code>javascript:alert(&#39;link&#39;)</code>" in shown  # as text
    assert "<img" not in shown  # an image is linked, not loaded


def test_a_run_without_artifacts_has_no_section(client: TestClient) -> None:
    assert "<h2>Artifacts" not in page(client, "without-artifacts")
