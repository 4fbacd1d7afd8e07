"""The ingest stage, as a recipe that reads top to bottom (:func:`ingest_paths`):

1. discover work items (files under the given paths or ``data/raw``; archive members listed safely; each
   file's athlete by the one athlete-id rule) — :mod:`pipeline.ingest.discover`; or, when data/raw is a URL
   (:mod:`pipeline.rawroot`), the files its listing shows — :mod:`pipeline.ingest.url_root`;
2. ingest of ``data/raw`` only: remove what is gone from it (files, archive members) —
   :mod:`pipeline.ingest.reconcile`;
3. skip what the warehouse already holds (same path, same sha256, same athlete) without parsing it (under a
   URL root: same listed version marker as when last read, without downloading it);
4. parse the rest in ``jobs`` processes, or on a dask cluster (``engine``; the reader is a pure function of
   the bytes, followed by the sanity gate), streaming results back with a bounded number in flight so memory
   stays flat — :mod:`pipeline.ingest.pool`;
5. load the results in the main process, the single warehouse writer: new files that cannot meet anything
   stored in batches (one transaction per batch, a failed batch retried file by file) —
   :mod:`pipeline.ingest.load_batch`; every other file in its own transaction, in order —
   :mod:`pipeline.ingest.load`;
6. read again the files that duplicated data which is now gone (promotion);
7. upsert ``athletes`` from ``athlete.toml`` and load declared blocks for every athlete seen; ingest of
   ``data/raw`` only: remove athletes that have no file left;
8. return an :class:`~pipeline.ingest.summary.IngestSummary` counted from the warehouse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.ingest.archives import ArchiveLimits
from pipeline.ingest.declared_blocks import load_declared_blocks, replace_declared_blocks
from pipeline.ingest.discover import Discovery, KnownFile, KnownFiles, discover, file_sha256, known_sha
from pipeline.ingest.dispatch import WorkItem
from pipeline.ingest.load import load_identical_copy, record_unloaded
from pipeline.ingest.load_batch import BATCH_FILES, BATCH_SAMPLES, load_one_safely, load_plain_or_retry, plain_files
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.ingest.pool import parsed_stream
from pipeline.ingest.reconcile import (
    gone_paths, raw_prefix, remove_files, remove_gone_athletes, shadowed_paths, touched_frame,
)
from pipeline.ingest.sanity import SanityRules
from pipeline.ingest.summary import IngestSummary
from pipeline.ingest.url_root import Versions, archive_items, discover_url, listed_unchanged, record_versions, \
    stored_versions
from pipeline.rawroot import RawListing, RawRoot, athlete_config, athlete_file, athlete_folder_name, raw_root
from pipeline.warehouse.db import connect, store_raw_root, transaction
from pipeline.workspace import DECLARED_BLOCKS_NAME, AthleteConfig, Workspace, validate_athlete_id

# Promotion rounds: a file read again may itself free nothing, so one round suffices; more guard chains.
MAX_PROMOTION_ROUNDS = 3
# Error/skipped rows of new paths are written in groups of this many (see load.record_unloaded).
UNLOADED_BATCH = 1000


@dataclass
class IngestRun:
    """One run's state: the connection, settings, what the warehouse held, and the paths written."""

    ws: Workspace
    con: duckdb.DuckDBPyConnection
    limits: ArchiveLimits
    rules: SanityRules
    jobs: int
    progress: bool
    summary: IngestSummary = field(default_factory=IngestSummary)
    known: KnownFiles = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)       # paths written by this run
    unchanged: set[str] = field(default_factory=set)     # paths found with the content already stored
    # (athlete_id, file_id) -> path of the file holding that content's rows (identical copies)
    holder: dict[tuple[str, str], str] = field(default_factory=dict)
    athletes: dict[str, AthleteConfig] = field(default_factory=dict)
    pending: list[ParsedFile] = field(default_factory=list)   # error/skipped rows of new paths, not yet written
    engine: object | None = None                         # pipeline.engine.Engine: parse on a dask cluster
    batch_files: int = BATCH_FILES                       # ok files of new paths loaded together (0: one by one)
    batch: list[ParsedFile] = field(default_factory=list)     # such files parsed, not yet loaded
    batch_samples: int = 0                               # samples of the files in the batch
    root: RawRoot = field(default_factory=RawRoot)       # where data/raw is (pipeline.rawroot)
    listing: RawListing | None = None                    # a URL root's listing (None: local or PATHS given)
    versions: Versions = field(default_factory=dict)     # a URL root's recorded markers (source_versions)


def ingest_paths(ws: Workspace, paths: list[Path] | None, athlete_id: str | None = None,
                 jobs: int | None = None, progress: bool = True, limits: ArchiveLimits | None = None,
                 rules: SanityRules | None = None, engine=None, batch_files: int = BATCH_FILES,
                 raw: str | None = None) -> IngestSummary:
    """Ingest files into the workspace warehouse.

    Args:
        ws: the workspace (the caller holds its lock).
        paths: files or folders, added to what the warehouse holds; None = ``data/raw``, reconciled: the
            warehouse then holds exactly what data/raw holds (gone files and athletes removed).
        athlete_id: owner of the given paths; default: from their folder under ``data/raw``.
        jobs: parser processes; default all cores.
        progress: show a progress bar (files) on stderr.
        limits: archive/decompression limits (defaults documented in docs/ingest.md).
        rules: sanity-gate bounds; default: ``[ingest]`` of pipeline.toml, else the documented defaults.
        engine: parse on this dask cluster (:class:`pipeline.engine.Engine`, ``--cluster``) instead of
            ``jobs`` local processes; loading stays here, in the single warehouse writer.
        batch_files: new files loaded per transaction (:mod:`pipeline.ingest.load_batch`); 0 = one by one.
        raw: the raw data root to reconcile with, a URL (``--raw``; :mod:`pipeline.rawroot`); default:
            ``[raw] url`` of pipeline.toml, else the workspace's data/raw.
    """
    if athlete_id is not None:
        validate_athlete_id(athlete_id)
    rules = rules or SanityRules.from_config(ws.pipeline_config().get("ingest"))
    reconcile = paths is None
    root = _checked_root(ws, raw, reconcile, athlete_id)
    paths = _default_paths(ws) if reconcile and root.is_local else paths
    con = connect(ws)
    try:
        run = IngestRun(ws, con, limits or ArchiveLimits(), rules, jobs or os.cpu_count() or 1, progress,
                        engine=engine, batch_files=batch_files, root=root)
        run.known = _known_files(con)
        found = _discover(run, paths, athlete_id)                                          # 1
        run.summary.notes.extend(found.notes)
        if reconcile:
            _remove_gone_files(run, found)                                                 # 2
        to_parse = _changed_items(run, found)                                              # 3
        run.athletes = {a: _athlete_config(run, a) for a in sorted({i.athlete_id for i in found.items})}
        _parse_and_load(run, to_parse, found.failed)                                      # 4, 5
        _record_archives(run, found)
        _flush_unloaded(run)
        _promote_shadowed(run, found)                                                      # 6
        seen = set(run.athletes) | {r.athlete_id for r in found.archive_rows + found.failed}
        run.summary.athletes = sorted(seen)
        _load_athletes(run)                                                                # 7
        if reconcile:
            run.summary.removed_athletes = remove_gone_athletes(con, seen)
            _record_root(run, found)
        _count_from_warehouse(run)                                                         # 8
    finally:
        con.close()
    return run.summary


def _checked_root(ws: Workspace, raw: str | None, reconcile: bool, athlete_id: str | None) -> RawRoot:
    """The raw data root in force (:func:`pipeline.rawroot.raw_root`), refusing what cannot go with it."""
    if raw is not None and not reconcile:
        raise PipelineError("--raw names the raw data root the warehouse follows; give it without PATHS "
                            "(PATHS are added from this machine)")
    root = raw_root(ws, raw)
    if reconcile and not root.is_local and athlete_id is not None:
        raise PipelineError(f"--athlete is for PATHS; files under {root.url} belong to their folder's athlete")
    return root


def _discover(run: IngestRun, paths: list[Path] | None, athlete_id: str | None) -> Discovery:
    """Step 1: the files under ``paths`` on disk, or (None) under the URL root (:mod:`pipeline.ingest.url_root`)."""
    if paths is not None:
        return discover(run.ws, paths, athlete_id, run.known, run.limits)
    run.versions = stored_versions(run.con)
    found, run.listing = discover_url(run.ws, run.root, run.known, run.versions, run.limits)
    run.summary.notes.append(f"data/raw read from {run.root.url}: {len(run.listing.files)} file(s) listed")
    return found


def _record_root(run: IngestRun, found: Discovery) -> None:
    """After a reconciling ingest: the root it followed, and for a URL root each file's listed marker."""
    if run.listing is not None:
        record_versions(run.con, found, run.listing, run.ws)
    store_raw_root(run.con, run.root.describe())


def _default_paths(ws: Workspace) -> list[Path]:
    if not ws.raw_dir.is_dir():
        raise PipelineError(f"no {ws.raw_dir}; put watch exports in data/raw/<athlete>/ (see docs/ingest.md)")
    return [ws.raw_dir]


def _known_files(con: duckdb.DuckDBPyConnection) -> KnownFiles:
    return {p: KnownFile(fid, st, aid) for p, fid, st, aid in
            con.execute("SELECT path, file_id, status, athlete_id FROM source_files").fetchall()}


def _remove_gone_files(run: IngestRun, found: Discovery) -> None:
    gone = gone_paths(run.ws, found, run.known)
    remove_files(run.con, gone)
    for path in gone:
        run.known.pop(path, None)
    run.summary.removed_files = gone


def _changed_items(run: IngestRun, found: Discovery) -> list[WorkItem]:
    """Plain files the warehouse holds are hashed here (fast) so unchanged files are never parsed (a path it
    does not hold is parsed whatever its hash: the worker hashes the bytes it reads); archive members are
    compared by the worker after it has read their bytes."""
    to_parse: list[WorkItem] = []
    for item in found.items:
        stored = known_sha(run.known, item.path, item.athlete_id)
        if item.members or stored is None:    # (a new path's item carries no known_file_id already)
            to_parse.append(item)
            continue
        if not isinstance(item.source, Path):      # under a URL root: its listing decides (url_root)
            if not item.reread and listed_unchanged(run.versions, run.known, item.path, item.athlete_id,
                                                    item.source.version):
                run.unchanged.add(item.path)
            else:   # the worker downloads it, and compares the sha256 unless an index asks for a re-read
                to_parse.append(replace(item, known_file_id=None) if item.reread else item)
            continue
        try:
            sha = file_sha256(item.source)
        except OSError as e:
            found.failed.append(ParsedFile.failed(item.path, item.athlete_id,
                                                  f"cannot read file: {e.strerror or e}"))
            continue
        if stored == sha and not item.reread:
            run.unchanged.add(item.path)
            continue
        to_parse.append(replace(item, known_file_id=None))
    return to_parse


def _parse_and_load(run: IngestRun, to_parse: list[WorkItem], failed: list[ParsedFile]) -> None:
    run.holder = {}
    for path, file_id, athlete_id in run.con.execute(
            "SELECT path, file_id, athlete_id FROM source_files WHERE status = 'ok' ORDER BY path").fetchall():
        run.holder.setdefault((athlete_id, file_id), path)
    # disable=None: tqdm stays silent when stderr is not a terminal (CI logs, redirected output)
    bar = tqdm(total=len(to_parse) + len(failed), unit="file", desc="ingest",
               disable=None if run.progress else True, leave=False)
    try:
        for parsed in failed:
            _record(run, parsed)
            bar.update()
        for parsed in parsed_stream(to_parse, run.athletes, run.jobs, run.summary, run.limits, run.rules,
                                    run.engine):
            if parsed.status == UNCHANGED:
                run.unchanged.add(parsed.path)
            else:
                _take(run, parsed)
            bar.update()
        _flush_batch(run)
        _flush_unloaded(run)
    finally:
        bar.close()


def _flush_unloaded(run: IngestRun) -> None:
    record_unloaded(run.con, run.pending)
    run.pending = []


def _record_archives(run: IngestRun, found: Discovery) -> None:
    for row in found.archive_rows:
        if row.status == UNCHANGED:
            run.unchanged.add(row.path)
            continue
        n = sum(1 for i in found.items if i.path.startswith(row.path + "!"))
        row.message = f"archive: {n} member file(s), each listed as {row.path}!<member>"
        _record(run, row)


def _athlete_config(run: IngestRun, athlete_id: str, notes: list[str] | None = None) -> AthleteConfig:
    """The athlete's settings, from the raw data root; an invalid athlete.toml costs only that athlete its
    settings (defaults are used for its files, ``notes`` gets the reason, and `pipeline analyze` reports the
    athlete as an error until the file is fixed), never the other athletes their ingest."""
    try:
        return athlete_config(run.root, run.ws, athlete_id, run.listing)
    except PipelineError as e:
        if notes is not None:
            notes.append(f"{athlete_id}: {e}; defaults used for its files until it is fixed")
    return AthleteConfig(athlete_id=athlete_id)


def _take(run: IngestRun, parsed: ParsedFile) -> None:
    """A parsed file to load: an ``ok`` file at a new path joins the batch; any other file is loaded at once,
    after the batch (so files are loaded in the order they were found, as file by file would)."""
    if run.batch_files > 0 and parsed.status == "ok" and parsed.path not in run.known:
        run.batch.append(parsed)
        run.batch_samples += parsed.n_rows("samples")
        if len(run.batch) >= run.batch_files or run.batch_samples >= BATCH_SAMPLES:
            _flush_batch(run)
        return
    if parsed.status not in ("error", "skipped") or parsed.path in run.known:
        _flush_batch(run)
    _record(run, parsed)


def _flush_batch(run: IngestRun) -> None:
    """Load the batch: the plain files (:func:`pipeline.ingest.load_batch.plain_files`: nothing stored or in
    the batch they could duplicate or replace) in one transaction, then the others one by one, in order."""
    batch, run.batch, run.batch_samples = run.batch, [], 0
    if not batch:
        return
    plain = plain_files(run.con, batch, set(run.known), set(run.holder))
    bulk = [f for f, p in zip(batch, plain) if p]
    for parsed, outcome in zip(bulk, load_plain_or_retry(run.con, bulk)):
        _remember(run, parsed, outcome.status)
    run.summary.n_batched += len(bulk)
    for parsed in (f for f, p in zip(batch, plain) if not p):
        _record(run, parsed)


def _remember(run: IngestRun, parsed: ParsedFile, status: str) -> None:
    if status == "ok" and parsed.file_id:
        run.holder.setdefault((parsed.athlete_id, parsed.file_id), parsed.path)
    run.known[parsed.path] = KnownFile(parsed.file_id, status, parsed.athlete_id)
    run.touched.add(parsed.path)


def _record(run: IngestRun, parsed: ParsedFile) -> None:
    """Load one result (or record it as an identical copy of a file already holding the same bytes)."""
    if parsed.status in ("error", "skipped") and parsed.path not in run.known:
        run.pending.append(parsed)          # nothing to replace, no data: written in a group
        run.known[parsed.path] = KnownFile(parsed.file_id, parsed.status, parsed.athlete_id)
        run.touched.add(parsed.path)
        if len(run.pending) >= UNLOADED_BATCH:
            _flush_unloaded(run)
        return
    holder = run.holder.get((parsed.athlete_id, parsed.file_id))
    if parsed.status == "ok" and holder is not None and holder != parsed.path:
        outcome = load_identical_copy(run.con, parsed, holder)
    else:
        outcome = load_one_safely(run.con, parsed)
    _remember(run, parsed, outcome.status)


def _promote_shadowed(run: IngestRun, found: Discovery) -> None:
    """Read again the files whose duplicated data is gone (after removals and changed files)."""
    tried: set[str] = set()
    by_path = {i.path: i for i in found.items}
    for _ in range(MAX_PROMOTION_ROUNDS):
        paths = [p for p in shadowed_paths(run.con) if p not in tried]
        if not paths:
            return
        tried.update(paths)
        items = _items_for(run, paths, by_path)
        run.summary.promoted.extend(i.path for i in items)
        _parse_and_load(run, items, [])


def _items_for(run: IngestRun, paths: list[str], by_path: dict[str, WorkItem]) -> list[WorkItem]:
    """Work items to read the stored ``paths`` again: from this run's discovery, else discovered anew
    (a member of an archive that was not expanded because it is unchanged); files that vanished are left."""
    items = [by_path[p] for p in paths if p in by_path]
    missing = [p for p in paths if p not in by_path]
    archives: dict[str, str] = {}
    for path in missing:
        archive = path.split("!", 1)[0]
        archives.setdefault(archive, run.known[path].athlete_id if path in run.known else "default")
    for archive, athlete_id in archives.items():
        if run.listing is not None and archive.startswith(raw_prefix(run.ws)):
            if run.listing.has(archive[len(raw_prefix(run.ws)):]):
                items.extend(archive_items(run.ws, run.root, archive, athlete_id, set(missing), run.limits))
            continue
        source = Path(archive) if Path(archive).is_absolute() else run.ws.root / archive
        if not source.is_file():
            continue
        found = discover(run.ws, [source], athlete_id, {}, run.limits)
        wanted = set(missing)
        items.extend(i for i in found.items if i.path in wanted)
    for athlete_id in {i.athlete_id for i in items} - set(run.athletes):
        run.athletes[athlete_id] = _athlete_config(run, athlete_id)
    return [replace(i, known_file_id=None) for i in items]


def _load_athletes(run: IngestRun) -> None:
    """Upsert ``athletes`` from each athlete.toml and load declared blocks (one transaction)."""
    ws, con = run.ws, run.con
    with transaction(con):
        for athlete_id in run.summary.athletes:
            cfg = _athlete_config(run, athlete_id, run.summary.notes)
            folder = athlete_folder_name(run.root, ws, athlete_id, run.listing)
            # A folder mapped to another id (spaces, accents...) shows its own name unless athlete.toml says.
            name = cfg.display_name or (folder if folder and folder != athlete_id else None)
            con.execute(
                """INSERT OR REPLACE INTO athletes (athlete_id, display_name, hr_rest_bpm, hr_max_bpm, ref_speed_m_s,
                       time_zone, updated_at, units) VALUES (?, ?, ?, ?, ?, ?, now(), ?)""",
                [athlete_id, name, cfg.hr_rest_bpm, cfg.hr_max_bpm, cfg.ref_speed_m_s, cfg.time_zone, cfg.units])
            note = _declared_blocks(run, athlete_id)
            if note:
                run.summary.notes.append(f"{athlete_id}: {note}")


def _declared_blocks(run: IngestRun, athlete_id: str) -> str | None:
    """Load the athlete's blocks.csv from the raw data root (inside the caller's transaction)."""
    if run.root.is_local:
        return load_declared_blocks(run.con, run.ws, athlete_id)
    try:
        data, rel = athlete_file(run.root, run.ws, athlete_id, DECLARED_BLOCKS_NAME, run.listing)
    except PipelineError as e:
        return str(e)      # the blocks stored before are kept: a read that failed says nothing about them
    return replace_declared_blocks(run.con, athlete_id, data, rel)


def _count_from_warehouse(run: IngestRun) -> None:
    """Files by final status, activities by sport, samples, sessions, errors and skips of the paths this
    run wrote, as the warehouse holds them now."""
    con, summary = run.con, run.summary
    summary.files.clear()
    summary.sports.clear()
    if run.unchanged - run.touched:   # a file read again (promoted) counts by its new status
        summary.files[UNCHANGED] = len(run.unchanged - run.touched)
    con.register("_touched", touched_frame(run.touched))
    try:
        for status, n in con.execute("SELECT status, count(*) FROM source_files JOIN _touched USING (path) "
                                     "GROUP BY 1").fetchall():
            summary.files[status] += n
        holders = ("FROM source_files f JOIN _touched USING (path) JOIN {t} x "
                   "ON x.athlete_id = f.athlete_id AND x.file_id = f.file_id WHERE f.status = 'ok'")
        for sport, n, n_samples in con.execute(
                f"SELECT coalesce(x.sport, 'unknown'), count(*), sum(x.n_samples) {holders.format(t='activities')} "
                "GROUP BY 1").fetchall():
            summary.sports[sport] += n
            summary.n_samples += int(n_samples or 0)
        summary.n_strength_sessions = con.execute(
            f"SELECT count(*) {holders.format(t='strength_sessions')}").fetchone()[0]
        for status, target in (("error", summary.errors), ("skipped", summary.skipped)):
            target[:] = con.execute("SELECT path, message FROM source_files JOIN _touched USING (path) "
                                    "WHERE status = ? ORDER BY path", [status]).fetchall()
    finally:
        con.unregister("_touched")
