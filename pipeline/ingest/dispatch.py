"""Pick the reader for a file by its content (not its name) and run it under the strictness policy.

:func:`read_bytes` is the pure per-file step (bytes + name + athlete settings -> :class:`ParsedFile`);
:func:`read_work_item` adds reading the bytes from disk or from inside an archive and is what the
process pool runs. Strictness policy: a reader *raises* (:class:`ReadError` for unreadable input,
:class:`NothingToIngest` for readable files without activities); this module is the one place that
turns those into ``error``/``skipped`` results, so one bad file never stops the batch.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.archives import (
    GZIP_MAGIC, ZIP_MAGIC, ArchiveLimits, UnsafeArchive, gunzip_bounded, open_zip, read_member_bounded,
)
from pipeline.ingest.common import NothingToIngest, ReadContext, ReadError
from pipeline.ingest.fit_reader import read_fit
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.ingest.xml_readers import read_gpx, read_tcx
from pipeline.ingest.strength_csv import parse_strength_csv, sniff_strength_csv
from pipeline.workspace import AthleteConfig

STRAVA_INDEX_NAME = "activities.csv"
_STRAVA_INDEX_HEADER = b"activity id,activity date,activity name,activity type"


@dataclass(frozen=True)
class WorkItem:
    """One file to read: a file on disk, or a member inside (nested) zip archives on disk.

    ``members`` is the chain of member names from the outer archive inwards; ``path`` is the
    ``source_files.path`` (``archive.zip!member``). ``known_file_id`` is the sha256 already stored
    for this path, so a worker can skip unchanged archive members before parsing them.
    """

    source: Path
    members: tuple[str, ...]
    path: str
    athlete_id: str
    sport_override: str | None = None
    name_override: str | None = None
    known_file_id: str | None = None




def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff_format(data: bytes, name: str) -> str | None:
    """'fit' | 'gpx' | 'tcx' | 'gz' | 'zip' | 'csv' from the first bytes (name only breaks ties)."""
    if len(data) >= 12 and data[8:12] == b".FIT":
        return "fit"
    if data[:2] == GZIP_MAGIC:
        return "gz"
    if data[:4] == ZIP_MAGIC:
        return "zip"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        if b"<gpx" in head:
            return "gpx"
        if b"<trainingcenterdatabase" in head:
            return "tcx"
        return None
    if name.lower().endswith(".csv") or name.lower().endswith(".csv.gz"):
        return "csv"
    return None


def read_bytes(data: bytes, name: str, ctx: ReadContext, limits: ArchiveLimits | None = None) -> ParsedFile:
    """Read one file's bytes into a ParsedFile; never raises for bad input (status error/skipped)."""
    limits = limits or ArchiveLimits()
    try:
        return _read(data, name, ctx, limits, prefix="")
    except NothingToIngest as e:
        return ctx.parsed(e.fmt or _guess_format(data, name), len(data), status="skipped", message=str(e),
                          warnings=e.warnings)
    except ReadError as e:
        failed = ctx.failed(e.fmt or _guess_format(data, name), len(data), str(e))
        failed.warnings = e.warnings
        return failed
    except UnsafeArchive as e:
        return ctx.failed(_guess_format(data, name), len(data), str(e))


def _guess_format(data: bytes, name: str) -> str:
    fmt = sniff_format(data, name)
    return fmt or (Path(name).suffix.lstrip(".").lower() or "unknown")


def _read(data: bytes, name: str, ctx: ReadContext, limits: ArchiveLimits, prefix: str) -> ParsedFile:
    if not data:
        raise ReadError("empty file (0 bytes)")
    fmt = sniff_format(data, name)
    if fmt == "gz":
        try:
            inner = gunzip_bounded(data, limits)
        except (zlib.error, EOFError) as e:
            raise ReadError(f"gzip: corrupt or truncated ({e})") from e
        inner_name = name[:-3] if name.lower().endswith(".gz") else name
        try:
            parsed = _read(inner, inner_name, ctx, limits, prefix="gz")
        except ReadError as e:
            e.fmt = f"{e.fmt}.gz" if e.fmt else None
            raise
        parsed.size_bytes = len(data)
        return parsed
    if fmt == "fit":
        parsed = read_fit(data, ctx)
    elif fmt == "gpx":
        parsed = read_gpx(data, ctx)
    elif fmt == "tcx":
        parsed = read_tcx(data, ctx)
    elif fmt == "csv":
        parsed = _read_csv(data, ctx)
    elif fmt == "zip":
        # archives are expanded at discovery by name (*.zip) or magic (files on disk); this is a zip found
        # inside a .gz, or an archive member not named *.zip
        raise ReadError("a zip archive inside a .gz file or under a member name not ending in .zip: "
                        "not expanded (unpack it, or name it *.zip)")
    else:
        raise ReadError("unknown format: not FIT, GPX, TCX, a strength CSV, .gz or .zip")
    if prefix:
        parsed.format = f"{parsed.format}.{prefix}"
    return parsed


def _read_csv(data: bytes, ctx: ReadContext) -> ParsedFile:
    head = data[:4096]
    if head.lstrip(b"\xef\xbb\xbf").lower().startswith(_STRAVA_INDEX_HEADER):
        raise NothingToIngest("Strava export index: gives sport and names to the export's activity files")
    fmt = sniff_strength_csv(head)
    if fmt is None:
        first_line = head.splitlines()[0][:80].decode("utf-8", "replace") if head else ""
        raise NothingToIngest(f"CSV is not a recognised strength log (header: {first_line!r})")
    athlete = ctx.athlete or AthleteConfig(athlete_id=ctx.athlete_id)
    return parse_strength_csv(data, path=ctx.path, file_id=ctx.file_id, athlete_id=ctx.athlete_id,
                              athlete=athlete, fmt=fmt)


def load_item_bytes(item: WorkItem, limits: ArchiveLimits) -> bytes:
    """The bytes of a work item: the file itself, or a member read through its archive chain."""
    if not item.members:
        return item.source.read_bytes()
    zf = open_zip(item.source, limits, item.source.name)
    try:
        for depth, member in enumerate(item.members):
            data = read_member_bounded(zf, member, limits)
            if depth < len(item.members) - 1:
                zf.close()
                zf = open_zip(data, limits, member)
        return data
    finally:
        zf.close()


def read_work_item(item: WorkItem, athlete: AthleteConfig | None,
                   limits: ArchiveLimits | None = None) -> ParsedFile:
    """What the process pool runs: load the item's bytes, hash them, read them (never raises for data)."""
    limits = limits or ArchiveLimits()
    name = item.members[-1] if item.members else item.source.name
    try:
        data = load_item_bytes(item, limits)
    except (UnsafeArchive, zipfile.BadZipFile, zlib.error, KeyError, EOFError) as e:
        return ParsedFile.failed(item.path, item.athlete_id, f"cannot read from archive: {e}")
    except OSError as e:
        return ParsedFile.failed(item.path, item.athlete_id, f"cannot read file: {e.strerror or e}")
    file_id = sha256_hex(data)
    ctx = ReadContext(path=item.path, file_id=file_id, athlete_id=item.athlete_id, athlete=athlete,
                      sport_override=item.sport_override, name_override=item.name_override)
    if item.known_file_id == file_id:
        return ctx.parsed(_guess_format(data, name), len(data), status=UNCHANGED)
    try:
        return read_bytes(data, name, ctx, limits)
    except Exception as e:  # noqa: BLE001 - batch boundary: a reader bug must not stop other files
        return ctx.failed(_guess_format(data, name), len(data),
                          f"internal reader error {type(e).__name__}: {e} (please report)")
