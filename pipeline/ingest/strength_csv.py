"""Strength-log CSV readers: Strong, Hevy, FitNotes and a generic hand-written layout.

Pure functions of a file's bytes: :func:`sniff_strength_csv` names the layout from the header (never from
the file name) and :func:`parse_strength_csv` turns the bytes into a :class:`ParsedFile` holding
``strength_sessions`` and ``strength_sets``. Nothing here opens a connection or a file.

Rules (docs/strength.md):

* **Units**: weights end in kg. The unit comes from the file when it says so (``Weight Unit`` column,
  ``Weight (kg)``/``weight_lbs`` header, generic ``unit`` column), else from ``athlete.toml``
  ``weight_unit``, else kg.
* **Time zone**: times with an offset are converted to UTC; local times without one are read in the
  athlete's ``time_zone`` (IANA name), else UTC. A date without a time means 12:00 local.
* **Bad rows**: a malformed row or an impossible value rejects that row with a warning naming the row
  (1-based line number, header = row 1) and the reason; the rest of the file is kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.ingest.common import NothingToIngest, ReadError
from pipeline.ingest.parsed import ParsedFile
from pipeline.ingest.strength_rows import (
    KG_PER_LB, M_PER_FOOT, M_PER_MILE, M_PER_YARD, MAX_SESSION_DURATION_S, MAX_SETS_PER_ROW, RPE_RANGE,
    RowRejected, SetRow, check_set_values, strength_frames, summary_message,
)
from pipeline.workspace import AthleteConfig

STRENGTH_CSV_FORMATS = ("strong_csv", "hevy_csv", "fitnotes_csv", "generic_csv")
# A date without a time of day (FitNotes, generic CSV) is taken as this local time: midday keeps the
# UTC date equal to the local date for every zone between UTC-11 and UTC+11.
DEFAULT_SESSION_TIME = time(12, 0)
MAX_WARNINGS = 50  # per file; the message still counts every rejected row

# --------------------------------------------------------------------------------------------- sniffing


def _decode(data: bytes) -> str:
    """Text of a CSV export: UTF-8 (BOM or not), UTF-16 with BOM, else Windows-1252 (old Excel saves)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _delimiter(header_line: str) -> str:
    """The separator used by a header line: the most frequent of , ; and tab outside quotes."""
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _norm(name: str) -> str:
    """Header cell -> lookup key: 'Weight (KG) ' -> 'weight (kg)', '"Set Order"' -> 'set order'."""
    return re.sub(r"\s+", " ", name.strip().strip('"').strip("\ufeff").strip()).lower()


def _header(text: str) -> tuple[list[str], str]:
    line = _first_line(text)
    delim = _delimiter(line)
    try:
        cells = next(csv.reader([line], delimiter=delim), [])
    except csv.Error as e:
        raise ReadError(f"CSV: the header line cannot be read ({e})") from e
    return [_norm(c) for c in cells], delim


def _sniff_columns(cols: set[str]) -> str | None:
    if {"exercise_title", "set_type", "start_time"} <= cols:
        return "hevy_csv"
    if {"date", "exercise name", "set order"} <= cols:
        return "strong_csv"
    if {"date", "exercise", "category", "reps"} <= cols and any(c.startswith("weight") for c in cols):
        return "fitnotes_csv"
    if {"date", "exercise", "reps"} <= cols:
        return "generic_csv"
    return None


def sniff_strength_csv(head: bytes) -> str | None:
    """Name the strength layout from a file's first bytes, or None when it is no strength log.

    ``head`` is the start of the file (a few KB is plenty: only the header line is read). A UTF-8 BOM,
    comma/semicolon/tab separators and quoted headers are handled. Returns ``'strong_csv'``,
    ``'hevy_csv'``, ``'fitnotes_csv'``, ``'generic_csv'`` or None (e.g. the fitparse oracle CSVs,
    ``timestamp,heart_rate,cadence,...``).
    """
    cols, _ = _header(_decode(head[:65536]))
    return _sniff_columns(set(cols))


# ------------------------------------------------------------------------------------- value parsing


@dataclass(frozen=True)
class _Context:
    """What a row parser needs besides the row: zone, default units, decimal-comma rule."""

    zone: timezone | ZoneInfo
    default_weight_unit: str      # 'kg' | 'lbs'
    decimal_comma: bool           # semicolon/tab files from locales writing 62,5


def _zone(name: str | None) -> timezone | ZoneInfo:
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise RowRejected(f"unknown time zone {name!r} in athlete.toml") from e


def _number(text: str | None, what: str, ctx: _Context) -> float | None:
    """'62.5' / '62,5' (semicolon files) / '' -> float or None; anything else rejects the row."""
    s = (text or "").strip().replace("\u00a0", "").replace(" ", "")
    if not s:
        return None
    if ctx.decimal_comma and "," in s:
        s = s.replace(".", "").replace(",", ".")      # "1.062,5" -> "1062.5"
    elif re.fullmatch(r"-?\d+,\d{1,2}", s):
        s = s.replace(",", ".")                        # quoted "62,5" in a comma file (never thousands)
    try:
        value = float(s)
    except ValueError as e:
        raise RowRejected(f"unreadable {what} {text.strip()!r}") from e
    if value != value or value in (float("inf"), float("-inf")):
        raise RowRejected(f"unreadable {what} {text.strip()!r}")
    return value


def _reps(text: str | None, ctx: _Context) -> int | None:
    value = _number(text, "reps", ctx)
    if value is None:
        return None
    if value != int(value):
        raise RowRejected(f"reps not a whole number ({value:g})")
    return int(value)


def _weight_unit(text: str | None) -> str | None:
    """'kg', 'kgs', 'lbs', 'lb', 'pounds' -> 'kg' | 'lbs'; empty -> None; others reject the row."""
    s = (text or "").strip().lower().rstrip(".")
    if not s:
        return None
    if s in ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"):
        return "kg"
    if s in ("lb", "lbs", "pound", "pounds"):
        return "lbs"
    raise RowRejected(f"unknown weight unit {text.strip()!r} (use kg or lbs)")


def _to_kg(value: float | None, unit: str) -> float | None:
    return None if value is None else round(value * KG_PER_LB, 3) if unit == "lbs" else value


_DISTANCE_M = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metres": 1.0, "km": 1000.0, "kilometers": 1000.0,
               "mi": M_PER_MILE, "mile": M_PER_MILE, "miles": M_PER_MILE, "ft": M_PER_FOOT, "feet": M_PER_FOOT,
               "yd": M_PER_YARD, "yds": M_PER_YARD, "yards": M_PER_YARD}


def _distance_m(value: float | None, unit: str | None) -> float | None:
    if value is None:
        return None
    key = (unit or "km").strip().lower()
    if key not in _DISTANCE_M:
        raise RowRejected(f"unknown distance unit {unit!r}")
    return value * _DISTANCE_M[key]


_DURATION_TOKEN = re.compile(r"(\d+(?:[.,]\d+)?)\s*(h|hr|hrs|hours?|m|min|mins|minutes?|s|sec|secs|seconds?)\b")


def parse_duration_s(text: str | None) -> float | None:
    """Workout/set durations as exports write them -> seconds.

    ``'35m'`` -> 2100, ``'1h 5m'`` -> 3900, ``'1h'`` -> 3600, ``'45s'`` -> 45, ``'1:05:00'`` -> 3900,
    ``'0:45'`` (m:ss) -> 45, a plain number ``'4320'`` -> seconds. Empty -> None; garbage -> RowRejected.
    """
    s = (text or "").strip().lower()
    if not s:
        return None
    if re.fullmatch(r"\d+(?:[.,]\d+)?", s):
        return float(s.replace(",", "."))
    if re.fullmatch(r"\d+(?::\d{1,2}){1,2}(?:\.\d+)?", s):
        total = 0.0
        for part in s.split(":"):
            total = total * 60 + float(part)
        return total
    tokens = _DURATION_TOKEN.findall(s)
    if tokens and not _DURATION_TOKEN.sub("", s).strip():
        unit_s = {"h": 3600.0, "m": 60.0, "s": 1.0}
        return sum(float(n.replace(",", ".")) * unit_s[u[0]] for n, u in tokens)
    raise RowRejected(f"unreadable duration {text.strip()!r}")


# Date-times as the apps write them; ISO forms (with or without offset) go through fromisoformat first.
_DATETIME_FORMATS = (
    "%d %b %Y, %H:%M",        # Hevy: "15 Sep 2025, 07:48"
    "%d %b %Y %H:%M",
    "%d %B %Y, %H:%M",
    "%b %d, %Y, %I:%M %p",    # US app locales: "Sep 15, 2025, 7:48 AM"
    "%b %d, %Y %I:%M %p",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S",      # German-locale Android exports
    "%d.%m.%Y %H:%M",
)
_DATE_FORMATS = ("%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%b %d, %Y")


def parse_local_datetime(text: str | None, zone: timezone | ZoneInfo) -> tuple[datetime, bool]:
    """An export's date or date-time -> (aware UTC datetime, whether a time of day was given).

    Offsets in the text win; naive times are local in ``zone``; a bare date is 12:00 local.
    """
    s = (text or "").strip()
    if not s:
        raise RowRejected("missing date")
    s_fixed = re.sub(r"\bSept\b", "Sep", s)
    parsed: datetime | None = None
    has_time = True
    try:
        parsed = datetime.fromisoformat(s_fixed.replace("Z", "+00:00") if s_fixed.endswith("Z") else s_fixed)
        has_time = bool(re.search(r"\d[T ]\d", s_fixed))
    except ValueError:
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(s_fixed, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            for fmt in _DATE_FORMATS:
                try:
                    parsed, has_time = datetime.strptime(s_fixed, fmt), False
                    break
                except ValueError:
                    continue
    if parsed is None:
        raise RowRejected(f"unreadable date {s!r}")
    if not has_time:
        parsed = datetime.combine(parsed.date(), DEFAULT_SESSION_TIME)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(timezone.utc), has_time


def _rpe(text: str | None, ctx: _Context, warn: Callable[[str], None]) -> float | None:
    """RPE outside 0..10 is dropped with a warning; the set itself is kept."""
    value = _number(text, "RPE", ctx)
    if value is not None and not RPE_RANGE[0] <= value <= RPE_RANGE[1]:
        warn(f"RPE {value:g} outside {RPE_RANGE[0]:g}..{RPE_RANGE[1]:g}, ignored")
        return None
    return value


def _session_duration(value: float | None, warn: Callable[[str], None]) -> float | None:
    if value is not None and not 0 <= value <= MAX_SESSION_DURATION_S:
        warn(f"workout duration {value:g} s outside 0..{MAX_SESSION_DURATION_S:g} s, ignored")
        return None
    return value


def _set_row(row: int, start: datetime, *, session_duration_s=None, title=None, exercise, category=None,
             set_type="working", reps=None, weight_kg=None, duration_s=None, rpe=None,
             distance_m=None) -> SetRow:
    exercise = (exercise or "").strip()
    if not exercise:
        raise RowRejected("missing exercise name")
    check_set_values(reps, weight_kg, duration_s, distance_m)
    return SetRow(row=row, start_utc=start, session_duration_s=session_duration_s,
                  title=(title or "").strip() or None, exercise=exercise,
                  category=(category or "").strip() or None, set_type=set_type, reps=reps,
                  weight_kg=weight_kg, duration_s=duration_s, rpe=rpe, distance_m=distance_m)


def _first(rec: dict[str, str], *names: str) -> str | None:
    for n in names:
        if n in rec:
            return rec[n]
    return None


def _unit_in_header(cols: list[str], prefix: str) -> str | None:
    """'weight (kg)' -> 'kg', 'weight (lbs)' -> 'lbs', 'weight_lbs' -> 'lbs' for the first column found."""
    for c in cols:
        m = re.fullmatch(rf"{prefix}\s*\((\w+)\)|{prefix}_(\w+)", c)
        if m:
            return _weight_unit(m.group(1) or m.group(2))
    return None


# ----------------------------------------------------------------------------------------- layouts
# Each layout turns one record (header key -> cell text) into zero or more SetRows, or raises
# RowRejected. Zero rows = a row that is not a set (Strong "Rest Timer"/"Note" rows).

_STRONG_ORDER = {"w": "warmup", "d": "drop", "f": "failure"}
_STRONG_NOT_A_SET = {"rest timer", "note", "notes"}


def _strong_rows(rec: dict[str, str], row: int, cols: list[str], ctx: _Context, warn) -> list[SetRow]:
    # Classic:  Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,Notes,
    #           Workout Notes,RPE
    #           2024-11-28 17:36:08,"B",35m,"Bent Over Row (Barbell)",1,10.0,13.0,0,0.0,,,
    # Newer:    ... ,Weight,Weight Unit,Reps,Distance,Distance Unit,Seconds, ...     (kg|lbs, km|mi|m|ft)
    # Android:  "Date";"Workout Name";"Exercise Name";"Set Order";"Weight";"Reps";...;"Duration"  62,5
    # Quoted:   "Workout #","Date","Workout Name","Duration (sec)","Exercise Name","Set Order",
    #           "Weight (kg)","Reps","RPE","Distance (meters)","Seconds","Notes","Workout Notes"
    order = (rec.get("set order") or "").strip()
    if order.lower() in _STRONG_NOT_A_SET:
        return []
    set_type = _STRONG_ORDER.get(order.lower(), "working")
    start, _ = parse_local_datetime(rec.get("date"), ctx.zone)
    unit = (_weight_unit(rec.get("weight unit")) or _unit_in_header(cols, "weight")
            or ctx.default_weight_unit)
    weight = _number(_first(rec, "weight", "weight (kg)", "weight (kgs)", "weight (lbs)", "weight (lb)"),
                     "weight", ctx)
    dist_col = next((c for c in cols if c.startswith("distance") and c != "distance unit"), None)
    dist_unit = (rec.get("distance unit") or "").strip() or None
    if dist_unit is None and dist_col:
        m = re.fullmatch(r"distance \((\w+)\)", dist_col)
        dist_unit = m.group(1) if m else ("mi" if unit == "lbs" else "km")
    seconds = _number(_first(rec, "seconds", "time"), "seconds", ctx)
    duration_text = _first(rec, "duration", "duration (sec)", "duration (s)")
    return [_set_row(
        row, start,
        session_duration_s=_session_duration(parse_duration_s(duration_text), warn),
        title=rec.get("workout name"), exercise=rec.get("exercise name"), set_type=set_type,
        reps=_reps(rec.get("reps"), ctx), weight_kg=_to_kg(weight, unit),
        duration_s=seconds or None,  # Strong writes 0 for "not timed"
        rpe=_rpe(rec.get("rpe"), ctx, warn),
        distance_m=_distance_m(_number(rec.get(dist_col) if dist_col else None, "distance", ctx),
                               dist_unit) or None,
    )]


_HEVY_SET_TYPES = {"warmup": "warmup", "normal": "working", "dropset": "drop", "failure": "failure"}


def _hevy_rows(rec: dict[str, str], row: int, cols: list[str], ctx: _Context, warn) -> list[SetRow]:
    # "title","start_time","end_time","description","exercise_title","superset_id","exercise_notes",
    #   "set_index","set_type","weight_kg","reps","distance_km","duration_seconds","rpe"
    # "Lower // Ramp // Strength // 1","15 Sep 2025, 07:48","15 Sep 2025, 09:13","","Squat (Barbell)",,"",
    #   2,"normal",77.5,10,,0,9
    start, _ = parse_local_datetime(rec.get("start_time"), ctx.zone)
    duration = None
    if (rec.get("end_time") or "").strip():
        end, _ = parse_local_datetime(rec.get("end_time"), ctx.zone)
        duration = _session_duration((end - start).total_seconds(), warn)
    raw_type = (rec.get("set_type") or "").strip().lower()
    set_type = _HEVY_SET_TYPES.get(raw_type)
    if set_type is None:
        if raw_type:
            warn(f"unknown set_type {raw_type!r}, counted as a working set")
        set_type = "working"
    if "weight_lbs" in rec:
        weight_kg = _to_kg(_number(rec.get("weight_lbs"), "weight", ctx), "lbs")
    else:
        weight_kg = _to_kg(_number(rec.get("weight_kg"), "weight", ctx), "kg")
    if "distance_miles" in rec:
        distance_m = _distance_m(_number(rec.get("distance_miles"), "distance", ctx), "mi")
    else:
        distance_m = _distance_m(_number(rec.get("distance_km"), "distance", ctx), "km")
    return [_set_row(
        row, start, session_duration_s=duration, title=rec.get("title"), exercise=rec.get("exercise_title"),
        set_type=set_type, reps=_reps(rec.get("reps"), ctx), weight_kg=weight_kg,
        duration_s=_number(rec.get("duration_seconds"), "duration_seconds", ctx) or None,
        rpe=_rpe(rec.get("rpe"), ctx, warn), distance_m=distance_m or None,
    )]


def _fitnotes_rows(rec: dict[str, str], row: int, cols: list[str], ctx: _Context, warn) -> list[SetRow]:
    # Date,Exercise,Category,Weight (kgs),Reps,Distance,Distance Unit,Time,Comment
    # 2024-03-04,Flat Barbell Bench Press,Chest,60.0,8,,,,
    # (newer: ...,Weight,Weight Unit,Reps,... with Weight Unit kgs|lbs). No time of day: one session
    # per date at 12:00 local; every set is a working set (FitNotes has no set types).
    start, _ = parse_local_datetime(rec.get("date"), ctx.zone)
    unit = (_weight_unit(rec.get("weight unit")) or _unit_in_header(cols, "weight")
            or ctx.default_weight_unit)
    weight = _number(_first(rec, "weight", "weight (kgs)", "weight (kg)", "weight (lbs)", "weight (lb)"),
                     "weight", ctx)
    distance = _number(rec.get("distance"), "distance", ctx)
    return [_set_row(
        row, start, exercise=rec.get("exercise"), category=rec.get("category"),
        reps=_reps(rec.get("reps"), ctx), weight_kg=_to_kg(weight, unit),
        duration_s=parse_duration_s(rec.get("time")) or None,
        distance_m=_distance_m(distance, (rec.get("distance unit") or "").strip() or "km") or None,
    )]


def _generic_rows(rec: dict[str, str], row: int, cols: list[str], ctx: _Context, warn) -> list[SetRow]:
    # date,exercise,sets,reps,weight,unit,rpe
    # 2025-01-06,Back squat,3,5,100,kg,8        -> three working sets of 5 x 100 kg, session 12:00 local
    # 2025-01-06 18:30,Pull-up,4,8,,,           -> four sets of 8 at body weight (weight empty)
    start, _ = parse_local_datetime(rec.get("date"), ctx.zone)
    unit = _weight_unit(rec.get("unit")) or ctx.default_weight_unit
    n_sets = _number(rec.get("sets"), "sets", ctx)
    n_sets = 1 if n_sets is None else n_sets
    if n_sets != int(n_sets) or not 1 <= n_sets <= MAX_SETS_PER_ROW:
        raise RowRejected(f"sets must be a whole number 1..{MAX_SETS_PER_ROW} ({n_sets:g})")
    one = _set_row(row, start, exercise=rec.get("exercise"), reps=_reps(rec.get("reps"), ctx),
                   weight_kg=_to_kg(_number(rec.get("weight"), "weight", ctx), unit),
                   rpe=_rpe(rec.get("rpe"), ctx, warn))
    return [one] * int(n_sets)


_LAYOUTS = {"strong_csv": _strong_rows, "hevy_csv": _hevy_rows, "fitnotes_csv": _fitnotes_rows,
            "generic_csv": _generic_rows}


# ------------------------------------------------------------------------------------------- parsing


def _records(text: str, delim: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based starting line, fields) per non-blank CSV record; quoted newlines stay inside a record.

    Raises :class:`ReadError` naming the line when the csv module cannot go on (a cell beyond its
    128 KiB field limit, as in a binary file or an unclosed quote swallowing the rest of the file).
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    last = 0
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            if any(f.strip() for f in fields):
                yield start, fields
    except csv.Error as e:
        raise ReadError(f"CSV: cannot read past line {last + 1} ({e}: an unclosed quote or binary data?)") from e


def _csv_set_rows(text: str, cols: list[str], delim: str, layout, ctx: _Context) -> tuple[list[SetRow], list[str], int, int]:
    """Every record after the header through ``layout``: (set rows, warnings, rows rejected, records)."""
    rows: list[SetRow] = []
    warnings: list[str] = []
    rejected = n_records = 0
    records = _records(text, delim)
    next(records, None)  # the header
    for line, fields in records:
        n_records += 1
        row_warnings: list[str] = []
        try:
            if len(fields) != len(cols):
                # Trailing empty cells are harmless (Excel pads); anything else is a broken row.
                if len(fields) > len(cols) and not any(f.strip() for f in fields[len(cols):]):
                    fields = fields[: len(cols)]
                else:
                    raise RowRejected(f"expected {len(cols)} fields, found {len(fields)}")
            rows.extend(layout(dict(zip(cols, fields)), line, cols, ctx, row_warnings.append))
        except RowRejected as e:
            rejected += 1
            warnings.append(f"row {line}: {e}")
            continue
        warnings.extend(f"row {line}: {w}" for w in row_warnings)
    return rows, warnings, rejected, n_records


def _capped(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more"]


def parse_strength_csv(
    data: bytes, *, path: str, file_id: str, athlete_id: str, athlete: AthleteConfig, fmt: str
) -> ParsedFile:
    """Read a strength-log CSV (``fmt`` from :func:`sniff_strength_csv`) into a :class:`ParsedFile`.

    Like every reader it raises for what it cannot read: :class:`ReadError` when nothing usable came out
    (unknown layout, a header that does not match it, a bad time zone, every row rejected — the rejected
    rows ride along in ``ReadError.warnings``) and :class:`NothingToIngest` for a header without rows.
    Otherwise ``message`` summarises ("12 sessions, 143 sets (118 working); 2 rows rejected") and
    ``warnings`` lists every rejected row ("row 17: negative reps (-3)").
    """
    layout = _LAYOUTS.get(fmt)
    if layout is None:
        raise ReadError(f"unknown strength layout {fmt!r}", fmt=fmt)
    text = _decode(data)
    cols, delim = _header(text)
    if _sniff_columns(set(cols)) != fmt:
        raise ReadError(f"header does not match the {fmt} layout: {', '.join(cols[:8]) or '(empty file)'}",
                        fmt=fmt)
    try:
        ctx = _Context(zone=_zone(athlete.time_zone), default_weight_unit=athlete.weight_unit or "kg",
                       decimal_comma=delim != ",")
    except RowRejected as e:
        raise ReadError(str(e), fmt=fmt) from e
    rows, warnings, rejected, n_records = _csv_set_rows(text, cols, delim, layout, ctx)
    sessions, sets = strength_frames(rows, athlete_id=athlete_id, file_id=file_id, source_format=fmt)
    if not len(sessions):
        if n_records == 0:
            raise NothingToIngest("strength log without any rows (header only)", fmt=fmt)
        first = f" (first: {warnings[0]})" if warnings else ""
        raise ReadError(f"no usable sets: {rejected} of {n_records} rows rejected{first}", fmt=fmt,
                        warnings=_capped(warnings))
    return ParsedFile(path=path, file_id=file_id, athlete_id=athlete_id, format=fmt, size_bytes=len(data),
                      status="ok", message=summary_message(sessions, sets, rejected), strength_sessions=sessions,
                      strength_sets=sets, warnings=_capped(warnings))
