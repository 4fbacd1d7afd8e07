"""The squad section of ``reports/index.html``: pooled effect (forest plot with the pooled diamonds),
teammates as controls, dose-response (scatter with the fitted line). Reads only the squad tables."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pandas as pd

from pipeline.report import figures as fg
from pipeline.report import story

SQUAD_FOREST_PNG = "squad_forest.png"
DOSE_RESPONSE_PNG = "squad_dose_response.png"


def _figure(fig, reports_dir: Path, filename: str, alt: str) -> dict:
    png = fg.figure_png(fig)
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
        "pooled": shown.to_dict("records"),
        "forest": forest,
        "dose": scatter,
        "dose_rows": dose[dose["meta_method"] == method].to_dict("records"),
        "n_did": len(did),
        "trends_ok": int((did["parallel_trends"] == "ok").sum()) if len(did) else 0,
        "trends_violated": int((did["parallel_trends"] == "violated").sum()) if len(did) else 0,
    }
