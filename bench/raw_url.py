"""data/raw as a URL (``make bench``; ``python -m bench.raw_url``): the same simulated squad ingested from the
workspace's folder, from a real HTTP server on localhost (Python's http.server, as a NAS or a lab file
server would serve it) and from a ``file://`` URL, each into its own warehouse; then a re-run of each with
nothing changed.

Prints wall time and files/s of each first ingest, the re-runs, how many files the HTTP re-run downloaded
(none is expected: unchanged files are recognised by their listed Last-Modified and size) and whether the
tables equal those of the ingest from disk. Nothing is asserted about time: on localhost HTTP costs only
the protocol, not a network; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.squad import _write_athlete


class _CountingHandler(SimpleHTTPRequestHandler):
    gets: list[str]

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self.gets.append(self.path)
        return super().do_GET()


@contextlib.contextmanager
def _served(folder: Path):
    gets: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"gets": gets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=os.fspath(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", gets
    finally:
        server.shutdown()
        server.server_close()


def _timed_ingest(ws, jobs: int, raw: str | None) -> tuple[float, object]:
    from pipeline.ingest.run import ingest_paths

    t0 = time.perf_counter()
    summary = ingest_paths(ws, None, jobs=jobs, progress=False, raw=raw)
    return time.perf_counter() - t0, summary


def run_raw_url_bench(athletes: int = 6, weeks: int = 20, jobs: int | None = None) -> dict:
    """Write the squad, ingest it three ways (disk, http://, file://) and again; return the figures."""
    from bench.compare import differing_tables, result_tables
    from pipeline.demo.simulate import DEMO_PROFILE_KEYS
    from pipeline.workspace import Workspace

    jobs = jobs or os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="raw-url-bench-")).resolve()
    try:
        disk = Workspace(root / "disk")
        work = [(f"squad_{i:02d}", DEMO_PROFILE_KEYS[i % len(DEMO_PROFILE_KEYS)], 1000 + i, weeks, 10.0,
                 str(disk.raw_dir)) for i in range(athletes)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(_write_athlete, work))
        figures: dict = {"athletes": athletes, "weeks": weeks, "jobs": jobs,
                         "files": sum(1 for p in disk.raw_dir.rglob("*") if p.is_file() and "/." not in p.as_posix())}
        figures["disk"] = [_timed_ingest(disk, jobs, None)[0], _timed_ingest(disk, jobs, None)[0]]
        http, file_url = Workspace(root / "http"), Workspace(root / "file")
        with _served(disk.raw_dir) as (url, gets):
            figures["http"] = [_timed_ingest(http, jobs, url)[0]]
            first_gets, gets[:] = len(gets), []
            figures["http"].append(_timed_ingest(http, jobs, url)[0])
            figures["http_gets"] = [first_gets, len(gets)]
        figures["file"] = [_timed_ingest(file_url, jobs, disk.raw_dir.as_uri())[0],
                           _timed_ingest(file_url, jobs, disk.raw_dir.as_uri())[0]]
        expected = result_tables(disk)
        figures["differing"] = {name: differing_tables(expected, result_tables(ws)) for name, ws in
                                (("http", http), ("file", file_url))}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def render(f: dict) -> str:
    lines = [f"data/raw as a URL: {f['athletes']} athletes x {f['weeks']} weeks, {f['files']} files, {f['jobs']} "
             "parser processes; first ingest / re-run with nothing changed"]
    for key, label in (("disk", "workspace folder"), ("http", "http:// (localhost)"), ("file", "file:// URL")):
        first, again = f[key]
        lines.append(f"  {label:<22} {first:6.1f} s ({f['files'] / first:5.1f} files/s, "
                     f"{first / f['disk'][0]:.2f}x disk) / {again:5.1f} s")
    lines.append(f"  HTTP GETs: {f['http_gets'][0]} on the first ingest (listing pages, files, settings), "
                 f"{f['http_gets'][1]} on the re-run (listing pages and athlete.toml only)")
    for key, differing in f["differing"].items():
        lines.append(f"  tables {key} vs disk: {'identical' if not differing else 'DIFFER: ' + ', '.join(differing)}")
    return "\n".join(lines)


def run() -> list[str]:
    return render(run_raw_url_bench()).splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_url", description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=6)
    parser.add_argument("--weeks", type=int, default=20)
    parser.add_argument("--jobs", "-j", type=int, default=None)
    args = parser.parse_args(argv)
    print(render(run_raw_url_bench(args.athletes, args.weeks, args.jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
