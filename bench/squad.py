"""Squad benchmark: many simulated athletes in one warehouse (``make bench``; ``python -m bench.squad``).

Steps, each timed: simulate and write a squad of athletes (default 20, each over the demo profile's
record length of 40 weeks, one sample every 10 s, FIT/GPX files and Strong CSVs exactly as
``pipeline demo`` writes them; ~3-4 minutes on a 2-core machine) -> ``ingest_paths`` ->
a second ingest of the same files (must be a no-op) -> ``analyze_workspace`` -> ``run_checks`` ->
typical cross-athlete queries (median of several runs each) -> ``export_tables`` to Parquet.

Prints the figures and writes them to ``bench/out/squad.json``. Nothing is asserted about time: the
figures depend on the machine; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "out"

# Typical questions a sports scientist asks of a squad warehouse, each across all athletes.
QUERIES: dict[str, str] = {
    "monthly economy per athlete (view)":
        "SELECT athlete_id, month, median_economy_m_per_beat FROM monthly_economy ORDER BY 1, 2",
    "squad headline effects (view)":
        "SELECT athlete_id, label, change_pct, ci_low_pct, ci_high_pct, verdict FROM block_summary "
        "ORDER BY change_pct DESC",
    "excluded runs by reason":
        "SELECT regexp_replace(exclusion_reason, '[0-9]+', 'N', 'g') AS reason, count(*) FROM runs "
        "WHERE NOT included GROUP BY ALL ORDER BY 2 DESC",
    "weekly volume vs strength, squad":
        "SELECT week_start, sum(run_km), sum(strength_sessions), median(economy_m_per_beat) FROM weekly "
        "GROUP BY ALL ORDER BY 1",
    "HR by speed band over all samples":
        "SELECT athlete_id, floor(speed_m_s * 2) / 2 AS band, count(*), avg(heart_rate_bpm) FROM samples "
        "WHERE speed_m_s BETWEEN 1.5 AND 6 GROUP BY ALL",
    "one athlete's samples of one month":
        "SELECT count(*), avg(heart_rate_bpm) FROM samples WHERE athlete_id = 'squad_07' "
        "AND ts >= TIMESTAMPTZ '2024-05-01 00:00:00+00' AND ts < TIMESTAMPTZ '2024-06-01 00:00:00+00'",
}


def _write_athlete(job: tuple[str, str, int, int, float, str]) -> tuple[str, int, int]:
    """Simulate one athlete and write its files (in a worker process). Returns (id, runs, samples)."""
    from pipeline.demo.simulate import PROFILES, simulate_athlete
    from pipeline.demo.write import write_athlete

    athlete_id, profile_key, seed, weeks, sample_interval_s, raw_dir = job
    profile = dataclasses.replace(PROFILES[profile_key], weeks=weeks) if weeks else PROFILES[profile_key]
    athlete = simulate_athlete(profile, seed, sample_interval_s=sample_interval_s, athlete_id=athlete_id)
    write_athlete(athlete, Path(raw_dir))
    return athlete_id, len(athlete.activities), len(athlete.samples)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _peak_rss_mb() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux. RUSAGE_CHILDREN covers the generator pool (joined before this is
    # read); ingest's parser workers are forkserver children, so they report their own peak instead.
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _cluster_figures(ws, cluster_root: Path, cluster: str) -> dict:
    """The same files ingested and analysed on a dask cluster (``local:2``: a LocalCluster of 2 worker
    processes) into a second warehouse; times, and which result tables differ from the local run."""
    from bench.compare import differing_tables, result_tables
    from pipeline.analyze.run import analyze_workspace
    from pipeline.engine import open_engine
    from pipeline.ingest.run import ingest_paths
    from pipeline.workspace import Workspace

    other = Workspace(cluster_root)
    shutil.copytree(ws.raw_dir, other.raw_dir)
    out: dict = {"cluster": cluster}
    with open_engine(cluster) as engine:
        out["ingest_s"], _ = _timed(lambda: ingest_paths(other, None, progress=False, engine=engine))
        out["analyze_s"], _ = _timed(lambda: analyze_workspace(other, engine=engine))
        out["worker_peak_rss_mb"] = engine.worker_peak_memory_mb()
    out["differing_tables"] = differing_tables(result_tables(ws), result_tables(other))
    return out


def run_squad_bench(athletes: int = 20, weeks: int | None = None, sample_interval_s: float = 10.0,
                    jobs: int | None = None, workdir: Path | None = None, query_repeats: int = 5,
                    cluster: str | None = "local:2") -> dict:
    """Run the benchmark in ``workdir`` (default: a temporary folder, removed after); return the figures.
    ``cluster``: also ingest and analyse on this dask cluster and compare the result tables (None: skip)."""
    from pipeline.analyze.run import analyze_workspace
    from pipeline.demo.simulate import DEMO_PROFILE_KEYS, PROFILES
    from pipeline.ingest.run import ingest_paths
    from pipeline.warehouse.checks import run_checks
    from pipeline.warehouse.db import connect
    from pipeline.warehouse.export import export_tables
    from pipeline.workspace import Workspace

    jobs = jobs or os.cpu_count() or 1
    weeks = weeks or max(PROFILES[k].weeks for k in DEMO_PROFILE_KEYS)  # default: the demo record length
    own_dir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="squad-bench-")) if own_dir else Path(workdir)
    ws = Workspace(root.resolve())
    figures: dict = {"athletes": athletes, "weeks": weeks, "sample_interval_s": sample_interval_s,
                     "jobs": jobs}
    try:
        # Cycle through the demo profiles (gain, heat, faster) with a seed per athlete.
        work = [(f"squad_{i:02d}", DEMO_PROFILE_KEYS[i % len(DEMO_PROFILE_KEYS)], 1000 + i, weeks,
                 sample_interval_s, str(ws.raw_dir)) for i in range(athletes)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            seconds, written = _timed(lambda: list(pool.map(_write_athlete, work)))
        files = sum(1 for p in ws.raw_dir.rglob("*") if p.is_file() and "/." not in p.as_posix())
        figures["generate_s"] = seconds
        figures["runs"] = sum(w[1] for w in written)
        figures["samples"] = sum(w[2] for w in written)
        figures["raw_mb"] = sum(p.stat().st_size for p in ws.raw_dir.rglob("*") if p.is_file()) / 1e6
        figures["files"] = files

        cpu0 = time.process_time()
        seconds, summary = _timed(lambda: ingest_paths(ws, None, jobs=jobs, progress=False))
        figures["ingest_main_cpu_s"] = time.process_time() - cpu0
        figures["ingest_main_peak_rss_mb"] = _peak_rss_mb()["self"]
        figures["ingest_s"] = seconds
        figures["ingest_worker_peak_rss_mb"] = summary.worker_peak_rss_mb
        figures["ingest_files_per_s"] = files / seconds
        figures["ingest_samples_per_s"] = figures["samples"] / seconds
        figures["reingest_s"], _ = _timed(lambda: ingest_paths(ws, None, jobs=jobs, progress=False))
        cpu0 = time.process_time()
        figures["analyze_s"], _ = _timed(lambda: analyze_workspace(ws))
        figures["analyze_cpu_s"] = time.process_time() - cpu0
        if cluster:
            figures["cluster"] = _cluster_figures(ws, root / "on_cluster", cluster)
        figures["warehouse_mb"] = ws.warehouse_path.stat().st_size / 1e6

        seconds, result = _timed(lambda: run_checks(ws))
        figures["checks_s"] = seconds
        figures["checks"] = len(result.outcomes)
        figures["check_violations"] = [o.render() for o in result.violations]

        con = connect(ws, read_only=True)
        try:
            figures["rows"] = dict(con.execute(
                "SELECT 'samples', count(*) FROM samples UNION ALL SELECT 'activities', count(*) FROM activities "
                "UNION ALL SELECT 'run_metrics', count(*) FROM run_metrics "
                "UNION ALL SELECT 'block_effects', count(*) FROM block_effects").fetchall())
            figures["queries_ms"] = {}
            for name, sql in QUERIES.items():
                times = []
                for _ in range(query_repeats):
                    seconds, _ = _timed(lambda sql=sql: con.execute(sql).fetchall())
                    times.append(seconds)
                figures["queries_ms"][name] = statistics.median(times) * 1000
        finally:
            con.close()

        export_dir = root / "export"
        figures["export_parquet_s"], _ = _timed(lambda: export_tables(ws, export_dir))
        figures["export_mb"] = sum(p.stat().st_size for p in export_dir.rglob("*") if p.is_file()) / 1e6
        figures["peak_rss_mb"] = _peak_rss_mb()
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
    return figures


def render(figures: dict) -> str:
    lines = [
        f"Squad bench: {figures['athletes']} athletes x {figures['weeks']} weeks, one sample every "
        f"{figures['sample_interval_s']:g} s, {figures['jobs']} worker(s)",
        f"  generate (simulate + write files) {figures['generate_s']:8.1f} s   "
        f"{figures['files']} files, {figures['raw_mb']:.0f} MB, {figures['runs']} runs, "
        f"{figures['samples']:,} samples",
        f"  ingest                            {figures['ingest_s']:8.1f} s   "
        f"{figures['ingest_files_per_s']:.1f} files/s (target >= 150 on 2 cores: "
        f"{'OK' if figures['ingest_files_per_s'] >= 150 else 'BELOW TARGET'}), "
        f"{figures['ingest_samples_per_s']:,.0f} samples/s",
        f"  ingest again (nothing new)        {figures['reingest_s']:8.1f} s",
        f"  ingest, this process's CPU        {figures['ingest_main_cpu_s']:8.1f} s   (parse in workers, load here; "
        f"peak RSS here {figures['ingest_main_peak_rss_mb']:.0f} MB)",
        f"  analyze                           {figures['analyze_s']:8.1f} s   CPU {figures['analyze_cpu_s']:.1f} s",
        f"  warehouse size                    {figures['warehouse_mb']:8.1f} MB  "
        + ", ".join(f"{k} {v:,}" for k, v in figures["rows"].items()),
        f"  checks ({figures['checks']})                      {figures['checks_s']:8.2f} s   "
        f"{len(figures['check_violations'])} violation(s)",
        f"  export to Parquet                 {figures['export_parquet_s']:8.1f} s   {figures['export_mb']:.1f} MB",
        "  queries (median of repeats):",
    ]
    lines += [f"    {name:<40} {ms:8.1f} ms" for name, ms in figures["queries_ms"].items()]
    ingest_worker = figures.get("ingest_worker_peak_rss_mb")
    lines += [f"  peak memory: this process {figures['peak_rss_mb']['self']:.0f} MB, "
              f"largest generator worker {figures['peak_rss_mb']['children']:.0f} MB, largest ingest worker "
              + (f"{ingest_worker:.0f} MB" if ingest_worker else "n/a (parsed in-process)")]
    lines += [f"  ! {v}" for v in figures["check_violations"]]
    c = figures.get("cluster")
    if c:
        same = "identical result tables" if not c["differing_tables"] else f"DIFFERENT: {c['differing_tables']}"
        lines += [f"  on a dask cluster ({c['cluster']}) vs here: ingest {c['ingest_s']:.1f} s "
                  f"({figures['files'] / c['ingest_s']:.1f} files/s) vs {figures['ingest_s']:.1f} s, analyze "
                  f"{c['analyze_s']:.1f} s vs {figures['analyze_s']:.1f} s; largest worker peak RSS "
                  f"{c['worker_peak_rss_mb'] or float('nan'):.0f} MB; {same}"]
    lines.append("  load average {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count()))
    return "\n".join(lines)


def _defaults() -> dict:
    """Sizes from the environment (SQUAD_ATHLETES, SQUAD_WEEKS; 0 weeks = the demo profile's length)."""
    return {"athletes": int(os.environ.get("SQUAD_ATHLETES", 20)),
            "weeks": int(os.environ.get("SQUAD_WEEKS", 0)) or None}


def _write_figures(figures: dict) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "squad.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def run() -> list[str]:
    """Entry point of ``python -m bench`` (see bench/__main__.py): default sizes, lines to print."""
    defaults = _defaults()
    figures = run_squad_bench(defaults["athletes"], defaults["weeks"])
    _write_figures(figures)
    return render(figures).splitlines()


def main(argv: list[str] | None = None) -> int:
    defaults = _defaults()
    parser = argparse.ArgumentParser(prog="python -m bench.squad", description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=defaults["athletes"])
    parser.add_argument("--weeks", type=int, default=defaults["weeks"],
                        help="weeks per athlete [the demo profile's record length]")
    parser.add_argument("--sample-interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--jobs", "-j", type=int, default=None, help="worker processes [all cores]")
    parser.add_argument("--keep", type=Path, default=None, help="build the squad workspace here and keep it")
    args = parser.parse_args(argv)
    figures = run_squad_bench(args.athletes, args.weeks, args.sample_interval, args.jobs, args.keep)
    print(render(figures))
    _write_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
