"""Loading strength sessions and sets into the warehouse, one session per workout whatever the source.

Called by the ingest loader inside its per-file transaction (no BEGIN/COMMIT here). Rules
(docs/strength.md, "Duplicates"):

* Re-ingesting the same file changes nothing: session ids are derived from athlete + start minute.
* The same workout from two sources (Strong CSV and the watch's FIT, or two cumulative exports) is one
  session: a new session matches an existing one of the same athlete starting within
  ``MATCH_TOLERANCE`` (``DATE_ONLY_MATCH_TOLERANCE`` when either side comes from a date-only source,
  which stores 12:00 local). The richer one is kept: more working sets, then more sets; on a tie the
  session already stored stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import duckdb
import pandas as pd

from pipeline.ingest.parsed import STRENGTH_SESSION_COLUMNS, STRENGTH_SET_COLUMNS, ParsedFile
from pipeline.warehouse.db import insert_frame

MATCH_TOLERANCE = timedelta(minutes=30)
DATE_ONLY_MATCH_TOLERANCE = timedelta(hours=11)
# Sources that know the date of a workout but not its time (FitNotes; the generic CSV usually).
DATE_ONLY_FORMATS = ("fitnotes_csv", "generic_csv")


@dataclass(frozen=True)
class StrengthLoadResult:
    """What one file's strength rows did to the warehouse."""

    inserted: int = 0          # new sessions
    unchanged: int = 0         # the same session from the same file, already stored (re-ingest)
    already_present: int = 0   # matched a richer-or-equal session from another file: not stored again
    replaced: int = 0          # matched a poorer session from another file: that one was replaced
    # session ids of other files holding this file's sessions that were not stored again (already_present)
    shadowed_by: tuple[str, ...] = ()
    # (replaced session id, its file_id, the new session id that replaced it)
    replaced_pairs: tuple[tuple[str, str, str], ...] = field(default=())

    def note(self) -> str | None:
        """Words for the file's message, or None when every session was new (or re-ingested)."""
        parts = []
        if self.already_present:
            n = self.already_present
            parts.append(f"{n} session{'s' if n != 1 else ''} already present from another source")
        if self.replaced:
            n = self.replaced
            parts.append(f"{n} poorer session{'s' if n != 1 else ''} from another source replaced")
        return "; ".join(parts) or None


def _tolerance(a_format: str, b_format: str) -> timedelta:
    if a_format in DATE_ONLY_FORMATS or b_format in DATE_ONLY_FORMATS:
        return DATE_ONLY_MATCH_TOLERANCE
    return MATCH_TOLERANCE


def _richness(n_working: object, n_sets: object) -> tuple[int, int]:
    return (0 if pd.isna(n_working) else int(n_working), 0 if pd.isna(n_sets) else int(n_sets))


def _stored_sessions_near(con: duckdb.DuckDBPyConnection, athlete_id: str, new: pd.DataFrame) -> pd.DataFrame:
    """The athlete's stored sessions that could match one of ``new`` (within the widest tolerance)."""
    lo = new["start_time"].min() - DATE_ONLY_MATCH_TOLERANCE
    hi = new["start_time"].max() + DATE_ONLY_MATCH_TOLERANCE
    # Through Arrow: DuckDB's .df() path trips pandas 3 deprecation warnings.
    existing = con.sql(
        """SELECT session_id, file_id, source_format, start_time, n_sets, n_working_sets
           FROM strength_sessions WHERE athlete_id = ? AND start_time BETWEEN ? AND ?
           ORDER BY start_time""",
        params=[athlete_id, lo.to_pydatetime(), hi.to_pydatetime()],
    ).to_arrow_table().to_pandas()
    if len(existing):
        existing["start_time"] = pd.to_datetime(existing["start_time"], utc=True)
    return existing


def _match(existing: pd.DataFrame, s, claimed: set[str]) -> pd.Series | None:
    """The stored session ``s`` is the same workout as: same id first, else the closest within tolerance."""
    if not len(existing):
        return None
    gap = (existing["start_time"] - s.start_time).abs()
    tol = pd.Series([_tolerance(f, s.source_format) for f in existing["source_format"]], index=existing.index)
    ok = (gap <= tol) & ~existing["session_id"].isin(claimed)
    exact = existing["session_id"] == s.session_id
    if (ok & exact).any():
        return existing[ok & exact].iloc[0]
    return existing.loc[gap[ok].idxmin()] if ok.any() else None


def _plan(new: pd.DataFrame, existing: pd.DataFrame) -> tuple[list[str], list[str], dict]:
    """(session ids to insert, stored session ids to delete, counts and shadows) for the richer-source rule."""
    to_insert: list[str] = []
    to_delete: list[str] = []
    claimed: set[str] = set()   # a stored session is matched by at most one new session
    counts: dict = {"inserted": 0, "unchanged": 0, "already_present": 0, "replaced": 0,
                    "shadowed_by": [], "replaced_pairs": []}
    for s in new.itertuples(index=False):
        match = _match(existing, s, claimed)
        if match is None:
            to_insert.append(s.session_id)
            counts["inserted"] += 1
            continue
        claimed.add(match["session_id"])
        if match["session_id"] == s.session_id and match["file_id"] == s.file_id:
            counts["unchanged"] += 1
        elif _richness(s.n_working_sets, s.n_sets) > _richness(match["n_working_sets"], match["n_sets"]):
            to_delete.append(match["session_id"])
            to_insert.append(s.session_id)
            counts["replaced"] += 1
            counts["replaced_pairs"].append((match["session_id"], match["file_id"], s.session_id))
        else:
            counts["already_present"] += 1
            counts["shadowed_by"].append(match["session_id"])
    counts["shadowed_by"] = tuple(counts["shadowed_by"])
    counts["replaced_pairs"] = tuple(counts["replaced_pairs"])
    return to_insert, to_delete, counts


def _delete_sessions(con: duckdb.DuckDBPyConnection, session_ids: list[str]) -> None:
    con.execute("DELETE FROM strength_sets WHERE session_id IN (SELECT UNNEST(?))", [session_ids])
    con.execute("DELETE FROM strength_sessions WHERE session_id IN (SELECT UNNEST(?))", [session_ids])


def load_strength(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> StrengthLoadResult:
    """Insert a file's strength sessions and sets, merging with sessions already stored. Bulk SQL only."""
    new = parsed.strength_sessions
    if new is None or not len(new):
        return StrengthLoadResult()
    new = new[STRENGTH_SESSION_COLUMNS].copy()
    new["start_time"] = pd.to_datetime(new["start_time"], utc=True)
    sets = parsed.strength_sets[STRENGTH_SET_COLUMNS] if parsed.strength_sets is not None else None
    to_insert, to_delete, counts = _plan(new, _stored_sessions_near(con, parsed.athlete_id, new))
    if to_delete:
        _delete_sessions(con, to_delete)
    if to_insert:
        keep = set(to_insert)
        new_sets = sets[sets["session_id"].isin(keep)] if sets is not None else None
        insert_frame(con, "strength_sessions", new[new["session_id"].isin(keep)], STRENGTH_SESSION_COLUMNS,
                     on_conflict_do_nothing=True)
        insert_frame(con, "strength_sets", new_sets, STRENGTH_SET_COLUMNS, on_conflict_do_nothing=True)
    return StrengthLoadResult(**counts)


def insert_strength(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> str | None:
    """Insert ``parsed.strength_sessions``/``strength_sets`` inside the caller's transaction.

    Returns a note for the file's message ("3 sessions already present from another source") or None.
    """
    return load_strength(con, parsed).note()
