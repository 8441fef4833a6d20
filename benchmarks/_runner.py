"""Running workloads in subprocesses, and collecting their figures into one JSON document."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from _common import median, parse_result, perf
from _figures import BY_NAME, FIGURES

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# -- subprocesses -----------------------------------------------------------------------------
@dataclasses.dataclass
class Proc:
    rc: int
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool


class Runner:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self._n = 0

    def fresh_dir(self, prefix: str) -> Path:
        self._n += 1
        d = self.root / f"{prefix}-{self._n:03d}"
        d.mkdir()
        return d

    def env(self, **extra: str) -> dict[str, str]:
        # PYTHONPATH is kept: it is how a run measures another checkout's sources with this
        # virtualenv (run.py reports which wfkit the workloads import as wfkit_file).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WFKIT_", "PREFECT_", "PYTHON", "PYTEST_", "COV_"))
            or k == "PYTHONPATH"
        }
        env.update(extra)
        return env

    def run(self, cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> Proc:
        """Run and wait; wall time from just before the spawn to the reaped exit."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            t = perf()
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status = os.waitpid(proc.pid, 0)
            finally:
                timer.cancel()
            wall = perf() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            return Proc(proc.returncode, out.read(), err.read(), wall, timed_out.is_set())

    def worker(
        self, workload: str, params: dict[str, Any], *, prefect: bool = False, timeout: float = 1800
    ) -> dict[str, Any]:
        """Run a workload of _workloads.py (or _prefect_workloads.py) in a fresh process."""
        home = self.fresh_dir(f"{'prefect' if prefect else 'wfkit'}-{workload}")
        if prefect:
            python, script = self.args.prefect_python, HERE / "_prefect_workloads.py"
            env = self.env(PREFECT_HOME=str(home))
        else:
            python, script = self.args.python, HERE / "_workloads.py"
            env = self.env(WFKIT_HOME=str(home))
        p = self.run([python, str(script), workload, json.dumps(params)], env, home, timeout)
        result = parse_result(p.stdout)
        if p.rc != 0 or result is None:
            return {
                "status": "error",
                "reason": f"{'timed out' if p.timed_out else f'exit status {p.rc}'}; "
                f"stderr ends: {p.stderr[-1500:]}",
            }
        result.setdefault("status", "ok")
        if result["status"] == "error":
            result["reason"] = f"{result.get('reason')}; stderr ends: {p.stderr[-1500:]}"
        return result


# -- result assembly --------------------------------------------------------------------------
class Results:
    def __init__(self, selected: list[str], with_prefect: bool) -> None:
        self.selected = selected
        self.with_prefect = with_prefect
        self.figures: dict[str, dict[str, Any]] = {}
        self.prefect: dict[str, dict[str, Any]] = {}

    def put(
        self,
        name: str,
        *,
        wfkit: list[float] | None = None,
        plain: list[float] | None = None,
        checks: dict[str, Any] | None = None,
        n: Any = None,
        details: dict[str, Any] | None = None,
        status: str = "ok",
        reason: str | None = None,
        plain_details: dict[str, Any] | None = None,
    ) -> None:
        if name not in self.selected:
            return
        fig = BY_NAME[name]
        wf_med, plain_med = median(wfkit or []), median(plain or [])
        checks = checks or {}
        verified = checks.get("verified") if status == "ok" else None
        if status == "error":
            verified = False
        entry: dict[str, Any] = {
            "name": name,
            "title": fig.title,
            "unit": fig.unit,
            "status": status,
        }
        if reason:
            entry["reason"] = reason
        if status == "ok":
            entry["wfkit"] = {"median": wf_med, "samples": wfkit}
            entry["plain"] = {"median": plain_med, "samples": plain, "what": fig.plain}
            if plain_details:
                entry["plain"]["details"] = plain_details
            entry["ratio"] = wf_med / plain_med if wf_med is not None and plain_med else None
        entry["target"] = (
            {"max": fig.target_max, "unit": fig.unit, "text": fig.target_text}
            if fig.target_max is not None
            else None
        )
        if fig.target_max is None or status == "not_available":
            entry["meets_target"] = None
        else:
            entry["meets_target"] = bool(
                status == "ok" and verified and wf_med is not None and wf_med <= fig.target_max
            )
        entry["verified"] = verified
        if checks:
            entry["checks"] = checks.get("checks", [])
            if checks.get("failed_checks"):
                entry["failed_checks"] = checks["failed_checks"]
        if n is not None:
            entry["n"] = n
        if details:
            entry["details"] = details
        self.figures[name] = entry
        self._progress(entry)

    def put_error(self, names: list[str], reason: str) -> None:
        for name in names:
            self.put(name, status="error", reason=reason)

    def put_prefect(self, name: str, value: dict[str, Any]) -> None:
        if name in self.selected:
            self.prefect[name] = value

    def _progress(self, e: dict[str, Any]) -> None:
        if e["status"] != "ok":
            log(f"  {e['name']}: {e['status']} ({str(e.get('reason'))[:300]})")
            return
        wf, pl = e["wfkit"]["median"], e["plain"]["median"]
        log(
            f"  {e['name']}: wfkit {fmt(wf)} {e['unit']}, plain {fmt(pl)} {e['unit']}, "
            f"ratio {fmt(e['ratio'])}, target {e['target']['text'] if e['target'] else '-'}, "
            f"meets {e['meets_target']}, verified {e['verified']}"
            + (f" FAILED CHECKS: {e.get('failed_checks')}" if e.get("failed_checks") else "")
        )

    def document(self) -> list[dict[str, Any]]:
        out = []
        for fig in FIGURES:
            if fig.name not in self.figures:
                continue
            entry = dict(self.figures[fig.name])
            if self.with_prefect:
                p = self.prefect.get(fig.name)
                if p is None:
                    p = {
                        "status": "not_measured",
                        "note": "no Prefect workload for this figure"
                        if fig.prefect is None
                        else "not measured in this run",
                    }
                else:
                    p = {**p, "how": fig.prefect}
                    wf = (entry.get("wfkit") or {}).get("median")
                    if p.get("median") is not None and wf:
                        p["prefect_over_wfkit"] = p["median"] / wf
                entry["prefect"] = p
            else:
                entry["prefect"] = None
            out.append(entry)
        return out


def fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def prefect_entry(
    result: dict[str, Any], samples: list[float], n: Any = None, details: Any = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": "ok",
        "median": median(samples),
        "samples": samples,
        "verified": result.get("verified"),
    }
    if result.get("failed_checks"):
        entry["failed_checks"] = result["failed_checks"]
    if n is not None:
        entry["n"] = n
    if details:
        entry["details"] = details
    return entry
