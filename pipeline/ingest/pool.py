"""Parsing in a process pool: each work item read by a pure function of its bytes, results streamed back.

The parse step (:func:`pipeline.ingest.dispatch.read_work_item`) never touches the warehouse, so it runs
in ``jobs`` worker processes; the main process loads results as they arrive. At most ``jobs *
INFLIGHT_PER_JOB`` results are in flight, so memory stays bounded whatever the number of files.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterator

from pipeline.ingest.dispatch import WorkItem, read_work_item
from pipeline.ingest.parsed import ParsedFile
from pipeline.ingest.summary import IngestSummary
from pipeline.workspace import AthleteConfig

INFLIGHT_PER_JOB = 4

_worker_athletes: dict[str, AthleteConfig] = {}


def _init_worker(athletes: dict[str, AthleteConfig]) -> None:
    global _worker_athletes
    _worker_athletes = athletes


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (MB) so far; None where the platform has no getrusage."""
    try:
        import resource  # POSIX only: absent on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _parse_in_worker(item: WorkItem) -> tuple[ParsedFile, float | None]:
    return read_work_item(item, _worker_athletes.get(item.athlete_id)), peak_rss_mb()


def parse_item(athletes: dict[str, AthleteConfig], item: WorkItem) -> ParsedFile:
    """The per-file step as a cluster task: the item read with its athlete's settings (pure, picklable)."""
    return read_work_item(item, athletes.get(item.athlete_id))


def parsed_stream(items: list[WorkItem], athletes: dict[str, AthleteConfig], jobs: int,
                  summary: IngestSummary | None = None, engine=None) -> Iterator[ParsedFile]:
    """Yield ParsedFile results in item order; at most ``jobs * 4`` in flight (bounded memory).

    Each worker reports its peak RSS with every result; the largest goes to ``summary.worker_peak_rss_mb``.
    ``engine`` (:class:`pipeline.engine.Engine`, ``--cluster``): parse on its workers instead.
    """
    if engine is not None:
        yield from engine.stream(functools.partial(parse_item, athletes), items)
        return
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            yield read_work_item(item, athletes.get(item.athlete_id))
        return
    # forkserver: workers never inherit the open DuckDB connection or its threads.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.ingest.dispatch"])
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(athletes,)) as pool:
        pending: deque = deque()
        it = iter(items)
        for item in it:
            pending.append(pool.apply_async(_parse_in_worker, (item,)))
            if len(pending) >= jobs * INFLIGHT_PER_JOB:
                break
        while pending:
            result, peak_mb = pending.popleft().get()
            if summary is not None and peak_mb is not None:
                summary.worker_peak_rss_mb = max(summary.worker_peak_rss_mb or 0.0, peak_mb)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_parse_in_worker, (nxt,)))
            yield result
