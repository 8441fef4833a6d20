"""``python -m wfkit``: the ``wf`` command."""

from __future__ import annotations

from wfkit.cli import main

if __name__ == "__main__":
    main()
