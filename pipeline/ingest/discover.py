"""Discovery: which files (and archive members) an ingest run has to look at, and whose they are.

Walks the given paths (default ``data/raw``), skips configuration and hidden files, assigns each file to
its athlete (its first folder under ``data/raw``), lists zip archives' members safely (no traversal,
bounded nesting, see :mod:`pipeline.ingest.archives`) and reads a Strava bulk export's
``activities.csv`` so its activity files get their sport and name. Nothing here parses an activity.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.ingest.archives import ZIP_MAGIC, ArchiveLimits, UnsafeArchive, open_zip, read_member_bounded, safe_member_name
from pipeline.ingest.common import sport_from_word
from pipeline.ingest.dispatch import STRAVA_INDEX_NAME, WorkItem
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.workspace import Workspace, athlete_id_for, is_ignored_name

ARCHIVE_SUFFIXES = (".zip",)


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file on disk, read in 1 MiB chunks."""
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
class Discovery:
    """What discovery found: files to read, one row per archive, and archives/members that failed."""

    items: list[WorkItem] = field(default_factory=list)
    archive_rows: list[ParsedFile] = field(default_factory=list)   # per-archive source_files rows
    failed: list[ParsedFile] = field(default_factory=list)         # unreadable archives/members


def _zip_strava_index(zf: zipfile.ZipFile, names: list[str], limits: ArchiveLimits) -> dict[str, tuple[str, str | None]]:
    index: dict[str, tuple[str, str | None]] = {}
    for name in names:
        if name.rsplit("/", 1)[-1].lower() == STRAVA_INDEX_NAME and safe_member_name(name):
            prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
            for fname, value in strava_index(read_member_bounded(zf, name, limits)).items():
                index[prefix + fname] = value
    return index


def _expand_nested_zip(zf: zipfile.ZipFile, name: str, source: Path, chain: tuple[str, ...], path: str,
                       athlete_id: str, known: dict[str, tuple[str, str]], limits: ArchiveLimits,
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
               known: dict[str, tuple[str, str]], limits: ArchiveLimits, out: Discovery, depth: int) -> None:
    """Add every member of ``zf`` (recursively through nested zips) to ``out`` as a work item or failure."""
    names = [i.filename for i in zf.infolist() if not i.is_dir()]
    index = _zip_strava_index(zf, names, limits)
    for name in sorted(names):
        path = f"{rel}!{name}"
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        if not safe_member_name(name):
            out.failed.append(ParsedFile.failed(path, athlete_id, "unsafe member path (absolute or '..'); not read",
                                                file_id=hashlib.sha256(path.encode()).hexdigest()))
            continue
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            _expand_nested_zip(zf, name, source, chain, path, athlete_id, known, limits, out, depth)
            continue
        sport, title = index.get(name, (None, None))
        out.items.append(WorkItem(source=source, members=chain + (name,), path=path, athlete_id=athlete_id,
                                  sport_override=sport, name_override=title,
                                  known_file_id=known.get(path, (None, None))[0]))


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


def _add_archive(f: Path, rel: str, owner: str, known: dict[str, tuple[str, str]], limits: ArchiveLimits,
                 out: Discovery) -> None:
    sha = file_sha256(f)
    size = f.stat().st_size
    if known.get(rel, (None, None))[0] == sha:
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


def _apply_strava_index(out: Discovery, strava_by_dir: dict[Path, dict[str, tuple[str, str | None]]]) -> None:
    """An unpacked Strava export: activities.csv beside activities/ gives sport and names."""
    for i, item in enumerate(out.items):
        for folder, index in strava_by_dir.items():
            if not item.members and item.source.is_relative_to(folder):
                hit = index.get(item.source.relative_to(folder).as_posix())
                if hit:
                    out.items[i] = WorkItem(item.source, (), item.path, item.athlete_id, hit[0], hit[1],
                                            item.known_file_id)


def discover(ws: Workspace, paths: list[Path], athlete_id: str | None, known: dict[str, tuple[str, str]],
             limits: ArchiveLimits) -> Discovery:
    """Work items under ``paths``: plain files, archive members (archives expanded), failures.

    ``athlete_id`` overrides the owner (else: first folder under data/raw, or ``default``); ``known`` maps
    stored paths to (file_id, status) so unchanged archives are not expanded again.
    """
    out = Discovery()
    raw = ws.raw_dir.resolve()
    strava_by_dir: dict[Path, dict[str, tuple[str, str | None]]] = {}
    for f in _files_under(paths):
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
            _add_archive(f, rel, owner, known, limits, out)
            continue
        out.items.append(WorkItem(source=f, members=(), path=rel, athlete_id=owner,
                                  known_file_id=known.get(rel, (None, None))[0]))
    if strava_by_dir:
        _apply_strava_index(out, strava_by_dir)
    return out


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(magic)) == magic
