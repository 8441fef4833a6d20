"""Every page and partial of the web page, through Starlette's TestClient over a SQLite
store that real flow runs filled (``conftest.fill``), opened read-only as ``wf ui`` opens it."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from wfkit.stores.records import FlowRun
from wfkit.stores.sqlite import SqliteStore


def rows(html: str) -> list[str]:
    """The run names of a runs table, in order."""
    return re.findall(r'<td><a href="/runs/[^"]+">([^<]*)</a></td>', html)


def test_the_runs_page_lists_every_run_newest_first_with_counts_by_state(
    client: TestClient,
) -> None:
    page = client.get("/")

    assert page.status_code == 200
    assert rows(page.text) == [
        "doomed",
        "wide-600",
        "boom",
        "&lt;b&gt;evil&lt;/b&gt;",
        "child-3",
        "pipeline-3",
    ]
    assert ">6 runs</a>" in page.text
    assert ">4 Completed</a>" in page.text and ">1 Failed</a>" in page.text
    assert ">1 Crashed</a>" in page.text
    assert 'href="/?state=Failed"' in page.text  # each count filters by its state


def test_filters_are_read_from_the_url(client: TestClient, runs: dict[str, FlowRun]) -> None:
    assert rows(client.get("/?state=failed").text) == ["boom"]
    assert rows(client.get("/?state=Crashed").text) == ["doomed"]
    assert rows(client.get("/?flow=pipeline").text) == ["pipeline-3"]
    assert rows(client.get("/?tag=nightly").text) == ["child-3", "pipeline-3"]
    assert rows(client.get("/?q=pipeline-3").text) == ["pipeline-3"]  # a run name
    assert rows(client.get("/?q=pipe").text) == []  # (not a name's prefix)
    doomed = runs["doomed"].id
    assert rows(client.get(f"/?q={doomed[:30]}").text) == ["doomed"]  # an id prefix
    assert rows(client.get(f"/?q={doomed[:30]}&state=failed").text) == []
    assert rows(client.get("/?since=2026-01-01T00:00:00&until=2026-01-01T00:00:01").text) == [
        "child-3",
        "pipeline-3",
    ]
    assert rows(client.get("/?until=2026-01-01").text) == []
    assert rows(client.get("/?since=1h").text) == ["doomed"]  # an age: recorded just now
    counts = client.get("/?tag=nightly").text
    assert ">2 runs</a>" in counts and ">2 Completed</a>" in counts


def test_rows_are_paginated_with_a_link_to_older_runs(client: TestClient) -> None:
    first = client.get("/?limit=4")
    assert rows(first.text) == ["doomed", "wide-600", "boom", "&lt;b&gt;evil&lt;/b&gt;"]
    older = re.search(r'<a class="older" href="([^"]+)"', first.text)
    assert older is not None and "limit=4" in older[1]

    second = client.get(older[1].replace("&amp;", "&"))
    assert rows(second.text) == ["child-3", "pipeline-3"]
    assert 'class="older"' not in second.text
    assert ">6 runs</a>" in second.text  # the counts are of every page


def test_garbage_filters_are_explained_on_the_page_not_a_500(client: TestClient) -> None:
    page = client.get("/?state=nope&limit=-1&since=xyz&until=&before=%3Cx%3E")

    assert page.status_code == 400
    assert "Some filters were not used" in page.text
    assert "state=&#39;nope&#39; is not a state" in page.text
    assert "limit=&#39;-1&#39; is not a page size" in page.text
    assert "since=&#39;xyz&#39; is not a time" in page.text
    assert "before=&#39;&lt;x&gt;&#39; is not a time" in page.text
    assert len(rows(page.text)) == 6  # the other filters still apply: none


def test_a_running_row_polls_itself_and_a_finished_one_does_not(
    client: TestClient, runs: dict[str, FlowRun]
) -> None:
    page = client.get("/").text
    polling = re.findall(r'hx-get="/partials/run-row/([^"]+)"', page)
    assert polling == []  # every run here is over: doomed is Crashed, not stuck Running

    row = client.get(f"/partials/run-row/{runs['pipeline-3'].id}")
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr id=")
    assert "hx-trigger" not in row.text
    assert 'id="run-live">' in client.get(f"/runs/{runs['pipeline-3'].id}").text  # no polling
    assert client.get("/partials/run-row/nope").status_code == 404


def test_a_crashed_run_carries_a_badge_saying_what_killed_it(client: TestClient) -> None:
    page = client.get("/?state=crashed").text

    assert '<span class="badge crashed"' in page
    assert re.search(r'<span class="why">The process that was running this \(host .*pid \d+', page)


def test_a_crashed_run_draws_its_task_until_the_crash(
    client: TestClient, runs: dict[str, FlowRun]
) -> None:
    page = client.get(f"/runs/{runs['doomed'].id}").text

    assert re.search(
        r'<rect class="bar crashed"[^>]*><title>stuck: attempt 1, [^<]*, then Crashed', page
    )


def test_the_flow_run_page_has_header_timeline_graph_and_logs(
    client: TestClient, runs: dict[str, FlowRun]
) -> None:
    run = runs["pipeline-3"]
    page = client.get(f"/runs/{run.id}").text

    assert f"<code>{run.id}</code>" in page
    assert '<a href="/flows/pipeline">pipeline</a>' in page
    assert "&#34;n&#34;: 3" in page  # parameters, as JSON
    assert '<a class="tag" href="/?tag=nightly">nightly</a>' in page
    # the timeline: both attempts of flaky, its retry wait, and square-2's cache hit
    assert re.search(
        r'class="bar failed"[^>]*><title>flaky: attempt 1, 1.00s, then AwaitingRetry', page
    )
    assert "flaky: attempt 2, 2.00s, then Completed" in page
    assert "flaky: retry wait, 5.00s" in page
    assert re.search(r"square-2: cache hit at 2026-01-01 00:00:\d\dZ", page)
    assert "2 attempts" in page
    assert ">flow child-3</text>" in page  # the child flow has its row
    # the dependency graph: an edge per upstream
    assert page.count('<path class="edge"') == 1 + 1 + 1 + 2 + 3
    assert "squaring 1" in page  # a task's log line
    assert "State history (3 states)" in page


def test_a_failed_run_shows_its_traceback(client: TestClient, runs: dict[str, FlowRun]) -> None:
    page = client.get(f"/runs/{runs['boom'].id}").text

    assert '<pre class="traceback">' in page and "Traceback (most recent call last):" in page
    assert "RuntimeError: kaput" in page


def test_a_large_run_is_drawn_per_task_name(client: TestClient, runs: dict[str, FlowRun]) -> None:
    page = client.get(f"/runs/{runs['wide-600'].id}").text

    assert "600 task runs, drawn per task name" in page
    assert "noop: 600 Completed" in page and "600 runs, 600 attempts" in page
    assert "noop-17" not in page  # no row, no graph node per task run


def test_logs_filter_by_task_and_level(client: TestClient, runs: dict[str, FlowRun]) -> None:
    run_id = runs["pipeline-3"].id
    by_task = client.get(f"/runs/{run_id}/logs?task=square").text
    assert "squaring 1" in by_task and "squaring 2" in by_task
    assert "Beginning flow run" not in by_task
    by_level = client.get(f"/runs/{run_id}/logs?level=warning").text
    assert "squaring" not in by_level and "No log lines." in by_level
    errors = client.get(f"/runs/{runs['boom'].id}/logs?level=ERROR").text
    assert "kaput" in errors
    bad = client.get(f"/runs/{run_id}/logs?level=loud")
    assert bad.status_code == 400 and "level=&#39;loud&#39; is not a log level" in bad.text
    assert "squaring 1" in client.get(f"/runs/{run_id}?task=square").text  # without htmx


def test_the_task_run_page(client: TestClient, runs: dict[str, FlowRun], ui_store: Path) -> None:
    run = runs["pipeline-3"]
    with SqliteStore(ui_store, read_only=True) as store:
        tasks = {t.name: t for t in store.task_runs(flow_run_id=run.id)}
    page = client.get(f"/task-runs/{run.id}/{tasks['total'].id}").text

    assert 'Task run <span class="run-name">total</span>' in page
    for name in ("square-1", "square-2"):
        assert f">{name}</a>" in page  # upstreams, linked
    flaky = client.get(f"/task-runs/{run.id}/{tasks['flaky'].id}").text
    assert "AwaitingRetry" in flaky and "Retrying" in flaky and "<dd>2</dd>" in flaky
    assert client.get(f"/task-runs/{run.id}/nope").status_code == 404


def test_the_flow_page_shows_success_rate_and_durations(client: TestClient) -> None:
    page = client.get("/flows/pipeline").text

    assert '<dd class="success-rate">100.0% of 1 finished runs</dd>' in page
    assert '<dd class="p50">8.00s</dd>' in page and '<dd class="p95">8.00s</dd>' in page
    boom = client.get("/flows/boom").text
    assert '<dd class="success-rate">0.0% of 1 finished runs</dd>' in boom
    assert client.get("/flows/nope").status_code == 404


def test_the_store_page_shows_what_store_info_shows(client: TestClient, ui_store: Path) -> None:
    page = client.get("/store").text

    assert str(ui_store.resolve()) in page
    assert "schema version" in page
    assert "Live owners</dt><dd>none" in page


def test_unknown_ids_give_a_404_page(client: TestClient) -> None:
    for url in ("/runs/nope", "/runs/nope/logs", "/no/such/page", "/task-runs/a/b"):
        page = client.get(url)
        assert page.status_code == 404, url
        assert "<h1>Not found</h1>" in page.text and "Traceback" not in page.text


def test_every_value_from_the_store_is_escaped(
    client: TestClient, runs: dict[str, FlowRun]
) -> None:
    listing = client.get("/").text
    assert "<script>alert(1)</script>" not in listing and "<b>evil</b>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing

    page = client.get(f"/runs/{runs['<b>evil</b>'].id}").text
    assert "<script>" not in page.replace('<script src="/static/', "")
    assert "<img" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&#34;&lt;i&gt;param&lt;/i&gt;&#34;" in page
    flow = client.get("/flows/%3Cscript%3Ealert(1)%3C/script%3E")
    assert flow.status_code == 200 and "<script>alert" not in flow.text
