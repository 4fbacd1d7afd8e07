"""The ingest stage: find files, parse them in a process pool, load each in its own transaction.

Recipe of :func:`ingest_paths`:

1. discover work items (files under the given paths or ``data/raw``; archive members listed safely);
2. skip what the warehouse already holds (same path, same sha256) without parsing it;
3. parse the rest in ``jobs`` processes (the reader is a pure function of the bytes), streaming
   results back with a bounded number in flight so memory stays flat;
4. load each result in the main process, one transaction per file (``pipeline.ingest.load``);
5. upsert ``athletes`` from ``athlete.toml`` and load declared blocks for every athlete seen;
6. return an :class:`IngestSummary` (one screen: files by status, activities by sport, errors).
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing
import os
import sys
import zipfile
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.ingest.archives import ZIP_MAGIC, ArchiveLimits, UnsafeArchive, open_zip, read_member_bounded, safe_member_name
from pipeline.ingest.common import sport_from_word
from pipeline.ingest.dispatch import STRAVA_INDEX_NAME, UNCHANGED, WorkItem, read_work_item
from pipeline.ingest.load import load_parsed
from pipeline.ingest.parsed import ParsedFile
from pipeline.warehouse.db import connect
from pipeline.workspace import (
    AthleteConfig, Workspace, athlete_id_for, is_ignored_name, load_athlete_config, validate_athlete_id,
)

ARCHIVE_SUFFIXES = (".zip",)
_INFLIGHT_PER_JOB = 4


@dataclass
class IngestSummary:
    """What one ingest run did. ``files`` counts this run's files by final status (``unchanged`` =
    already in the warehouse with the same content); ``sports`` counts new activities by sport."""

    files: Counter = field(default_factory=Counter)
    sports: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_samples: int = 0
    n_strength_sessions: int = 0
    athletes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Largest peak RSS of a parser process (MB), as each worker reports it; None when parsing ran in
    # this process (jobs=1) or the platform cannot tell. Workers are forkserver children, so the
    # caller's RUSAGE_CHILDREN never sees them.
    worker_peak_rss_mb: float | None = None

    def render(self) -> str:
        """One screen: files by status, activities by sport, errors (and skips) with reasons."""
        return render_summary("Ingest", self.files, self.sports, self.errors, self.skipped,
                              extra=[f"samples loaded: {self.n_samples}",
                                     f"athletes: {', '.join(self.athletes) or '-'}"] + self.notes)


def render_summary(title: str, files: Counter, sports: Counter, errors: list[tuple[str, str]],
                   skipped: list[tuple[str, str]], extra: list[str] | None = None, max_listed: int = 12) -> str:
    """Shared one-screen layout of ``pipeline ingest`` and ``pipeline status``."""
    total = sum(files.values())
    lines = [f"{title}: {total} file(s)"]
    order = ["ok", "duplicate", "skipped", "error", UNCHANGED]
    lines.append("  files:      " + ", ".join(f"{k} {files[k]}" for k in order if files.get(k))
                 if total else "  files:      none")
    lines.append("  activities: " + (", ".join(f"{s} {n}" for s, n in sorted(sports.items(), key=lambda kv: (-kv[1], kv[0])))
                                     or "none"))
    for line in extra or []:
        lines.append(f"  {line}")
    for label, items in (("errors", errors), ("skipped", skipped)):
        if items:
            lines.append(f"  {label}:")
            for path, message in items[:max_listed]:
                lines.append(f"    {path}: {message}")
            if len(items) > max_listed:
                lines.append(f"    ... and {len(items) - max_listed} more (pipeline sql \"SELECT path, message "
                             f"FROM source_files WHERE status = '{label.rstrip('s') if label == 'errors' else 'skipped'}'\")")
    return "\n".join(lines)


# ---------------------------------------------------------------- discovery


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def strava_index(csv_bytes: bytes) -> dict[str, tuple[str, str | None]]:
    """Strava bulk export ``activities.csv``: activity file name -> (sport, activity name).

    Keys are the ``Filename`` column (``activities/123.fit.gz``) without compression suffix stripped.
    """
    text = csv_bytes.decode("utf-8-sig", "replace")
    out: dict[str, tuple[str, str | None]] = {}
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        filename = row.get("filename")
        if filename:
            out[filename.replace("\\", "/")] = (sport_from_word(row.get("activity type")),
                                                row.get("activity name") or None)
    return out


@dataclass
class _Discovery:
    items: list[WorkItem] = field(default_factory=list)
    archive_rows: list[ParsedFile] = field(default_factory=list)   # per-archive source_files rows
    failed: list[ParsedFile] = field(default_factory=list)         # unreadable archives/members


def _expand_zip(zf: zipfile.ZipFile, source: Path, chain: tuple[str, ...], rel: str, athlete_id: str,
                known: dict[str, tuple[str, str]], limits: ArchiveLimits, out: _Discovery, depth: int) -> None:
    names = [i.filename for i in zf.infolist() if not i.is_dir()]
    index: dict[str, tuple[str, str | None]] = {}
    for name in names:
        if name.rsplit("/", 1)[-1].lower() == STRAVA_INDEX_NAME and safe_member_name(name):
            prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
            for fname, value in strava_index(read_member_bounded(zf, name, limits)).items():
                index[prefix + fname] = value
    for name in sorted(names):
        path = f"{rel}!{name}"
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        if not safe_member_name(name):
            out.failed.append(ParsedFile(path=path, file_id=hashlib.sha256(path.encode()).hexdigest(),
                                         athlete_id=athlete_id, format="unknown", size_bytes=0, status="error",
                                         message="unsafe member path (absolute or '..'); not read"))
            continue
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            if depth >= limits.max_nesting:
                out.failed.append(ParsedFile(path=path, file_id="", athlete_id=athlete_id, format="zip",
                                             size_bytes=0, status="error",
                                             message=f"zip nested deeper than {limits.max_nesting} levels"))
                continue
            try:
                inner_bytes = read_member_bounded(zf, name, limits)
                with open_zip(inner_bytes, limits, name) as inner:
                    _expand_zip(inner, source, chain + (name,), path, athlete_id, known, limits, out, depth + 1)
            except UnsafeArchive as e:
                out.failed.append(ParsedFile(path=path, file_id="", athlete_id=athlete_id, format="zip",
                                             size_bytes=0, status="error", message=str(e)))
            continue
        sport, title = index.get(name, (None, None))
        out.items.append(WorkItem(source=source, members=chain + (name,), path=path, athlete_id=athlete_id,
                                  sport_override=sport, name_override=title,
                                  known_file_id=known.get(path, (None, None))[0]))


def _discover(ws: Workspace, paths: list[Path], athlete_id: str | None, known: dict[str, tuple[str, str]],
              limits: ArchiveLimits) -> _Discovery:
    out = _Discovery()
    raw = ws.raw_dir.resolve()
    files: list[Path] = []
    for p in paths:
        p = Path(p).resolve()
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise PipelineError(f"{p}: no such file or folder")
    strava_by_dir: dict[Path, dict[str, tuple[str, str | None]]] = {}
    for f in files:
        inside_raw = f.is_relative_to(raw)
        if inside_raw and is_ignored_name(f, raw):
            continue
        if not inside_raw and (f.name.startswith(".") or f.name.lower() in {"readme.md", "readme.txt"}):
            continue
        owner = athlete_id or (athlete_id_for(f, raw) if inside_raw else "default")
        rel = ws.relative(f)
        if f.name.lower() == STRAVA_INDEX_NAME:
            strava_by_dir[f.parent] = strava_index(f.read_bytes())
        if f.suffix.lower() in ARCHIVE_SUFFIXES or _starts_with(f, ZIP_MAGIC):
            sha = _file_sha256(f)
            if known.get(rel, (None, None))[0] == sha:
                out.archive_rows.append(ParsedFile(path=rel, file_id=sha, athlete_id=owner, format="zip",
                                                   size_bytes=f.stat().st_size, status=UNCHANGED))
                continue
            try:
                with open_zip(f, limits, f.name) as zf:
                    _expand_zip(zf, f, (), rel, owner, known, limits, out, depth=1)
                out.archive_rows.append(ParsedFile(path=rel, file_id=sha, athlete_id=owner, format="zip",
                                                   size_bytes=f.stat().st_size, status="ok"))
            except UnsafeArchive as e:
                out.failed.append(ParsedFile(path=rel, file_id=sha, athlete_id=owner, format="zip",
                                             size_bytes=f.stat().st_size, status="error", message=str(e)))
            continue
        out.items.append(WorkItem(source=f, members=(), path=rel, athlete_id=owner,
                                  known_file_id=known.get(rel, (None, None))[0]))
    # An unpacked Strava export: activities.csv beside activities/ gives sport and names.
    if strava_by_dir:
        for i, item in enumerate(out.items):
            for folder, index in strava_by_dir.items():
                if not item.members and item.source.is_relative_to(folder):
                    hit = index.get(item.source.relative_to(folder).as_posix())
                    if hit:
                        out.items[i] = WorkItem(item.source, (), item.path, item.athlete_id, hit[0], hit[1],
                                                item.known_file_id)
    return out


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(magic)) == magic


# ---------------------------------------------------------------- parsing in a pool

_worker_athletes: dict[str, AthleteConfig] = {}


def _init_worker(athletes: dict[str, AthleteConfig]) -> None:
    global _worker_athletes
    _worker_athletes = athletes


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (MB) so far; None where the platform has no getrusage."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _parse_in_worker(item: WorkItem) -> tuple[ParsedFile, float | None]:
    return read_work_item(item, _worker_athletes.get(item.athlete_id)), _peak_rss_mb()


def _parsed_stream(items: list[WorkItem], athletes: dict[str, AthleteConfig], jobs: int,
                   summary: IngestSummary | None = None):
    """Yield ParsedFile results in item order; at most ``jobs * 4`` in flight (bounded memory).

    Each worker reports its peak RSS with every result; the largest goes to ``summary.worker_peak_rss_mb``.
    """
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
            if len(pending) >= jobs * _INFLIGHT_PER_JOB:
                break
        while pending:
            result, peak_mb = pending.popleft().get()
            if summary is not None and peak_mb is not None:
                summary.worker_peak_rss_mb = max(summary.worker_peak_rss_mb or 0.0, peak_mb)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_parse_in_worker, (nxt,)))
            yield result


# ---------------------------------------------------------------- the stage


def ingest_paths(ws: Workspace, paths: list[Path] | None, athlete_id: str | None = None,
                 jobs: int | None = None, progress: bool = True,
                 limits: ArchiveLimits | None = None) -> IngestSummary:
    """Ingest files (default: everything under ``data/raw``) into the workspace warehouse.

    Args:
        ws: the workspace (the caller holds its lock).
        paths: files or folders; None = ``data/raw``.
        athlete_id: owner of the given paths; default: from their folder under ``data/raw``.
        jobs: parser processes; default all cores.
        progress: show a progress bar (files) on stderr.
        limits: archive/decompression limits (defaults documented in docs/ingest.md).
    """
    limits = limits or ArchiveLimits()
    if athlete_id is not None:
        validate_athlete_id(athlete_id)
    if paths is None:
        if not ws.raw_dir.is_dir():
            raise PipelineError(f"no {ws.raw_dir}; put watch exports in data/raw/<athlete>/ (see docs/ingest.md)")
        paths = [ws.raw_dir]
    jobs = jobs or os.cpu_count() or 1
    summary = IngestSummary()
    con = connect(ws)
    try:
        known = {p: (fid, st) for p, fid, st in con.execute("SELECT path, file_id, status FROM source_files").fetchall()}
        ok_by_file_id: dict[str, str] = {}
        for p, fid, st in con.execute(
                "SELECT s.path, s.file_id, s.status FROM source_files s WHERE s.status = 'ok' ORDER BY s.path").fetchall():
            ok_by_file_id.setdefault(fid, p)
        found = _discover(ws, paths, athlete_id, known, limits)

        # Plain files: hash here (fast) so unchanged files and identical copies are never parsed.
        to_parse: list[WorkItem] = []
        for item in found.items:
            if item.members:
                to_parse.append(item)
                continue
            try:
                sha = _file_sha256(item.source)
            except OSError as e:
                found.failed.append(ParsedFile(path=item.path, file_id="", athlete_id=item.athlete_id,
                                               format="unknown", size_bytes=0, status="error",
                                               message=f"cannot read file: {e.strerror or e}"))
                continue
            if known.get(item.path, (None, None))[0] == sha:
                summary.files[UNCHANGED] += 1
                continue
            to_parse.append(WorkItem(item.source, (), item.path, item.athlete_id, item.sport_override,
                                     item.name_override, known.get(item.path, (None, None))[0]))

        athletes = {a: _athlete_config(ws, a) for a in sorted({i.athlete_id for i in found.items})}
        # disable=None: tqdm stays silent when stderr is not a terminal (CI logs, redirected output)
        bar = tqdm(total=len(to_parse) + len(found.failed), unit="file", desc="ingest",
                   disable=None if progress else True, leave=False)
        try:
            for parsed in found.failed:
                _record(con, parsed, known, summary)
                bar.update()
            for parsed in _parsed_stream(to_parse, athletes, jobs, summary):
                if parsed.status == UNCHANGED:
                    summary.files[UNCHANGED] += 1
                else:
                    _record(con, parsed, known, summary, ok_by_file_id)
                bar.update()
        finally:
            bar.close()
        for row in found.archive_rows:
            if row.status == UNCHANGED:
                summary.files[UNCHANGED] += 1
            else:
                n = sum(1 for i in found.items if i.path.startswith(row.path + "!"))
                row.message = f"archive: {n} member file(s), each listed as {row.path}!<member>"
                _record(con, row, known, summary)
        summary.athletes = sorted(set(athletes) | {r.athlete_id for r in found.archive_rows})
        _load_athletes(con, ws, summary)
    finally:
        con.close()
    return summary


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


def _record(con, parsed: ParsedFile, known: dict[str, tuple[str, str]], summary: IngestSummary,
            ok_by_file_id: dict[str, str] | None = None) -> None:
    """Load one result (or identical-copy duplicate) and count it in the summary."""
    previous = known.get(parsed.path, (None, None))[0]
    if ok_by_file_id is not None and parsed.status == "ok" and parsed.file_id in ok_by_file_id \
            and ok_by_file_id[parsed.file_id] != parsed.path:
        original = ok_by_file_id[parsed.file_id]
        first_activity = con.execute("SELECT min(activity_id) FROM activities WHERE file_id = ?",
                                     [parsed.file_id]).fetchone()[0]
        parsed = ParsedFile(path=parsed.path, file_id=parsed.file_id, athlete_id=parsed.athlete_id,
                            format=parsed.format, size_bytes=parsed.size_bytes, status="duplicate",
                            message=f"identical content to {original}")
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


def _load_athletes(con, ws: Workspace, summary: IngestSummary) -> None:
    """Upsert ``athletes`` from each athlete.toml and load declared blocks (one transaction)."""
    from pipeline.strength.blocks import load_declared_blocks

    con.execute("BEGIN TRANSACTION")
    try:
        for athlete_id in summary.athletes:
            cfg = _athlete_config(ws, athlete_id, summary.notes)
            con.execute(
                """INSERT OR REPLACE INTO athletes (athlete_id, display_name, hr_rest_bpm, hr_max_bpm, ref_speed_m_s,
                       time_zone, updated_at) VALUES (?, ?, ?, ?, ?, ?, now())""",
                [athlete_id, cfg.display_name, cfg.hr_rest_bpm, cfg.hr_max_bpm, cfg.ref_speed_m_s, cfg.time_zone])
            note = load_declared_blocks(con, ws, athlete_id)
            if note:
                summary.notes.append(f"{athlete_id}: {note}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
