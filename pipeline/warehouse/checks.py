"""Declarative data checks on the warehouse (``pipeline check``; also run by the tests).

The checks are data, in the spirit of dbt's schema tests: :data:`TABLE_CHECKS` says, per table, its key
(unique and not null), other required columns, accepted values, relationships to other tables, plausible
ranges and row conditions. :func:`expand_checks` turns that into named :class:`Check` objects, each one
SQL query selecting the offending rows; :func:`run_checks` runs them all on a read-only connection and
reports every violation (name, count, a few example keys) instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from pipeline.warehouse.contract import (
    ANALYSIS_STATUSES, BLOCK_SOURCES, DOSE_MODERATORS, EFFECT_METHODS, EFFECT_METRICS, ESTIMATE_SOURCES,
    FILE_STATUSES, META_METHODS, PARALLEL_TRENDS, POOLED_TARGETS, SET_TYPES, TREND_SEGMENTS, VERDICTS,
    WEATHER_SOURCES, WEATHER_STATUSES,
)
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

EXAMPLES_SHOWN = 3

# Plausible ranges, inclusive. Heart rate: the highest recorded human HR is ~220-230 bpm, the lowest
# resting ~25-30 in elite endurance athletes. Speed: 15 m/s is faster than any sprinter (~12.4 m/s peak),
# so anything above is GPS noise or a vehicle. m_per_beat: 0.3 is a walk at 1 m/s and 200 bpm, 4 is
# 6 m/s at 90 bpm; outside that the metric is broken, not the athlete.
HR_BPM = (25, 250)
RUN_SPEED_M_S = (0, 15)
M_PER_BEAT = (0.3, 4)
# Any sport: 40 m/s (144 km/h) is beyond human-powered sport; on-foot sports are held to RUN_SPEED_M_S by a
# condition. The ingest sanity gate (pipeline/ingest/sanity.py) is at least as strict as these checks.
ANY_SPEED_M_S = (0, 40)
ON_FOOT_SPORTS = ("running", "walking", "hiking")
_ON_FOOT = ", ".join(f"'{s}'" for s in ON_FOOT_SPORTS)
_ON_FOOT_SPEED = (f"{{col}} IS NULL OR {{col}} <= {RUN_SPEED_M_S[1]} OR activity_id NOT IN "
                  f"(SELECT activity_id FROM activities WHERE sport IN ({_ON_FOOT}))")
# Recordings are dated from 2000 on and never in the future (one day of slack for clocks and zones).
_PLAUSIBLE_TIME = "{col} BETWEEN TIMESTAMPTZ '2000-01-01 00:00:00+00' AND now() + INTERVAL 1 DAY"

# Per table: key (unique + not null), not_null, accepted (column -> values), relationships
# ((columns) -> (table, (columns)); rows with a NULL in the columns are not checked), ranges
# (column -> (min, max), NULLs pass), consistent (column -> (parent table, join key): the column
# equals the parent row's; rows without a parent are left to the relationship check), conditions (name -> SQL that must hold for every row), and
# `where`: an optional filter applied to ranges (e.g. only included runs must have plausible metrics).
TABLE_CHECKS: dict[str, dict] = {
    "pipeline_meta": {"key": ["key"]},
    "athletes": {"key": ["athlete_id"], "ranges": {"hr_rest_bpm": HR_BPM, "hr_max_bpm": HR_BPM}},
    "source_files": {
        "key": ["path"],
        "not_null": ["file_id", "athlete_id", "status", "ingested_at"],
        "accepted": {"status": FILE_STATUSES},
        "ranges": {"size_bytes": (0, None)},
        "conditions": {"errors_have_message": "status <> 'error' OR coalesce(message, '') <> ''"},
    },
    "source_versions": {
        "key": ["path"],
        "not_null": ["file_id", "version"],
        "relationships": {("path",): ("source_files", ("path",))},
    },
    "activities": {
        "key": ["activity_id"],
        "not_null": ["athlete_id", "file_id", "start_time"],
        "relationships": {("file_id",): ("source_files", ("file_id",))},
        "ranges": {"elapsed_s": (0, 7 * 86400), "distance_m": (0, 1_000_000),
                   "avg_heart_rate_bpm": HR_BPM},
        # fitparse names are lower-case words with underscores; unknown sports keep their FIT number.
        "conditions": {"sport_is_a_name_or_number": "sport IS NULL OR regexp_full_match(sport, '[a-z_]+|[0-9]+')",
                       "start_time_plausible": _PLAUSIBLE_TIME.format(col="start_time")},
    },
    "samples": {
        "key": ["activity_id", "ts"],
        "not_null": ["athlete_id"],
        "relationships": {("activity_id",): ("activities", ("activity_id",))},
        # A sample's athlete must be its activity's athlete (exports and queries filter on either).
        "consistent": {"athlete_id": ("activities", "activity_id")},
        "ranges": {"heart_rate_bpm": HR_BPM, "speed_m_s": ANY_SPEED_M_S, "lat_deg": (-90, 90),
                   "lon_deg": (-180, 180), "altitude_m": (-500, 9000), "cadence_spm": (0, 300),
                   "power_w": (0, 3000), "temperature_c": (-60, 60), "distance_m": (0, 1_000_000)},
        "conditions": {"on_foot_speed_plausible": _ON_FOOT_SPEED.format(col="speed_m_s"),
                       "ts_plausible": _PLAUSIBLE_TIME.format(col="ts")},
    },
    "laps": {
        "key": ["activity_id", "lap_index"],
        "relationships": {("activity_id",): ("activities", ("activity_id",))},
        "ranges": {"avg_heart_rate_bpm": HR_BPM, "avg_speed_m_s": ANY_SPEED_M_S, "distance_m": (0, None)},
        "conditions": {"on_foot_speed_plausible": _ON_FOOT_SPEED.format(col="avg_speed_m_s")},
    },
    "strength_sessions": {
        "key": ["session_id"],
        "not_null": ["athlete_id", "start_time", "file_id"],
        "relationships": {("file_id",): ("source_files", ("file_id",))},
        "ranges": {"duration_s": (0, 86400)},
        "conditions": {"start_time_plausible": _PLAUSIBLE_TIME.format(col="start_time")},
    },
    "strength_sets": {
        "key": ["session_id", "set_index"],
        "accepted": {"set_type": SET_TYPES},
        "relationships": {("session_id",): ("strength_sessions", ("session_id",))},
        "ranges": {"reps": (0, 1000), "weight_kg": (0, 600), "rpe": (0, 10), "duration_s": (0, 86400)},
    },
    "declared_blocks": {
        "key": ["athlete_id", "label", "start_date"],
        "conditions": {"ends_after_start": "end_date >= start_date"},
    },
    # Air at 2 m: the records are about -89 C and +57 C; dew point cannot exceed the air temperature by
    # more than rounding; 75 m/s is beyond the strongest measured 10-m winds outside tornadoes.
    "weather": {
        "key": ["activity_id"],
        "not_null": ["athlete_id", "source", "status", "fetched_at"],
        "accepted": {"source": WEATHER_SOURCES, "status": WEATHER_STATUSES},
        "relationships": {("activity_id",): ("activities", ("activity_id",))},
        "consistent": {"athlete_id": ("activities", "activity_id")},
        "ranges": {"air_temperature_c": (-90, 60), "dew_point_c": (-100, 40), "relative_humidity_pct": (0, 100),
                   "wind_speed_m_s": (0, 75), "distance_km": (0, None), "n_hours": (0, None)},
        "conditions": {"ok_rows_have_a_temperature": "status <> 'ok' OR air_temperature_c IS NOT NULL",
                       "no_data_rows_say_why": "status <> 'no_data' OR coalesce(message, '') <> ''",
                       "dew_point_not_above_air": "dew_point_c IS NULL OR air_temperature_c IS NULL "
                                                  "OR dew_point_c <= air_temperature_c + 0.5"},
    },
    "strength_blocks": {
        "key": ["athlete_id", "block_id"],
        "not_null": ["start_date", "end_date"],
        "accepted": {"source": BLOCK_SOURCES},
        "ranges": {"sessions": (0, None), "sessions_per_week": (0, 21), "volume_kg": (0, None)},
        "conditions": {"ends_after_start": "end_date >= start_date"},
    },
    "run_metrics": {
        "key": ["activity_id"],
        "not_null": ["athlete_id", "start_time", "included"],
        "relationships": {("activity_id",): ("activities", ("activity_id",))},
        "where": "included",
        "ranges": {"heart_rate_bpm": HR_BPM, "hr_at_ref_bpm": HR_BPM, "speed_m_s": RUN_SPEED_M_S,
                   "gap_speed_m_s": RUN_SPEED_M_S, "m_per_beat": M_PER_BEAT, "gap_m_per_beat": M_PER_BEAT,
                   "economy_m_per_beat": M_PER_BEAT, "steady_s": (0, None), "decoupling_pct": (-100, 100)},
        "conditions": {"excluded_runs_have_reason": "included OR coalesce(exclusion_reason, '') <> ''"},
    },
    "weekly": {
        "key": ["athlete_id", "week_start"],
        "ranges": {"runs": (0, None), "run_km": (0, None), "strength_sessions": (0, None)},
        "conditions": {"week_starts_on_monday": "isodow(week_start) = 1"},
    },
    "block_effects": {
        "key": ["athlete_id", "block_id", "metric", "method"],
        "accepted": {"metric": EFFECT_METRICS, "method": EFFECT_METHODS, "verdict": VERDICTS},
        "relationships": {("athlete_id", "block_id"): ("strength_blocks", ("athlete_id", "block_id"))},
        "ranges": {"n_baseline": (0, None), "n_response": (0, None), "p_value": (0, 1), "swc_pct": (0, None)},
        "conditions": {"ci_is_ordered": "ci_low_pct IS NULL OR ci_high_pct IS NULL OR ci_low_pct <= ci_high_pct"},
    },
    "analysis_runs": {
        "key": ["analysis_run_id"],
        "not_null": ["athlete_id", "started_at", "status"],
        "accepted": {"status": ANALYSIS_STATUSES},
        "conditions": {"errors_have_message": "status <> 'error' OR coalesce(message, '') <> ''",
                       "finishes_after_start": "finished_at IS NULL OR finished_at >= started_at"},
    },
    "squad_blocks": {
        "key": ["athlete_id", "block_id"],
        "accepted": {"estimate_source": ESTIMATE_SOURCES},
        "relationships": {("athlete_id", "block_id"): ("strength_blocks", ("athlete_id", "block_id"))},
        "ranges": {"se_log": (0, None), "weight_pct": (0, 100)},
        "conditions": {"ci_is_ordered": "ci_low_pct <= ci_high_pct"},
    },
    "squad_pooled": {
        "key": ["target", "meta_method"],
        "accepted": {"target": POOLED_TARGETS, "meta_method": META_METHODS,
                     "estimate_source": ESTIMATE_SOURCES + ("mixed",)},
        "ranges": {"k": (1, None), "tau2": (0, None), "i2_pct": (0, 100), "p_value": (0, 1)},
        "conditions": {"ci_holds_estimate": "ci_low_pct <= estimate_pct AND estimate_pct <= ci_high_pct"},
    },
    "squad_did": {
        "key": ["athlete_id", "block_id"],
        "accepted": {"parallel_trends": PARALLEL_TRENDS},
        "relationships": {("athlete_id", "block_id"): ("strength_blocks", ("athlete_id", "block_id"))},
        "ranges": {"n_controls": (1, None), "p_value": (0, 1)},
        "conditions": {"ci_is_ordered": "ci_low_pct <= ci_high_pct"},
    },
    "squad_did_placebo": {
        "key": ["athlete_id", "block_id", "fake_start"],
        "relationships": {("athlete_id", "block_id"): ("squad_did", ("athlete_id", "block_id"))},
    },
    "squad_dose_response": {
        "key": ["moderator", "meta_method"],
        "accepted": {"moderator": DOSE_MODERATORS, "meta_method": META_METHODS},
        "ranges": {"k": (2, None), "slope_p_value": (0, 1)},
    },
    "placebo_checks": {
        "key": ["athlete_id", "block_id", "metric", "method", "fake_start"],
        "accepted": {"metric": EFFECT_METRICS, "method": EFFECT_METHODS, "verdict": VERDICTS},
        "relationships": {("athlete_id", "block_id"): ("strength_blocks", ("athlete_id", "block_id"))},
    },
    "block_trends": {
        "key": ["athlete_id", "block_id", "metric", "day"],
        "accepted": {"metric": EFFECT_METRICS, "segment": TREND_SEGMENTS},
        "relationships": {("athlete_id", "block_id"): ("strength_blocks", ("athlete_id", "block_id"))},
        "conditions": {"band_holds_trend": "trend_low <= trend_value AND trend_value <= trend_high",
                       "response_level_only_in_response": "(response_value IS NULL) = (segment <> 'response')"},
    },
}


@dataclass(frozen=True)
class Check:
    """One named check: ``sql`` selects the offending rows' ``key_columns``."""

    name: str
    table: str
    description: str
    sql: str
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found: ``count`` offending rows, a few of their keys, or the error that stopped it."""

    check: Check
    count: int
    examples: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.count == 0 and self.error is None

    @property
    def name(self) -> str:
        return self.check.name

    def render(self) -> str:
        if self.error:
            return f"ERROR {self.name}: {self.check.description}; the check could not run: {self.error}"
        if self.passed:
            return f"ok    {self.name}"
        examples = "; ".join(self.examples)
        more = ", ..." if self.count > len(self.examples) else ""
        return (f"FAIL  {self.name}: {self.count} row{'s' if self.count != 1 else ''} - "
                f"{self.check.description}; e.g. {examples}{more}")


@dataclass
class CheckResult:
    """All outcomes of one run of the checks."""

    outcomes: list[CheckOutcome] = field(default_factory=list)

    @property
    def violations(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def ok(self) -> bool:
        return not self.violations

    def outcome(self, name: str) -> CheckOutcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def render(self, verbose: bool = False) -> str:
        lines = [o.render() for o in self.outcomes if verbose or not o.passed]
        passed = len(self.outcomes) - len(self.violations)
        summary = f"{len(self.outcomes)} checks: {passed} passed, {len(self.violations)} failed"
        if self.ok:
            summary += "; no violations"
        return "\n".join([*lines, summary])


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def expand_checks(spec: dict[str, dict] | None = None) -> list[Check]:
    """Named checks from the declarative :data:`TABLE_CHECKS` (or another spec of the same shape).

    Per table, in this order: unique key, not null, accepted values, relationships, consistent
    columns, plausible ranges, row conditions (one function per kind, :data:`_CHECK_KINDS`).
    """
    spec = TABLE_CHECKS if spec is None else spec
    checks: list[Check] = []
    for table, rules in spec.items():
        t = _TableRules.of(table, rules)
        for kind in _CHECK_KINDS:
            checks.extend(kind(t))
    return checks


@dataclass(frozen=True)
class _TableRules:
    """One table's entry of the spec, with the key columns and the columns each check shows as example."""

    table: str
    rules: dict
    key: tuple[str, ...]
    shown: tuple[str, ...]  # the key, else the first not-null column: identifies an offending row

    @classmethod
    def of(cls, table: str, rules: dict) -> _TableRules:
        key = tuple(rules.get("key", ()))
        return cls(table, rules, key, key or tuple(rules.get("not_null", ()))[:1])

    @property
    def select(self) -> str:
        return _cols(self.shown)


def _unique_checks(t: _TableRules) -> list[Check]:
    if not t.key:
        return []
    return [Check(
        f"unique_{t.table}_{'_'.join(t.key)}", t.table, f"{t.table} ({', '.join(t.key)}) is not unique",
        f'SELECT {t.select} FROM "{t.table}" GROUP BY ALL HAVING count(*) > 1', t.key)]


def _not_null_checks(t: _TableRules) -> list[Check]:
    return [Check(
        f"not_null_{t.table}_{column}", t.table, f"{t.table}.{column} is NULL",
        f'SELECT {t.select} FROM "{t.table}" WHERE "{column}" IS NULL', t.shown)
        for column in (*t.key, *t.rules.get("not_null", ()))]


def _accepted_values_checks(t: _TableRules) -> list[Check]:
    checks = []
    for column, values in t.rules.get("accepted", {}).items():
        accepted = ", ".join(_literal(v) for v in values)
        checks.append(Check(
            f"accepted_values_{t.table}_{column}", t.table,
            f"{t.table}.{column} not in ({', '.join(values)})",
            f'SELECT {t.select}, "{column}" FROM "{t.table}" '
            f'WHERE "{column}" IS NOT NULL AND "{column}" NOT IN ({accepted})', (*t.shown, column)))
    return checks


def _relationship_checks(t: _TableRules) -> list[Check]:
    checks = []
    for columns, (parent, parent_columns) in t.rules.get("relationships", {}).items():
        join = " AND ".join(f'child."{c}" = parent."{p}"' for c, p in zip(columns, parent_columns))
        present = " AND ".join(f'child."{c}" IS NOT NULL' for c in columns)
        shown_child = tuple(dict.fromkeys((*t.shown, *columns)))
        child_select = ", ".join(f'child."{c}"' for c in shown_child)
        checks.append(Check(
            f"relationships_{t.table}_{'_'.join(columns)}__{parent}", t.table,
            f"{t.table} ({', '.join(columns)}) has no matching {parent} ({', '.join(parent_columns)})",
            f'SELECT DISTINCT {child_select} '
            f'FROM "{t.table}" AS child WHERE {present} AND NOT EXISTS '
            f'(SELECT 1 FROM "{parent}" AS parent WHERE {join})', shown_child))
    return checks


def _consistent_checks(t: _TableRules) -> list[Check]:
    checks = []
    for column, (parent, join_key) in t.rules.get("consistent", {}).items():
        shown_child = tuple(dict.fromkeys((*t.shown, column)))
        child_select = ", ".join(f'child."{c}"' for c in shown_child)
        checks.append(Check(
            f"consistent_{t.table}_{column}__{parent}", t.table,
            f"{t.table}.{column} differs from its {parent} row's (joined on {join_key})",
            f'SELECT DISTINCT {child_select} FROM "{t.table}" AS child JOIN "{parent}" AS parent '
            f'ON child."{join_key}" = parent."{join_key}" '
            f'WHERE child."{column}" IS DISTINCT FROM parent."{column}"', shown_child))
    return checks


def _range_checks(t: _TableRules) -> list[Check]:
    """Values outside [low, high] (None: unbounded), only on the rows the table's ``where`` selects."""
    where = f' AND ({t.rules["where"]})' if t.rules.get("where") else ""
    checks = []
    for column, (low, high) in t.rules.get("ranges", {}).items():
        outside = " OR ".join(part for part in (
            f'"{column}" < {low}' if low is not None else "",
            f'"{column}" > {high}' if high is not None else "",
        ) if part)
        bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        described = f"{t.table}.{column} outside {bounds}" + (f" (where {t.rules['where']})" if where else "")
        checks.append(Check(
            f"range_{t.table}_{column}", t.table, described,
            f'SELECT {t.select}, "{column}" FROM "{t.table}" '
            f'WHERE "{column}" IS NOT NULL AND ({outside}){where}', (*t.shown, column)))
    return checks


def _condition_checks(t: _TableRules) -> list[Check]:
    return [Check(
        f"{t.table}_{name}", t.table, f"{t.table}: not ({condition})",
        f'SELECT {t.select} FROM "{t.table}" WHERE NOT coalesce(({condition}), false)', t.shown)
        for name, condition in t.rules.get("conditions", {}).items()]


_CHECK_KINDS = (_unique_checks, _not_null_checks, _accepted_values_checks, _relationship_checks,
                _consistent_checks, _range_checks, _condition_checks)


def run_check(con: duckdb.DuckDBPyConnection, check: Check) -> CheckOutcome:
    """Run one check: count the offending rows and keep a few of their keys."""
    try:
        # Keys as text: readable in the report, and no Python time-zone library needed for TIMESTAMPTZ.
        keys = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in check.key_columns)
        rows = con.execute(
            f"SELECT count(*) OVER () AS n_violations, {keys} FROM ({check.sql}) LIMIT {EXAMPLES_SHOWN}"
        ).fetchall()
    except duckdb.Error as e:
        return CheckOutcome(check, 0, error=str(e).strip().splitlines()[0])
    if not rows:
        return CheckOutcome(check, 0)
    examples = tuple(
        ", ".join(f"{col}={value!s}" for col, value in zip(check.key_columns, row[1:])) for row in rows
    )
    return CheckOutcome(check, int(rows[0][0]), examples)


def run_checks_on(con: duckdb.DuckDBPyConnection, checks: Sequence[Check] | None = None) -> CheckResult:
    """All checks on an open connection (the tests use in-memory warehouses too)."""
    return CheckResult([run_check(con, c) for c in (expand_checks() if checks is None else checks)])


def run_checks(ws: Workspace) -> CheckResult:
    """Run every declarative check on the workspace warehouse, read-only; never raises on bad data."""
    con = connect(ws, read_only=True)
    try:
        return run_checks_on(con)
    finally:
        con.close()
