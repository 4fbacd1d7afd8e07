"""Reading compressed files and zip archives safely.

Nothing is ever extracted to disk: members are read into memory, one at a time, and every read is
bounded. The limits (:class:`ArchiveLimits`) are documented in docs/ingest.md:

- a member's name must be relative and free of ``..`` (path traversal is refused per member);
- at most ``max_members`` members per archive and ``max_nesting`` levels of zip-in-zip;
- a member or a ``.gz`` may expand to at most ``max_file_bytes``, and a large one (over
  ``ratio_floor_bytes``) at most ``max_ratio`` times its compressed size (decompression bombs);
- the declared uncompressed sizes of an archive may total at most ``max_archive_bytes``.

A member that cannot be read (encrypted with ZipCrypto or AES, compressed with a method Python's zipfile
does not implement such as PPMd or Deflate64, or corrupt) raises :class:`UnreadableMember` with a message
saying which and what to do: it becomes that member's ``error`` row, never a stopped batch.

Reading members is linear in their number: :class:`OpenArchives` keeps the archives a process is
reading open (the outer zip and the nested zip being walked), so the central directory of a 100,000-member
archive is parsed once per process, not once per member. :func:`zip_open_count` counts real opens (tests).
"""

from __future__ import annotations

import bz2  # noqa: F401 - imported so a missing bz2 module fails here, not mid-batch
import io
import lzma
import posixpath
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20


class UnsafeArchive(ValueError):
    """An archive or member refused by the safety limits; the message says which limit."""


class UnreadableMember(UnsafeArchive):
    """A member that cannot be read (encrypted, unsupported compression, corrupt); the message says why."""


# Compression methods Python's zipfile reads (stored, deflate, bzip2, lzma; zstandard from Python 3.14).
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA} | (
    {getattr(zipfile, "ZIP_ZSTANDARD")} if hasattr(zipfile, "ZIP_ZSTANDARD") else set())
# Names of the other methods of the zip specification (APPNOTE 4.4.5) that real archives use.
_METHOD_NAMES = {1: "Shrink", 6: "Implode", 9: "Deflate64", 10: "PKWARE DCL Implode", 18: "IBM TERSE",
                 19: "IBM LZ77", 93: "Zstandard", 94: "MP3", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd"}
_AES_METHOD = 99      # WinZip AES encryption (the real method is in an extra field)
_ENCRYPTED_FLAG = 0x1

_zip_opens = 0


def zip_open_count() -> int:
    """How many zip archives this process has opened (central directory parsed) so far."""
    return _zip_opens


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
    global _zip_opens
    if isinstance(data_or_file, (bytes, bytearray)):
        data_or_file = io.BytesIO(data_or_file)
    _zip_opens += 1
    try:
        zf = zipfile.ZipFile(data_or_file)
    except Exception as e:  # noqa: BLE001 - BadZipFile, NotImplementedError (multi-disk), OSError, ValueError
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


def check_member_readable(info: zipfile.ZipInfo) -> None:
    """Raise :class:`UnreadableMember` for a member zipfile cannot decompress, saying why."""
    if info.compress_type == _AES_METHOD:
        raise UnreadableMember(f"member {info.filename} is encrypted (WinZip AES, password-protected); not read: "
                               "export or re-pack the archive without a password")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise UnreadableMember(f"member {info.filename} is encrypted (ZipCrypto, password-protected); not read: "
                               "export or re-pack the archive without a password")
    if info.compress_type not in _READABLE_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "an unknown method")
        raise UnreadableMember(f"member {info.filename} is compressed with {method} (zip method "
                               f"{info.compress_type}), which cannot be read here; re-pack the archive with "
                               "standard Deflate compression")


def read_member_bounded(zf: zipfile.ZipFile, name: str, limits: ArchiveLimits) -> bytes:
    """A member's bytes, reading at most the limits whatever its header declares.

    Raises :class:`UnsafeArchive` (limits) or :class:`UnreadableMember` (encrypted, unsupported method,
    corrupt data), each naming the member.
    """
    try:
        info = zf.getinfo(name)
    except KeyError as e:
        raise UnreadableMember(f"member {name} is no longer in the archive") from e
    check_member_readable(info)
    _check_ratio(info.file_size, info.compress_size, limits, f"member {name}")
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                out += chunk
                _check_ratio(len(out), info.compress_size, limits, f"member {name}")
    except UnsafeArchive:
        raise
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
            NotImplementedError, ValueError) as e:
        raise UnreadableMember(f"member {name} is corrupt or unreadable ({type(e).__name__}: {e})") from e
    return bytes(out)


class OpenArchives:
    """The archives one process is reading, kept open between members (least recently used closed).

    Keys are the archive on disk (path, size, modification time, so a replaced file is opened again) and
    the chain of nested members leading to an inner zip. Work items come sorted by member name, so the
    members of one nested zip arrive together and ``capacity`` open archives suffice.
    """

    def __init__(self, capacity: int = 4):
        self.capacity = capacity
        self._open: OrderedDict[tuple, zipfile.ZipFile] = OrderedDict()

    def get(self, source: Path, chain: tuple[str, ...], limits: ArchiveLimits) -> zipfile.ZipFile:
        """The open zip at ``source`` (``chain`` = nested zip members leading inwards; () = the file)."""
        stat = source.stat()
        key = (str(source), stat.st_size, stat.st_mtime_ns, chain)
        zf = self._open.get(key)
        if zf is not None:
            self._open.move_to_end(key)
            return zf
        if chain:
            data = read_member_bounded(self.get(source, chain[:-1], limits), chain[-1], limits)
            zf = open_zip(data, limits, chain[-1])
        else:
            zf = open_zip(source, limits, source.name)
        self._open[key] = zf
        while len(self._open) > self.capacity:
            _, old = self._open.popitem(last=False)
            old.close()
        return zf

    def read(self, source: Path, members: tuple[str, ...], limits: ArchiveLimits) -> bytes:
        """The bytes of the last of ``members``, inside the nested zips named by the others."""
        return read_member_bounded(self.get(source, members[:-1], limits), members[-1], limits)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()
