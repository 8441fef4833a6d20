"""Plugins published in the ``wfkit`` entry-point group are loaded, for real: a small
distribution is written to a directory that a fresh interpreter has on its ``sys.path``, so
``importlib.metadata`` finds it the way it finds an installed one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import wfkit

SRC = Path(wfkit.__file__).resolve().parents[1]

# The distribution: one working plugin module, one that is not importable, one that fails
# validation, one that registers another plugin as it is imported. Entry points load in
# name order: "a_missing", "b_demo", "c_misspelt", "d_registering".
ENTRY_POINTS = """\
[wfkit]
b_demo = wfkit_demo_plugin
a_missing = wfkit_no_such_module
c_misspelt = wfkit_misspelt_plugin
d_registering = wfkit_registering_plugin
"""
DEMO_PLUGIN = '''\
"""A wfkit plugin module: notes every task state change."""
import wfkit

seen = []


@wfkit.hookimpl
def wfkit_task_run_state_changed(new_state):
    seen.append(new_state.name)
'''
MISSPELT_PLUGIN = """\
import wfkit


@wfkit.hookimpl
def wfkit_task_run_state_change(new_state):
    pass
"""
REGISTERING_PLUGIN = """\
import wfkit


class Extra:
    pass


wfkit.register_plugin(Extra(), name="extra")
"""
# Run in the fresh interpreter: a flow with one task, then report as JSON.
CHECK = """\
import json, logging, sys
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
import wfkit
from wfkit._plugins import plugin_manager
from wfkit.context import use_runtime

with use_runtime(store="memory://"):
    step = wfkit.task(lambda: 1, name="step")
    wfkit.flow(lambda: step(), name="outer")()

import wfkit_demo_plugin
pm = plugin_manager()
print(json.dumps({
    "seen": wfkit_demo_plugin.seen,
    "plugins": sorted(name for name, _ in pm.list_name_plugin()),
    "distributions": [dist.project_name for _, dist in pm.list_plugin_distinfo()],
}))
"""


def write_distribution(site: Path) -> None:
    info = site / "wfkit_demo_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wfkit-demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "wfkit_demo_plugin.py").write_text(DEMO_PLUGIN)
    (site / "wfkit_misspelt_plugin.py").write_text(MISSPELT_PLUGIN)
    (site / "wfkit_registering_plugin.py").write_text(REGISTERING_PLUGIN)


def test_entry_point_plugins_load_and_a_broken_one_is_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_distribution(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(site)])

    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECK)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # (a plugin registering as it is imported once deadlocked here)
    )

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["seen"] == ["Pending", "Running", "Completed"]
    assert report["plugins"] == ["b_demo", "d_registering", "extra", "wfkit.store_writer"]
    assert report["distributions"] == ["wfkit-demo-plugin"] * 2
    for name, why in [("a_missing", "No module named"), ("c_misspelt", "not a wfkit hook")]:
        assert f"wfkit plugin {name!r} from the 'wfkit' entry-point group failed to load" in (
            proc.stderr
        )
        assert why in proc.stderr
