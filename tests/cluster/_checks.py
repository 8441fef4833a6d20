"""A check both cluster runners pass: live progress."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any

from wfkit import flow
from wfkit.testing.harness import harness
from wfkit.testing.runner_conformance import wait_for_gate


def assert_running_shows_while_it_runs(runner: Any, tmp_path: Path) -> None:
    """A run blocked on a gate is ``Running`` in the store before it ends (its outcome
    would bring the start too, but only once the gate opens)."""
    gate = tmp_path / "gate"

    @flow(task_runner=runner)
    def gated() -> str:
        return wait_for_gate.submit(str(gate)).result()

    with harness() as h:
        context = contextvars.copy_context()
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(value=context.run(gated)))
        thread.start()
        try:
            seen: list[str] = []
            for _ in range(3000):  # (up to ~30 s of real time, in 10 ms steps)
                runs = h.task_runs(wait_for_gate)
                seen = runs[0].state_names if runs else []
                if seen[-1:] == ["Running"]:
                    break
                threading.Event().wait(0.01)
            assert seen == ["Pending", "Running"]
        finally:
            gate.touch()
            thread.join(60)
        assert box["value"] == "opened"
        assert h.task_run(wait_for_gate).state_names == ["Pending", "Running", "Completed"]
