"""`from pipeline import api` on a real (simulated) squad workspace: tidy tables, in-memory analysis that
never touches the warehouse, figures; the squad in `pipeline status` and on the squad page; the example
notebook executed end to end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline import api
from pipeline.errors import PipelineError
from pipeline.status import render_status

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "squad.ipynb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_tidy_tables(squad_ws):
    with api.open_workspace(squad_ws.root) as ws:
        assert ws.athletes() == [f"squad_{k:02d}" for k in range(1, 7)]
        runs = ws.runs()
        n_runs = ws.sql("SELECT count(*) AS n FROM run_metrics")["n"].iloc[0]
        assert len(runs) == n_runs and set(runs["period"]) == {"baseline", "ramp", "response", "other"}
        assert runs.loc[runs["period"] != "other", "block_id"].notna().all()
        assert set(runs.loc[runs["athlete_id"].isin(["squad_05", "squad_06"]), "period"]) == {"other"}
        assert (runs["temperature_source"].dropna() == "device").all() and runs["climb_m_per_km"].notna().any()
        # the response period holds exactly the runs the window estimate used
        eff = ws.effects("squad_01", method="window").iloc[0]
        mine = runs[(runs["athlete_id"] == "squad_01") & runs["included"]]
        assert (mine["period"] == "response").sum() == eff["n_response"]
        assert (mine["period"] == "baseline").sum() == eff["n_baseline"]
        pooled = ws.pooled()
        assert set(pooled["target"]) == {"block_effect", "did"} and (pooled["k"] == 4).all()
        assert len(ws.blocks()) == 4 and len(ws.weekly("squad_05")) > 30
        prov = ws.analysis_runs()
        assert len(prov) == 6 and prov["hr_speed_slope_bpm_per_m_s"].between(15, 30).all()
        ids = ws.sql("SELECT DISTINCT analysis_run_id FROM block_effects")["analysis_run_id"]
        assert set(ids) <= set(prov["analysis_run_id"])
        squad = ws.squad()
        assert len(squad["squad_blocks"]) == 4 and (squad["squad_did"]["n_controls"] == 2).all()


@pytest.mark.slow
def test_analysis_with_changed_settings_stays_in_memory(squad_ws):
    before = _digest(squad_ws.warehouse_path)
    with api.open_workspace(squad_ws.root) as ws:
        stored = ws.effects("squad_02")
        same = ws.analyze("squad_02")
        assert same.headline["change_pct"].to_numpy() == pytest.approx(stored["change_pct"].to_numpy())
        trial = ws.analyze("squad_02", its_pre_weeks=10)
        assert trial.headline["n_baseline"].iloc[0] < stored["n_baseline"].iloc[0]
        with pytest.raises(PipelineError, match="unknown setting.*its_weeks"):
            ws.analyze("squad_02", its_weeks=10)
    assert _digest(squad_ws.warehouse_path) == before


@pytest.mark.slow
def test_figures(squad_ws):
    with api.open_workspace(squad_ws.root) as ws:
        figs = ws.figures("squad_03")
        assert {"timeline", "comparison", "weekly", "raw_vs_economy"} <= set(figs)
        assert all(isinstance(f, Figure) for f in figs.values())
        assert set(ws.squad_figures()) == {"forest", "dose_response"}


@pytest.mark.slow
def test_status_and_squad_page_show_the_squad(squad_ws):
    text = render_status(squad_ws)
    assert "squad:" in text and "pooled economy change" in text and "4 blocks of 4 athletes" in text
    assert "vs teammates without a block (DiD)" in text and "dose-response sessions_per_week" in text
    page = (squad_ws.reports_dir / "index.html").read_text()
    assert "The squad: pooled effect" in page and "squad_forest.png" in page
    assert (squad_ws.reports_dir / "squad_forest.png").exists()
    assert (squad_ws.reports_dir / "squad_dose_response.png").exists()


@pytest.mark.slow
def test_example_notebook_runs(squad_ws, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency (pip install -e .[dev])")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency (pip install -e .[dev])")
    monkeypatch.setenv("PIPELINE_WORKSPACE", str(squad_ws.root))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(str(o.get("data", o.get("text", ""))) for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "reml_hksj" in outputs and "squad_01" in outputs and "Figure" in outputs
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
