"""Where ``data/raw`` lives: the workspace's own folder (the default), or an fsspec URL.

The raw data root is what ingest reconciles the warehouse with. By default it is ``<workspace>/data/raw``,
read with plain file I/O exactly as before this module existed (every file hashed on every ingest: fast on
a local disk). It may instead be a URL that fsspec (https://filesystem-spec.readthedocs.io) can read, so
that ingest, and the parse workers of a dask cluster, read shared or object storage themselves::

    # pipeline.toml
    [raw]
    url = "http://files.lab.internal:8000/raw/"    # or file:///mnt/share/raw, s3://bucket/raw (with s3fs)
    storage_options = { }                          # keyword arguments of the fsspec filesystem

or, for one command, ``pipeline ingest --raw URL`` / ``pipeline run --raw URL``. The layout under the URL
is that of data/raw (``<athlete folder>/...``, athlete.toml and blocks.csv in each athlete's folder), and
files are stored as if the root were data/raw (``source_files.path = 'data/raw/ann/run.fit'``): the same
folder moved to a server is not read again.

For a URL root, :meth:`RawRoot.listing` walks the folders and gives each file's size and a version marker
(the storage's ETag or generation, else its modification time, with the size: :func:`listing_version`);
ingest skips a file whose marker is the one recorded when its bytes were last hashed, without downloading
it (the rule rsync uses by default). Workers read a file through a :class:`RemoteFile`: the URL and the
storage options travel to them, never the bytes. Every failure of the storage (an HTTP 500, a connection
cut mid-body, a file gone) is raised as ``OSError`` naming the reason and the URL, so it becomes that file's
error row and the rest of the batch goes on.

fsspec is imported only when a URL root is used: a local data/raw pays nothing for it.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from pipeline.errors import PipelineError
from pipeline.settings import PIPELINE_TOML, settings_table
from pipeline.workspace import (
    ATHLETE_CONFIG_NAME, AthleteConfig, Workspace, athlete_config_from_toml, athlete_folder,
    athlete_id_from_folder, load_athlete_config, parse_toml,
)

# How the workspace's own folder is named where a root is recorded (pipeline_meta 'raw_root').
LOCAL_RAW = "data/raw"
# The [raw] keys of pipeline.toml.
RAW_SETTINGS = ("url", "storage_options")
# Listing entries' keys that identify a version of a file, most specific first: S3/HTTP ETag, S3 version,
# GCS generation, Azure etag, then modification times (local files, HTTP Last-Modified, S3, Azure, GCS).
VERSION_KEYS = ("ETag", "etag", "VersionId", "generation", "mtime", "Last-Modified", "LastModified",
                "last_modified", "updated")
# Concurrent HEAD requests when a listing (an HTTP directory page) gives no sizes or versions.
INFO_THREADS = 16
# Local copies of remote zip archives kept per process (zip needs random access; see RemoteFile).
LOCAL_COPIES = 4


class RawUnreadable(PipelineError):
    """A file of a URL root that exists but could not be read (server error, connection lost): not a
    problem of the file itself, so a stage that only checks it (analyze) may go on without it."""


@dataclass(frozen=True)
class RawRoot:
    """The raw data root: ``url`` None is the workspace's data/raw folder; else an fsspec URL.

    ``storage_options`` are the fsspec filesystem's keyword arguments as JSON (hashable and picklable:
    a root travels to cluster workers inside each :class:`RemoteFile`)."""

    url: str | None = None
    storage_options: str = "{}"

    @property
    def is_local(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        """The root as recorded and shown: the URL, or ``data/raw``."""
        return self.url or LOCAL_RAW

    def options(self) -> dict[str, Any]:
        return json.loads(self.storage_options)

    def filesystem(self):
        """(fsspec filesystem, the root's path in it without a trailing slash); cached per process."""
        return _filesystem(self.url, self.storage_options)

    def _quoted(self) -> bool:
        # HTTP names are URL paths: percent-encoded in listings, decoded here so 'Zoë O'Brien/' maps to the
        # same athlete id as the folder on disk.
        return self.url.split("://", 1)[0].lower() in ("http", "https")

    def url_of(self, rel: str, folder: bool = False) -> str:
        """The storage path of ``rel`` (posix, relative to the root; '' = the root)."""
        _, base = self.filesystem()
        tail = (quote(rel) if self._quoted() else rel) if rel else ""
        path = f"{base}/{tail}" if tail else base
        return path + "/" if folder and self._quoted() else path

    def rel_of(self, name: str) -> str | None:
        """The posix path under the root of a name a listing gave, None when it is not under the root."""
        _, base = self.filesystem()
        name = name.rstrip("/")
        if not name.startswith(base + "/"):
            return None
        rel = name[len(base) + 1:]
        return unquote(rel) if self._quoted() else rel

    def file(self, rel: str, size: int | None = None, version: str | None = None) -> RemoteFile:
        return RemoteFile(self, rel, size, version)

    def read_optional(self, rel: str) -> bytes | None:
        """The bytes of ``rel``, or None when it does not exist; OSError naming the reason otherwise."""
        try:
            return self.file(rel).read_bytes()
        except FileNotFoundError:
            return None

    def listing(self) -> RawListing:
        """Every file under the root (hidden files and folders left out), with sizes and version markers.

        Raises PipelineError when the root itself cannot be listed (nothing may then be reconciled); a
        folder below it that cannot be listed is named in ``unlisted`` and the walk goes on."""
        fs, _ = self.filesystem()
        fs.invalidate_cache()     # fsspec keeps listings per filesystem instance: a re-run must see changes
        out = RawListing()
        pending = [""]
        while pending:
            folder = pending.pop()
            try:
                entries = fs.ls(self.url_of(folder, folder=True), detail=True)
            except Exception as e:  # noqa: BLE001 - each fsspec backend raises its own types
                if not folder:
                    raise PipelineError(f"raw data root {self.url} cannot be listed ({storage_reason(e)}); "
                                        "nothing was changed") from e
                out.unlisted.append((folder, storage_reason(e)))
                continue
            self._add_entries(entries, folder, out, pending)
        out.files = sorted(self._with_versions(out.files), key=lambda f: f.rel)
        out.folders.sort()
        return out

    def _add_entries(self, entries: list[dict], folder: str, out: RawListing, pending: list[str]) -> None:
        for info in entries:
            rel = self.rel_of(info["name"])
            if not rel or rel == folder or (folder and not rel.startswith(folder + "/")):
                continue
            if rel.rsplit("/", 1)[-1].startswith("."):
                continue                       # hidden files and folders are never data (.DS_Store, .truth/)
            if info.get("type") == "directory":
                pending.append(rel)
                if "/" not in rel:
                    out.folders.append(rel)
            else:
                out.files.append(RawEntry(rel, info.get("size"), listing_version(info)))

    def _with_versions(self, files: list[RawEntry]) -> list[RawEntry]:
        """Entries whose listing gave no size or version (an HTTP directory page gives neither) completed
        from the file's own metadata (an HTTP HEAD), a few requests at a time; one that fails stays as it
        is (its file is then downloaded and hashed, and a read error becomes its error row)."""
        todo = [f for f in files if f.size is None or f.version is None]
        if not todo:
            return files
        fs, _ = self.filesystem()

        def info(entry: RawEntry) -> RawEntry:
            try:
                meta = fs.info(self.url_of(entry.rel))
            except Exception:  # noqa: BLE001 - each backend raises its own types; the read will say why
                return entry
            return RawEntry(entry.rel, meta.get("size"), listing_version(meta))

        with ThreadPoolExecutor(INFO_THREADS) as pool:
            done = {e.rel: e for e in pool.map(info, todo)}
        return [done.get(f.rel, f) for f in files]


@dataclass(frozen=True)
class RawEntry:
    """One file of a listing: its path under the root, size (bytes) and version marker (None: unknown)."""

    rel: str
    size: int | None
    version: str | None


@dataclass
class RawListing:
    """What a walk of a URL root found: files, the top-level (athlete) folders, and the folders that could
    not be listed with the reason (their stored files must not be taken for gone). ``files_listed`` False:
    only the top-level folders were listed (:func:`top_level_listing`), any file may exist."""

    files: list[RawEntry] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    unlisted: list[tuple[str, str]] = field(default_factory=list)
    files_listed: bool = True

    def has(self, rel: str) -> bool:
        """True when the listing holds the file ``rel`` (or its folder could not be listed: it may)."""
        if not self.files_listed:
            return True
        if not hasattr(self, "_rels"):
            self._rels = {f.rel for f in self.files}
        return rel in self._rels or any(rel.startswith(folder + "/") for folder, _ in self.unlisted)


def listing_version(info: dict[str, Any]) -> str | None:
    """A file's version marker from a listing or info entry: the first of :data:`VERSION_KEYS` it has, with
    its size (a marker changes whenever the file is replaced); None when the storage gives none."""
    for key in VERSION_KEYS:
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}={value};size={info.get('size')}"
    return None


def storage_reason(e: BaseException) -> str:
    """Why a storage operation failed, in a few words: 'HTTP 500 Internal Server Error', 'not found', ..."""
    if isinstance(e, FileNotFoundError):
        return "not found"
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return f"HTTP {status} {getattr(e, 'message', '') or ''}".strip()
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class RemoteStat(NamedTuple):
    """What :class:`pipeline.ingest.archives.OpenArchives` asks of a file to key an open archive."""

    st_size: int
    st_mtime_ns: int


@dataclass(frozen=True)
class RemoteFile:
    """A file under a URL root, as a work item's source: it offers what the readers and the archive code
    use of a ``Path`` (``name``, ``read_bytes()``, ``stat()``, ``os.fspath()``), so they need no branch.

    ``os.fspath()`` gives a local copy, made on first use in each process (at most :data:`LOCAL_COPIES` kept,
    deleted at exit): zip archives need random access, which a plain HTTP server does not offer. Copies are
    keyed by URL, version marker and size, so an archive replaced on the storage is fetched again.
    """

    root: RawRoot
    rel: str
    size: int | None = None
    version: str | None = None

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        return self.root.url_of(self.rel)

    def __str__(self) -> str:
        return self.url

    def read_bytes(self) -> bytes:
        """The file's bytes; ``FileNotFoundError`` when it is gone, ``OSError`` with the reason otherwise."""
        fs, _ = self.root.filesystem()
        try:
            return fs.cat_file(self.url)
        except Exception as e:  # noqa: BLE001 - e.g. aiohttp.ClientResponseError for an HTTP 500
            raise _as_os_error(e, self.url) from e

    def stat(self) -> RemoteStat:
        """Size and a number standing for the version (no download when the listing gave the size)."""
        size = self.size if self.size is not None else os.stat(self.__fspath__()).st_size
        return RemoteStat(size, zlib.crc32((self.version or "").encode()))

    def __fspath__(self) -> str:
        return _LOCAL_COPIES.path(self)


def _as_os_error(e: BaseException, url: str) -> OSError:
    if isinstance(e, FileNotFoundError):
        return FileNotFoundError(f"not found ({url})")
    if isinstance(e, OSError) and not getattr(e, "status", None):
        return OSError(f"{e.strerror or e} ({url})")
    return OSError(f"{storage_reason(e)} ({url})")


class _LocalCopies:
    """This process's local copies of remote files (least recently used deleted beyond a few)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._paths: OrderedDict[tuple, str] = OrderedDict()
        atexit.register(self.clear)

    def path(self, remote: RemoteFile) -> str:
        key = (remote.url, remote.version, remote.size)
        if key in self._paths:
            self._paths.move_to_end(key)
            return self._paths[key]
        fs, _ = remote.root.filesystem()
        fd, tmp = tempfile.mkstemp(prefix="pipeline-raw-", suffix=Path(remote.name).suffix)
        try:
            with os.fdopen(fd, "wb") as out, fs.open(remote.url, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        except Exception as e:  # noqa: BLE001 - a storage failure is the file's error, never the batch's
            os.unlink(tmp)
            raise _as_os_error(e, remote.url) from e
        self._paths[key] = tmp
        while len(self._paths) > self.capacity:
            _unlink(self._paths.popitem(last=False)[1])  # an archive still open on it stays readable (POSIX)
        return tmp

    def clear(self) -> None:
        while self._paths:
            _unlink(self._paths.popitem()[1])


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_LOCAL_COPIES = _LocalCopies(LOCAL_COPIES)


def forget_local_copies() -> None:
    """Delete this process's local copies (the writer does at the start of each ingest)."""
    _LOCAL_COPIES.clear()


@functools.lru_cache(maxsize=8)
def _filesystem(url: str, options_json: str):
    import fsspec  # imported for URL roots only (a second of start-up otherwise paid by every command)

    protocol = fsspec.core.split_protocol(url)[0] or "file"
    fs = fsspec.filesystem(protocol, **json.loads(options_json))
    base = url.rstrip("/") if protocol in ("http", "https") else fs._strip_protocol(url).rstrip("/")
    return fs, base


# ---- the setting ---------------------------------------------------------------------------------------


def raw_root(ws: Workspace, url: str | None = None) -> RawRoot:
    """The raw data root in force: ``url`` (``--raw``, or a recorded root; ``data/raw`` = the workspace's
    folder), else ``[raw] url`` of pipeline.toml, else the workspace's data/raw. ``[raw] storage_options``
    apply to whichever URL is in force. Every problem raises PipelineError naming the file and key."""
    section = settings_table(PIPELINE_TOML, "raw", ws.pipeline_config().get("raw"))
    unknown = sorted(set(section) - set(RAW_SETTINGS))
    if unknown:
        raise PipelineError(f"{PIPELINE_TOML} [raw]: unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)}; valid keys: {', '.join(RAW_SETTINGS)}")
    options = section.get("storage_options", {})
    if not isinstance(options, dict):
        raise PipelineError(f"{PIPELINE_TOML} [raw]: storage_options must be a table of fsspec options "
                            f"(storage_options = {{ anon = true }}), got {options!r}")
    where = "--raw" if url is not None else f"{PIPELINE_TOML} [raw]: url"
    url = url if url is not None else section.get("url")
    if url is None or url == LOCAL_RAW:
        return RawRoot()
    root = RawRoot(check_raw_url(url, where), json.dumps(options, sort_keys=True, default=str))
    _check_filesystem(root, where)
    return root


def check_raw_url(url: Any, where: str) -> str:
    """``url`` if it names a storage fsspec knows (``scheme://...``); PipelineError naming ``where`` if not."""
    if not isinstance(url, str) or "://" not in url or not url.split("://", 1)[1].strip("/"):
        raise PipelineError(f"{where} must be a URL such as 'http://host:8000/raw/', 'file:///mnt/share/raw' or "
                            f"'s3://bucket/raw', got {url!r} (the workspace's own data/raw needs no setting)")
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    if protocol not in fsspec.available_protocols():
        raise PipelineError(f"{where}: {protocol}:// is not a storage fsspec knows ({url})")
    return url


def _check_filesystem(root: RawRoot, where: str) -> None:
    try:
        root.filesystem()
    except ImportError as e:
        raise PipelineError(f"{where}: reading {root.url} needs a package that is not installed ({e})") from e
    except (TypeError, ValueError) as e:
        raise PipelineError(f"{PIPELINE_TOML} [raw]: storage_options do not suit {root.url} ({e})") from e


# ---- an athlete's folder and athlete.toml, wherever the root is ------------------------------------------


def athlete_folder_name(root: RawRoot, ws: Workspace, athlete_id: str, listing: RawListing | None = None) -> str | None:
    """The name of the folder holding ``athlete_id``'s files (a mapped name, see athlete_id_from_folder),
    None when there is none. ``listing``: the URL root's listing when the caller has one (no request)."""
    if root.is_local:
        folder = athlete_folder(ws.raw_dir, athlete_id)
        return folder.name if folder.is_dir() else None
    folders = listing.folders if listing is not None else _top_folders(root)
    if athlete_id in folders:
        return athlete_id
    return next((f for f in folders if athlete_id_from_folder(f) == athlete_id), None)


def top_level_listing(root: RawRoot) -> RawListing | None:
    """The athlete folders of a URL root, listed once for a stage that reads every athlete's athlete.toml
    (None for the local folder); RawUnreadable when the root cannot be listed now."""
    return None if root.is_local else RawListing(folders=_top_folders(root), files_listed=False)


def _top_folders(root: RawRoot) -> list[str]:
    fs, _ = root.filesystem()
    fs.invalidate_cache()
    try:
        entries = fs.ls(root.url_of("", folder=True), detail=True)
    except Exception as e:  # noqa: BLE001 - each backend raises its own types
        raise RawUnreadable(f"raw data root {root.url} cannot be listed ({storage_reason(e)})") from e
    names = [root.rel_of(e["name"]) for e in entries if e.get("type") == "directory"]
    return sorted(n for n in names if n and "/" not in n and not n.startswith("."))


def athlete_config(root: RawRoot, ws: Workspace, athlete_id: str, listing: RawListing | None = None) -> AthleteConfig:
    """The athlete's athlete.toml (defaults when it has none), read from the root: the local rule
    (:func:`pipeline.workspace.load_athlete_config`) for data/raw, the same checks on the bytes of
    ``<url>/<folder>/athlete.toml`` for a URL root. PipelineError names the file and the problem."""
    if root.is_local:
        return load_athlete_config(ws.raw_dir, athlete_id)
    data, where = athlete_file(root, ws, athlete_id, ATHLETE_CONFIG_NAME, listing)
    if data is None:
        return AthleteConfig(athlete_id=athlete_id)
    return athlete_config_from_toml(parse_toml(data, where), where, athlete_id)


def athlete_file(root: RawRoot, ws: Workspace, athlete_id: str, name: str,
                 listing: RawListing | None = None) -> tuple[bytes | None, str]:
    """(bytes or None when absent, the file as named in messages: data/raw/<folder>/<name>) of a file in the
    athlete's folder under a URL root; PipelineError naming the URL when it exists but cannot be read."""
    folder = athlete_folder_name(root, ws, athlete_id, listing)
    rel = f"{folder or athlete_id}/{name}"
    if folder is None or (listing is not None and not listing.has(rel)):
        return None, f"{LOCAL_RAW}/{rel}"
    try:
        return root.read_optional(rel), f"{LOCAL_RAW}/{rel}"
    except OSError as e:
        raise RawUnreadable(f"{LOCAL_RAW}/{rel}: cannot be read ({e})") from e
