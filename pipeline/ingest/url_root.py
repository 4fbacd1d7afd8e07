"""Ingest from a raw data root given as a URL (:mod:`pipeline.rawroot`): discovery, change detection by the
storage's listing, and the record of what it showed.

Discovery follows the rules of :func:`pipeline.ingest.discover.discover` for data/raw (athlete folders
mapped to ids, hidden/config/README files ignored, zip archives expanded with the same limits, a Strava
export's activities.csv applied), on the listing of the URL instead of a walk of the disk, and stores paths
as if the root were data/raw. Two differences, both because reading a remote file costs a download:

- a plain file is not hashed by the writer: its listing's version marker is compared with the one
  recorded in ``source_versions`` when its bytes were last read; same marker and same stored content ->
  unchanged, nothing downloaded. Otherwise the worker downloads it and compares the sha256 itself (as it
  does for archive members), so a file is downloaded once, by the process that parses it;
- an archive is recognised by its name (``*.zip``), not by its first bytes.

A folder that cannot be listed is named in a note and its stored files are kept (never taken for gone).
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import duckdb
import pandas as pd

from pipeline.ingest.archives import ArchiveLimits
from pipeline.ingest.discover import (
    ARCHIVE_SUFFIXES, Discovery, IndexHits, KnownFiles, add_archive, apply_strava_index, athlete_ids_of_folders,
    known_sha, safe_strava_index,
)
from pipeline.ingest.dispatch import STRAVA_INDEX_NAME, WorkItem
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.ingest.reconcile import raw_prefix
from pipeline.rawroot import LOCAL_RAW, RawEntry, RawListing, RawRoot, RemoteFile, forget_local_copies
from pipeline.warehouse.db import transaction
from pipeline.workspace import DEFAULT_ATHLETE_ID, Workspace, is_ignored_name

# path -> (file_id, version marker) recorded when the file's bytes were last read (table source_versions)
Versions = dict[str, tuple[str, str]]


def stored_versions(con: duckdb.DuckDBPyConnection) -> Versions:
    return {p: (fid, v) for p, fid, v in con.execute("SELECT path, file_id, version FROM source_versions").fetchall()}


def listed_unchanged(versions: Versions, known: KnownFiles, path: str, athlete_id: str, version: str | None) -> bool:
    """True when the listing shows the marker recorded for ``path`` and the warehouse still holds the content
    read then, for the same athlete: the file need not be downloaded."""
    sha = known_sha(known, path, athlete_id)
    return bool(sha) and version is not None and versions.get(path) == (sha, version)


def discover_url(ws: Workspace, root: RawRoot, known: KnownFiles, versions: Versions,
                 limits: ArchiveLimits) -> tuple[Discovery, RawListing]:
    """Work items, archive rows and failures under the URL root, and the listing they came from."""
    forget_local_copies()   # archives copied by an earlier ingest in this process may have changed since
    listing = root.listing()
    out = Discovery()
    prefix = raw_prefix(ws)
    for folder, reason in listing.unlisted:
        out.kept_prefixes.append(f"{prefix}{folder}/")
        out.notes.append(f"{LOCAL_RAW}/{folder}: could not be listed at {root.url_of(folder)} ({reason}); its "
                         "files in the warehouse were kept as they were")
    folders = athlete_ids_of_folders(listing.folders, out)
    strava_by_dir: dict[str, IndexHits] = {}
    for entry in listing.files:
        owner = _owner(entry.rel, folders)
        if owner is None or is_ignored_name(PurePosixPath("/", entry.rel), PurePosixPath("/")):
            continue
        path = prefix + entry.rel
        source = root.file(entry.rel, entry.size, entry.version)
        if entry.rel.rsplit("/", 1)[-1].lower() == STRAVA_INDEX_NAME:
            _read_strava_index(source, path, owner, known, strava_by_dir, out)
        if entry.rel.lower().endswith(ARCHIVE_SUFFIXES):
            _add_remote_archive(source, entry, path, owner, known, versions, limits, out)
            continue
        out.items.append(WorkItem(source=source, members=(), path=path, athlete_id=owner,
                                  known_file_id=known_sha(known, path, owner), size_hint=entry.size))
    if strava_by_dir:
        apply_strava_index(out, strava_by_dir)
    return out, listing


def _owner(rel: str, folders: dict[str, str]) -> str | None:
    parts = rel.split("/")
    return folders.get(parts[0]) if len(parts) > 1 else DEFAULT_ATHLETE_ID


def _read_strava_index(source: RemoteFile, path: str, owner: str, known: KnownFiles,
                       strava_by_dir: dict[str, IndexHits], out: Discovery) -> None:
    try:
        data = source.read_bytes()
    except OSError:
        return   # the file's own row says it cannot be read
    changed = known_sha(known, path, owner) != hashlib.sha256(data).hexdigest()
    index = safe_strava_index(data, path, out)
    strava_by_dir[path.rsplit("/", 1)[0]] = {k: (v, changed) for k, v in index.items()}


def _add_remote_archive(source: RemoteFile, entry: RawEntry, path: str, owner: str, known: KnownFiles,
                        versions: Versions, limits: ArchiveLimits, out: Discovery) -> None:
    """An archive unchanged by its listing gets its row without a download; any other is copied locally,
    hashed and expanded as on disk (:func:`pipeline.ingest.discover.add_archive`)."""
    if listed_unchanged(versions, known, path, owner, entry.version):
        out.archive_rows.append(ParsedFile(path=path, file_id=known_sha(known, path, owner), athlete_id=owner,
                                           format="zip", size_bytes=entry.size or 0, status=UNCHANGED))
        return
    add_archive(source, path, owner, known, limits, out)


def archive_items(ws: Workspace, root: RawRoot, archive_path: str, athlete_id: str, wanted: set[str],
                  limits: ArchiveLimits) -> list[WorkItem]:
    """The work items of ``wanted`` members of an archive under the URL root, listed anew (promotion: the
    members of an archive left unexpanded because it was unchanged)."""
    rel = archive_path[len(raw_prefix(ws)):]
    found = Discovery()
    add_archive(root.file(rel), archive_path, athlete_id, {}, limits, found)
    return [i for i in found.items if i.path in wanted]


def record_versions(con: duckdb.DuckDBPyConnection, found: Discovery, listing: RawListing, ws: Workspace) -> None:
    """Record each listed file's marker with the content the warehouse now holds for it (one transaction).

    Called after every file was read or found unchanged: a file whose read failed has an empty file_id and
    gets no marker (it is downloaded again next time). Markers of paths no longer stored are dropped."""
    prefix = raw_prefix(ws)
    read = found.seen_paths()
    listed = pd.DataFrame([(prefix + e.rel, e.version) for e in listing.files
                           if e.version is not None and prefix + e.rel in read], columns=["path", "version"],
                          dtype=object)
    con.register("_listed_versions", listed)
    try:
        with transaction(con):
            con.execute("INSERT OR REPLACE INTO source_versions (path, file_id, version) "
                        "SELECT f.path, f.file_id, v.version FROM _listed_versions v JOIN source_files f USING (path) "
                        "WHERE f.file_id <> ''")
            con.execute("DELETE FROM source_versions WHERE path NOT IN (SELECT path FROM source_files)")
    finally:
        con.unregister("_listed_versions")
