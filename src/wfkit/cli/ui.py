"""``wf ui``: serve the local web page (:mod:`wfkit.ui`) over a store opened read-only."""

from __future__ import annotations

import errno
import socket
import threading
import webbrowser

import click

from wfkit.cli._common import open_for_cli, store_option
from wfkit.exceptions import MissingExtraError

__all__ = ["ui"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("ui")
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=4300,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
def ui(store_url: str | None, host: str, port: int, open_browser: bool) -> None:
    """Serve a read-only web page of the store's runs (Ctrl-C stops it)."""
    try:
        import uvicorn  # (extra `ui`: optional, and ~150 ms that other commands skip)

        from wfkit.ui import create_app  # (extra `ui`: imports starlette and jinja2)
    except ImportError as exc:
        raise MissingExtraError(
            f"`wf ui` needs the `ui` extra, which is not installed (no module {exc.name!r}): "
            "pip install 'wfkit[ui]'"
        ) from exc
    store = open_for_cli(store_url)
    store.flow_run_counts()  # fails now, with a clear message, if the store cannot be read
    sock = _bind(host, port)
    url = f"http://{_url_host(host)}:{sock.getsockname()[1]}/"
    if host not in _LOOPBACK:
        click.echo(
            f"Warning: --host {host!r} is not loopback: anyone who can reach this machine "
            "can read the store's runs (parameters, results, logs) at this address.",
            err=True,
        )
    click.echo(f"wf ui: {store.url} at {url} (read-only; Ctrl-C stops)")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    server = uvicorn.Server(uvicorn.Config(create_app(store), log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # (uvicorn re-raises the Ctrl-C it shut down on: stopping is the normal end)
    finally:
        store.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or a message naming the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"Port {port} on {host} is in use (is another `wf ui` running?): pick another "
                "with --port, or --port 0 for any free one."
            ) from exc
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc
    sock.listen(128)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
