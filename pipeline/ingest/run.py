"""The ingest stage, as a recipe that reads top to bottom (:func:`ingest_paths`):

1. discover work items (files under the given paths or ``data/raw``; archive members listed safely) —
   :mod:`pipeline.ingest.discover`;
2. skip what the warehouse already holds (same path, same sha256) without parsing it;
3. parse the rest in ``jobs`` processes (the reader is a pure function of the bytes), streaming results
   back with a bounded number in flight so memory stays flat — :mod:`pipeline.ingest.pool`;
4. load each result in the main process, one transaction per file — :mod:`pipeline.ingest.load`;
5. upsert ``athletes`` from ``athlete.toml`` and load declared blocks for every athlete seen;
6. return an :class:`~pipeline.ingest.summary.IngestSummary` (files by status, activities by sport, errors).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.ingest.archives import ArchiveLimits
from pipeline.ingest.declared_blocks import load_declared_blocks
from pipeline.ingest.discover import Discovery, discover, file_sha256
from pipeline.ingest.dispatch import WorkItem
from pipeline.ingest.load import load_parsed
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.ingest.pool import parsed_stream
from pipeline.ingest.summary import IngestSummary
from pipeline.warehouse.db import connect, transaction
from pipeline.workspace import AthleteConfig, Workspace, load_athlete_config, validate_athlete_id

# path -> (file_id, status) of every file the warehouse has seen
KnownFiles = dict[str, tuple[str, str]]


def ingest_paths(ws: Workspace, paths: list[Path] | None, athlete_id: str | None = None,
                 jobs: int | None = None, progress: bool = True,
                 limits: ArchiveLimits | None = None, engine=None) -> IngestSummary:
    """Ingest files (default: everything under ``data/raw``) into the workspace warehouse.

    Args:
        ws: the workspace (the caller holds its lock).
        paths: files or folders; None = ``data/raw``.
        athlete_id: owner of the given paths; default: from their folder under ``data/raw``.
        jobs: parser processes; default all cores.
        progress: show a progress bar (files) on stderr.
        limits: archive/decompression limits (defaults documented in docs/ingest.md).
        engine: parse on this dask cluster (:class:`pipeline.engine.Engine`, ``--cluster``) instead of
            ``jobs`` local processes; loading stays here, in the single warehouse writer.
    """
    limits = limits or ArchiveLimits()
    if athlete_id is not None:
        validate_athlete_id(athlete_id)
    paths = _default_paths(ws) if paths is None else paths
    summary = IngestSummary()
    con = connect(ws)
    try:
        known: KnownFiles = {p: (fid, st) for p, fid, st in
                             con.execute("SELECT path, file_id, status FROM source_files").fetchall()}
        found = discover(ws, paths, athlete_id, known, limits)                      # 1
        to_parse = _changed_items(found, known, summary)                            # 2
        athletes = {a: _athlete_config(ws, a) for a in sorted({i.athlete_id for i in found.items})}
        _parse_and_load(con, found, to_parse, athletes, known, summary, jobs or os.cpu_count() or 1,
                        progress, engine)                                                   # 3, 4
        _record_archives(con, found, known, summary)
        summary.athletes = sorted(set(athletes) | {r.athlete_id for r in found.archive_rows})
        _load_athletes(con, ws, summary)                                            # 5
    finally:
        con.close()
    return summary                                                                  # 6


def _default_paths(ws: Workspace) -> list[Path]:
    if not ws.raw_dir.is_dir():
        raise PipelineError(f"no {ws.raw_dir}; put watch exports in data/raw/<athlete>/ (see docs/ingest.md)")
    return [ws.raw_dir]


def _changed_items(found: Discovery, known: KnownFiles, summary: IngestSummary) -> list[WorkItem]:
    """Plain files are hashed here (fast) so unchanged files are never parsed; archive members are
    compared by the worker after it has read their bytes."""
    to_parse: list[WorkItem] = []
    for item in found.items:
        if item.members:
            to_parse.append(item)
            continue
        try:
            sha = file_sha256(item.source)
        except OSError as e:
            found.failed.append(ParsedFile.failed(item.path, item.athlete_id,
                                                  f"cannot read file: {e.strerror or e}"))
            continue
        if known.get(item.path, (None, None))[0] == sha:
            summary.files[UNCHANGED] += 1
            continue
        to_parse.append(WorkItem(item.source, (), item.path, item.athlete_id, item.sport_override,
                                 item.name_override, known.get(item.path, (None, None))[0]))
    return to_parse


def _parse_and_load(con: duckdb.DuckDBPyConnection, found: Discovery, to_parse: list[WorkItem],
                    athletes: dict[str, AthleteConfig], known: KnownFiles, summary: IngestSummary, jobs: int,
                    progress: bool, engine=None) -> None:
    ok_by_file_id: dict[str, str] = {}
    for path, file_id in con.execute(
            "SELECT path, file_id FROM source_files WHERE status = 'ok' ORDER BY path").fetchall():
        ok_by_file_id.setdefault(file_id, path)
    # disable=None: tqdm stays silent when stderr is not a terminal (CI logs, redirected output)
    bar = tqdm(total=len(to_parse) + len(found.failed), unit="file", desc="ingest",
               disable=None if progress else True, leave=False)
    try:
        for parsed in found.failed:
            _record(con, parsed, known, summary)
            bar.update()
        for parsed in parsed_stream(to_parse, athletes, jobs, summary, engine):
            if parsed.status == UNCHANGED:
                summary.files[UNCHANGED] += 1
            else:
                _record(con, parsed, known, summary, ok_by_file_id)
            bar.update()
    finally:
        bar.close()


def _record_archives(con: duckdb.DuckDBPyConnection, found: Discovery, known: KnownFiles,
                     summary: IngestSummary) -> None:
    for row in found.archive_rows:
        if row.status == UNCHANGED:
            summary.files[UNCHANGED] += 1
            continue
        n = sum(1 for i in found.items if i.path.startswith(row.path + "!"))
        row.message = f"archive: {n} member file(s), each listed as {row.path}!<member>"
        _record(con, row, known, summary)


def _athlete_config(ws: Workspace, athlete_id: str, notes: list[str] | None = None) -> AthleteConfig:
    """The athlete's settings; an invalid athlete.toml costs only that athlete its settings (defaults are
    used for its files, ``notes`` gets the reason, and `pipeline analyze` reports the athlete as an error
    until the file is fixed), never the other athletes their ingest."""
    if (ws.raw_dir / athlete_id).is_dir():
        try:
            return load_athlete_config(ws.raw_dir, athlete_id)
        except PipelineError as e:
            if notes is not None:
                notes.append(f"{athlete_id}: {e}; defaults used for its files until it is fixed")
    return AthleteConfig(athlete_id=athlete_id)


def _as_identical_copy(parsed: ParsedFile, original: str) -> ParsedFile:
    return ParsedFile(path=parsed.path, file_id=parsed.file_id, athlete_id=parsed.athlete_id,
                      format=parsed.format, size_bytes=parsed.size_bytes, status="duplicate",
                      message=f"identical content to {original}")


def _record(con: duckdb.DuckDBPyConnection, parsed: ParsedFile, known: KnownFiles, summary: IngestSummary,
            ok_by_file_id: dict[str, str] | None = None) -> None:
    """Load one result (or identical-copy duplicate) and count it in the summary."""
    previous = known.get(parsed.path, (None, None))[0]
    if ok_by_file_id is not None and parsed.status == "ok" and parsed.file_id in ok_by_file_id \
            and ok_by_file_id[parsed.file_id] != parsed.path:
        first_activity = con.execute("SELECT min(activity_id) FROM activities WHERE file_id = ?",
                                     [parsed.file_id]).fetchone()[0]
        parsed = _as_identical_copy(parsed, ok_by_file_id[parsed.file_id])
        outcome = load_parsed(con, parsed, previous)
        con.execute("UPDATE source_files SET duplicate_of = ? WHERE path = ?", [first_activity, parsed.path])
    else:
        outcome = load_parsed(con, parsed, previous)
        if outcome.status == "ok" and parsed.file_id and ok_by_file_id is not None:
            ok_by_file_id.setdefault(parsed.file_id, parsed.path)
    known[parsed.path] = (parsed.file_id, outcome.status)
    summary.files[outcome.status] += 1
    if outcome.status == "error":
        summary.errors.append((parsed.path, outcome.message))
    elif outcome.status == "skipped":
        summary.skipped.append((parsed.path, outcome.message))
    summary.sports.update(outcome.sports)
    summary.n_samples += outcome.n_samples
    if outcome.status == "ok":
        summary.n_strength_sessions += len(parsed.strength_sessions)


def _load_athletes(con: duckdb.DuckDBPyConnection, ws: Workspace, summary: IngestSummary) -> None:
    """Upsert ``athletes`` from each athlete.toml and load declared blocks (one transaction)."""
    with transaction(con):
        for athlete_id in summary.athletes:
            cfg = _athlete_config(ws, athlete_id, summary.notes)
            con.execute(
                """INSERT OR REPLACE INTO athletes (athlete_id, display_name, hr_rest_bpm, hr_max_bpm, ref_speed_m_s,
                       time_zone, updated_at) VALUES (?, ?, ?, ?, ?, ?, now())""",
                [athlete_id, cfg.display_name, cfg.hr_rest_bpm, cfg.hr_max_bpm, cfg.ref_speed_m_s, cfg.time_zone])
            note = load_declared_blocks(con, ws, athlete_id)
            if note:
                summary.notes.append(f"{athlete_id}: {note}")
