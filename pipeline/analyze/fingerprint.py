"""Which athletes' analyses are out of date: the fingerprint of what each analysis depended on.

An athlete's analysis reads only its own staging rows, its athlete.toml, the ``[analysis]`` and
``[blocks]`` settings and the analysis code. Its **input fingerprint** is the digest of one digest per
part (:data:`PART_SQL` plus ``athlete_toml``, ``settings`` and ``code``), computed for every athlete at once
by one grouped query per table, so deciding what to redo costs milliseconds, not a read of the samples
(samples are identified by their file's sha256 and their count, both in ``activities``).

Rules (docs/scaling.md, "Re-runs"):

* an athlete is redone when its current fingerprint differs from the one stored with its latest analysis
  (``analysis_runs.input_fingerprint``), when it has none, when that analysis failed, or with ``--force``;
* **pooled inputs**: an analysis that drew on other athletes' results (calibration on the squad's pooled
  negative controls: ``block_effects.calibration_source`` 'squad', or 'default' in a calibration class the
  squad could serve, i.e. its own controls were too few) stores ``pooled_fingerprint``, the digest of every athlete's fingerprint at the time; it is redone
  when that digest changes (an athlete added, removed or changed), even if its own inputs did not;
* the squad tables are recomputed when any athlete's analysis was redone or removed, or the ``[squad]``
  settings or code changed (:func:`squad_input_fingerprint`, kept in ``pipeline_meta``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import duckdb
import pandas as pd

from pipeline.digest import code_digest, file_digest, parts_digest
from pipeline.rawroot import LOCAL_RAW
from pipeline.warehouse.contract import WEATHER_VALUE_COLUMNS, columns
from pipeline.warehouse.db import stored_raw_root
from pipeline.workspace import ATHLETE_CONFIG_NAME, Workspace, athlete_folder

# The source the analysis results depend on (package-relative); the report has its own list.
ANALYSIS_CODE = ("analyze", "formulas.py", "settings.py", "warehouse/contract.py")
SQUAD_META_KEY = "squad_input_fingerprint"
# calibration_source values meaning "calibrated on (or for want of) the squad's pooled controls".
POOLED_SOURCES = ("squad", "default")
# pooled_fingerprint of an analysis stored before its squad calibration pass (pipeline.analyze.run, step 4):
# never a digest, so an analyze interrupted between the passes redoes that athlete.
POOL_PENDING = "pending squad calibration"


def _row_text(cols: list[str], alias: str = "") -> str:
    """SQL for one row as text, NULLs spelled out (so (a, NULL) and (NULL, a) differ)."""
    prefix = f"{alias}." if alias else ""
    return " || '|' || ".join(f"coalesce(CAST({prefix}\"{c}\" AS VARCHAR), '\\N')" for c in cols)


def _digest_sql(table: str, cols: list[str], where: str = "", join: str = "", owner: str = "t") -> str:
    """One digest per athlete of ``table``'s rows (alias ``t``); ``owner`` is the alias holding athlete_id."""
    text = _row_text(cols, "t")
    return (f"SELECT {owner}.athlete_id, md5(string_agg({text}, chr(10) ORDER BY {text})) "
            f"FROM {table} t {join} {where} GROUP BY {owner}.athlete_id")


# part -> SQL giving (athlete_id, digest) for every athlete at once. Bookkeeping times (ingested_at,
# updated_at, fetched_at) are left out: re-reading the same data must not count as a change.
PART_SQL: dict[str, str] = {
    "source_files": _digest_sql("source_files", ["path", "file_id"], "WHERE t.status = 'ok'"),
    "activities": _digest_sql("activities", columns("activities")),
    "weather": _digest_sql("weather", ["activity_id", "source", *WEATHER_VALUE_COLUMNS], "WHERE t.status = 'ok'"),
    "strength_sessions": _digest_sql("strength_sessions", columns("strength_sessions")),
    "strength_sets": _digest_sql("strength_sets", columns("strength_sets"),
                                 join="JOIN strength_sessions s ON s.session_id = t.session_id", owner="s"),
    "declared_blocks": _digest_sql("declared_blocks", columns("declared_blocks")),
    "athlete": _digest_sql("athletes", [c for c in columns("athletes") if c != "updated_at"]),
}


@dataclass(frozen=True)
class AthleteFingerprint:
    """The digest of each input of one athlete's analysis, and their combination (``value``)."""

    athlete_id: str
    parts: dict[str, str | None]

    @property
    def value(self) -> str:
        return parts_digest(self.parts)


def settings_json(params, block_params) -> str:
    """The analysis settings as stored in ``analysis_runs.settings_json`` (and digested)."""
    return json.dumps({"analysis": asdict(params), "blocks": asdict(block_params)}, sort_keys=True)


def _part_digests(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    """athlete_id -> digest of one part; none when its table is missing (a warehouse from before that
    table, as ``pipeline status`` may read: a table that does not exist holds nothing for anyone)."""
    try:
        return dict(con.execute(sql).fetchall())
    except duckdb.CatalogException:
        return {}


def current_fingerprints(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_ids: list[str],
                         settings: str) -> dict[str, AthleteFingerprint]:
    """Every listed athlete's fingerprint from the warehouse as it is now (reads only small tables)."""
    by_part = {part: _part_digests(con, sql) for part, sql in PART_SQL.items()}
    shared = {"settings": parts_digest({"settings": settings}), "code": code_digest(*ANALYSIS_CODE)}
    local = stored_raw_root(con) in (None, LOCAL_RAW)
    return {a: AthleteFingerprint(a, {**{part: d.get(a) for part, d in by_part.items()},
                                      "athlete_toml": _athlete_toml_digest(ws, a) if local else None, **shared})
            for a in athlete_ids}


def _athlete_toml_digest(ws: Workspace, athlete_id: str) -> str | None:
    """The digest of the athlete's athlete.toml in the workspace's data/raw. Not taken when data/raw is a
    URL (pipeline.rawroot): reading every athlete's file over the network on each status would cost a request
    per athlete, and what the analysis uses of it reaches the warehouse at ingest (the ``athlete`` part)."""
    return file_digest(athlete_folder(ws.raw_dir, athlete_id) / ATHLETE_CONFIG_NAME)


def pool_digest(fingerprints: dict[str, AthleteFingerprint]) -> str:
    """The digest of every athlete's fingerprint: what analyses drawing on the squad's results depend on."""
    return parts_digest({a: fp.value for a, fp in sorted(fingerprints.items())})


@dataclass(frozen=True)
class StoredFingerprint:
    """What the latest ``analysis_runs`` row of an athlete says its analysis was computed from."""

    input_fingerprint: str | None
    parts: dict[str, str | None]
    pooled_fingerprint: str | None
    status: str = "ok"


def stored_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, StoredFingerprint]:
    """The latest analysis of each athlete (ok or error). A warehouse
    from before fingerprints (opened read-only, columns not added yet) has none: everything is out of date."""
    have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'analysis_runs'").fetchall()}
    if "input_fingerprint" not in have:
        return {}
    rows = con.execute(
        "SELECT athlete_id, input_fingerprint, input_parts_json, pooled_fingerprint, status FROM analysis_runs "
        "QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY started_at DESC, analysis_run_id) = 1"
    ).fetchall()
    return {a: StoredFingerprint(fp, json.loads(parts) if parts else {}, pooled, status)
            for a, fp, parts, pooled, status in rows}


def stale_reasons(fp: AthleteFingerprint, stored: StoredFingerprint | None, pool: str) -> list[str]:
    """Why an athlete's stored analysis no longer matches its inputs ([] = up to date): the parts that
    changed, 'not analysed yet', 'last analysis failed' (a failed athlete is always tried again: cheap, and
    its error is reported again rather than hidden behind "up to date"), or 'other athletes changed (pooled
    calibration)'."""
    if stored is None or stored.input_fingerprint is None:
        return ["not analysed yet" if stored is None else "analysed before fingerprints were recorded"]
    if stored.status != "ok":
        return ["last analysis failed"]
    reasons = []
    if stored.input_fingerprint != fp.value:
        reasons = [p for p in fp.parts if stored.parts.get(p) != fp.parts[p]] or ["inputs changed"]
    if stored.pooled_fingerprint == POOL_PENDING:
        reasons.append("squad calibration not finished (analyze was interrupted)")
    elif stored.pooled_fingerprint is not None and stored.pooled_fingerprint != pool:
        reasons.append("other athletes changed (pooled calibration)")
    return reasons


@dataclass
class AnalysisPlan:
    """What ``pipeline analyze`` will do: athletes to analyse (with why), up to date, and removed."""

    fingerprints: dict[str, AthleteFingerprint]
    pool: str
    todo: dict[str, list[str]]          # athlete -> reasons
    up_to_date: list[str]
    removed: list[str]                  # analysis rows of athletes the warehouse no longer holds


def analysis_plan(con: duckdb.DuckDBPyConnection, ws: Workspace, all_ids: list[str], selected: list[str],
                  settings: str, force: bool = False) -> AnalysisPlan:
    """Compare every athlete's current fingerprint with its stored one; ``selected`` limits what is redone
    (``--athlete``); ``force`` redoes every selected athlete."""
    fps = current_fingerprints(con, ws, all_ids, settings)
    pool = pool_digest(fps)
    stored = stored_fingerprints(con)
    todo, fresh = {}, []
    for a in selected:
        reasons = ["--force"] if force else stale_reasons(fps[a], stored.get(a), pool)
        if reasons:
            todo[a] = reasons
        else:
            fresh.append(a)
    removed = [] if selected != all_ids else analysed_athletes(con, exclude=all_ids)
    return AnalysisPlan(fps, pool, todo, fresh, removed)


def analysed_athletes(con: duckdb.DuckDBPyConnection, exclude: list[str]) -> list[str]:
    """Athletes with rows in run_metrics or strength_blocks that are not in ``exclude``."""
    rows = con.execute("SELECT athlete_id FROM run_metrics UNION SELECT athlete_id FROM strength_blocks "
                       "UNION SELECT athlete_id FROM weekly ORDER BY 1").fetchall()
    return [r[0] for r in rows if r[0] not in set(exclude)]


def uses_pooled_inputs(block_effects: pd.DataFrame, squad_class: bool = True) -> bool:
    """Whether an athlete's block estimates depend on other athletes' results: calibrated on the squad's
    pooled controls ('squad'), or on the default for want of enough controls ('default') in a calibration
    class the squad's controls could serve (``squad_class``: the athlete's class is one of
    :data:`pipeline.analyze.calibration.SQUAD_CLASSES`; for another class the default is all there is, so
    nobody else's results matter)."""
    if "calibration_source" not in block_effects:
        return False
    return bool(block_effects["calibration_source"].isin(POOLED_SOURCES if squad_class else ("squad",)).any())


def squad_input_fingerprint(con: duckdb.DuckDBPyConnection, squad_settings: str) -> str:
    """What the squad tables are computed from: each athlete's latest analysis (by id), the settings, code."""
    latest = con.execute(
        "SELECT athlete_id, analysis_run_id FROM analysis_runs WHERE status = 'ok' "
        "QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY started_at DESC, analysis_run_id) = 1 "
        "ORDER BY athlete_id").fetchall()
    return parts_digest({"analyses": parts_digest(dict(latest)), "settings": squad_settings,
                         "code": code_digest(*ANALYSIS_CODE)})


def stored_squad_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT value FROM pipeline_meta WHERE key = ?", [SQUAD_META_KEY]).fetchone()
    return row[0] if row else None


def store_squad_fingerprint(con: duckdb.DuckDBPyConnection, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO pipeline_meta (key, value) VALUES (?, ?)", [SQUAD_META_KEY, value])
