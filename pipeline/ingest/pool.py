"""Parsing in a process pool: each work item read by a pure function of its bytes, results streamed back.

The parse step (:func:`pipeline.ingest.dispatch.read_work_item`) never touches the warehouse, so it runs
in ``jobs`` worker processes; the main process loads results as they arrive. At most ``jobs *
INFLIGHT_PER_JOB`` results are in flight, so memory stays bounded whatever the number of files. With
``--cluster`` (:class:`pipeline.engine.Engine`) the same chunks are parsed on the cluster's workers instead.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterator

from pipeline.ingest.archives import ArchiveLimits
from pipeline.ingest.dispatch import WorkItem, close_open_archives, read_work_item
from pipeline.ingest.parsed import ParsedFile
from pipeline.ingest.sanity import SanityRules
from pipeline.ingest.summary import IngestSummary
from pipeline.workspace import AthleteConfig

INFLIGHT_PER_JOB = 4
# Small files travel to workers in chunks (one task per file cost ~4 ms of round trip, 8x the parse of a
# tiny archive member): at most this many files or this many bytes (size hints) per task; a file of
# unknown size travels alone.
CHUNK_MAX_FILES = 64
CHUNK_MAX_BYTES = 4 << 20

_worker_athletes: dict[str, AthleteConfig] = {}
_worker_settings: tuple[ArchiveLimits | None, SanityRules | None] = (None, None)


def _init_worker(athletes: dict[str, AthleteConfig], limits: ArchiveLimits | None,
                 rules: SanityRules | None) -> None:
    global _worker_athletes, _worker_settings
    _worker_athletes = athletes
    _worker_settings = (limits, rules)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (MB) so far; None where the platform has no getrusage."""
    try:
        import resource  # POSIX only: absent on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _parse_in_worker(chunk: list[WorkItem]) -> tuple[list[ParsedFile], float | None]:
    limits, rules = _worker_settings
    return [read_work_item(item, _worker_athletes.get(item.athlete_id), limits, rules) for item in chunk], \
        peak_rss_mb()


def chunks(items: list[WorkItem]) -> Iterator[list[WorkItem]]:
    """Consecutive items grouped by :data:`CHUNK_MAX_FILES` / :data:`CHUNK_MAX_BYTES` (order kept)."""
    chunk: list[WorkItem] = []
    size = 0
    for item in items:
        item_size = item.size_hint if item.size_hint is not None else CHUNK_MAX_BYTES
        if chunk and (len(chunk) >= CHUNK_MAX_FILES or size + item_size > CHUNK_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def parse_chunk(athletes: dict[str, AthleteConfig], limits: ArchiveLimits | None, rules: SanityRules | None,
                chunk: list[WorkItem]) -> list[ParsedFile]:
    """The per-file step as a cluster task: a chunk of items read with their athletes' settings (pure,
    picklable). Archives stay open between a worker's chunks (linear reads); :func:`cluster_parsed_stream`
    closes them on every worker at the end."""
    return [read_work_item(item, athletes.get(item.athlete_id), limits, rules) for item in chunk]


def cluster_parsed_stream(engine, items: list[WorkItem], athletes: dict[str, AthleteConfig],
                          limits: ArchiveLimits | None, rules: SanityRules | None) -> Iterator[ParsedFile]:
    """:func:`parsed_stream` on the workers of ``engine`` (:class:`pipeline.engine.Engine`): the same chunks,
    results in item order; the archives the workers opened are closed afterwards (an archive changed before
    the next run is then read afresh)."""
    try:
        for results in engine.stream(functools.partial(parse_chunk, athletes, limits, rules), chunks(items)):
            yield from results
    finally:
        engine.run_on_workers(close_open_archives)


def parsed_stream(items: list[WorkItem], athletes: dict[str, AthleteConfig], jobs: int,
                  summary: IngestSummary | None = None, limits: ArchiveLimits | None = None,
                  rules: SanityRules | None = None, engine=None) -> Iterator[ParsedFile]:
    """Yield ParsedFile results in item order; at most ``jobs * 4`` chunks in flight (bounded memory).

    Each worker reports its peak RSS with every result; the largest goes to ``summary.worker_peak_rss_mb``.
    ``limits``/``rules``: archive limits and sanity-gate bounds (defaults when None). ``engine``
    (:class:`pipeline.engine.Engine`, ``--cluster``): parse on its workers instead.
    """
    if engine is not None:
        yield from cluster_parsed_stream(engine, items, athletes, limits, rules)
        return
    if jobs <= 1 or len(items) <= 1:
        try:
            for item in items:
                yield read_work_item(item, athletes.get(item.athlete_id), limits, rules)
        finally:
            close_open_archives()
        return
    # forkserver: workers never inherit the open DuckDB connection or its threads.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.ingest.dispatch"])
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(athletes, limits, rules)) as pool:
        pending: deque = deque()
        it = chunks(items)
        for chunk in it:
            pending.append(pool.apply_async(_parse_in_worker, (chunk,)))
            if len(pending) >= jobs * INFLIGHT_PER_JOB:
                break
        while pending:
            results, peak_mb = pending.popleft().get()
            if summary is not None and peak_mb is not None:
                summary.worker_peak_rss_mb = max(summary.worker_peak_rss_mb or 0.0, peak_mb)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_parse_in_worker, (nxt,)))
            yield from results
