"""What every reader shares: the read context, the error type, stable ids, frame helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.ingest.parsed import TABLE_COLUMNS, ParsedFile
from pipeline.workspace import AthleteConfig


class ReadError(ValueError):
    """A file could not be read; the message names the problem (and where, when known).

    Readers raise it; the dispatcher turns it into a ``source_files`` row with status ``error``.
    ``fmt`` names the format when the reader knows it better than the first bytes do (``strong_csv``
    rather than ``csv``); ``warnings`` carries per-row problems found on the way ("row 3: negative reps").
    """

    def __init__(self, message: str, *, fmt: str | None = None, warnings: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.fmt = fmt
        self.warnings = list(warnings)


class NothingToIngest(ReadError):
    """A readable file that holds nothing to analyse (a route, a settings file): status ``skipped``."""


@dataclass(frozen=True)
class ReadContext:
    """Everything a reader may use besides the bytes: where the file sits and whose it is.

    ``sport_override``/``name_override``/``start_hint`` come from a Strava bulk export's ``activities.csv``
    (``start_hint`` is used only by the sanity gate, to place times from a device clock that was never set).
    """

    path: str
    file_id: str
    athlete_id: str
    athlete: AthleteConfig | None = None
    sport_override: str | None = None
    name_override: str | None = None
    start_hint: pd.Timestamp | None = None

    def parsed(self, fmt: str, size_bytes: int, **kwargs) -> ParsedFile:
        return ParsedFile(path=self.path, file_id=self.file_id, athlete_id=self.athlete_id, format=fmt,
                          size_bytes=size_bytes, **kwargs)

    def failed(self, fmt: str, size_bytes: int, message: str) -> ParsedFile:
        """This file as an ``error`` row (see :meth:`ParsedFile.failed`)."""
        return ParsedFile.failed(self.path, self.athlete_id, message, file_id=self.file_id, fmt=fmt,
                                 size_bytes=size_bytes)


def activity_id_for(athlete_id: str, start_time: pd.Timestamp, session_index: int) -> str:
    """Stable activity id: athlete, UTC start to the second, and the session's index in its file.

    Example: ``anna-20240501T061502Z-0``. The same recording gets the same id on every ingest,
    whatever the order of files; a multisport file's sessions differ by index.
    """
    return f"{athlete_id}-{start_time.tz_convert('UTC'):%Y%m%dT%H%M%SZ}-{session_index}"


def typed_frame(table: str, data: dict[str, object], n_rows: int) -> pd.DataFrame:
    """A frame with exactly the contract columns of ``table``; absent columns are all-null."""
    cols = {}
    for name in TABLE_COLUMNS[table]:
        value = data.get(name)
        if value is None:
            value = np.full(n_rows, np.nan) if n_rows else []
        cols[name] = value
    return pd.DataFrame(cols, columns=TABLE_COLUMNS[table])


# GPX/TCX/Strava sport words -> fitparse sport names (the analysis selects sport = 'running').
_SPORT_WORDS = {
    "run": "running", "running": "running", "trail run": "running", "trailrun": "running",
    "trail_running": "running", "treadmill": "running", "virtualrun": "running", "virtual run": "running",
    "ride": "cycling", "biking": "cycling", "cycling": "cycling", "bike": "cycling",
    "virtualride": "cycling", "virtual ride": "cycling", "mountain bike ride": "cycling",
    "mountainbikeride": "cycling", "gravel ride": "cycling", "gravelride": "cycling",
    "e-bike ride": "cycling", "ebikeride": "cycling", "road_biking": "cycling", "mountain_biking": "cycling",
    "swim": "swimming", "swimming": "swimming", "open_water_swimming": "swimming",
    "walk": "walking", "walking": "walking", "hike": "hiking", "hiking": "hiking",
    "weight training": "training", "weighttraining": "training", "workout": "training",
    "strength_training": "training", "rowing": "rowing", "rowing machine": "rowing", "row": "rowing",
    "other": "generic", "multisport": "multisport",
}
# Strava's numeric GPX <type> codes (the activity type enum of Strava's GPX writer).
_STRAVA_TYPE_CODES = {"1": "cycling", "4": "hiking", "9": "running", "10": "walking", "16": "swimming"}
UNKNOWN_SPORT = "unknown"


def sport_from_word(word: str | None) -> str:
    """Map a GPX ``<type>``, TCX ``Sport`` or Strava activity type to a fitparse sport name.

    Unrecognised or absent -> ``'unknown'`` (documented in docs/ingest.md).
    """
    if not word:
        return UNKNOWN_SPORT
    key = word.strip().lower()
    if key in _STRAVA_TYPE_CODES:
        return _STRAVA_TYPE_CODES[key]
    return _SPORT_WORDS.get(key, _SPORT_WORDS.get(key.replace("_", " "), UNKNOWN_SPORT))
