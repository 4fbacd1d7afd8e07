"""Discovery: which files (and archive members) an ingest run has to look at, and whose they are.

Walks the given paths (default ``data/raw``), skips configuration and hidden files, assigns each file to
its athlete (its first folder under ``data/raw``, mapped by the one athlete-id rule of
:func:`pipeline.workspace.athlete_id_from_folder`), lists zip archives' members safely (no traversal,
bounded nesting, see :mod:`pipeline.ingest.archives`) and reads a Strava bulk export's
``activities.csv`` so its activity files get their sport, name and start. Nothing here parses an
activity, and nothing here stops the batch: an unreadable archive, member or index is one ``error``
row (or a note) and discovery goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.ingest.archives import (
    ZIP_MAGIC, ArchiveLimits, UnsafeArchive, open_zip, read_member_bounded, safe_member_name,
)
from pipeline.ingest.common import sport_from_word
from pipeline.ingest.dispatch import STRAVA_INDEX_NAME, WorkItem
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.workspace import DEFAULT_ATHLETE_ID, Workspace, athlete_id_from_folder, is_ignored_name

ARCHIVE_SUFFIXES = (".zip",)


@dataclass(frozen=True)
class KnownFile:
    """What the warehouse holds for one ``source_files.path``."""

    file_id: str
    status: str
    athlete_id: str


# path -> KnownFile of every file the warehouse has seen
KnownFiles = dict[str, KnownFile]


def known_sha(known: KnownFiles, path: str, athlete_id: str) -> str | None:
    """The sha256 stored for ``path`` if it was read for the same athlete (else None: read it again)."""
    k = known.get(path)
    return k.file_id if k is not None and k.athlete_id == athlete_id else None


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file on disk, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class StravaEntry:
    """One row of a Strava export's activities.csv: the file's sport, title and start (UTC)."""

    sport: str
    name: str | None
    start: pd.Timestamp | None


def _strava_start(text: str | None) -> pd.Timestamp | None:
    # Strava writes 'Activity Date' in UTC, e.g. "May 1, 2024, 6:15:00 AM".
    if not text:
        return None
    t = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    return None if pd.isna(t) else t


def strava_index(csv_bytes: bytes) -> dict[str, StravaEntry]:
    """Strava bulk export ``activities.csv``: activity file name -> :class:`StravaEntry`.

    Keys are the ``Filename`` column (``activities/123.fit.gz``). Raises ``csv.Error`` for a file the
    csv module cannot read (NUL bytes...): the caller notes it and goes on without the index.
    """
    text = csv_bytes.decode("utf-8-sig", "replace")
    out: dict[str, StravaEntry] = {}
    # newline="": a bare carriage return inside a field is data, not the end of a row.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        filename = row.get("filename")
        if filename:
            out[filename.replace("\\", "/")] = StravaEntry(sport_from_word(row.get("activity type")),
                                                          row.get("activity name") or None,
                                                          _strava_start(row.get("activity date")))
    return out


def safe_strava_index(data: bytes, where: str, out: Discovery) -> dict[str, StravaEntry]:
    try:
        return strava_index(data)
    except (csv.Error, ValueError) as e:
        out.notes.append(f"{where}: the Strava index could not be read ({e}); activity types, names and dates "
                         "are taken from the files themselves")
        return {}


@dataclass
class Discovery:
    """What discovery found: files to read, one row per archive, failures, and notes for the summary."""

    items: list[WorkItem] = field(default_factory=list)
    archive_rows: list[ParsedFile] = field(default_factory=list)   # per-archive source_files rows
    failed: list[ParsedFile] = field(default_factory=list)         # unreadable archives/members
    notes: list[str] = field(default_factory=list)                 # index problems, athlete-id mapping
    # stored-path prefixes whose files are kept though not seen (a folder of a URL root that could not be
    # listed): the reconciliation must not take them for gone
    kept_prefixes: list[str] = field(default_factory=list)

    def seen_paths(self) -> set[str]:
        """Every ``source_files.path`` this discovery accounts for (unchanged archives' members aside)."""
        return ({i.path for i in self.items} | {r.path for r in self.archive_rows}
                | {r.path for r in self.failed})


def _member_failed(path: str, athlete_id: str, message: str) -> ParsedFile:
    return ParsedFile.failed(path, athlete_id, message, file_id=hashlib.sha256(path.encode()).hexdigest(), fmt="zip")


# Member or file name -> (its index entry, whether that index is new or changed since the last ingest).
IndexHits = dict[str, tuple[StravaEntry, bool]]


def _zip_strava_index(zf: zipfile.ZipFile, names: list[str], limits: ArchiveLimits, rel: str, athlete_id: str,
                      known: KnownFiles, out: Discovery) -> IndexHits:
    index: IndexHits = {}
    for name in names:
        if name.rsplit("/", 1)[-1].lower() == STRAVA_INDEX_NAME and safe_member_name(name):
            prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
            try:
                data = read_member_bounded(zf, name, limits)
            except UnsafeArchive as e:
                out.notes.append(f"{rel}!{name}: {e}")
                continue
            changed = known_sha(known, f"{rel}!{name}", athlete_id) != hashlib.sha256(data).hexdigest()
            for fname, value in safe_strava_index(data, f"{rel}!{name}", out).items():
                index[prefix + fname] = (value, changed)
    return index


def _expand_nested_zip(zf: zipfile.ZipFile, name: str, source: Path, chain: tuple[str, ...], path: str,
                       athlete_id: str, known: KnownFiles, limits: ArchiveLimits,
                       out: Discovery, depth: int) -> None:
    if depth >= limits.max_nesting:
        out.failed.append(ParsedFile.failed(path, athlete_id, f"zip nested deeper than {limits.max_nesting} levels",
                                            fmt="zip"))
        return
    try:
        inner_bytes = read_member_bounded(zf, name, limits)
        with open_zip(inner_bytes, limits, name) as inner:
            expand_zip(inner, source, chain + (name,), path, athlete_id, known, limits, out, depth + 1)
    except UnsafeArchive as e:
        out.failed.append(ParsedFile.failed(path, athlete_id, str(e), fmt="zip"))


def expand_zip(zf: zipfile.ZipFile, source: Path, chain: tuple[str, ...], rel: str, athlete_id: str,
               known: KnownFiles, limits: ArchiveLimits, out: Discovery, depth: int) -> None:
    """Add every member of ``zf`` (recursively through nested zips) to ``out`` as a work item or failure."""
    sizes = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
    names = list(sizes)
    index = _zip_strava_index(zf, names, limits, rel, athlete_id, known, out)
    for name in sorted(set(names)):
        path = f"{rel}!{name}"
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        if not safe_member_name(name):
            out.failed.append(_member_failed(path, athlete_id, "unsafe member path (absolute or '..'); not read"))
            continue
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            _expand_nested_zip(zf, name, source, chain, path, athlete_id, known, limits, out, depth)
            continue
        entry, reread = index.get(name, (None, False))
        out.items.append(WorkItem(source=source, members=chain + (name,), path=path, athlete_id=athlete_id,
                                  sport_override=entry.sport if entry else None,
                                  name_override=entry.name if entry else None,
                                  known_file_id=None if reread else known_sha(known, path, athlete_id),
                                  start_hint=entry.start if entry else None, reread=reread,
                                  size_hint=sizes[name]))


def _files_under(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p).resolve()
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise PipelineError(f"{p}: no such file or folder")
    return files


def add_archive(f: Path, rel: str, owner: str, known: KnownFiles, limits: ArchiveLimits, out: Discovery) -> None:
    """The archive ``f`` (a Path, or a :class:`pipeline.rawroot.RemoteFile`, which opens as a local copy):
    its row, unchanged when its sha256 is the one stored, else expanded into work items."""
    try:
        sha = file_sha256(f)
        size = f.stat().st_size
    except OSError as e:
        out.failed.append(ParsedFile.failed(rel, owner, f"cannot read file: {e.strerror or e}", fmt="zip"))
        return
    if known_sha(known, rel, owner) == sha:
        out.archive_rows.append(ParsedFile(path=rel, file_id=sha, athlete_id=owner, format="zip",
                                           size_bytes=size, status=UNCHANGED))
        return
    try:
        with open_zip(f, limits, f.name) as zf:
            expand_zip(zf, f, (), rel, owner, known, limits, out, depth=1)
        out.archive_rows.append(ParsedFile(path=rel, file_id=sha, athlete_id=owner, format="zip",
                                           size_bytes=size, status="ok"))
    except UnsafeArchive as e:
        out.failed.append(ParsedFile.failed(rel, owner, str(e), file_id=sha, fmt="zip", size_bytes=size))


def apply_strava_index(out: Discovery, strava_by_dir: dict[str, IndexHits]) -> None:
    """An unpacked Strava export: activities.csv beside activities/ gives sport, names and starts
    (``strava_by_dir``: the stored path of each folder holding an index -> its entries)."""
    for i, item in enumerate(out.items):
        for folder, index in strava_by_dir.items():
            if not item.members and item.path.startswith(folder + "/"):
                hit, changed = index.get(item.path[len(folder) + 1:], (None, False))
                if hit:
                    out.items[i] = replace(item, sport_override=hit.sport, name_override=hit.name,
                                           start_hint=hit.start, reread=changed)


def _athlete_folders(raw: Path, out: Discovery) -> dict[str, str]:
    """Folder name -> athlete id for every athlete folder under data/raw (:func:`athlete_ids_of_folders`)."""
    return athlete_ids_of_folders([d.name for d in raw.iterdir() if d.is_dir()] if raw.is_dir() else [], out)


def athlete_ids_of_folders(names: list[str], out: Discovery) -> dict[str, str]:
    """Folder name -> athlete id for the athlete folders ``names`` of the raw root; a folder whose mapped id
    is taken by another folder gets no id (a note says so; its files are not read)."""
    mapping: dict[str, str] = {}
    owner_of: dict[str, str] = {}
    folders = sorted((n for n in names if not n.startswith(".")), key=lambda n: (athlete_id_from_folder(n) != n, n))
    for name in folders:
        aid = athlete_id_from_folder(name)
        if aid in owner_of:
            out.notes.append(f"data/raw/{name}: its athlete id {aid!r} is already the folder "
                             f"{owner_of[aid]!r}'s; rename one of them (files not read)")
            continue
        owner_of[aid] = name
        mapping[name] = aid
        if aid != name:
            out.notes.append(f"data/raw/{name}: athlete id {aid!r} (folder names are mapped to ids of letters, "
                             "digits, '_', '-', '.'; the folder name is the display name)")
    return mapping


def _owner(f: Path, raw: Path, athlete_id: str | None, folders: dict[str, str]) -> str | None:
    if athlete_id is not None:
        return athlete_id
    if not f.is_relative_to(raw):
        return DEFAULT_ATHLETE_ID
    rel = f.relative_to(raw)
    return folders.get(rel.parts[0]) if len(rel.parts) > 1 else DEFAULT_ATHLETE_ID


def discover(ws: Workspace, paths: list[Path], athlete_id: str | None, known: KnownFiles,
             limits: ArchiveLimits) -> Discovery:
    """Work items under ``paths``: plain files, archive members (archives expanded), failures.

    ``athlete_id`` overrides the owner (else: first folder under data/raw, mapped to an id, or
    ``default``); ``known`` holds what the warehouse has, so unchanged archives are not expanded again.
    """
    out = Discovery()
    raw = ws.raw_dir.resolve()
    root = ws.root.resolve()
    folders = _athlete_folders(raw, out)
    strava_by_dir: dict[str, IndexHits] = {}
    for f in _files_under(paths):
        inside_raw = f.is_relative_to(raw)
        if inside_raw and is_ignored_name(f, raw):
            continue
        if not inside_raw and (f.name.startswith(".") or f.name.lower() in {"readme.md", "readme.txt"}):
            continue
        owner = _owner(f, raw, athlete_id, folders)
        rel = _relative(f, root)
        if owner is None:
            continue  # a folder whose id collides with another's: said once in the notes
        if f.name.lower() == STRAVA_INDEX_NAME:
            try:
                data = f.read_bytes()
            except OSError:
                data = None  # the file's own row says it cannot be read
            if data is not None:
                changed = known_sha(known, rel, owner) != hashlib.sha256(data).hexdigest()
                index = safe_strava_index(data, rel, out)
                strava_by_dir[ws.relative(f.parent)] = {k: (v, changed) for k, v in index.items()}
        if f.suffix.lower() in ARCHIVE_SUFFIXES or _starts_with(f, ZIP_MAGIC):
            add_archive(f, rel, owner, known, limits, out)
            continue
        out.items.append(WorkItem(source=f, members=(), path=rel, athlete_id=owner,
                                  known_file_id=known_sha(known, rel, owner), size_hint=_size(f)))
    if strava_by_dir:
        apply_strava_index(out, strava_by_dir)
    return out


def _relative(path: Path, root: Path) -> str:
    """:meth:`Workspace.relative` with the workspace root resolved once for the whole walk."""
    path = path.resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False
