"""Weekly summary per athlete: runs, kilometres, strength sessions and median economy (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.warehouse.contract import columns

# Every weekly column but the provenance link, which the store adds when it writes the rows.
WEEKLY_COLUMNS = [c for c in columns("weekly") if c != "analysis_run_id"]


def _monday(ts: pd.Series) -> pd.Series:
    day = pd.to_datetime(ts, utc=True).dt.tz_convert("UTC").dt.normalize()
    return (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.date


def weekly_summary(athlete_id: str, run_metrics: pd.DataFrame, strength_sessions: pd.DataFrame) -> pd.DataFrame:
    """One row per week (Monday start, UTC dates) from the first to the last week with any activity.

    ``runs`` counts running activities (included or not, so volume is complete), ``run_km`` sums their
    distance, ``strength_sessions`` counts sessions, ``economy_m_per_beat`` is the median over the week's
    INCLUDED runs (NULL when none). Weeks with nothing are kept as zeros so gaps show in plots.
    """
    runs = run_metrics
    if "is_run" in runs:  # internal flag: False for unknown-sport activities that did not look like runs
        runs = runs[runs["is_run"].astype(bool)]
    r = pd.DataFrame({
        "week_start": _monday(runs["start_time"]) if len(runs) else pd.Series([], dtype=object),
        "km": pd.to_numeric(runs["distance_km"], errors="coerce").to_numpy() if len(runs) else [],
        "econ": np.where(runs["included"].astype(bool), pd.to_numeric(runs["economy_m_per_beat"], errors="coerce"),
                         np.nan) if len(runs) else [],
    })
    s = pd.DataFrame({"week_start": _monday(strength_sessions["start_time"]) if len(strength_sessions)
                      else pd.Series([], dtype=object)})
    weeks = sorted(set(r["week_start"]) | set(s["week_start"]))
    if not weeks:
        return pd.DataFrame(columns=WEEKLY_COLUMNS)
    all_weeks = pd.date_range(pd.Timestamp(weeks[0]), pd.Timestamp(weeks[-1]), freq="7D").date
    g = r.groupby("week_start")
    out = pd.DataFrame({"week_start": all_weeks})
    out["runs"] = out["week_start"].map(g.size()).fillna(0).astype("int64")
    out["run_km"] = out["week_start"].map(g["km"].sum(min_count=1)).fillna(0.0).astype(float)
    out["strength_sessions"] = out["week_start"].map(s.groupby("week_start").size()).fillna(0).astype("int64")
    out["economy_m_per_beat"] = out["week_start"].map(g["econ"].median()).astype(float)
    out.insert(0, "athlete_id", athlete_id)
    return out[WEEKLY_COLUMNS]
