"""Ingest throughput on real multi-hour FIT files vs a plain single-process fitparse loop, same run.

The corpus's long recordings (>= 1 h) are copied into a temp folder (never into the repo) and
replicated under distinct names (one byte of padding appended after the last part keeps each copy's
sha256 distinct, so ingest parses each rather than skipping identical content).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pyfitparsernative
from fitparse import FitFile

from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_unchecked
from pipeline.ingest.fit_crc import crc16
from pipeline.ingest.run import ingest_paths
from pipeline.workspace import Workspace

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
LONG_FITS = [
    "dtcooper__python-fitparse/tests/files/garmin-edge-500-activity.fit",
    "dtcooper__python-fitparse/tests/files/2019-02-17-062644-ELEMNT-297E-195-0.fit",
    "dtcooper__python-fitparse/tests/files/activity-large-fenxi2-multisport.fit",
    "GoldenCheetah__sweatpy/sweat/examples/data/4078723797.fit",
    "tormoder__fit/testdata/misc/mornindew-broken.fit",
    "jimmykane__fit-parser/test/garmin-stamina.fit",
]
COPIES = 2


def _fitparse_loop(paths: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for p in paths:
        for m in FitFile(str(p)).get_messages("record"):
            m.get_values()
            n += 1
    return time.perf_counter() - t0, n


def _native_loop(paths: list[Path]) -> tuple[float, int]:
    """The Rust-backed peer (pyfitparsernative, PyO3 bindings): every message decoded to dicts, records counted."""
    blobs = [p.read_bytes() for p in paths]
    t0 = time.perf_counter()
    n = 0
    for data in blobs:
        n += sum(1 for m in pyfitparsernative.parse_fit_bytes(data) if m.get("message_type") == "record")
    return time.perf_counter() - t0, n


def _decoder_loop(paths: list[Path]) -> tuple[float, float, int]:
    """The fast FIT reader alone (bytes -> DataFrames, CRC verified), one process: seconds, CRC seconds, records."""
    blobs = [p.read_bytes() for p in paths]
    t0 = time.perf_counter()
    n = 0
    for p, data in zip(paths, blobs):
        parsed = read_unchecked(data, p.name, ReadContext(path=p.name, file_id="x", athlete_id="a"))
        n += len(parsed.samples)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    for data in blobs:
        crc16(data)
    return seconds, time.perf_counter() - t1, n


def run() -> list[str]:
    if not CORPUS.exists():
        return [f"skipped: corpus not found at {CORPUS.resolve()}"]
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        ws = Workspace(Path(tmp))
        files = []
        for copy in range(COPIES):
            # one athlete per copy: the copies are loaded, not resolved as duplicates of each other
            folder = ws.raw_dir / f"bench{copy}"
            folder.mkdir(parents=True)
            for rel in LONG_FITS:
                dst = folder / f"c{copy}_{Path(rel).name}"
                shutil.copyfile(CORPUS / rel, dst)
                if copy:
                    with open(dst, "ab") as fh:
                        fh.write(b"\0" * copy)  # zero padding after the last part: same data, new sha256
                files.append(dst)
        mb = sum(f.stat().st_size for f in files) / 1e6
        jobs = os.cpu_count() or 1
        # the ingest first, so this process's peak RSS at its end is the loader's (plus imports)
        t0 = time.perf_counter()
        summary = ingest_paths(ws, None, jobs=jobs, progress=False)
        ingest_s = time.perf_counter() - t0
        peak_loader = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        t1 = time.perf_counter()
        again = ingest_paths(ws, None, jobs=jobs, progress=False)
        rerun_s = time.perf_counter() - t1
        # the baseline reads the unpadded originals (fitparse rejects trailing padding): same records
        originals = [CORPUS / rel for _ in range(COPIES) for rel in LONG_FITS]
        base_s, n_records = _fitparse_loop(originals)
        dec_s, crc_s, dec_records = _decoder_loop(originals)
        native_s, native_records = _native_loop(originals)
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ratio = base_s / ingest_s
        worker = f"{summary.worker_peak_rss_mb:.0f} MB" if summary.worker_peak_rss_mb else "n/a (parsed in-process)"
        return [
            f"files: {len(files)} real FIT recordings ({mb:.1f} MB), records: {n_records}",
            f"plain fitparse loop (1 process): {base_s:.2f} s, {n_records / base_s:,.0f} records/s",
            f"fast FIT reader alone (1 process, CRC verified): {dec_s:.2f} s, {dec_records / dec_s:,.0f} records/s, "
            f"{base_s / dec_s:.1f}x fitparse (CRC-16 of all bytes: {crc_s * 1000:.0f} ms = "
            f"{100 * crc_s / dec_s:.1f} % of it)",
            f"  reader alone / fitparse: {base_s / dec_s:.1f}x (target >= 40x) "
            f"{'OK' if base_s / dec_s >= 40 else 'BELOW TARGET'}",
            f"Rust peer pyfitparsernative alone (1 process, messages to dicts): {native_s:.2f} s, "
            f"{native_records / native_s:,.0f} records/s, {base_s / native_s:.1f}x fitparse; our reader is "
            f"{native_s / dec_s:.2f}x its speed",
            f"pipeline ingest (parse in {jobs} workers + load into DuckDB): {ingest_s:.2f} s, "
            f"{summary.n_samples / ingest_s:,.0f} records/s",
            f"throughput ratio ingest / fitparse loop: {ratio:.1f}x (target >= 15x) {'OK' if ratio >= 15 else 'BELOW TARGET'}",
            "load average {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count()),
            f"re-run with nothing new: {rerun_s:.2f} s ({sum(again.files.values())} files unchanged)",
            f"peak RSS: main process after ingest (loader) {peak_loader:.0f} MB, largest parser worker {worker}, "
            f"main after the fitparse and decoder loops {peak_self:.0f} MB",
            f"files by status: {dict(summary.files)}",
        ]
