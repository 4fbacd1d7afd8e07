"""Ingest at the edges: a 100,000-member zip (time, linear member access) and a 50 MB single-line GPX
(peak memory of the process that reads it), both generated into a temp folder.

Sizes can be scaled down for a quick look: ``BENCH_ZIP_MEMBERS`` (default 100000), ``BENCH_GPX_POINTS``
(default 225000, ~60 MB).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from pipeline.ingest.run import ingest_paths
from pipeline.workspace import Workspace

ZIP_MEMBERS = int(os.environ.get("BENCH_ZIP_MEMBERS", "100000"))
GPX_POINTS = int(os.environ.get("BENCH_GPX_POINTS", "225000"))
GPX_TARGET_MB = 300


def _big_zip(path: Path, n: int) -> None:
    """n members: notes, photos' stand-ins and JSON (export clutter and unknown files), every 1000th a GPX."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            kind = i % 3
            name = (f"notes/{i:06d}.txt", f"media/{i:06d}.jpg", f"json/{i:06d}.json")[kind]
            data = (b"note %d" % i, b"\xff\xd8\xff\xe0" + bytes(16), b'{"i": %d}' % i)[kind]
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _zip_bench(tmp: Path) -> list[str]:
    ws = Workspace(tmp / "zip")
    (ws.raw_dir / "anna").mkdir(parents=True)
    _big_zip(ws.raw_dir / "anna" / "export.zip", ZIP_MEMBERS)
    t0 = time.perf_counter()
    summary = ingest_paths(ws, None, progress=False)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = ingest_paths(ws, None, progress=False)
    return [f"zip of {ZIP_MEMBERS:,} members: first ingest {seconds:.1f} s ({ZIP_MEMBERS / seconds:,.0f} "
            f"members/s; {dict(summary.files)}), re-ingest {time.perf_counter() - t1:.1f} s ({dict(again.files)})"]


def _big_gpx(path: Path, n: int) -> None:
    start = dt.datetime(2024, 5, 1, 6, 0, 0)
    with open(path, "w") as fh:   # one line, as some exporters write it
        fh.write('<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="bench" '
                 'xmlns="http://www.topografix.com/GPX/1/1" '
                 'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
                 "<trk><name>Long</name><type>running</type><trkseg>")
        for i in range(n):
            t = start + dt.timedelta(milliseconds=500 * i)
            fh.write(f'<trkpt lat="{46.05 + i * 1e-6:.7f}" lon="{14.5 + i * 1e-6:.7f}"><ele>{300 + (i % 100) * 0.1:.1f}'
                     f"</ele><time>{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 10000:02d}Z</time><extensions>"
                     f"<gpxtpx:TrackPointExtension><gpxtpx:atemp>21.0</gpxtpx:atemp><gpxtpx:hr>{140 + i % 20}"
                     "</gpxtpx:hr><gpxtpx:cad>85</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions></trkpt>")
        fh.write("</trkseg></trk></gpx>")


_MEASURE = """
import json, resource, sys, time
from pathlib import Path
from pipeline.ingest.dispatch import WorkItem, read_work_item
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
p = read_work_item(WorkItem(Path(sys.argv[1]), (), "big.gpx", "anna"), None)
print(json.dumps({"status": p.status, "samples": len(p.samples), "seconds": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "base_mb": base}))
"""


def _gpx_bench(tmp: Path) -> list[str]:
    path = tmp / "big.gpx"
    _big_gpx(path, GPX_POINTS)
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    verdict = "within" if r["peak_mb"] < GPX_TARGET_MB else "OVER"
    return [f"single-line GPX of {path.stat().st_size / 1e6:.0f} MB ({GPX_POINTS:,} points): {r['status']}, "
            f"{r['samples']:,} samples in {r['seconds']:.1f} s; reader process peak {r['peak_mb']:.0f} MB "
            f"({r['base_mb']:.0f} MB of it Python and libraries), {verdict} the {GPX_TARGET_MB} MB target"]


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return _gpx_bench(Path(tmp)) + _zip_bench(Path(tmp))
