"""``wf ui``: a local, read-only web page over a run store (extra ``ui``: Starlette, Jinja2,
uvicorn).

Pages are rendered on the server from Jinja templates (``templates/``); htmx (vendored,
pinned and hashed in ``static/``) refreshes running rows and filters the logs; the timeline
and the dependency graph are SVG drawn by the templates from :mod:`._timeline`'s geometry.
Every value from the store is escaped by Jinja's autoescaping, and the pages read through
:class:`~wfkit.stores.RunReader` only.

    from wfkit.ui import create_app
    app = create_app(store)          # an ASGI app: uvicorn.run(app), or TestClient(app)
"""

from __future__ import annotations

from wfkit.ui._app import create_app

__all__ = ["create_app"]
