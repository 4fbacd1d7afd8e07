"""The squad section of ``reports/index.html``: pooled effect (forest plot with the pooled diamonds),
teammates as controls, dose-response (scatter with the fitted line). Reads only the squad tables."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report import charts
from pipeline.report import figures as fg
from pipeline.report import story
from pipeline.report.squad_power import squad_power_line

SQUAD_FOREST_PNG = "squad_forest.png"
POOLED_NAMES = {"block_effect": ("pooled: all blocks", fg.OKABE_ITO["black"]),
                "did": ("pooled: vs teammates without a block", fg.OKABE_ITO["vermillion"])}
DOSE_RESPONSE_PNG = "squad_dose_response.png"


def _figure(fig, reports_dir: Path, filename: str, alt: str) -> dict:
    png = fg.figure_png(fig, fit_to_content=True)   # row labels name athletes: any length
    tmp = reports_dir / f".{filename}.tmp"
    tmp.write_bytes(png)
    os.replace(tmp, reports_dir / filename)
    return {"filename": filename, "alt": alt, "data_uri": "data:image/png;base64," + base64.b64encode(png).decode(),
            "min_font_px": fg.min_font_px(fig)}


def _method(pooled: pd.DataFrame) -> str | None:
    if pooled.empty:
        return None
    methods = list(pooled["meta_method"])
    return "reml_hksj" if "reml_hksj" in methods else methods[0]


def squad_section(tables: dict[str, pd.DataFrame], names: dict[str, str], reports_dir: Path) -> dict | None:
    """Draw the squad figures into ``reports_dir`` and gather the numbers the squad page quotes; None (and
    stale PNGs removed) when nothing has been pooled."""
    blocks, pooled = tables["squad_blocks"], tables["squad_pooled"]
    method = _method(pooled)
    if method is None or blocks.empty:
        for stale in (SQUAD_FOREST_PNG, DOSE_RESPONSE_PNG):
            (reports_dir / stale).unlink(missing_ok=True)
        return None
    shown = pooled[pooled["meta_method"] == method].sort_values("target")
    labelled = blocks.assign(row_label=[f"{names.get(a, a)} · from {story.format_day(pd.Timestamp(s))}"
                                        for a, s in zip(blocks["athlete_id"], blocks["block_start"])])
    forest = _figure(fg.squad_forest_plot(labelled, shown), reports_dir, SQUAD_FOREST_PNG,
                     "Forest plot of every block's change in economy with the pooled random-effects diamond")
    dose = tables["squad_dose_response"]
    fit = dose[(dose["moderator"] == "sessions_per_week") & (dose["meta_method"] == method)]
    scatter = _figure(fg.dose_response_plot(blocks, fit.iloc[0] if len(fit) else None), reports_dir,
                      DOSE_RESPONSE_PNG, "Change in economy per block against strength sessions per week")
    did = tables["squad_did"]
    return {
        "method": method,
        "pooled": [{**p, "power_line": squad_power_line(p, method)} for p in shown.to_dict("records")],
        "forest": forest,
        "dose": scatter,
        "charts": {"chart-squad-forest": charts.forest_chart(squad_forest_rows(labelled, shown), None, "squad_forest",
                                                             row_px=52, notes=False),
                   "chart-dose": charts.dose_chart(*dose_frames(labelled, fit.iloc[0] if len(fit) else None),
                                                   "strength sessions per week")},
        "dose_rows": dose[dose["meta_method"] == method].to_dict("records"),
        "n_did": len(did),
        "trends_ok": int((did["parallel_trends"] == "ok").sum()) if len(did) else 0,
        "trends_violated": int((did["parallel_trends"] == "violated").sum()) if len(did) else 0,
    }


def _change_text(change, lo, hi) -> str:
    return (f"{story.format_signed_1dp(change)} % (95 % CI {story.format_1dp(lo)} to {story.format_1dp(hi)})"
            if not pd.isna(change) else "not estimated")


def squad_forest_rows(blocks: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """The squad forest plot's rows (:func:`pipeline.report.charts.forest_chart`): each block (square, area
    by its weight in the pooled estimate), then each pooled estimate (diamond, with its prediction
    interval). ``blocks``: squad_blocks rows plus ``row_label``; ``pooled``: squad_pooled rows of one
    meta_method."""
    rows = []
    weights = blocks["weight_pct"].fillna(100 / max(len(blocks), 1))
    for (_, b), w in zip(blocks.iterrows(), weights):
        rows.append({"label": b["row_label"], "change": b["change_pct"], "lo": b["ci_low_pct"], "hi": b["ci_high_pct"],
                     "colour": fg.OKABE_ITO["blue"], "shape": "square", "size": 40.0 + 4.0 * float(w),
                     "note": f"{float(w):.0f} % of the pooled weight",
                     "change_text": _change_text(b["change_pct"], b["ci_low_pct"], b["ci_high_pct"])})
    for _, p in pooled.iterrows():
        name, colour = POOLED_NAMES.get(p["target"], (str(p["target"]), fg.OKABE_ITO["grey"]))
        pi = (f"; a new athlete's block: {story.format_1dp(p['pi_low_pct'])} to {story.format_1dp(p['pi_high_pct'])} %"
              if not pd.isna(p["pi_low_pct"]) else "")
        rows.append({"label": f"{name} (k={int(p['k'])})", "change": p["estimate_pct"], "lo": p["ci_low_pct"],
                     "hi": p["ci_high_pct"], "colour": colour, "shape": "diamond", "size": 320.0,
                     "pi_lo": p["pi_low_pct"], "pi_hi": p["pi_high_pct"], "note": f"I² {story.format_1dp(p['i2_pct'])} %{pi}",
                     "change_text": _change_text(p["estimate_pct"], p["ci_low_pct"], p["ci_high_pct"])})
    return pd.DataFrame(rows)


def dose_frames(blocks: pd.DataFrame, fit: pd.Series | None,
                moderator: str = "sessions_per_week") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dose-response chart's points (one per block) and its fitted line
    (:func:`pipeline.report.figures.dose_response_line`)."""
    points = pd.DataFrame({"dose": blocks[moderator].astype(float), "change": blocks["change_pct"],
                           "lo": blocks["ci_low_pct"], "hi": blocks["ci_high_pct"], "label": blocks["row_label"],
                           "change_text": [_change_text(c, lo, hi) for c, lo, hi in
                                           zip(blocks["change_pct"], blocks["ci_low_pct"], blocks["ci_high_pct"])]})
    doses = points["dose"].dropna()
    if fit is None or doses.empty:
        return points, pd.DataFrame(columns=["dose", "fit"])
    xs = np.linspace(doses.min(), doses.max(), 30)
    return points, pd.DataFrame({"dose": xs, "fit": fg.dose_response_line(fit, xs)})
