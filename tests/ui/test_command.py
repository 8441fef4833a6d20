"""``wf ui`` as a user runs it: a subprocess that prints its URL and serves the page, and
clear messages (exit 1) for a store it cannot open, a port in use, a missing extra."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path

from wfkit.stores.sqlite import SqliteStore

from .conftest import WfUi, process_env

STATIC = Path(__file__).resolve().parents[2] / "src" / "wfkit" / "ui" / "static"


def wf(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nfrom wfkit.cli import main\nmain({list(args)!r})"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=process_env()
    )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def test_wf_ui_prints_its_url_and_serves_the_store_read_only(
    wf_ui: Callable[..., WfUi], ui_store: Path
) -> None:
    before = _files(ui_store)
    server = wf_ui()

    assert server.url.startswith("http://127.0.0.1:")
    assert "(read-only; Ctrl-C stops)" in server.banner
    page = fetch(server.url)
    assert "pipeline-3" in page and "doomed" in page
    with SqliteStore(ui_store, read_only=True) as store:
        for run in store.flow_runs():
            fetch(f"{server.url}runs/{run.id}")
    fetch(f"{server.url}store")
    assert server.stop() == ""  # no warning, no traceback
    assert _files(ui_store) == before  # the page changed nothing in the store


def _files(store: Path) -> dict[str, bytes]:
    """The store's database and write-ahead log (not -shm: readers mark their place there)."""
    return {p.name: p.read_bytes() for p in store.parent.iterdir() if not p.name.endswith("-shm")}


def test_binding_beyond_loopback_warns(wf_ui: Callable[..., WfUi]) -> None:
    server = wf_ui("--host", "0.0.0.0")

    assert "Warning: --host '0.0.0.0' is not loopback" in server.stop()


def test_a_store_that_cannot_be_opened_exits_1(tmp_path: Path) -> None:
    result = wf("ui", "--store", f"sqlite:///{tmp_path / 'none.db'}", "--port", "0")

    assert result.returncode == 1
    assert "There is no run store at" in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_named(ui_store: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = wf("ui", "--store", f"sqlite:///{ui_store}", "--port", str(port))

    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr
    assert "--port 0" in result.stderr


def test_without_the_ui_extra_it_says_how_to_install_it(ui_store: Path) -> None:
    result = wf(
        "ui",
        "--store",
        f"sqlite:///{ui_store}",
        prelude="import sys; sys.modules['uvicorn'] = None",
    )

    assert result.returncode == 1
    assert "pip install 'wfkit[ui]'" in result.stderr and "'uvicorn'" in result.stderr


def test_wf_help_lists_ui() -> None:
    assert "Serve a read-only web page" in wf("--help").stdout


def test_the_vendored_htmx_matches_its_recorded_sha256() -> None:
    recorded = tomllib.loads((STATIC / "VENDORED.toml").read_text())["htmx"]
    served = (STATIC / recorded["file"]).read_bytes()

    assert hashlib.sha256(served).hexdigest() == recorded["sha256"]
    assert (STATIC / recorded["license"]).read_text().startswith("Zero-Clause BSD")
    base = (STATIC.parent / "templates" / "base.html").read_text()
    assert f'src="/static/{recorded["file"]}"' in base
