"""wfkit's pytest plugin (registered through the ``pytest11`` entry point).

Options (each with an ini twin), group ``wfkit``:

* ``--wf-isolated`` / ``wf_isolated = true``: every test runs inside its own fresh harness
  (isolated run store + fake clock + frozen wall time).
* ``--wf-store=memory|sqlite`` / ``wf_store``: the kind of isolated store (sqlite: a file
  in the test's ``tmp_path``).
* ``--wf-keep-stores=failed|none`` / ``wf_keep_stores``: keep the SQLite stores of failing
  tests and list their paths at the end of the session.

Fixtures: ``wf_harness``, ``wf_clock``, ``wf_store``. Marker:
``@pytest.mark.wf(start=..., store=..., freeze=...)`` configures the test's harness.

Without isolation, the first run a test session records into the real store produces one
warning naming the store and ``--wf-isolated``.

Once a session has collected tests that use a harness, the plugin loads what entering the
first harness would load (freezegun, asyncio, the engine's modules), so that the first such
test's duration is the test's own; the cost shows in collection instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("wfkit.testing.assertions")

from wfkit._plugins import register_plugin, unregister_plugin  # noqa: E402
from wfkit.context import current_runtime, using_default_runtime  # noqa: E402
from wfkit.hookspecs import hookimpl  # noqa: E402
from wfkit.testing.harness import STORE_KINDS, Harness, harness, warm_up  # noqa: E402

_harness_key = pytest.StashKey[Harness]()
_reports_key = pytest.StashKey[dict[str, pytest.TestReport]]()
_kept_key = pytest.StashKey[list[Path]]()
_MARKER_ARGS = ("start", "store", "freeze")


class WfkitUnisolatedWarning(UserWarning):
    """Tests recorded runs into the real run store because isolation was off."""


# -- options -------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wfkit", "wfkit")
    group.addoption(
        "--wf-isolated",
        action="store_true",
        default=None,
        help="run every test in its own wfkit harness: isolated run store and fake clock "
        "(ini: wf_isolated)",
    )
    group.addoption(
        "--wf-store",
        choices=STORE_KINDS,
        default=None,
        help="kind of isolated run store: memory (default) or sqlite, a file in the test's "
        "tmp_path (ini: wf_store)",
    )
    group.addoption(
        "--wf-keep-stores",
        choices=("failed", "none"),
        default=None,
        help="keep the SQLite run stores of failing tests and print their paths "
        "(ini: wf_keep_stores)",
    )
    parser.addini(
        "wf_isolated", "run every test in its own wfkit harness", type="bool", default=False
    )
    parser.addini("wf_store", "kind of isolated run store: memory or sqlite", default="memory")
    parser.addini(
        "wf_keep_stores", "keep SQLite stores of failing tests: failed or none", default="none"
    )


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--{name.replace('_', '-')}")
    return value if value is not None else config.getini(name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wf(start=None, store=None, freeze=True): configure the test's wfkit harness "
        "(fake clock start, store kind 'memory' or 'sqlite', freeze wall time)",
    )
    store_kind = _option(config, "wf_store")
    if store_kind not in STORE_KINDS:
        raise pytest.UsageError(f"wf_store = {store_kind!r}: use one of {list(STORE_KINDS)}")
    config.stash[_kept_key] = []
    if store_kind == "memory" and _option(config, "wf_keep_stores") == "failed":
        # (a memory store dies with its test: there is nothing to keep unless a test asks
        # for a SQLite store with its marker; say so rather than keep nothing silently)
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "wfkit: --wf-keep-stores=failed keeps SQLite stores only, and --wf-store is "
                "'memory' (the default): only tests marked @pytest.mark.wf(store='sqlite') "
                "will have a store to keep. Add --wf-store=sqlite to keep every failing "
                "test's runs."
            ),
            stacklevel=2,
        )
    if not _option(config, "wf_isolated"):
        watcher = _UnisolatedRunWatcher()
        register_plugin(watcher, name="wfkit.pytest.unisolated_watcher")
        config.add_cleanup(watcher.unregister)
        config.stash[_watcher_key] = watcher


_HARNESS_FIXTURES = frozenset({"wf_harness", "wf_clock", "wf_store"})


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once tests that use a harness are collected, load what entering the first harness
    would (freezegun, asyncio, the engine): that test's duration is then its own."""
    if session.config.option.collectonly:
        return  # nothing will run
    isolated = bool(_option(session.config, "wf_isolated"))
    users = [
        item
        for item in session.items
        if isolated or not _HARNESS_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
    ]
    if users:
        warm_up(freeze=any(_freezes(item) for item in users))


def _freezes(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("wf")
    return marker is None or marker.kwargs.get("freeze", True) is not False


# -- the harness of one test ---------------------------------------------------------------
def _marker_config(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker("wf")
    if marker is None:
        return {}
    if marker.args:
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.wf takes keyword arguments only ({', '.join(_MARKER_ARGS)}); "
            f"got positional {marker.args!r}",
            pytrace=False,
        )
    unknown = set(marker.kwargs) - set(_MARKER_ARGS)
    if unknown:
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.wf got unknown argument(s) {sorted(unknown)}; "
            f"it takes {list(_MARKER_ARGS)}",
            pytrace=False,
        )
    store = marker.kwargs.get("store")
    if store is not None and store not in STORE_KINDS:
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.wf(store={store!r}) is not a store kind; "
            f"use one of {list(STORE_KINDS)}, e.g. @pytest.mark.wf(store='sqlite')",
            pytrace=False,
        )
    return dict(marker.kwargs)


@contextlib.contextmanager
def _test_harness(request: pytest.FixtureRequest, *, background: bool) -> Iterator[Harness]:
    config = request.config
    settings = _marker_config(request.node)
    kind = settings.get("store") or _option(config, "wf_store")
    directory = request.getfixturevalue("tmp_path") if kind == "sqlite" else None
    with harness(
        start=settings.get("start"),
        store=kind,
        freeze=settings.get("freeze", True),
        directory=directory,
        background=background,
    ) as h:
        yield h
    if h.store_path is not None:
        _keep_or_remove(request.node, h.store_path)


def _keep_or_remove(item: pytest.Item, path: Path) -> None:
    reports = item.stash.get(_reports_key, {})
    failed = any(r.failed for r in reports.values())
    if failed and _option(item.config, "wf_keep_stores") == "failed":
        item.config.stash[_kept_key].append(path)
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _wf_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under ``--wf-isolated``, run the test inside its own harness."""
    if not _option(request.config, "wf_isolated"):
        yield
        return
    with _test_harness(request, background=True) as h:
        request.node.stash[_harness_key] = h
        yield


@pytest.fixture
def wf_harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The test's wfkit harness: an isolated run store and a fake clock (the --wf-isolated
    one, else a fresh one; configure with @pytest.mark.wf(start=, store=, freeze=)).
        .clock                                 FakeClock: advance(s), move_to(dt), sleeps, elapsed
        .store                                 the isolated RunStore
        .flow_runs(flow=None)                  FlowRun records, oldest first
        .task_runs(task=None, flow_run=None)   TaskRun records
        .flow_run(flow) / .task_run(task)      exactly one run, else AssertionError
        .run(flow, *args, **kwargs)            run it; -> FlowRun, never raises
        .assert_states(run_or_target, ["Pending", "Running", "Completed"])
        .cache_hits(task) / .cache_misses(task) / .assert_cache_hits(task, n)
        .logs(run=None)                        LogRecord list
    """
    existing = request.node.stash.get(_harness_key, None)
    if existing is not None:
        existing.claim()
        yield existing
        return
    with _test_harness(request, background=False) as h:
        request.node.stash[_harness_key] = h
        h.claim()
        yield h


@pytest.fixture
def wf_clock(wf_harness: Harness) -> Any:
    """The test harness's FakeClock: time stands still and moves only on sleeps and
    ``advance(seconds)`` / ``move_to(datetime)``; ``sleeps`` lists every sleep, ``elapsed``
    is the virtual time since the test started."""
    return wf_harness.clock


@pytest.fixture
def wf_store(wf_harness: Harness) -> Any:
    """The test harness's isolated run store (``flow_runs()``, ``flow_run(id)``,
    ``task_runs()``, ``logs()``)."""
    return wf_harness.store


# -- reporting -----------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_reports_key, {})[report.when] = report
    return report


def pytest_runtest_teardown(item: pytest.Item) -> None:
    watcher = item.config.stash.get(_watcher_key, None)
    if watcher is not None and watcher.store_url is not None and not watcher.warned:
        watcher.warned = True
        item.warn(
            WfkitUnisolatedWarning(
                f"this test recorded wfkit runs into the real run store {watcher.store_url!r}. "
                "Run pytest with --wf-isolated (or set wf_isolated = true in the ini file), or "
                "use the wf_harness fixture, to keep tests out of it."
            )
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = config.stash.get(_kept_key, [])
    if kept:
        terminalreporter.section("wfkit: run stores of failing tests")
        for path in kept:
            terminalreporter.write_line(str(path))


class _UnisolatedRunWatcher:
    """Notices the first run recorded outside any harness, then stops listening."""

    def __init__(self) -> None:
        self.store_url: str | None = None
        self.warned = False

    def _seen(self) -> None:
        if using_default_runtime() and self.store_url is None:
            rt = current_runtime()
            self.store_url = getattr(rt.store, "url", repr(rt.store))

    @hookimpl
    def wfkit_flow_run_state_changed(self) -> None:
        if self.store_url is None:
            self._seen()

    @hookimpl
    def wfkit_task_run_state_changed(self) -> None:
        if self.store_url is None:
            self._seen()

    def unregister(self) -> None:
        with contextlib.suppress(ValueError, KeyError):
            unregister_plugin(self)


_watcher_key = pytest.StashKey[_UnisolatedRunWatcher]()
