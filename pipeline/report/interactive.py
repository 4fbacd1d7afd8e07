"""What the page's interactive parts show: one hover record per run, the charts' specs, the per-run table.

Pure functions of :class:`~pipeline.report.data.AthleteReportData` (no I/O). The period of a run (baseline,
ramp, response, other) follows the ``runs_tidy`` view's rule: the window method's baseline before a block,
the ramp from block start to the response window, the response window; a run in the windows of two blocks
takes response over baseline over ramp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.report import charts, story
from pipeline.report.data import AthleteReportData
from pipeline.report.figures import OKABE_ITO, VERDICT_COLOURS
from pipeline.report.headline import (
    calibrated, distance_text, fake_starts, is_calibrated, pace_text,
)
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC

TEMPERATURE_SOURCE_TEXT = {"air": "air, weather archive", "device": "watch sensor"}
PERIOD_RANK = {"response": 3, "baseline": 2, "ramp": 1, "other": 0}


def _when(ts) -> str:
    ts = pd.Timestamp(ts)
    return f"{ts:%a} {ts.day} {ts:%b %Y %H:%M}"


def table_periods(tables: AthleteReportData) -> tuple[pd.Series, pd.Series]:
    """Each run's period (baseline, ramp, response, other) and the block it belongs to."""
    runs, eff = tables.runs, tables.effects
    period = pd.Series("other", index=runs.index, dtype=object)
    block = pd.Series(None, index=runs.index, dtype=object)
    windows = eff[(eff["metric"] == HEADLINE_METRIC) & (eff["method"] == "window")]
    t = runs["start_time"]
    day = pd.Timedelta(days=1)
    for _, w in windows.sort_values("response_start").iterrows():
        start = w["baseline_end"] if pd.isna(w["baseline_end"]) else w["baseline_end"]
        labels = {"baseline": (t >= w["baseline_start"]) & (t < w["baseline_end"] + day),
                  "ramp": (t >= start + day) & (t < w["response_start"]),
                  "response": (t >= w["response_start"]) & (t < w["response_end"] + day)}
        for name, inside in labels.items():
            better = inside & (period.map(PERIOD_RANK) <= PERIOD_RANK[name])
            period[better], block[better] = name, w["block_id"]
    return period, block


def run_hover_frame(tables: AthleteReportData, focus_periods: pd.Series | None) -> pd.DataFrame:
    """One row per run with its hover texts (when, distance, pace, hr, temperature, status), the values the
    charts plot (t, economy, temperature_c and its source, ...) and ``hover``, one line of all of them (the
    marks' accessible description)."""
    runs, units = tables.runs, tables.units
    air = tables.weather.set_index("activity_id")["air_temperature_c"] if len(tables.weather) else pd.Series(dtype=float)
    air_c = runs["activity_id"].map(air).astype(float)
    source = np.where(air_c.notna(), "air", np.where(runs["temperature_c"].notna(), "device", None))
    temp = air_c.fillna(runs["temperature_c"])
    included = runs["included"].fillna(False).astype(bool) & runs["economy_m_per_beat"].notna()
    period, block = table_periods(tables)
    out = pd.DataFrame({
        "activity_id": runs["activity_id"], "t": runs["start_time"],
        "when": [_when(x) for x in runs["start_time"]],
        "distance": [distance_text(k, units) for k in runs["distance_km"]],
        "pace": [pace_text(v, units) for v in runs["speed_m_s"]],
        "hr": [f"{h:.0f} bpm" if not pd.isna(h) else "n/a" for h in runs["heart_rate_bpm"]],
        "temperature": [f"{c:.0f} °C ({TEMPERATURE_SOURCE_TEXT[s]})" if s is not None else "not recorded"
                        for c, s in zip(temp, source)],
        "temperature_c": temp, "temperature_source": source,
        "status": np.where(included, "included", "excluded: " + runs["exclusion_reason"].fillna("no economy value")
                           .astype(str)),
        "economy": runs["economy_m_per_beat"].where(included),
        "economy_text": [f"{e:.3f} m/beat" if not pd.isna(e) else "n/a" for e in runs["economy_m_per_beat"].where(included)],
        "decoupling_pct": runs["decoupling_pct"], "m_per_beat": runs["m_per_beat"],
        "heart_rate_bpm": runs["heart_rate_bpm"], "gap_speed_m_s": runs["gap_speed_m_s"], "speed_m_s": runs["speed_m_s"],
        "period": focus_periods if focus_periods is not None else "before block",
        "table_period": period, "block_id": block,
    })
    out["when"] = out["when"].astype(object)
    out["hover"] = (out["when"] + " · " + out["distance"] + " · " + out["pace"] + " · " + out["hr"] + " · "
                    + out["temperature"] + " · " + out["status"])
    return out.reset_index(drop=True)


def method_rows(tables: AthleteReportData, block_id: str) -> pd.DataFrame:
    """The estimates of one block for the method-hierarchy chart: the headline (calibrated where it is) in
    its verdict's colour, then the secondary estimates in grey, each with its fake-start false-verdict rate."""
    eff = tables.effects
    rows = eff[(eff["block_id"] == block_id) & (eff["metric"] == HEADLINE_METRIC)].set_index("method")
    out = []
    if HEADLINE_METHOD in rows.index:
        r = rows.loc[HEADLINE_METHOD]
        verdict = calibrated(r, "verdict")
        cal = is_calibrated(r)
        out.append(_estimate("Headline: beyond your pre-block trend" + (", calibrated" if cal else ""),
                             calibrated(r, "change_pct"), calibrated(r, "ci_low_pct"), calibrated(r, "ci_high_pct"),
                             VERDICT_COLOURS.get(str(verdict), OKABE_ITO["grey"]), f"verdict: {verdict}"))
        if cal:
            out.append(_estimate("Secondary: the same before calibration", r["change_pct"], r["ci_low_pct"],
                                 r["ci_high_pct"], charts.SECONDARY_GREY,
                                 fake_starts(tables, block_id, HEADLINE_METHOD).text))
    if "window" in rows.index:
        r = rows.loc["window"]
        out.append(_estimate("Secondary: window means (no trend)", r["change_pct"], r["ci_low_pct"], r["ci_high_pct"],
                             charts.SECONDARY_GREY, fake_starts(tables, block_id, "window").text))
    return pd.DataFrame(out, columns=["label", "change", "lo", "hi", "colour", "note", "change_text"])


def _estimate(label: str, change, lo, hi, colour: str, note: str) -> dict:
    text = (f"{story.format_signed_1dp(change)} % (95 % CI {story.format_1dp(lo)} to {story.format_1dp(hi)})"
            if not pd.isna(change) else "insufficient data")
    return {"label": label, "change": change, "lo": lo, "hi": hi, "colour": colour, "note": note, "change_text": text}


def block_rows(tables: AthleteReportData) -> pd.DataFrame:
    """Every block's headline estimate (calibrated where it is) for the side-by-side comparison."""
    eff = tables.effects
    head = eff[(eff["metric"] == HEADLINE_METRIC) & (eff["method"] == HEADLINE_METHOD)].set_index("block_id")
    out = []
    for _, b in tables.blocks.iterrows():
        if b["block_id"] not in head.index:
            continue
        r = head.loc[b["block_id"]]
        verdict = str(calibrated(r, "verdict"))
        label = f"from {story.format_day(b['start_date'])}" + (f" ({b['label']})" if isinstance(b["label"], str)
                                                               and b["label"] else "")
        row = _estimate(label, calibrated(r, "change_pct"), calibrated(r, "ci_low_pct"), calibrated(r, "ci_high_pct"),
                        VERDICT_COLOURS.get(verdict, OKABE_ITO["grey"]), verdict)
        out.append({**row, "verdict": verdict})
    return pd.DataFrame(out, columns=["label", "change", "lo", "hi", "colour", "note", "change_text", "verdict"])


def gap_marker(trend: pd.DataFrame, effect: pd.Series | None) -> dict | None:
    """Where the timeline draws the headline gap: at the response-window day where the curve's ratio
    response_value / trend_value is the block_effects row's raw change (the mean time of the response runs,
    t_c), from the trend to the response level there. Read from the curve, so it sits on the drawn lines
    with or without the season in them."""
    if effect is None or trend.empty or pd.isna(effect["change_pct"]):
        return None
    resp = trend[(trend["segment"] == "response") & trend["response_value"].notna()]
    if resp.empty:
        return None
    ratio = resp["response_value"] / resp["trend_value"] - 1
    at = resp.loc[(ratio - effect["change_pct"] / 100).abs().idxmin()]
    return {"t": at["day"] + pd.Timedelta(hours=12), "trend": float(at["trend_value"]),
            "response": float(at["response_value"]),
            "label": f"{story.format_signed_1dp(effect['change_pct'])} % vs trend"}


def control_rows(tables: AthleteReportData, block_id: str) -> tuple[pd.DataFrame, dict | None]:
    """The negative controls behind one block's headline estimate (:func:`pipeline.report.story.headline_controls`)
    and that estimate, for :func:`pipeline.report.charts.controls_chart`."""
    eff = tables.effects
    rows = story.headline_controls(tables, block_id)
    head = eff[(eff["block_id"] == block_id) & (eff["metric"] == HEADLINE_METRIC) & (eff["method"] == HEADLINE_METHOD)]
    if head.empty or rows.empty:
        return pd.DataFrame(columns=["when", "change", "text", "verdict"]), None
    r = head.iloc[0]
    controls = pd.DataFrame({
        "when": [story.format_day(d) for d in rows["fake_start"]], "change": rows["change_pct"].astype(float),
        "text": [_estimate("", c, lo, hi, "", "")["change_text"] for c, lo, hi in
                 zip(rows["change_pct"], rows["ci_low_pct"], rows["ci_high_pct"])],
        "verdict": rows["verdict"].fillna(story.INSUFFICIENT).astype(str)})
    verdict = str(calibrated(r, "verdict"))
    real = {"change": r["change_pct"], "short": f"{story.format_signed_1dp(r['change_pct'])} %",
            "text": _estimate("", r["change_pct"], r["ci_low_pct"], r["ci_high_pct"], "", "")["change_text"],
            "colour": VERDICT_COLOURS.get(verdict, OKABE_ITO["grey"])}
    mu, tau = r.get("systematic_mu_pct"), r.get("systematic_tau_pct")
    if mu is not None and tau is not None and not (pd.isna(mu) or pd.isna(tau)):
        real.update(mu=float(mu), tau=float(tau),
                    mu_text=f"{story.format_signed_1dp(mu)} ± {story.format_1dp(tau)} % (mean ± spread)")
    if is_calibrated(r):
        real.update(cal_change=calibrated(r, "change_pct"), cal_lo=calibrated(r, "ci_low_pct"),
                    cal_hi=calibrated(r, "ci_high_pct"),
                    cal_text=_estimate("", calibrated(r, "change_pct"), calibrated(r, "ci_low_pct"),
                                       calibrated(r, "ci_high_pct"), "", "")["change_text"] + f", {verdict}")
    return controls, real
