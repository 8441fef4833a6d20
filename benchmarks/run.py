"""Run the wfkit benchmark and print one JSON document on stdout (progress goes to stderr).

    python benchmarks/run.py [--quick] [--repeat N] [--prefect-python PATH] [--only NAME,...]

Every figure is measured beside the same work in plain Python, in the same run, and (with
``--prefect-python``, the interpreter of a separate virtualenv that has Prefect 3 installed)
beside Prefect. Each figure reports the median and all samples, the ratio wfkit / plain, the
target from the benchmark issue and whether the median meets it. Every workload verifies its
outputs (results, recorded runs and their state histories); a figure whose checks fail never
meets its target, and the command then exits with status 1.

Workloads run in subprocesses, each with a fresh ``WFKIT_HOME`` (Prefect: ``PREFECT_HOME``)
in a temporary directory; the first flow call also runs in wfkit's default configuration (no
``WFKIT_*`` variable, ``HOME`` a fresh directory). These are benchmarks: nothing here is a
timed assertion.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import median, parse_result, perf  # noqa: E402
from _figures import BY_NAME, FIGURES, GROUPS  # noqa: E402
from _runner import Results, Runner, fmt, log, prefect_entry  # noqa: E402
from _scripts import (  # noqa: E402
    FIRST_CALL_PLAIN,
    FIRST_CALL_PREFECT,
    FIRST_CALL_WFKIT,
    RSS_PROBE,
    TEST_EMPTY,
    TEST_PLAIN,
    TEST_PLAIN_TWICE,
    TEST_WFKIT,
    TEST_WFKIT_TWICE,
    TIMING_CONFTEST,
)

# -- groups -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, runner: Runner, results: Results) -> None:
        self.a = args
        self.r = runner
        self.res = results
        self.q = args.quick
        self.repeat = args.repeat

    @property
    def prefect(self) -> bool:
        return bool(self.a.prefect_python)

    def sel(self, *names: str) -> bool:
        return any(n in self.res.selected for n in names)

    # import -----------------------------------------------------------------------------
    def g_import(self) -> None:
        cwd = self.r.fresh_dir("import")
        env = self.r.env(WFKIT_HOME=str(cwd))
        statements = {"plain": "pass", "wfkit": "import wfkit"}
        pythons = {"plain": self.a.python, "wfkit": self.a.python}
        if self.prefect:
            statements["prefect"] = "import prefect"
            pythons["prefect"] = self.a.prefect_python
        wall: dict[str, list[float]] = {k: [] for k in statements}
        rss: dict[str, list[float]] = {k: [] for k in statements}
        failures: list[str] = []
        for i in range(self.repeat + 1):  # the first round warms the disk cache and .pyc files
            for key, statement in statements.items():
                p = self.r.run([pythons[key], "-c", statement], env, cwd, timeout=120)
                if p.rc != 0:
                    failures.append(f"{key}: exit {p.rc}: {p.stderr[-500:]}")
                # Peak RSS from inside (VmHWM is reset by exec; a child's ru_maxrss is not),
                # in a separate run so that the timed command stays exactly the statement.
                m = self.r.run([pythons[key], "-c", statement + RSS_PROBE], env, cwd, 120)
                hwm = [ln for ln in m.stdout.splitlines() if ln.startswith("VmHWM:")]
                if m.rc != 0 or not hwm:
                    failures.append(f"{key} (peak RSS run): exit {m.rc}: {m.stderr[-500:]}")
                if i:
                    wall[key].append(p.wall_s * 1e3)
                    if hwm:
                        rss[key].append(int(hwm[0].split()[1]) / 1024)
        checks = {"checks": [], "failed_checks": list(failures)}
        where = self.r.run(
            [self.a.python, "-c", "import wfkit, sys; print(wfkit.__file__); print(sys.prefix)"],
            env, cwd, timeout=120,
        )  # fmt: skip
        lines = where.stdout.split("\n")
        location = lines[0].strip()
        src = REPO / "src" / "wfkit"
        if location and Path(location).resolve().is_relative_to(src):
            checks["checks"].append(f"imports this checkout's wfkit ({src})")
        else:
            checks["failed_checks"].append(f"wfkit imported from {location!r}, not {src}")
        if not failures:
            checks["checks"].append("every process exited 0")
        checks["verified"] = not checks["failed_checks"]
        details = {"python": self.a.python, "wfkit_file": location}
        self.res.put("import_wfkit", wfkit=wall["wfkit"], plain=wall["plain"], checks=checks,
                     details=details)  # fmt: skip
        self.res.put("import_peak_rss", wfkit=rss["wfkit"], plain=rss["plain"], checks=checks)
        if self.prefect:
            result = {"verified": not any(f.startswith("prefect") for f in failures)}
            self.res.put_prefect("import_wfkit", prefect_entry(result, wall["prefect"]))
            self.res.put_prefect("import_peak_rss", prefect_entry(result, rss["prefect"]))

    # first call -------------------------------------------------------------------------
    def g_first_call(self) -> None:
        scripts = self.r.fresh_dir("first-call-scripts")
        for name, text in (
            ("wfkit_first.py", FIRST_CALL_WFKIT),
            ("plain_first.py", FIRST_CALL_PLAIN),
            ("prefect_first.py", FIRST_CALL_PREFECT),
        ):
            (scripts / name).write_text(text)
        # wfkit runs the same script in two configurations: "wfkit" is the default one (no
        # WFKIT_* variable; HOME a fresh directory, so the store is $HOME/.wfkit/wfkit.db),
        # "wfkit_home" has WFKIT_HOME set (the store is $WFKIT_HOME/wfkit.db).
        kinds = ["plain"]
        if self.sel("first_flow_call", "first_flow_call_process"):
            kinds.append("wfkit")
        if self.sel("first_flow_call_wfkit_home"):
            kinds.append("wfkit_home")
        every = [*kinds, "prefect"]
        call: dict[str, list[float]] = {k: [] for k in every}
        wall: dict[str, list[float]] = {k: [] for k in every}
        inner: dict[str, list[dict[str, float]]] = {k: [] for k in every}
        passed: dict[str, list[str]] = {k: [] for k in every}
        failed: dict[str, list[str]] = {k: [] for k in every}

        def one(kind: str, count: bool) -> None:
            home = self.r.fresh_dir(f"first-{kind}")
            python = self.a.prefect_python if kind == "prefect" else self.a.python
            script = scripts / f"{'wfkit' if kind.startswith('wfkit') else kind}_first.py"
            var = {"prefect": "PREFECT_HOME", "wfkit_home": "WFKIT_HOME"}.get(kind, "HOME")
            p = self.r.run([python, str(script)], self.r.env(**{var: str(home)}), home, 600)
            out = parse_result(p.stdout)
            if p.rc != 0 or out is None:
                failed[kind].append(f"{kind}: exit {p.rc}: {p.stderr[-800:]}")
                return
            if out["result"] != 42:
                failed[kind].append(f"{kind}: result {out['result']!r} != 42")
            if kind.startswith("wfkit"):
                self._verify_first_call(kind, home, passed[kind], failed[kind])
            elif kind == "prefect":
                if not (home / "prefect.db").exists():
                    failed[kind].append("prefect: no prefect.db in PREFECT_HOME")
            elif not (home / "plain.db").exists():
                failed[kind].append("plain: no plain.db")
            if count:
                call[kind].append(out["call_s"] * 1e3)
                wall[kind].append(p.wall_s * 1e3)
                inner[kind].append(
                    {k[:-2] + "_ms": v * 1e3 for k, v in out.items() if k.endswith("_s")}
                )

        for kind in kinds:  # warm-up: disk cache, .pyc files
            one(kind, False)
        for _ in range(self.repeat):
            for kind in kinds:
                one(kind, True)
        if self.prefect:
            for _ in range(1 if self.q else min(3, self.repeat)):
                one("prefect", True)
        for kind, names in (
            ("wfkit", ["first_flow_call", "first_flow_call_process"]),
            ("wfkit_home", ["first_flow_call_wfkit_home"]),
        ):
            if kind not in kinds:
                continue
            bad = failed["plain"] + failed[kind]
            checks = {
                "checks": [*passed[kind], "script results"],
                "failed_checks": bad,
                "verified": not bad and bool(passed[kind]),
            }
            details = {"timings_inside_process_ms": inner[kind]}
            self.res.put(names[0], wfkit=call[kind], plain=call["plain"], checks=checks,
                         details=details)  # fmt: skip
            if len(names) > 1:
                self.res.put(names[1], wfkit=wall[kind], plain=wall["plain"], checks=checks)
        if self.prefect:
            pf = failed["prefect"]
            result = {"verified": not pf, "failed_checks": pf}
            self.res.put_prefect(
                "first_flow_call",
                prefect_entry(result, call["prefect"], details={
                    "timings_inside_process_ms": inner["prefect"]}),
            )  # fmt: skip
            self.res.put_prefect("first_flow_call_process", prefect_entry(result, wall["prefect"]))

    def _verify_first_call(
        self, kind: str, home: Path, passed: list[str], failed: list[str]
    ) -> None:
        """Check, in another process, that the run was recorded in the store file of
        ``kind``'s configuration."""
        db, where = (
            (home / "wfkit.db", "WFKIT_HOME")
            if kind == "wfkit_home"
            else (home / ".wfkit" / "wfkit.db", "$HOME/.wfkit (the default configuration)")
        )
        v = self.r.worker("first_call_verify", {"db": str(db), "where": where})
        for c in v.get("checks", []):
            if c not in passed:
                passed.append(c)
        failed.extend(f"{kind}: {c}" for c in v.get("failed_checks", []))
        if v.get("status") == "error":
            failed.append(f"{kind}: verification worker failed: {v.get('reason')}")

    # in-process workers -----------------------------------------------------------------
    def _from_worker(self, names: list[str], workload: str, params: dict[str, Any]) -> None:
        res = self.r.worker(workload, {**params, "repeat": self.repeat})
        if res["status"] != "ok":
            for name in names:
                self.res.put(name, status=res["status"], reason=res.get("reason"))
            return
        for name in names:
            fig = res["figures"].get(name)
            if fig is None:
                self.res.put(name, status="error", reason="the workload did not report it")
                continue
            self.res.put(name, wfkit=fig["wfkit"], plain=fig["plain"], checks=res,
                         n=fig.get("n"), details=fig.get("details"))  # fmt: skip

    def g_empty_flow(self) -> None:
        self._from_worker(
            ["empty_flow_call_warm_sqlite"], "empty_flow",
            {"n": 200 if self.q else 2000, "plain_n": 20_000 if self.q else 200_000, "warm": 20},
        )  # fmt: skip

    def g_seq_memory(self) -> None:
        self._from_worker(
            ["sequential_task_memory"], "sequential",
            {"store": "memory", "n": 1000 if self.q else 10_000,
             "plain_n": 10_000 if self.q else 200_000},
        )  # fmt: skip

    def g_seq_sqlite(self) -> None:
        self._from_worker(
            ["sequential_task_sqlite"], "sequential",
            {"store": "sqlite", "n": 1000 if self.q else 10_000,
             "plain_n": 10_000 if self.q else 200_000},
        )  # fmt: skip

    def g_map(self) -> None:
        self._from_worker(["task_map_10k"], "task_map", {"n": 1000 if self.q else 10_000})

    def g_cache(self) -> None:
        self._from_worker(
            ["cache_hit_sqlite"], "cache_hit",
            {"n": 500 if self.q else 5000, "plain_n": 20_000 if self.q else 200_000},
        )  # fmt: skip

    def g_store_size(self) -> None:
        self._from_worker(["store_size_per_task_run"], "store_size",
                          {"n": 1000 if self.q else 10_000})  # fmt: skip

    def g_crash_loss(self) -> None:
        names = [f"sigkill_lost_task_runs_{d}ms" for d in (50, 200, 1000)]
        self._from_worker(names, "crash_loss", {"n": 300 if self.q else 1500})

    def g_harness(self) -> None:
        self._from_worker(["harness_entry", "harness_entry_nofreeze"], "harness",
                          {"n": 20 if self.q else 200})  # fmt: skip

    def g_retry(self) -> None:
        self._from_worker(["retry_test_in_process"], "retry", {"n": 5 if self.q else 20})

    # memory of a long flow ----------------------------------------------------------------
    def g_flow_rss(self) -> None:
        n, step = (10_000, 1000) if self.q else (100_000, 10_000)
        runs: dict[str, list[dict[str, Any]]] = {"plain": [], "wfkit": []}
        for _ in range(self.repeat):
            for mode in ("plain", "wfkit"):
                res = self.r.worker("flow_rss", {"n": n, "step": step, "mode": mode})
                if res["status"] != "ok":
                    self.res.put_error(["flow_100k_peak_rss", "flow_100k_rss_growth_per_10k"],
                                       f"{mode}: {res.get('reason')}")  # fmt: skip
                    return
                runs[mode].append(res)
        failed = sorted({f for r in runs["wfkit"] + runs["plain"] for f in r["failed_checks"]})
        passed = sorted({c for r in runs["wfkit"] for c in r["checks"]})
        checks = {"verified": not failed and bool(passed), "checks": passed,
                  "failed_checks": failed}  # fmt: skip
        last = runs["wfkit"][-1]
        details = {
            "tasks": n,
            "rss_sampled_every": step,
            "rss_mib_at_tasks_last_run": last["rss_mib_at"],
            "rss_after_import_mib": [r["rss_start_mib"] for r in runs["wfkit"]],
            "per_task_us": [r["per_task_us"] for r in runs["wfkit"]],
            "note": "in --quick mode the flow has 10,000 tasks" if self.q else None,
        }
        plain_details = {"rss_mib_at_tasks_last_run": runs["plain"][-1]["rss_mib_at"]}
        self.res.put(
            "flow_100k_peak_rss",
            wfkit=[r["peak_rss_mib"] for r in runs["wfkit"]],
            plain=[r["peak_rss_mib"] for r in runs["plain"]],
            checks=checks, n=n, details=details, plain_details=plain_details,
        )  # fmt: skip
        self.res.put(
            "flow_100k_rss_growth_per_10k",
            wfkit=[r["growth_mib_per_10k"] for r in runs["wfkit"]],
            plain=[r["growth_mib_per_10k"] for r in runs["plain"]],
            checks=checks, n=n, details={"rss_mib_at_tasks_last_run": last["rss_mib_at"]},
        )  # fmt: skip

    # the retry test under pytest ----------------------------------------------------------
    def g_retry_pytest(self) -> None:
        d = self.r.fresh_dir("pytest")
        (d / "pytest.ini").write_text("[pytest]\n")
        (d / "conftest.py").write_text(TIMING_CONFTEST)
        files = {
            "empty": TEST_EMPTY,
            "wfkit": TEST_WFKIT,
            "plain": TEST_PLAIN,
            "wfkit_twice": TEST_WFKIT_TWICE,
            "plain_twice": TEST_PLAIN_TWICE,
        }
        passed = {k: "2 passed" if k.endswith("_twice") else "1 passed" for k in files}
        for kind, text in files.items():
            (d / f"test_{kind}.py").write_text(text)
        timings = d / "durations.json"
        env = self.r.env(WFKIT_HOME=str(d / "home"), WF_BENCH_DURATIONS=str(timings))
        raw: dict[str, list[float]] = {k: [] for k in files}
        own: dict[str, list[float]] = {
            f"{k}_{n}": [] for k in ("wfkit", "plain") for n in ("1", "2", "warm_up")
        }
        failed: list[str] = []
        kinds = list(files)
        for i in range(self.repeat + 1):  # the first round is a warm-up
            shift = i % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:  # rotate the order: no position bias
                p = self.r.run(
                    [self.a.python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                     f"test_{kind}.py"], env, d, timeout=150,
                )  # fmt: skip
                if p.rc != 0 or passed[kind] not in p.stdout:
                    why = "timed out (real sleeps?)" if p.timed_out else f"exit {p.rc}"
                    failed.append(f"{kind}: {why}: {p.stdout[-800:]} {p.stderr[-400:]}")
                if i:
                    raw[kind].append(p.wall_s * 1e3)
                    if kind.endswith("_twice") and timings.exists():
                        timed = json.loads(timings.read_text())
                        own[f"{kind[:-6]}_1"].append(timed["test_fetch_retries"])
                        own[f"{kind[:-6]}_2"].append(timed["test_fetch_retries_again"])
                        own[f"{kind[:-6]}_warm_up"].append(timed["<collection_finish>"])

        def minus(a: str, b: str) -> list[float]:
            return [x - y for x, y in zip(raw[a], raw[b], strict=True)]

        wf, plain = minus("wfkit", "empty"), minus("plain", "empty")
        checks = {
            "verified": not failed,
            "checks": ["each pytest run exited 0 with all its tests passed"] if not failed else [],
            "failed_checks": failed,
        }
        details = {
            "raw_wall_ms": {
                "wfkit_test_run": raw["wfkit"],
                "empty_test_run": raw["empty"],
                "plain_test_run": raw["plain"],
                "medians": {k: median(v) for k, v in raw.items()},
            },
            "difference_of_medians_ms": {
                k: median(raw[k]) - median(raw["empty"])  # type: ignore[operator]
                for k in ("wfkit", "plain")
            },
            "note": "the difference of two ~0.4 s process walls: noisy on a shared machine",
        }
        self.res.put(
            "retry_test_pytest_process", wfkit=wf, plain=plain, checks=checks, details=details
        )
        for name, n in (
            ("retry_test_pytest", "1"),
            ("retry_test_pytest_next", "2"),
            ("harness_session_warm_up", "warm_up"),
        ):
            self.res.put(name, wfkit=own[f"wfkit_{n}"], plain=own[f"plain_{n}"], checks=checks)

    # Prefect ----------------------------------------------------------------------------
    def g_prefect_session(self) -> None:
        names = [
            "empty_flow_call_warm_sqlite", "sequential_task_sqlite", "store_size_per_task_run",
            "task_map_10k", "cache_hit_sqlite", "retry_test_in_process",
        ]  # fmt: skip
        wanted = [n for n in names if n in self.res.selected]
        if not wanted:
            return
        log(f"prefect session: {', '.join(wanted)}")
        params = {
            "figures": wanted,
            "repeat": self.repeat,
            "warm_calls": 2 if self.q else 3,
            "seq_n": 20 if self.q else 200,
            "map_n": 50 if self.q else 500,
            "cache_n": 20 if self.q else 100,
            "retries": 2,
            "retry_delay": 2,
            "retry_repeat": 1 if self.q else min(3, self.repeat),
        }
        res = self.r.worker("session", params, prefect=True)
        self._put_prefect(wanted, res)

    def g_prefect_harness(self) -> None:
        if "harness_entry" not in self.res.selected:
            return
        log("prefect harness")
        res = self.r.worker(
            "harness", {"repeat": 1 if self.q else min(3, self.repeat)}, prefect=True
        )
        self._put_prefect(["harness_entry"], res)

    def _put_prefect(self, names: list[str], res: dict[str, Any]) -> None:
        for name in names:
            if res["status"] != "ok":
                self.res.put_prefect(name, {"status": "error", "reason": res.get("reason")})
                continue
            fig = res["figures"].get(name)
            if fig is None:
                continue
            entry = prefect_entry(res, fig["samples"], fig.get("n"), fig.get("details"))
            self.res.put_prefect(name, entry)
            log(f"  prefect {name}: {fmt(entry['median'])} {BY_NAME[name].unit}")


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark wfkit against plain Python (and Prefect 3); prints one JSON "
        "document on stdout.",
    )
    ap.add_argument("--quick", action="store_true", help="smaller N and 3 repeats by default")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per figure (default 5; "
                    "--quick: 3); the median is reported")  # fmt: skip
    ap.add_argument("--prefect-python", default=None, metavar="PATH",
                    help="python of a separate virtualenv with prefect installed")  # fmt: skip
    ap.add_argument("--only", default=None, metavar="NAME,...",
                    help=f"only these figures: {', '.join(BY_NAME)}")  # fmt: skip
    ap.add_argument("--python", default=sys.executable, metavar="PATH",
                    help="interpreter that imports wfkit (default: this one)")  # fmt: skip
    ap.add_argument("--output", default=None, metavar="FILE",
                    help="also write the JSON document to FILE")  # fmt: skip
    ap.add_argument("--keep-temp", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            ap.error(f"unknown figure(s) {unknown}; known: {', '.join(BY_NAME)}")
        args.selected = [f.name for f in FIGURES if f.name in names]
    else:
        args.selected = [f.name for f in FIGURES]
    if args.prefect_python and not os.access(args.prefect_python, os.X_OK):
        ap.error(f"--prefect-python {args.prefect_python!r} is not an executable")
    # The workloads run in temporary directories: a relative path must not depend on them.
    # (abspath, not resolve: a virtualenv's python is a symlink that must stay one.)
    for name in ("python", "prefect_python"):
        value = getattr(args, name)
        if value and os.sep in value:
            setattr(args, name, os.path.abspath(value))
    return args


def environment(args: argparse.Namespace) -> dict[str, Any]:
    def out(cmd: list[str]) -> str | None:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
            return p.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    try:
        with open(args.python, "rb") as f:
            is_script = f.read(2) == b"#!"
    except OSError:
        is_script = None
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"])
    info: dict[str, Any] = {
        "python": args.python,
        "python_is_a_script_shim": is_script,
        "python_version": out([args.python, "-c", "import sys; print(sys.version.split()[0])"]),
        "wfkit_version": out([args.python, "-c", "import wfkit; print(wfkit.__version__)"]),
        "wfkit_file": out([args.python, "-c", "import wfkit; print(wfkit.__file__)"]),
        "git_commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "src_modified_files": len(dirty.splitlines()) if dirty else 0,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if args.prefect_python:
        info["prefect_python"] = args.prefect_python
        info["prefect_version"] = out(
            [args.prefect_python, "-c", "import prefect; print(prefect.__version__)"]
        )
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t0 = perf()
    env_info = environment(args)
    if env_info.get("python_is_a_script_shim"):
        log(f"warning: {args.python} is a script (a shim?): process timings include it")
    if args.prefect_python and not env_info.get("prefect_version"):
        log(f"warning: {args.prefect_python} cannot import prefect; Prefect figures will fail")
    root = Path(tempfile.mkdtemp(prefix="wfkit-bench-"))
    results = Results(args.selected, bool(args.prefect_python))
    bench = Bench(args, Runner(args, root), results)
    try:
        for group in GROUPS:
            names = [f.name for f in FIGURES if f.group == group and f.name in args.selected]
            if not names:
                continue
            log(f"{group}: {', '.join(names)}")
            try:
                getattr(bench, f"g_{group}")()
            except Exception as exc:  # a broken group must not hide the others
                import traceback

                traceback.print_exc()
                results.put_error(names, f"{type(exc).__name__}: {exc}")
        if args.prefect_python:
            bench.g_prefect_session()
            bench.g_prefect_harness()
    finally:
        if args.keep_temp:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    figures = results.document()
    with_target = [f for f in figures if f["meets_target"] is not None]
    summary = {
        "figures": len(figures),
        "with_target": len(with_target),
        "meeting_target": [f["name"] for f in with_target if f["meets_target"]],
        "missing_target": [f["name"] for f in with_target if not f["meets_target"]],
        "not_available": [f["name"] for f in figures if f["status"] == "not_available"],
        "errors": [f["name"] for f in figures if f["status"] == "error"],
        "unverified": [f["name"] for f in figures if f["verified"] is False],
    }
    document = {
        "benchmark": "wfkit",
        "command": " ".join(
            ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(perf() - t0, 1),
        "quick": args.quick,
        "repeat": args.repeat,
        "statistic": "median of repeats; samples listed",
        "environment": {
            **env_info,
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "verified": not summary["unverified"] and not summary["errors"],
        "summary": summary,
        "figures": figures,
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    log(
        f"done in {document['duration_s']} s: {len(summary['meeting_target'])}/"
        f"{len(with_target)} targets met; missing: {', '.join(summary['missing_target']) or '-'}"
        f"; not available: {', '.join(summary['not_available']) or '-'}"
    )
    return 0 if document["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
