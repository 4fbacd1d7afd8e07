"""Reading compressed files and zip archives safely.

Nothing is ever extracted to disk: members are read into memory, one at a time, and every read is
bounded. The limits (:class:`ArchiveLimits`) are documented in docs/ingest.md:

- a member's name must be relative and free of ``..`` (path traversal is refused per member);
- at most ``max_members`` members per archive and ``max_nesting`` levels of zip-in-zip;
- a member or a ``.gz`` may expand to at most ``max_file_bytes``, and a large one (over
  ``ratio_floor_bytes``) at most ``max_ratio`` times its compressed size (decompression bombs);
- the declared uncompressed sizes of an archive may total at most ``max_archive_bytes``.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20


class UnsafeArchive(ValueError):
    """An archive or member refused by the safety limits; the message says which limit."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what archives and compressed files may expand to (bytes, counts, ratios)."""

    max_file_bytes: int = 1 << 30            # 1 GiB per decompressed file
    max_archive_bytes: int = 64 << 30        # 64 GiB declared per archive (a decade of bulk export)
    max_members: int = 200_000
    max_ratio: float = 200.0                 # FIT compresses ~3-5x, GPX/TCX ~10-20x
    ratio_floor_bytes: int = 16 << 20        # ratio checked only above 16 MiB decompressed
    max_nesting: int = 3


def _check_ratio(out_bytes: int, in_bytes: int, limits: ArchiveLimits, what: str) -> None:
    if out_bytes > limits.max_file_bytes:
        raise UnsafeArchive(f"{what} expands beyond {limits.max_file_bytes >> 20} MiB; refused")
    if out_bytes > limits.ratio_floor_bytes and out_bytes > limits.max_ratio * max(in_bytes, 1):
        raise UnsafeArchive(f"{what} expands more than {limits.max_ratio:.0f}x "
                            "(a decompression bomb?); refused")


def gunzip_bounded(data: bytes, limits: ArchiveLimits) -> bytes:
    """Decompress gzip bytes (concatenated members allowed) within the limits."""
    out = bytearray()
    src = data
    while src:
        d = zlib.decompressobj(wbits=31)
        pending = src
        while pending:
            chunk = d.decompress(pending, _CHUNK)
            out += chunk
            _check_ratio(len(out), len(data), limits, "gzip data")
            pending = d.unconsumed_tail
            if d.eof:
                break
        if not d.eof:
            # flush whatever is buffered; a stream cut short is an error
            out += d.flush()
            raise zlib.error("truncated gzip stream")
        src = d.unused_data
        if src and not src.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member, as gzip(1) tolerates
    return bytes(out)


def safe_member_name(name: str) -> bool:
    """True for a relative member name that stays inside the archive (no ``..``, no absolute path)."""
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    parts = posixpath.normpath(name.replace("\\", "/")).split("/")
    return ".." not in parts and ".." not in name.replace("\\", "/").split("/")


def open_zip(data_or_file, limits: ArchiveLimits, what: str) -> zipfile.ZipFile:
    """Open a zip (path, file object or bytes) after checking member count and declared total size."""
    if isinstance(data_or_file, (bytes, bytearray)):
        data_or_file = io.BytesIO(data_or_file)
    try:
        zf = zipfile.ZipFile(data_or_file)
    except zipfile.BadZipFile as e:
        raise UnsafeArchive(f"{what}: not a readable zip archive ({e})") from e
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        zf.close()
        raise UnsafeArchive(f"{what}: {len(infos)} members, more than the limit of {limits.max_members}")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_archive_bytes:
        zf.close()
        raise UnsafeArchive(f"{what}: declares {declared >> 30} GiB uncompressed, more than the limit "
                            f"of {limits.max_archive_bytes >> 30} GiB")
    return zf


def read_member_bounded(zf: zipfile.ZipFile, name: str, limits: ArchiveLimits) -> bytes:
    """A member's bytes, reading at most the limits whatever its header declares."""
    info = zf.getinfo(name)
    _check_ratio(info.file_size, info.compress_size, limits, f"member {name}")
    out = bytearray()
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            _check_ratio(len(out), info.compress_size, limits, f"member {name}")
    return bytes(out)
