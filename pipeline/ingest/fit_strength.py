"""Strength sessions and sets from FIT activities (Garmin, Suunto, ...).

The FIT reader (pipeline/ingest) decodes the file with fitparse and hands over plain dicts: the
``session`` messages of strength sessions and every ``set`` message. This module only turns those
values into ``strength_sessions`` / ``strength_sets`` rows, so it stays a pure function.

A ``set`` message as fitparse gives it (Garmin strength_training, 2025)::

    {'timestamp': datetime(2025, 9, 23, 10, 8, 29), 'start_time': datetime(2025, 9, 23, 10, 10, 1),
     'duration': 42.221, 'repetitions': 10, 'weight': 0.0, 'set_type': 'active',
     'category': (27, 28, 30), 'category_subtype': (None, None, None), 'weight_display_unit': None,
     'message_index': 2, ...}

* ``set_type`` ``rest`` sets are pauses between sets: dropped.
* ``weight`` is always kg in FIT (scale 16); ``weight_display_unit`` is only how the watch showed it.
* ``category`` holds up to three guesses of the watch's exercise recognition, best first; fitparse leaves
  them as numbers of the FIT ``exercise_category`` enum (``EXERCISE_CATEGORY_NAMES``); 65534 = unknown.
* ``timestamp`` is not the set's time on these watches (it repeats the session start): ``start_time``
  is, so a set is placed by ``start_time``, falling back to ``timestamp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from pipeline.ingest.strength_rows import (
    RowRejected, SetRow, check_set_values, sessions_frame, session_id_for, strength_frames,
)

# FIT profile enum ``exercise_category`` (FIT SDK 21.x; the same numbers in fitparse's profile for
# 0..32 and in fit_tool's ExerciseCategory for the rest).
EXERCISE_CATEGORY_NAMES: dict[int, str] = {
    0: "bench_press", 1: "calf_raise", 2: "cardio", 3: "carry", 4: "chop", 5: "core", 6: "crunch",
    7: "curl", 8: "deadlift", 9: "flye", 10: "hip_raise", 11: "hip_stability", 12: "hip_swing",
    13: "hyperextension", 14: "lateral_raise", 15: "leg_curl", 16: "leg_raise", 17: "lunge",
    18: "olympic_lift", 19: "plank", 20: "plyo", 21: "pull_up", 22: "push_up", 23: "row",
    24: "shoulder_press", 25: "shoulder_stability", 26: "shrug", 27: "sit_up", 28: "squat",
    29: "total_body", 30: "triceps_extension", 31: "warm_up", 32: "run", 33: "bike", 34: "cardio_sensors",
    35: "move", 36: "pose", 37: "banded_exercises", 38: "battle_rope", 39: "elliptical",
    40: "floor_climb", 41: "indoor_bike", 42: "indoor_row", 43: "ladder", 44: "sandbag", 45: "sled",
    46: "sledge_hammer", 47: "stair_stepper", 49: "suspension", 50: "tire", 52: "run_indoor",
    53: "bike_outdoor", 65534: "unknown",
}
UNKNOWN_CATEGORY = 65534
# A set placed by time may start this much before its session's start_time or after its end
# (watch clocks round to the second; the last set's start can equal the session end).
SET_TIME_SLACK_S = 5.0


@dataclass
class FitStrength:
    """Strength rows read from one FIT file, with the sets that could not be used and why."""

    sessions: pd.DataFrame
    sets: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def is_strength_session(session: dict[str, Any]) -> bool:
    """True for a FIT ``session`` with sport training (10) and sub_sport strength_training (20)."""
    return session.get("sport") in ("training", 10) and session.get("sub_sport") in ("strength_training", 20)


def category_name(value: Any) -> str | None:
    """A FIT exercise category (number, name, or a tuple of guesses) -> its name; unknown -> None."""
    guesses = value if isinstance(value, (tuple, list)) else (value,)
    for g in guesses:
        if g is None or g == UNKNOWN_CATEGORY or g == "unknown":
            continue
        if isinstance(g, str):
            return g
        return EXERCISE_CATEGORY_NAMES.get(int(g), f"category_{int(g)}")
    return None


def _utc(value: Any) -> datetime | None:
    """fitparse gives naive datetimes that are UTC by the FIT spec."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# A strength session's time span: (start, end, elapsed seconds or None).
Span = tuple[datetime, datetime, float | None]


def _strength_spans(session_values: list[dict]) -> list[Span]:
    """Time spans of the file's strength sessions, in time order."""
    spans = []
    for s in session_values:
        if not is_strength_session(s):
            continue
        start = _utc(s.get("start_time")) or _utc(s.get("timestamp"))
        if start is None:
            continue
        elapsed = _float(s.get("total_elapsed_time")) or _float(s.get("total_timer_time")) or 0.0
        spans.append((start, start + timedelta(seconds=elapsed), elapsed or None))
    return sorted(spans, key=lambda sp: sp[0])


def _span_for(t: datetime, spans: list[Span]) -> Span:
    """The session whose span (with SET_TIME_SLACK_S) holds ``t``, else the closest one."""
    slack = timedelta(seconds=SET_TIME_SLACK_S)
    for sp in spans:
        if sp[0] - slack <= t <= sp[1] + slack:
            return sp
    return min(spans, key=lambda sp: min(abs((t - sp[0]).total_seconds()), abs((t - sp[1]).total_seconds())))


def _set_rows(set_values: list[dict], spans: list[Span]) -> tuple[list[SetRow], list[str]]:
    """Active sets as SetRows placed in their session, and a warning per rejected set message."""
    def set_time(v: dict) -> datetime:
        return _utc(v.get("start_time")) or _utc(v.get("timestamp")) or spans[0][0]

    active = sorted((v for v in set_values if v.get("set_type") in ("active", 1)),
                    key=lambda v: (set_time(v), v.get("message_index") or 0))
    rows: list[SetRow] = []
    warnings: list[str] = []
    for v in active:
        start, _, elapsed = _span_for(set_time(v), spans)
        cat = category_name(v.get("category"))
        reps, weight, duration = v.get("repetitions"), _float(v.get("weight")), _float(v.get("duration"))
        idx = v.get("message_index")
        try:
            check_set_values(reps, weight, duration, None)
        except RowRejected as e:
            warnings.append(f"set message {idx}: {e}")
            continue
        rows.append(SetRow(
            row=idx if isinstance(idx, int) else len(rows), start_utc=start, session_duration_s=elapsed,
            title=None, exercise=cat.replace("_", " ").capitalize() if cat else None, category=cat,
            # The watch's own warm-up category is the only warm-up marker FIT has.
            set_type="warmup" if cat == "warm_up" else "working",
            reps=reps, weight_kg=weight, duration_s=duration, rpe=None, distance_m=None,
        ))
    return rows, warnings


def _with_setless_sessions(sessions: pd.DataFrame, spans: list[Span], athlete_id: str,
                           file_id: str) -> pd.DataFrame:
    """Sessions with no active set (watch without set logging, or sets all rejected) are still sessions."""
    have = set(sessions["session_id"])
    extra = [{"session_id": session_id_for(athlete_id, st), "athlete_id": athlete_id,
              "start_time": pd.Timestamp(st), "duration_s": el, "title": None, "source_format": "fit",
              "file_id": file_id, "n_sets": 0, "n_working_sets": 0}
             for st, _, el in spans if session_id_for(athlete_id, st) not in have]
    if not extra:
        return sessions
    both = pd.concat([sessions, sessions_frame(extra)], ignore_index=True) if len(sessions) else sessions_frame(extra)
    return both.sort_values("start_time", ignore_index=True)


def read_fit_strength(
    session_values: list[dict], set_values: list[dict], *, athlete_id: str, file_id: str
) -> FitStrength:
    """Sessions and sets of a FIT file's strength sessions, with warnings for unusable sets.

    Each active set goes to the strength session whose time span contains its start (a multisport file
    can hold strength + running + strength); one outside every span goes to the closest session.
    Strength sessions without ``set`` messages still become sessions with their duration.
    """
    spans = _strength_spans(session_values)
    if not spans:
        return FitStrength(sessions_frame([]), strength_frames([], athlete_id=athlete_id, file_id=file_id,
                                                              source_format="fit")[1])
    rows, warnings = _set_rows(set_values, spans)
    sessions, sets = strength_frames(rows, athlete_id=athlete_id, file_id=file_id, source_format="fit")
    return FitStrength(_with_setless_sessions(sessions, spans, athlete_id, file_id), sets, warnings)


def strength_from_fit(
    session_values: list[dict], set_values: list[dict], *, athlete_id: str, file_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(strength_sessions, strength_sets) of a FIT file; see :func:`read_fit_strength` (which also
    returns warnings for impossible sets). ``session_values``: fitparse ``session`` message values
    (non-strength sessions are ignored); ``set_values``: every ``set`` message's values."""
    result = read_fit_strength(session_values, set_values, athlete_id=athlete_id, file_id=file_id)
    return result.sessions, result.sets
