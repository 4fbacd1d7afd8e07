"""Workspace and athlete resolution (see DESIGN.md, "Workspace and command line").

The workspace is the folder holding ``data/raw``, ``data/processed`` and ``reports``. It is resolved
from ``--workspace DIR``, else ``$PIPELINE_WORKSPACE``, else the current directory.

Each folder ``data/raw/<athlete_id>/`` is one athlete (any nesting below it); files placed directly
in ``data/raw/`` belong to the athlete :data:`DEFAULT_ATHLETE_ID`. An athlete folder may hold an
``athlete.toml`` (:class:`AthleteConfig`) and a ``blocks.csv`` (declared strength blocks).
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import PipelineError
from pipeline.settings import Bounds, setting_number

WORKSPACE_ENV = "PIPELINE_WORKSPACE"
DEFAULT_ATHLETE_ID = "default"
ATHLETE_CONFIG_NAME = "athlete.toml"
DECLARED_BLOCKS_NAME = "blocks.csv"
PIPELINE_CONFIG_NAME = "pipeline.toml"
# Files in data/raw that configure an athlete rather than hold activity data; ingest ignores them,
# as it ignores hidden files and folders (".DS_Store", ".truth/" written by the demo) and READMEs.
CONFIG_FILE_NAMES = frozenset({ATHLETE_CONFIG_NAME, DECLARED_BLOCKS_NAME})
_ATHLETE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace. Nothing is created until a stage writes."""

    root: Path

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def warehouse_path(self) -> Path:
        return self.processed_dir / "warehouse.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.processed_dir / "pipeline.lock"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def config_path(self) -> Path:
        return self.root / PIPELINE_CONFIG_NAME

    def relative(self, path: Path) -> str:
        """Path as stored in ``source_files.path``: relative to the workspace when inside it (posix)."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def pipeline_config(self) -> dict[str, Any]:
        """The parsed ``pipeline.toml`` (empty when absent). Each stage reads its own section."""
        return read_toml(self.config_path, PIPELINE_CONFIG_NAME) if self.config_path.exists() else {}


def resolve_workspace(option: str | os.PathLike | None = None) -> Workspace:
    """``--workspace`` wins, then ``$PIPELINE_WORKSPACE``, then the current directory."""
    chosen = option or os.environ.get(WORKSPACE_ENV) or os.getcwd()
    root = Path(chosen).expanduser()
    if root.exists() and not root.is_dir():
        raise PipelineError(f"workspace {root} is a file, not a folder")
    return Workspace(root.resolve())


def read_toml(path: Path, shown_as: str | None = None) -> dict[str, Any]:
    """Parse a settings file; any problem is ONE line naming the file (``shown_as``, else the path)."""
    name = shown_as or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PipelineError(f"{name}: cannot be read ({e.strerror or e})") from e
    return parse_toml(data, name)


def parse_toml(data: bytes, name: str) -> dict[str, Any]:
    """The settings in a TOML file's bytes; any problem is ONE line naming the file (``name``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PipelineError(f"{name}: not a TOML text file (byte 0x{data[e.start]:02x} at position {e.start} "
                            "is not UTF-8)") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PipelineError(f"{name}: not valid TOML ({str(e).splitlines()[0]})") from e


def is_ignored_name(path: Path, raw_dir: Path) -> bool:
    """True for files ingest never treats as data: hidden files/folders, config files, READMEs."""
    rel = path.relative_to(raw_dir)
    if any(part.startswith(".") for part in rel.parts):
        return True
    if path.name in CONFIG_FILE_NAMES and len(rel.parts) == 2:
        return True
    return path.name.lower() in {"readme.md", "readme.txt", "readme"}


def athlete_id_for(path: Path, raw_dir: Path) -> str:
    """The athlete a file under ``data/raw`` belongs to: its first folder (mapped by
    :func:`athlete_id_from_folder`), else the default athlete."""
    rel = Path(path).resolve().relative_to(raw_dir.resolve())
    return athlete_id_from_folder(rel.parts[0]) if len(rel.parts) > 1 else DEFAULT_ATHLETE_ID


# ---- the athlete-id rule (one rule, used by ingest, analyze, report and export) -------------------------
#
# An athlete id is used as a folder name (reports/<id>/), a URL path segment, a file-name part of
# exports and inside activity ids, so it is limited to ASCII letters, digits, '_', '-', '.' (at most 64,
# starting with a letter or digit). A folder under data/raw whose name already is such an id IS the id.
# Any other folder name (a space, an accent, an apostrophe, CJK characters...) is MAPPED, never refused:
# accents are dropped (NFKD), every other run of characters becomes '-', and an 8-hex-digit digest of the
# folder name (NFC) is appended so two names never share an id ("Zoë O'Brien" -> "Zoe-O-Brien-0f5d7ebe";
# "山田" -> "athlete-5f34cd83"). The folder name itself becomes the display name unless athlete.toml sets
# one. An id given on the command line (--athlete) must already be valid: it is checked, not mapped.
ATHLETE_ID_MAX_CHARS = 64
_ID_DIGEST_CHARS = 8


def is_valid_athlete_id(text: str) -> bool:
    """True when ``text`` can be used as an athlete id as it is."""
    return bool(_ATHLETE_ID_RE.match(text))


def athlete_id_from_folder(name: str) -> str:
    """The athlete id of a folder under ``data/raw`` (identity for valid ids; see the rule above)."""
    if is_valid_athlete_id(name):
        return name
    nfc = unicodedata.normalize("NFC", name)
    digest = hashlib.sha256(nfc.encode("utf-8")).hexdigest()[:_ID_DIGEST_CHARS]
    ascii_text = unicodedata.normalize("NFKD", nfc).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_text).strip("-._")
    slug = slug[:ATHLETE_ID_MAX_CHARS - _ID_DIGEST_CHARS - 1].rstrip("-._") or "athlete"
    return f"{slug}-{digest}"


def athlete_folder(raw_dir: Path, athlete_id: str) -> Path:
    """The folder under ``data/raw`` holding ``athlete_id``'s files (mapped names included).

    Returns ``raw_dir / athlete_id`` when no folder maps to the id (it may not exist).
    """
    direct = raw_dir / athlete_id
    if direct.is_dir() or not raw_dir.is_dir():
        return direct
    for child in sorted(raw_dir.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and athlete_id_from_folder(child.name) == athlete_id:
            return child
    return direct


def validate_athlete_id(athlete_id: str) -> str:
    """Check an id given by a user (``--athlete``); folder names are mapped instead (athlete_id_from_folder)."""
    if not is_valid_athlete_id(athlete_id):
        raise PipelineError(
            f"athlete id {athlete_id!r} is not usable as a folder name: use at most {ATHLETE_ID_MAX_CHARS} "
            f"letters, digits, '_', '-', '.', starting with a letter or digit (a folder under data/raw with "
            f"that name would be read as {athlete_id_from_folder(athlete_id)!r})"
        )
    return athlete_id


def discover_athletes(raw_dir: Path) -> list[str]:
    """Athlete ids that have at least one data file under ``data/raw`` (sorted)."""
    if not raw_dir.is_dir():
        return []
    found: set[str] = set()
    for path in raw_dir.rglob("*"):
        if path.is_file() and not is_ignored_name(path, raw_dir):
            found.add(athlete_id_for(path, raw_dir))
    return sorted(found)


# athlete.toml ``units``: how the report shows pace and distance.
UNIT_SYSTEMS = ("metric", "imperial")


@dataclass(frozen=True)
class AthleteConfig:
    """Optional per-athlete settings from ``data/raw/<athlete_id>/athlete.toml``.

    Every field may be omitted; stages fall back to documented defaults (README, "athlete.toml").
    """

    athlete_id: str
    display_name: str | None = None
    hr_rest_bpm: float | None = None
    hr_max_bpm: float | None = None
    # Reference speed for the economy index; default: the athlete's median steady grade-adjusted speed.
    ref_speed_m_s: float | None = None
    # IANA zone used for strength logs that carry local times without an offset; default UTC.
    time_zone: str | None = None
    # Unit assumed for strength weights when the file does not say ("kg" or "lbs"); default kg.
    weight_unit: str | None = None
    # false: `pipeline weather` never sends this athlete's positions to a weather archive (default: it may).
    weather: bool | None = None
    # Units the report gives pace and distance in: "metric" (min/km, km; the default) or "imperial"
    # (min/mi, mi). The warehouse and every computation stay metric.
    units: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.display_name or self.athlete_id


# Allowed values of athlete.toml's numbers. Resting HR of trained runners can be below 40, a maximum above
# 210 is rare; the reference speed must be a running speed the cleaning keeps (min/max_speed_m_s 1-7 m/s).
ATHLETE_SETTING_BOUNDS = {
    "hr_rest_bpm": Bounds(20, 120, unit="bpm"),
    "hr_max_bpm": Bounds(100, 250, unit="bpm"),
    "ref_speed_m_s": Bounds(1.0, 7.0, unit="m/s"),
}


def _athlete_text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PipelineError(f"{where}: {key} must be a non-empty text in quotes, got {value!r}")
    return value.strip()


def load_athlete_config(raw_dir: Path, athlete_id: str) -> AthleteConfig:
    """Read ``athlete.toml`` for one athlete; missing file -> all defaults. Unknown keys kept in ``extra``.

    Every value is checked (type, finiteness, range; hr_rest_bpm below hr_max_bpm; a known IANA time
    zone); a problem raises :class:`PipelineError` naming the file and the key.
    """
    path = athlete_folder(raw_dir, athlete_id) / ATHLETE_CONFIG_NAME
    if not path.exists():
        return AthleteConfig(athlete_id=athlete_id)
    where = f"data/raw/{path.parent.name}/{ATHLETE_CONFIG_NAME}"
    return athlete_config_from_toml(read_toml(path, where), where, athlete_id)


def athlete_config_from_toml(data: dict[str, Any], where: str, athlete_id: str) -> AthleteConfig:
    """The checks of :func:`load_athlete_config` on an athlete.toml already parsed (``where`` names it)."""
    known = {f.name for f in fields(AthleteConfig)} - {"athlete_id", "extra"}
    kwargs = {k: v for k, v in data.items() if k in known}
    extra = {k: v for k, v in data.items() if k not in known}
    for key, bounds in ATHLETE_SETTING_BOUNDS.items():
        if key in kwargs:
            kwargs[key] = setting_number(where, key, kwargs[key], bounds)
    if kwargs.get("hr_rest_bpm") is not None and kwargs.get("hr_max_bpm") is not None \
            and kwargs["hr_rest_bpm"] >= kwargs["hr_max_bpm"]:
        raise PipelineError(f"{where}: hr_rest_bpm ({kwargs['hr_rest_bpm']:g}) must be below hr_max_bpm "
                            f"({kwargs['hr_max_bpm']:g})")
    for key in ("display_name", "time_zone", "weight_unit"):
        if key in kwargs:
            kwargs[key] = _athlete_text(where, key, kwargs[key])
    if "weather" in kwargs and not isinstance(kwargs["weather"], bool):
        raise PipelineError(f"{where}: weather must be true or false, got {kwargs['weather']!r}")
    if kwargs.get("units") not in (None, *UNIT_SYSTEMS):
        raise PipelineError(f"{where}: units must be 'metric' or 'imperial', got {kwargs['units']!r}")
    if kwargs.get("weight_unit") not in (None, "kg", "lbs"):
        raise PipelineError(f"{where}: weight_unit must be 'kg' or 'lbs', got {kwargs['weight_unit']!r}")
    if kwargs.get("time_zone") is not None:
        try:
            ZoneInfo(kwargs["time_zone"])
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise PipelineError(f"{where}: time_zone {kwargs['time_zone']!r} is not a known IANA time zone "
                                "(e.g. 'Europe/Madrid')") from e
    return AthleteConfig(athlete_id=athlete_id, extra=extra, **kwargs)
