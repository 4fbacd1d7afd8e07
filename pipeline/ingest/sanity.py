"""The sanity gate: every reader's result passes here before anything reaches the warehouse.

Readers (FIT, GPX, TCX, strength CSVs) turn bytes into frames faithfully; devices, sync tools and broken
files still produce impossible values: a phone app dating a run in the year 7494 and the rest of it at
1970-01-01, heart rate 0 or 254 everywhere, 50 m/s on foot, latitudes of 400 degrees, distances wrapped
to 42,950 km, shuffled or repeated timestamps. :func:`apply_sanity` is called once per file by the
dispatcher (:mod:`pipeline.ingest.dispatch`) after the reader returns, whatever the format, and applies
the named rules below (defaults in :class:`SanityRules`, ``[ingest]`` of pipeline.toml, docs/ingest.md
"Sanity gate"). What a rule removed is said in the file's message (``sanity <rule>: ...``); an activity
that cannot be repaired is rejected with the reason, and a file left with nothing is an ``error``.

Rules on time (per activity, in file order):

- ``time_range``: a timestamp before ``earliest_year`` or after now + ``future_days`` is impossible;
- ``time_order``: a point dated before an earlier point of the file (the longest non-decreasing run of
  times is kept, so one stray point never costs the rest);
- ``bad_time_share``: when more than ``max_bad_time_share`` of an activity's points fail the two rules
  above, its clock cannot be trusted and the activity is rejected (unless a start time given by a Strava
  export's activities.csv lets the relative times be placed: see :func:`_rebase_on_hint`);
- ``duplicate_time``: points repeating a timestamp are collapsed to the first;
- ``activity_length``: an activity spanning more than ``max_activity_h`` is rejected.

Rules on values (a bad value becomes NULL, the point stays): ``speed`` (over ``max_foot_speed_m_s`` for
on-foot sports, ``max_speed_m_s`` otherwise), ``heart_rate``, ``position`` (latitude/longitude outside the
globe: both removed), ``distance`` (negative, beyond ``max_distance_m`` or going back by more than
``distance_backstep_m``: a wrapped counter), ``altitude``, ``cadence``, ``power``, ``temperature``; and
the same bounds on the activity and lap summaries. Strength sessions dated outside ``time_range`` are
dropped (``strength_date``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.formulas import haversine_m
from pipeline.ingest.common import activity_id_for
from pipeline.ingest.parsed import Columns, ParsedFile, Rows
from pipeline.settings import Bounds, settings_from_section

# Sports moved on foot: their speed ceiling is max_foot_speed_m_s (docs/ingest.md).
FOOT_SPORTS = ("running", "walking", "hiking")
# A device's session start may precede its first record by this much without being a time glitch.
START_SLACK_S = 60.0


@dataclass(frozen=True)
class SanityRules:
    """Bounds of the sanity gate (``[ingest]`` of pipeline.toml); docs/ingest.md explains each."""

    earliest_year: int = 2000             # GPS sport watches and phone apps record from ~2000 on
    future_days: float = 1.0              # later than now + 1 day: a wrong clock (time zones need < 1 day)
    max_bad_time_share: float = 0.2       # more points than this with impossible/backwards times: reject
    max_activity_h: float = 48.0          # longer than 48 h is a clock jump, not an activity (ultras < 48 h)
    max_foot_speed_m_s: float = 12.0      # faster than the fastest sprinters (~12.4 m/s peak) on foot
    max_speed_m_s: float = 40.0           # 144 km/h: beyond human-powered sport (and a downhill bike)
    hr_range_bpm: tuple[float, float] = (25.0, 250.0)  # lowest resting to above the highest recorded max
    altitude_range_m: tuple[float, float] = (-500.0, 9000.0)  # Dead Sea shore to above Everest
    cadence_range_spm: tuple[float, float] = (0.0, 300.0)
    power_range_w: tuple[float, float] = (0.0, 3000.0)
    temperature_range_c: tuple[float, float] = (-60.0, 60.0)
    max_distance_m: float = 1_000_000.0   # 1,000 km in one activity
    distance_backstep_m: float = 5.0      # cumulative distance may jitter back this much, no more

    @classmethod
    def from_config(cls, section: dict | None) -> SanityRules:
        """From the ``[ingest]`` section of pipeline.toml (:func:`pipeline.settings.settings_from_section`)."""
        return settings_from_section(cls, section, "ingest")

    @classmethod
    def setting_bounds(cls, key: str, whole: bool = False) -> Bounds:
        """Allowed range of one ``[ingest]`` setting (:data:`INGEST_SETTING_BOUNDS`)."""
        return INGEST_SETTING_BOUNDS[key]

    def validate(self) -> None:
        """Reject bounds that cannot work, naming the key."""
        def bad(key: str, why: str) -> PipelineError:
            return PipelineError(f"pipeline.toml [ingest]: {key} {why}")
        if not 1970 <= self.earliest_year <= pd.Timestamp.now(tz="UTC").year:
            raise bad("earliest_year", f"must be between 1970 and this year, got {self.earliest_year}")
        if not 0 < self.max_bad_time_share < 1:
            raise bad("max_bad_time_share", "must be between 0 and 1")
        for key in ("future_days", "max_activity_h", "max_foot_speed_m_s", "max_speed_m_s", "max_distance_m"):
            if getattr(self, key) <= 0:
                raise bad(key, "must be > 0")
        if self.distance_backstep_m < 0:
            raise bad("distance_backstep_m", "must be >= 0")
        for key in ("hr_range_bpm", "altitude_range_m", "cadence_range_spm", "power_range_w",
                    "temperature_range_c"):
            lo, hi = getattr(self, key)
            if not lo < hi:
                raise bad(key, f"must be [low, high] with low < high, got [{lo}, {hi}]")

    def time_bounds(self, now: pd.Timestamp | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """(earliest, latest) acceptable timestamp, UTC."""
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        return (pd.Timestamp(year=self.earliest_year, month=1, day=1, tz="UTC"),
                now + pd.Timedelta(days=self.future_days))


# Allowed values of the [ingest] settings: wide enough for any real device or sport, narrow enough that a
# typo (max_activity_h = 1e300, an altitude range in feet x 1000) is refused with the range named.
INGEST_SETTING_BOUNDS = {
    "earliest_year": Bounds(1970, 2100, whole=True, unit="(year)"),
    "future_days": Bounds(0, 30, low_open=True, unit="days"),
    "max_bad_time_share": Bounds(0, 1, low_open=True),
    "max_activity_h": Bounds(0, 14 * 24, low_open=True, unit="h"),
    "max_foot_speed_m_s": Bounds(0, 15, low_open=True, unit="m/s"),
    "max_speed_m_s": Bounds(0, 100, low_open=True, unit="m/s"),
    "hr_range_bpm": Bounds(0, 300, unit="bpm"),
    "altitude_range_m": Bounds(-1000, 10_000, unit="m"),
    "cadence_range_spm": Bounds(0, 500, unit="steps/min"),
    "power_range_w": Bounds(0, 5000, unit="W"),
    "temperature_range_c": Bounds(-90, 90, unit="degC"),
    "max_distance_m": Bounds(0, 10_000_000, low_open=True, unit="m"),
    "distance_backstep_m": Bounds(0, 1000, unit="m"),
}


# ------------------------------------------------------------------------------------------ findings


@dataclass
class Findings:
    """What the gate did to one file: counts per (rule, wording), rejected activities, other notes."""

    removed: Counter
    rejected: list[str]
    notes: list[str]

    @classmethod
    def empty(cls) -> Findings:
        return cls(Counter(), [], [])

    def count(self, rule: str, what: str, n: int) -> None:
        if n:
            self.removed[(rule, what)] += int(n)

    def warnings(self) -> list[str]:
        """Sentences for the file's message, rejections first (``sanity <rule>: ...``)."""
        out = [f"sanity {rule}: {n} {what}" for (rule, what), n in self.removed.items()]
        return [f"sanity {r}" for r in self.rejected] + self.notes + out


def _fmt_ts(t: pd.Timestamp) -> str:
    return "?" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M:%S}"


def _fmt_range(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


# ------------------------------------------------------------------------------------------ time


def longest_non_decreasing(values: np.ndarray) -> np.ndarray:
    """Boolean mask of one longest non-decreasing subsequence of ``values`` (O(n log n), patience sort).

    The points outside it are the fewest that must go for time to run forwards.
    """
    n = len(values)
    if n == 0 or bool(np.all(np.diff(values) >= 0)):
        return np.ones(n, dtype=bool)
    tails: list[int] = []        # smallest tail value of a subsequence of each length
    tail_at: list[int] = []      # index of that tail
    back = [-1] * n
    for i, x in enumerate(values.tolist()):
        j = bisect_right(tails, x)
        if j == len(tails):
            tails.append(x)
            tail_at.append(i)
        else:
            tails[j] = x
            tail_at[j] = i
        back[i] = tail_at[j - 1] if j else -1
    keep = np.zeros(n, dtype=bool)
    k = tail_at[-1]
    while k >= 0:
        keep[k] = True
        k = back[k]
    return keep


def _as_us(ts: np.ndarray) -> np.ndarray:
    """datetime64 values (any resolution) as int64 microseconds since 1970 (NaT -> min int)."""
    return ts.astype("datetime64[us]", copy=False).view(np.int64)


def _stamp(value: np.datetime64) -> pd.Timestamp:
    """One value of a samples ``ts`` column (UTC, no zone attached) as a UTC Timestamp (NaT stays NaT)."""
    return pd.Timestamp(value).tz_localize("UTC")


def _utc_index(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ts).tz_localize("UTC")


def _us_at_or_after(t: pd.Timestamp) -> int:
    """The first whole microsecond at or after ``t`` (``ts_us >= this`` is ``ts >= t``)."""
    return -(-t.value // 1000)


@dataclass(frozen=True)
class TimeVerdict:
    """The time rules on one activity: the points kept (mask over its samples) or why it is rejected."""

    keep: np.ndarray | None
    reason: str | None = None
    shifted_by: pd.Timedelta | None = None    # set when relative times were placed on a start hint


def _time_verdict(ts: np.ndarray, rules: SanityRules, bounds: tuple[pd.Timestamp, pd.Timestamp],
                  start_hint: pd.Timestamp | None, findings: Findings) -> TimeVerdict:
    """Apply time_range, time_order, bad_time_share and duplicate_time to one activity's timestamps
    (datetime64, UTC): on whole microseconds, so ``lo <= ts <= hi`` is exact at any resolution."""
    n = len(ts)
    lo, hi = bounds
    us = _as_us(ts)
    in_range = (us >= _us_at_or_after(lo)) & (us <= hi.value // 1000)   # NaT is the smallest int: out
    ordered = np.zeros(n, dtype=bool)
    ordered[in_range] = longest_non_decreasing(us[in_range])
    n_out, n_back = int((~in_range).sum()), int(in_range.sum() - ordered.sum())
    if n_out + n_back > rules.max_bad_time_share * n:
        if start_hint is not None:
            rebased = _rebase_on_hint(ts, us, rules, start_hint, findings)
            if rebased is not None:
                return rebased
        return TimeVerdict(None, _bad_time_reason(ts, in_range, n_out, n_back, bounds))
    findings.count("time_range", f"point(s) dated outside {lo:%Y-%m-%d} .. now + {rules.future_days:g} day "
                                 "removed", n_out)
    findings.count("time_order", "point(s) dated before an earlier point removed", n_back)
    return TimeVerdict(_first_of_each_time(us, ordered, findings))


def _first_of_each_time(us: np.ndarray, keep: np.ndarray, findings: Findings) -> np.ndarray:
    """duplicate_time: among kept points (non-decreasing in file order) keep the first of equal times."""
    idx = np.flatnonzero(keep)
    repeat = np.zeros(len(idx), dtype=bool)
    repeat[1:] = us[idx[1:]] == us[idx[:-1]]
    findings.count("duplicate_time", "point(s) repeating a timestamp collapsed", int(repeat.sum()))
    out = keep.copy()
    out[idx[repeat]] = False
    return out


def _bad_time_reason(ts: np.ndarray, in_range: np.ndarray, n_out: int, n_back: int,
                     bounds: tuple[pd.Timestamp, pd.Timestamp]) -> str:
    n = len(ts)
    if n_out >= n_back:
        out = _utc_index(ts[~in_range]).dropna()
        span = f" ({_fmt_ts(out.min())} .. {_fmt_ts(out.max())})" if len(out) else " (no valid time)"
        early = int((out < bounds[0]).sum())
        hint = (": the device clock was not set, so the date of the recording is unknown"
                if early and early >= len(out) / 2 else "")
        return (f"time_range: {n_out} of {n} timestamps outside {bounds[0]:%Y-%m-%d} .. now + 1 day"
                f"{span}{hint}")
    return f"time_order: {n_back} of {n} points are dated before an earlier point (clock jumps)"


def _rebase_on_hint(ts: np.ndarray, us: np.ndarray, rules: SanityRules, start_hint: pd.Timestamp,
                    findings: Findings) -> TimeVerdict | None:
    """Place times relative to a clock that was never set (1970 + offset) on a start given elsewhere.

    A phone app that lost its clock writes the run at 1970-01-01 + elapsed time (and sometimes one point
    in the far future). When a Strava export's activities.csv gives the activity's start, the points
    before ``earliest_year`` that run forwards are the recording: they are moved to start there.
    """
    earliest = pd.Timestamp(year=rules.earliest_year, month=1, day=1, tz="UTC")
    early = ~np.isnat(ts) & (us < _us_at_or_after(earliest))
    ordered = np.zeros(len(ts), dtype=bool)
    ordered[early] = longest_non_decreasing(us[early])
    if ordered.sum() < (1 - rules.max_bad_time_share) * len(ts):
        return None
    keep = _first_of_each_time(us, ordered, findings)
    first = _stamp(ts[keep].min())
    shift = start_hint - first
    findings.notes.append(
        f"sanity time_range: times dated {_fmt_ts(first)} (a clock that was never set) placed on the "
        f"start {_fmt_ts(start_hint)} given by activities.csv; {int((~keep).sum())} other point(s) removed")
    return TimeVerdict(keep, shifted_by=shift)


# ------------------------------------------------------------------------------------------ values


def _bad(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Present values that are not finite or outside [lo, hi]."""
    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & (~np.isfinite(values) | (values < lo) | (values > hi))


def _bad_value(value: float, lo: float, hi: float) -> bool:
    """:func:`_bad` of one number."""
    return not math.isnan(value) and (not math.isfinite(value) or value < lo or value > hi)


def _channel_bounds(rules: SanityRules, sport: str) -> list[tuple[str, str, tuple[float, float], str]]:
    """(column, rule, (low, high), words) of every bounded sample channel, for an activity of ``sport``."""
    top = rules.max_foot_speed_m_s if sport in FOOT_SPORTS else rules.max_speed_m_s
    r = rules
    return [
        ("speed_m_s", "speed", (0.0, top), f"speed value(s) outside 0-{top:g} m/s ({sport}) removed"),
        ("heart_rate_bpm", "heart_rate", r.hr_range_bpm,
         f"heart-rate value(s) outside {_fmt_range(*r.hr_range_bpm)} bpm removed"),
        ("altitude_m", "altitude", r.altitude_range_m,
         f"altitude value(s) outside {_fmt_range(*r.altitude_range_m)} m removed"),
        ("cadence_spm", "cadence", r.cadence_range_spm,
         f"cadence value(s) outside {_fmt_range(*r.cadence_range_spm)} steps/min removed"),
        ("power_w", "power", r.power_range_w, f"power value(s) outside {_fmt_range(*r.power_range_w)} W removed"),
        ("temperature_c", "temperature", r.temperature_range_c,
         f"temperature value(s) outside {_fmt_range(*r.temperature_range_c)} C removed"),
    ]


def _without(values: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """A copy of ``values`` with the ``bad`` ones NaN (the reader's array is left as it was)."""
    out = values.copy()
    out[bad] = np.nan
    return out


def _clean_channels(samples: Columns, sport: str, rules: SanityRules, findings: Findings) -> Columns:
    """Bounded channels, positions and distance of one activity's samples: bad values become NaN."""
    out = {}
    for col, rule, (lo, hi), words in _channel_bounds(rules, sport):
        bad = _bad(samples[col], lo, hi)
        if bad.any():
            out[col] = _without(samples[col], bad)
            findings.count(rule, words, int(bad.sum()))
    lat, lon = samples["lat_deg"], samples["lon_deg"]
    bad = _bad(lat, -90, 90) | _bad(lon, -180, 180) | (np.isnan(lat) != np.isnan(lon))
    if bad.any():
        out["lat_deg"], out["lon_deg"] = _without(lat, bad), _without(lon, bad)
        findings.count("position", "position(s) outside the globe (or half missing) removed", int(bad.sum()))
    bad = _distance_glitches(samples["distance_m"], rules)
    if bad.any():
        out["distance_m"] = _without(samples["distance_m"], bad)
        findings.count("distance", f"distance value(s) negative, beyond {rules.max_distance_m / 1000:g} km or "
                                   f"going back more than {rules.distance_backstep_m:g} m removed", int(bad.sum()))
    return samples.assign(**out) if out else samples


def _distance_glitches(distance: np.ndarray, rules: SanityRules) -> np.ndarray:
    """Cumulative distance values that cannot be right: out of range, or off the non-decreasing course.

    The longest non-decreasing run of values is the course; a value below it by at most
    ``distance_backstep_m`` (device jitter) is kept too. A wrapped 32-bit counter (42,950 km) or a
    bit-flipped value therefore costs only itself.
    """
    bad = _bad(distance, 0.0, rules.max_distance_m)
    valid = np.flatnonzero(~np.isnan(distance) & ~bad)
    if len(valid) < 2:
        return bad
    values = distance[valid]
    on_course = longest_non_decreasing(values)
    course = np.where(on_course, values, -np.inf)
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(course)[:-1]])
    off = ~on_course & (values < best_before - rules.distance_backstep_m)
    # a value above the course (a spike) is off it as well: it breaks the order for every later point
    nxt = np.where(on_course, values, np.inf)
    best_after = np.concatenate([np.minimum.accumulate(nxt[::-1])[::-1][1:], [np.inf]])
    off |= ~on_course & (values > best_after + rules.distance_backstep_m)
    bad[valid[off]] = True
    return bad


# ------------------------------------------------------------------------------------------ activities


@dataclass(frozen=True)
class ActivityResult:
    """One activity after the gate: its row (None = rejected), samples, and the time shift applied."""

    row: dict | None
    samples: Columns
    shifted_by: pd.Timedelta | None = None


def _summary_value(value, lo: float, hi: float) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and lo <= v <= hi else None


def _new_start(row: dict, ts: np.ndarray, time_changed: bool, bounds) -> pd.Timestamp:
    """The activity's start after the time rules: the device's unless it is impossible or was a glitch.
    ``ts``: the kept samples' times (none of them NaT)."""
    start = row["start_time"]
    first = _stamp(ts.min()) if len(ts) else pd.NaT
    ok = not pd.isna(start) and bounds[0] <= start <= bounds[1]
    if pd.isna(first):
        return start if ok else pd.NaT
    if not ok or start > first or (time_changed and (first - start).total_seconds() > START_SLACK_S):
        return first
    return start


def _rejected(label: str, rule_and_reason: str, samples: Columns, findings: Findings) -> ActivityResult:
    """An activity the gate rejects: the reason in the file's findings, no row and no samples."""
    findings.rejected.append(f"{rule_and_reason.split(':', 1)[0]}: {label} rejected: "
                             f"{rule_and_reason.split(': ', 1)[1]}")
    return ActivityResult(None, samples.take(np.zeros(len(samples), dtype=bool)))


def _gate_activity(row: dict, samples: Columns, rules: SanityRules, bounds, start_hint,
                   findings: Findings) -> ActivityResult:
    """Time rules, activity_length and channel bounds on one activity (row = its activities row)."""
    label = f"activity {row['session_index']} ({row['sport']}, start {_fmt_ts(row['start_time'])})"
    verdict = _time_verdict(samples["ts"], rules, bounds, start_hint, findings)
    if verdict.keep is None:
        return _rejected(label, verdict.reason, samples, findings)
    kept = samples if verdict.keep.all() else samples.take(verdict.keep)
    time_changed = not verdict.keep.all() or verdict.shifted_by is not None
    if verdict.shifted_by is not None:
        kept = kept.assign(ts=(pd.DatetimeIndex(kept["ts"]) + verdict.shifted_by).to_numpy())
        row = {**row, "start_time": _stamp(kept["ts"].min())}
    start = _new_start(row, kept["ts"], time_changed, bounds)
    if pd.isna(start):
        return _rejected(label, "time_range: no sample and no valid start time", samples, findings)
    last = _stamp(kept["ts"].max()) if len(kept) else pd.NaT
    span_s = (last - start).total_seconds() if len(kept) else 0.0
    if span_s > rules.max_activity_h * 3600:
        return _rejected(label, f"activity_length: it spans {span_s / 3600:,.1f} h ({_fmt_ts(start)} .. "
                                f"{_fmt_ts(last)}), more than {rules.max_activity_h:g} h: a clock jump, not an "
                                "activity", samples, findings)
    if start != row["start_time"] or time_changed:
        # as pandas computes it (Series.dt.total_seconds), so elapsed_s is the same to the last bit
        kept = kept.assign(elapsed_s=(_utc_index(kept["ts"]) - start).total_seconds().to_numpy())
    kept = _clean_channels(kept, str(row["sport"]), rules, findings)
    return ActivityResult(_summary_row(row, kept, start, span_s, time_changed, rules), kept, verdict.shifted_by)


def _summary_row(row: dict, kept: Columns, start: pd.Timestamp, span_s: float, time_changed: bool,
                 rules: SanityRules) -> dict:
    """The activities row after the gate: new start/id, impossible summaries recomputed or NULL."""
    out = dict(row)
    max_s = rules.max_activity_h * 3600
    out["start_time"] = start
    elapsed = _summary_value(row["elapsed_s"], 0.0, max_s)
    out["elapsed_s"] = span_s if (elapsed is None or time_changed) else elapsed
    out["timer_s"] = _summary_value(row["timer_s"], 0.0, max_s)
    hr = kept["heart_rate_bpm"]
    out["avg_heart_rate_bpm"] = _summary_value(row["avg_heart_rate_bpm"], *rules.hr_range_bpm)
    if out["avg_heart_rate_bpm"] is None and (~np.isnan(hr)).any():
        out["avg_heart_rate_bpm"] = float(np.nanmean(hr))
    out["distance_m"] = _summary_value(row["distance_m"], 0.0, rules.max_distance_m)
    if out["distance_m"] is None:
        out["distance_m"] = _summary_value(_distance_from_samples(kept), 0.0, rules.max_distance_m)
    out["n_samples"] = len(kept)
    if start != row["start_time"]:
        out["activity_id"] = activity_id_for(str(row["athlete_id"]), start, int(row["session_index"]))
    return out


def _distance_from_samples(samples: Columns) -> float | None:
    d = samples["distance_m"]
    if (~np.isnan(d)).any():
        return float(np.nanmax(d))
    lat, lon = samples["lat_deg"], samples["lon_deg"]
    ok = ~(np.isnan(lat) | np.isnan(lon))
    if ok.sum() < 2:
        return None
    return float(np.sum(haversine_m(lat[ok][:-1], lon[ok][:-1], lat[ok][1:], lon[ok][1:])))


def _lap_time(value) -> pd.Timestamp:
    """A lap's start as a UTC Timestamp (NaT when absent or unreadable)."""
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC") if value.tz is not None else value.tz_localize("UTC")
    if value is None:
        return pd.NaT
    out = pd.to_datetime(value, utc=True, errors="coerce")
    return pd.NaT if out is None else out


def _lap_float(value) -> float:
    """A lap value as a float (NaN when absent or not a number)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _gate_laps(laps: list[dict], results: dict[str, ActivityResult], bounds, rules: SanityRules,
               findings: Findings) -> list[dict]:
    """Laps of kept activities only, re-keyed to their (possibly new) ids and moved by their activity's
    time shift; impossible summaries NULL. Row by row: a file has a handful of laps."""
    kept = {a: r for a, r in results.items() if r.row is not None}
    out, n_bad = [], 0
    for lap in laps:
        r = kept.get(lap["activity_id"])
        if r is None:
            continue
        start = _lap_time(lap.get("start_time"))
        if r.shifted_by is not None and not pd.isna(start):
            start = start + r.shifted_by
        if not pd.isna(start) and (start < bounds[0] or start > bounds[1]):
            start, n_bad = pd.NaT, n_bad + 1
        top = rules.max_foot_speed_m_s if str(r.row["sport"]) in FOOT_SPORTS else rules.max_speed_m_s
        new = {**lap, "activity_id": r.row["activity_id"], "start_time": start}
        for col, lo, hi in (("avg_heart_rate_bpm", *rules.hr_range_bpm), ("distance_m", 0.0, rules.max_distance_m),
                            ("elapsed_s", 0.0, rules.max_activity_h * 3600),
                            ("timer_s", 0.0, rules.max_activity_h * 3600), ("avg_speed_m_s", 0.0, top)):
            v = _lap_float(lap.get(col))
            if _bad_value(v, lo, hi):
                v, n_bad = math.nan, n_bad + 1
            new[col] = v
        out.append(new)
    findings.count("laps", "impossible lap value(s) (time, HR, speed, distance) removed", n_bad)
    return out


def _gate_strength(parsed: ParsedFile, bounds, findings: Findings) -> None:
    """strength_date: sessions dated outside the time range are dropped with their sets."""
    if not parsed.n_rows("strength_sessions"):
        return
    sessions = parsed.strength_sessions
    start = pd.to_datetime(sessions["start_time"], utc=True, errors="coerce")
    ok = (start >= bounds[0]) & (start <= bounds[1])
    if ok.all():
        return
    lo, hi = bounds
    findings.count("strength_date", f"strength session(s) dated outside {lo:%Y-%m-%d} .. now + 1 day dropped",
                   int((~ok).sum()))
    parsed.strength_sessions = sessions[ok.to_numpy()].reset_index(drop=True)
    if parsed.n_rows("strength_sets"):
        keep = parsed.strength_sets["session_id"].isin(set(parsed.strength_sessions["session_id"]))
        parsed.strength_sets = parsed.strength_sets[keep].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ the gate


def activities_message(sports: list[str], n_samples: int) -> str:
    """The readers' summary wording: ``2 activities (running, cycling), 7200 samples``."""
    n = len(sports)
    return f"{n} activit{'y' if n == 1 else 'ies'} ({', '.join(sports)}), {n_samples} samples"


def apply_sanity(parsed: ParsedFile, rules: SanityRules | None = None, start_hint: pd.Timestamp | None = None,
                 now: pd.Timestamp | None = None) -> ParsedFile:
    """Apply every rule to one reader result (any format); returns it repaired, or as an ``error``.

    ``start_hint``: the activity's start from elsewhere (a Strava export's activities.csv), used only to
    place times from a clock that was never set (single-activity files). Works on the reader's rows and
    columns (:class:`~pipeline.ingest.parsed.Rows`, :class:`~pipeline.ingest.parsed.Columns`), never
    building a frame for samples, activities or laps.
    """
    if parsed.status != "ok":
        return parsed
    rules = rules or SanityRules()
    bounds = rules.time_bounds(now)
    findings = Findings.empty()
    acts = parsed.rows("activities")
    n_before = (len(acts), parsed.n_rows("strength_sessions"))
    hint = start_hint if len(acts) == 1 else None
    samples = parsed.columns() if acts else None
    results: dict[str, ActivityResult] = {}
    for row in acts:
        own = samples if len(acts) == 1 else samples.take(samples["activity_id"] == row["activity_id"])
        results[row["activity_id"]] = _gate_activity(row, own, rules, bounds, hint, findings)
    if parsed.n_rows("laps"):
        parsed.laps = Rows("laps", _gate_laps(parsed.rows("laps"), results, bounds, rules, findings))
    _gate_strength(parsed, bounds, findings)
    _rebuild(parsed, results)
    if not findings.removed and not findings.rejected and not findings.notes:
        return parsed
    parsed.warnings = findings.warnings() + list(parsed.warnings)
    n_after = (parsed.n_rows("activities"), parsed.n_rows("strength_sessions"))
    if sum(n_after) == 0 and sum(n_before) > 0:
        reasons = "; ".join(findings.rejected) or "; ".join(findings.warnings())
        failed = ParsedFile.failed(parsed.path, parsed.athlete_id, f"sanity gate: nothing plausible left: {reasons}",
                                   file_id=parsed.file_id, fmt=parsed.format, size_bytes=parsed.size_bytes)
        return failed
    if parsed.n_rows("activities"):
        parsed.message = _message_after(parsed)
    return parsed


def _message_after(parsed: ParsedFile) -> str:
    text = parsed.message or ""
    if parsed.n_rows("activities") and " samples" in text and "activit" in text.split(",")[0]:
        return activities_message([str(r["sport"]) for r in parsed.rows("activities")], parsed.n_rows("samples"))
    return text


def _rebuild(parsed: ParsedFile, results: dict[str, ActivityResult]) -> None:
    """Activities rows and samples columns from the per-activity results (ids updated, rejected ones gone)."""
    if not results:
        return
    rows = [r.row for r in results.values() if r.row is not None]
    parts = []
    for old_id, r in results.items():
        if r.row is None:
            continue
        s = r.samples
        if r.row["activity_id"] != old_id:
            s = s.assign(activity_id=np.full(len(s), r.row["activity_id"], dtype=object))
        parts.append(s)
    parsed.activities = Rows("activities", rows)
    parsed.samples = Columns.concat(parts) if parts else parsed.columns().take(np.zeros(0, dtype=int))
