"""Re-runs and analysis cost (``make bench``; ``python -m bench.analyze``): figures measured in one run.

1. **Analysis cost against history length**: one simulated athlete (the demo "gain" profile, a sample
   every second like a watch recording every second) over 1, 3 and 5 years, loaded straight into a warehouse
   (no files: this measures the analysis), then ``analyze --force`` without cached runs in a fresh process:
   CPU time, wall time and peak resident memory (the process's whole peak, imports included; the baseline
   after imports is printed beside it). Targets: growth close to linear (CPU per run about constant), peak
   < 1 GB at 5 years.
2. **Incremental re-runs** on a workspace of the three demo athletes plus a 3-year athlete written as real
   files: the first ``pipeline run`` (ingest, analyze, report), ``make report`` with nothing new (target
   < 5 s wall), then one new run file for the 3-year athlete and ``pipeline run`` again (target: only that
   athlete analysed, under a fifth of the first run's time).

Every command runs as a subprocess (its CPU time is the children's rusage). The machine may be shared: the
load average is printed with the figures, and CPU times are the fairer comparison.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
YEARS = (1, 3, 5)
SAMPLE_INTERVAL_S = float(os.environ.get("BENCH_SAMPLE_INTERVAL_S", 1.0))
LONG_ATHLETE = "long"


def _profile(years: float):
    from pipeline.demo.simulate import PROFILES

    weeks = int(round(52 * years))
    return dataclasses.replace(PROFILES["gain"], weeks=weeks, block_start_week=weeks - 16)


def build_warehouse(root: Path, years: float) -> dict:
    """Simulate one athlete and load its frames into a new warehouse at ``root`` (no files)."""
    from pipeline.demo.simulate import simulate_athlete
    from pipeline.warehouse.contract import columns
    from pipeline.warehouse.db import connect, insert_frame, transaction
    from pipeline.workspace import Workspace

    a = simulate_athlete(_profile(years), 7, sample_interval_s=SAMPLE_INTERVAL_S, athlete_id=LONG_ATHLETE)
    acts = a.activities.assign(file_id="sim-" + a.activities["activity_id"])
    sessions = a.strength_sessions.assign(file_id="sim-strength")
    ws = Workspace(root)
    con = connect(ws)
    try:
        with transaction(con):
            con.execute("INSERT INTO athletes (athlete_id) VALUES (?)", [LONG_ATHLETE])
            for table, frame in (("activities", acts), ("samples", a.samples), ("strength_sessions", sessions),
                                 ("strength_sets", a.strength_sets)):
                cols = [c for c in columns(table) if c in frame.columns]
                insert_frame(con, table, frame, cols)
    finally:
        con.close()
    return {"runs": len(a.activities), "samples": len(a.samples)}


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM on Linux, which starts afresh at exec (ru_maxrss
    carries the parent's high-water mark over into a child), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_analyze(root: Path) -> dict:
    """``analyze --force`` of the workspace in this (fresh) process: CPU, wall, peak RSS, baseline RSS."""
    from pipeline.analyze.run import analyze_workspace
    from pipeline.workspace import Workspace

    baseline = peak_rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    summary = analyze_workspace(Workspace(root), force=True)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "peak_mb": peak_rss_mb(), "baseline_mb": baseline,
            "included": sum(a.included for a in summary.athletes)}


def _python(*args: str) -> dict:
    """Run ``python -m bench.analyze ARGS`` in a fresh process; its last output line is JSON."""
    out = subprocess.run([sys.executable, "-m", "bench.analyze", *args], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _timed_cli(ws: Path, *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one ``pipeline`` command (a child process), and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).parent / "pipeline"), "--workspace", str(ws), *args],
                         check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.perf_counter() - t0, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            out)


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count())


def scaling_lines(tmp: Path) -> list[str]:
    lines = [f"analysis cost vs history (one athlete, a sample every {SAMPLE_INTERVAL_S:g} s, analyze --force "
             "without cached runs, fresh process each):"]
    rows = []
    for years in YEARS:
        root = tmp / f"years{years}"
        built = _python("--build", str(root), str(years))
        m = _python("--measure", str(root))
        rows.append((years, built, m))
        lines.append(f"  {years} year(s): {built['runs']} runs, {built['samples']:,} samples: CPU {m['cpu_s']:.1f} s, "
                     f"wall {m['wall_s']:.1f} s, peak RSS {m['peak_mb']:.0f} MB (after imports "
                     f"{m['baseline_mb']:.0f} MB), CPU per run {1000 * m['cpu_s'] / built['runs']:.0f} ms")
        shutil.rmtree(root, ignore_errors=True)
    (y1, b1, m1), (y5, b5, m5) = rows[0], rows[-1]
    growth = (m5["cpu_s"] / b5["runs"]) / (m1["cpu_s"] / b1["runs"])
    lines.append(f"  CPU per run at {y5} years / at {y1} year: {growth:.2f} (1.0 = linear; target close to 1) "
                 f"{'OK' if growth < 1.5 else 'ABOVE TARGET'}")
    lines.append(f"  peak RSS at {y5} years: {m5['peak_mb']:.0f} MB (target < 1024 MB) "
                 f"{'OK' if m5['peak_mb'] < 1024 else 'ABOVE TARGET'}")
    return lines


def write_long_athlete(ws: Path, staging: Path) -> Path:
    """The 3-year athlete's files, all but its last run; returns that last run's file (added later). Run in
    a child process (``--write-long``) so the simulation's memory never counts as the bench's."""
    from pipeline.demo.simulate import simulate_athlete
    from pipeline.demo.write import run_file_name, write_athlete

    a = simulate_athlete(_profile(3), 7, sample_interval_s=SAMPLE_INTERVAL_S, athlete_id=LONG_ATHLETE)
    write_athlete(a, staging)
    last = a.activities.sort_values("start_time").iloc[-1]
    held_back = staging / LONG_ATHLETE / run_file_name(last)
    shutil.copytree(staging / LONG_ATHLETE, ws / "data" / "raw" / LONG_ATHLETE,
                    ignore=lambda d, names: [n for n in names if Path(d, n) == held_back])
    return held_back


def incremental_lines(tmp: Path) -> list[str]:
    ws = tmp / "incremental"
    _timed_cli(ws, "demo")
    held_back = Path(_python("--write-long", str(ws), str(tmp / "staging"))["held_back"])
    files = sum(1 for p in (ws / "data" / "raw").rglob("*") if p.is_file())
    full = _timed_cli(ws, "run", "--quiet")
    again = _timed_cli(ws, "run", "--quiet")
    subprocess.run(["make", "-s", "-C", str(REPO), "install"], check=True, capture_output=True)  # set-up done
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    # the target itself: `pipeline demo --if-empty`, then `pipeline run`
    make = subprocess.run(["make", "-s", "-C", str(REPO), "report", f"WORKSPACE={ws}"], capture_output=True)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    make_s, make_cpu = time.perf_counter() - t0, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    shutil.copy(held_back, ws / "data" / "raw" / LONG_ATHLETE / held_back.name)
    one = _timed_cli(ws, "run", "--quiet")
    analyse_line = next(x for x in one[2].splitlines() if x.startswith("Analyze:"))
    ratio = one[0] / full[0]
    # The target is on wall time; on a shared machine wall times stretch with the others' load (the first run's
    # 86 s wall against 52 s CPU in one bench), so the CPU ratio is printed beside it as the steadier figure.
    cpu_ratio = one[1] / full[1]
    return [
        f"incremental re-runs: demo athletes + a 3-year athlete, {files} files ({_load()})",
        f"  first `pipeline run` (everything):     wall {full[0]:6.1f} s, CPU {full[1]:6.1f} s",
        f"  `pipeline run`, nothing new:           wall {again[0]:6.1f} s, CPU {again[1]:6.1f} s",
        f"  `make report`, nothing new:            wall {make_s:6.1f} s, CPU {make_cpu:6.1f} s (target < 5 s wall) "
        f"{'OK' if make_s < 5 else 'ABOVE TARGET'}" + ("" if make.returncode == 0 else " (make failed)"),
        f"  one new run for the 3-year athlete:    wall {one[0]:6.1f} s, CPU {one[1]:6.1f} s = {ratio:.3f} of the "
        f"first run (target < 0.2) {'OK' if ratio < 0.2 else 'ABOVE TARGET'}; in CPU time {cpu_ratio:.3f}",
        f"    {analyse_line}",
    ]


def run() -> list[str]:
    """Entry point of ``python -m bench``: every figure of this module, measured in one run."""
    with tempfile.TemporaryDirectory(prefix="bench-analyze-") as tmp:
        lines = [_load()]
        lines += incremental_lines(Path(tmp))
        lines += scaling_lines(Path(tmp))
        lines.append(_load())
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["--build"]:
        print(json.dumps(build_warehouse(Path(argv[1]), float(argv[2]))))
    elif argv[:1] == ["--write-long"]:
        print(json.dumps({"held_back": str(write_long_athlete(Path(argv[1]), Path(argv[2])))}))
    elif argv[:1] == ["--measure"]:
        print(json.dumps(measure_analyze(Path(argv[1]))))
    else:
        print("\n".join(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
