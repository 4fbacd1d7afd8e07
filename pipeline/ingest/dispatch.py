"""Pick the reader for a file by its content (not its name) and run it under the strictness policy.

:func:`read_bytes` is the pure per-file step (bytes + name + athlete settings -> :class:`ParsedFile`);
:func:`read_work_item` adds reading the bytes from disk or from inside an archive and is what the
process pool runs. Strictness policy: a reader *raises* (:class:`ReadError` for unreadable input,
:class:`NothingToIngest` for readable files without activities); this module is the one place that
turns those into ``error``/``skipped`` results, so one bad file never stops the batch. Every reader's
result then passes the sanity gate (:func:`pipeline.ingest.sanity.apply_sanity`), here, in one place.

Before a reader is chosen: export clutter (photos, videos, PDFs, JSON account data, HTML) is
``skipped`` saying what it is; XML in UTF-16/UTF-32 or another declared encoding is re-encoded to UTF-8
(an unknown declared encoding is an ``error`` naming it), so readers only ever see UTF-8 XML.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.ingest.archives import (
    GZIP_MAGIC, ZIP_MAGIC, ArchiveLimits, OpenArchives, UnsafeArchive, gunzip_bounded,
)
from pipeline.ingest.common import NothingToIngest, ReadContext, ReadError
from pipeline.ingest.fit_reader import read_fit
from pipeline.ingest.parsed import UNCHANGED, ParsedFile
from pipeline.ingest.sanity import SanityRules, apply_sanity
from pipeline.ingest.xml_readers import read_gpx, read_tcx
from pipeline.ingest.strength_csv import parse_strength_csv, sniff_strength_csv
from pipeline.workspace import AthleteConfig

STRAVA_INDEX_NAME = "activities.csv"
_STRAVA_INDEX_HEADER = b"activity id,activity date,activity name,activity type"


@dataclass(frozen=True)
class WorkItem:
    """One file to read: a file on disk, or a member inside (nested) zip archives on disk. Under a raw data
    root given as a URL, ``source`` is a :class:`pipeline.rawroot.RemoteFile` instead of a Path: it offers
    the operations used here and in the archive code (name, read_bytes, stat, os.fspath).

    ``members`` is the chain of member names from the outer archive inwards; ``path`` is the
    ``source_files.path`` (``archive.zip!member``). ``known_file_id`` is the sha256 already stored
    for this path, so a worker can skip unchanged archive members before parsing them. The overrides
    and ``start_hint`` come from a Strava export's activities.csv; ``reread`` is set when that index is
    new or changed, so the file is read again even if its own bytes are unchanged.
    """

    source: Path
    members: tuple[str, ...]
    path: str
    athlete_id: str
    sport_override: str | None = None
    name_override: str | None = None
    known_file_id: str | None = None
    start_hint: pd.Timestamp | None = None
    reread: bool = False
    size_hint: int | None = None      # bytes (the file's, or the member's declared size), for chunking


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Other files of a Strava bulk export (and the account CSVs of other services), by file name: skipped,
# saying what they are. Strava's blocks.csv lists blocked athletes; declared strength blocks are only
# ever data/raw/<athlete>/blocks.csv, which discovery never hands to a reader.
EXPORT_CSVS = {
    "blocks.csv": "Strava export: athletes you blocked (not declared strength blocks, which go in "
                  "data/raw/<athlete>/blocks.csv)",
    "applications.csv": "Strava export: connected applications", "bikes.csv": "Strava export: bikes",
    "clubs.csv": "Strava export: clubs", "comments.csv": "Strava export: comments",
    "components.csv": "Strava export: gear components", "connected_apps.csv": "Strava export: connected apps",
    "contacts.csv": "Strava export: contacts", "email_preferences.csv": "Strava export: e-mail preferences",
    "events.csv": "Strava export: events", "favorites.csv": "Strava export: favourites",
    "followers.csv": "Strava export: followers", "following.csv": "Strava export: athletes followed",
    "general_preferences.csv": "Strava export: preferences", "global_challenges.csv": "Strava export: challenges",
    "goals.csv": "Strava export: goals", "group_challenges.csv": "Strava export: group challenges",
    "local_legend_segments.csv": "Strava export: local legend segments", "logins.csv": "Strava export: logins",
    "media.csv": "Strava export: photo list", "memberships.csv": "Strava export: memberships",
    "orders.csv": "Strava export: orders", "partner_opt_outs.csv": "Strava export: partner opt-outs",
    "posts.csv": "Strava export: posts", "privacy_zones.csv": "Strava export: privacy zones",
    "profile.csv": "Strava export: profile", "reactions.csv": "Strava export: kudos and reactions",
    "routes.csv": "Strava export: routes", "segment_feedback.csv": "Strava export: segment feedback",
    "segments.csv": "Strava export: segments", "shoes.csv": "Strava export: shoes",
    "social_settings.csv": "Strava export: social settings", "starred_routes.csv": "Strava export: starred routes",
    "starred_segments.csv": "Strava export: starred segments", "support_tickets.csv": "Strava export: support tickets",
    "visibility_settings.csv": "Strava export: visibility settings",
}

# (magic bytes at offset 0, what the file is): photos, videos and documents in exports.
_CLUTTER_MAGIC = (
    (b"\xff\xd8\xff", "image (JPEG)"), (b"\x89PNG\r\n\x1a\n", "image (PNG)"), (b"GIF87a", "image (GIF)"),
    (b"GIF89a", "image (GIF)"), (b"II*\x00", "image (TIFF)"), (b"MM\x00*", "image (TIFF)"),
    (b"%PDF", "document (PDF)"),
)
_ISO_MEDIA_BRANDS = {b"heic": "image (HEIC)", b"heix": "image (HEIC)", b"mif1": "image (HEIF)",
                     b"msf1": "image (HEIF)", b"avif": "image (AVIF)"}


def clutter_kind(data: bytes) -> str | None:
    """What a non-activity file of an export is ('image (JPEG)', 'JSON data', ...), from its content."""
    for magic, kind in _CLUTTER_MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image (WebP)"
    if data[4:8] == b"ftyp":
        return _ISO_MEDIA_BRANDS.get(data[8:12], "video (MP4/MOV)")
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return "JSON data"
    if head[:14].lower().startswith((b"<!doctype html", b"<html")):
        return "HTML page"
    return None


_XML_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
             (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_XML_DECLARATION = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])([^"']*)(["'])""")
_XML_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")


def _xml_codec(data: bytes) -> str | None:
    """The codec of an XML document that is not UTF-8 (BOM, UTF-16 without BOM, declaration); None = UTF-8."""
    for bom, codec in _XML_BOMS:
        if data.startswith(bom):
            return codec
    if data[:4] == b"<\x00?\x00":
        return "utf-16-le"
    if data[:4] == b"\x00<\x00?":
        return "utf-16-be"
    match = _XML_DECLARED.match(data.lstrip(b"\xef\xbb\xbf")[:200])
    if not match:
        return None
    declared = match.group(1).decode("ascii", "replace")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise ReadError(f"XML declares the encoding {declared!r}, which is not a known text encoding; "
                        "save the file as UTF-8") from None
    return None if codec in ("utf-8", "ascii") else codec


def utf8_xml(data: bytes) -> bytes:
    """XML in any encoding (UTF-16/32 with or without BOM, a declared one) as UTF-8 bytes whose declaration
    says UTF-8; anything else is returned unchanged. Raises :class:`ReadError` for undecodable text."""
    if not (data[:1] in (b"<", b"\xff", b"\xfe", b"\x00") or data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"):
        return data
    codec = _xml_codec(data)
    if codec is None:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise ReadError(f"XML: cannot decode the text as {codec} (byte {e.start}: {e.reason})") from e
    text = _XML_DECLARATION.sub(lambda m: m.group(1) + "UTF-8" + m.group(3), text.lstrip("\ufeff"), count=1)
    return text.encode("utf-8")


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


def read_bytes(data: bytes, name: str, ctx: ReadContext, limits: ArchiveLimits | None = None,
               rules: SanityRules | None = None) -> ParsedFile:
    """Read one file's bytes into a ParsedFile that passed the sanity gate; never raises for bad input
    (status error/skipped). ``rules``: the gate's bounds (default :class:`SanityRules`)."""
    return apply_sanity(read_unchecked(data, name, ctx, limits), rules, ctx.start_hint)


def read_unchecked(data: bytes, name: str, ctx: ReadContext, limits: ArchiveLimits | None = None) -> ParsedFile:
    """What the reader made of the bytes, before the sanity gate (for tests comparing with other decoders)."""
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
    clutter = clutter_kind(data)
    if clutter:
        raise NothingToIngest(f"{clutter}: not activity data (export clutter such as photos or account data)",
                              fmt=clutter.split(" ")[0].lower())
    data = utf8_xml(data)
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
        parsed = _read_csv(data, name, ctx)
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


def _read_csv(data: bytes, name: str, ctx: ReadContext) -> ParsedFile:
    head = data[:4096]
    if head.lstrip(b"\xef\xbb\xbf").lower().startswith(_STRAVA_INDEX_HEADER):
        raise NothingToIngest("Strava export index: gives sport and names to the export's activity files")
    fmt = sniff_strength_csv(head)
    if fmt is None:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        if base.endswith(".gz"):
            base = base[:-3]
        if base in EXPORT_CSVS:
            raise NothingToIngest(f"{EXPORT_CSVS[base]}: not activity data")
        first_line = head.splitlines()[0][:80].decode("utf-8", "replace") if head else ""
        raise NothingToIngest(f"CSV is not a recognised strength log (header: {first_line!r})")
    athlete = ctx.athlete or AthleteConfig(athlete_id=ctx.athlete_id)
    return parse_strength_csv(data, path=ctx.path, file_id=ctx.file_id, athlete_id=ctx.athlete_id,
                              athlete=athlete, fmt=fmt)


# The archives this process reads members from, kept open between members (linear in the member count).
_ARCHIVES = OpenArchives()


def close_open_archives() -> None:
    """Close the archives kept open by :func:`load_item_bytes` (end of an ingest run)."""
    _ARCHIVES.close()


def load_item_bytes(item: WorkItem, limits: ArchiveLimits) -> bytes:
    """The bytes of a work item: the file itself, or a member read through its (kept open) archive chain."""
    if not item.members:
        return item.source.read_bytes()
    return _ARCHIVES.read(item.source, item.members, limits)


def read_work_item(item: WorkItem, athlete: AthleteConfig | None, limits: ArchiveLimits | None = None,
                   rules: SanityRules | None = None) -> ParsedFile:
    """What the process pool runs: load the item's bytes, hash them, read them (never raises for data)."""
    limits = limits or ArchiveLimits()
    name = item.members[-1] if item.members else item.source.name
    try:
        data = load_item_bytes(item, limits)
    except UnsafeArchive as e:
        return ParsedFile.failed(item.path, item.athlete_id, f"cannot read from archive: {e}")
    except OSError as e:
        return ParsedFile.failed(item.path, item.athlete_id, f"cannot read file: {e.strerror or e}")
    file_id = sha256_hex(data)
    ctx = ReadContext(path=item.path, file_id=file_id, athlete_id=item.athlete_id, athlete=athlete,
                      sport_override=item.sport_override, name_override=item.name_override,
                      start_hint=item.start_hint)
    fmt, size = _guess_format(data, name), len(data)
    if item.known_file_id == file_id:
        return ctx.parsed(fmt, size, status=UNCHANGED)
    try:
        parsed = read_unchecked(data, name, ctx, limits)
        del data   # the bytes (50 MB for a long GPX) are not needed by the gate: free them first
        return apply_sanity(parsed, rules, ctx.start_hint)
    except Exception as e:  # noqa: BLE001 - batch boundary: a reader bug must not stop other files
        return ctx.failed(fmt, size, f"internal reader error {type(e).__name__}: {e} (please report)")
