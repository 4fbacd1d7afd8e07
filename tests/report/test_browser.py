"""Each report page in a real headless Chromium, at phone (390 px) and desktop (1280 px) width: it renders,
draws every chart, makes no request, keeps every figure text at 11 CSS px or more, shows the headline in a
runner's units, the trend it is measured against, hover data for every run, and the secondary estimates in
grey (see tests/report/chromium_check.py for how the page is driven and measured)."""

from __future__ import annotations

import math
import re

import duckdb
import pytest

from pipeline.report.story import format_signed_1dp

from chromium_check import (
    CHROMIUM, DESKTOP_WIDTH, PHONE_WIDTH, assert_renders_cleanly, browser_check, chromium,
)

pytestmark = pytest.mark.browser

if CHROMIUM is None:
    pytest.skip("headless Chromium not installed (CI installs Debian's chromium via .ci/run)",
                allow_module_level=True)

MIN_FONT_PX = 11
GREY = "#8c8c8c"
VERDICT_FILLS = {"gain": "#009E73", "loss": "#D55E00", "no clear change": "#0072B2", "cannot tell": "#4D4D4D"}
HOVER_FIELDS = ("when", "distance", "pace", "hr", "temperature", "status")


def _hovered_runs(result: dict) -> list[dict]:
    return (result["marks"]["runs"] or []) + (result["marks"]["excluded_runs"] or [])


def assert_readable(result: dict, page) -> None:
    assert result["nFonts"] > 0 or not result["chartIds"], f"{page}: no figure text measured"
    if result["fonts"]:
        smallest = result["fonts"][0]
        assert smallest["px"] >= MIN_FONT_PX, f"{page}: figure text {smallest} below {MIN_FONT_PX} CSS px"


@pytest.mark.parametrize("width", [PHONE_WIDTH, DESKTOP_WIDTH])
def test_every_athlete_page_renders_and_reads_at_phone_and_desktop_width(built_reports, tmp_path, width):
    ws, _ = built_reports
    for page in sorted(ws.reports_dir.glob("*/index.html")):
        result = browser_check(page, tmp_path, width)
        assert result["innerWidth"] == width
        assert_renders_cleanly(result, page)
        assert_readable(result, page)


def test_gainer_headline_box_trend_and_hover(built_reports, tmp_path):
    ws, _ = built_reports
    result = browser_check(ws.reports_dir / "gainer" / "index.html", tmp_path)
    # conftest: economy its +2.14 %, the HR-at-reference counterfactual 144.0 bpm, reference speed 3.0 m/s
    bpm = 144.0 * (1 - 1 / 1.0214)
    assert result["verdict"] == "gain" and result["change"] == "+2.1 %"
    assert f"about {round(bpm)} bpm lower heart rate" in result["runner"] and "5:33 /km" in result["runner"]
    assert "fake block starts" in result["honesty"] and "a gain at 1" in result["honesty"]
    for mark in ("trend_band", "trend_line", "response_level"):
        assert result["marks"][mark] and result["marks"][mark][0]["d"] > 20, mark
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    n_runs = con.execute("SELECT count(*) FROM run_metrics WHERE athlete_id = 'gainer'").fetchone()[0]
    con.close()
    runs = _hovered_runs(result)
    assert len(runs) == n_runs and all(all(r.get(k) for k in HOVER_FIELDS) for r in runs)
    assert result["hover"]["visible"] and result["hover"]["when"] in result["hover"]["text"]
    estimates = result["marks"]["estimates"]
    assert estimates[0]["fill"] == VERDICT_FILLS["gain"] and all(e["fill"] == GREY for e in estimates[1:])
    # the real estimate against the negative controls: conftest's five fake starts, the raw +2.14 %
    controls = result["marks"]["controls"]
    assert sorted(c["change"] for c in controls) == [-0.5, -0.2, 0.1, 0.3, 1.4]
    assert all(c["fill"] == GREY for c in controls)
    real = result["marks"]["real_estimate"]
    assert len(real) == 1 and real[0]["stroke"] == VERDICT_FILLS["gain"] and real[0]["change"] == pytest.approx(2.14)
    assert not result["marks"]["calibrated_estimate"]       # the fixture's rows carry no calibration


def test_failed_analysis_gets_its_error_box(built_reports):
    ws, _ = built_reports
    page = (ws.reports_dir / "broken" / "index.html").read_text(encoding="utf-8")
    assert 'id="analysis-error"' in page and "analysis failed &lt;on purpose&gt;" in page
    assert "could not be assessed" in page and 'id="headline-box"' not in page
    squad = (ws.reports_dir / "index.html").read_text(encoding="utf-8")
    row = re.search(r'<tr[^>]*>(?:(?!</tr>).)*href="broken/index.html".*?</tr>', squad, re.S)
    assert row and "not analysed" in row.group(0)


@pytest.mark.parametrize("width", [PHONE_WIDTH, DESKTOP_WIDTH])
def test_squad_page_reads_at_phone_and_desktop_width(built_reports, tmp_path, width):
    ws, index = built_reports
    result = browser_check(index, tmp_path, width)
    assert result["innerWidth"] == width
    assert_renders_cleanly(result, index)
    assert_readable(result, index)
    assert set(result["chartIds"]) == {"chart-effects", "chart-squad-forest", "chart-dose"} and result["images"] == 0
    # conftest: one headline effect (gainer's gain), squad blocks of gainer and thin, one pooled estimate
    effects = result["marks"]["block_effects"]
    assert [(e["label"], e["fill"]) for e in effects] == [("Gail <Gainer> · block from 12 Mar 2025",
                                                           VERDICT_FILLS["gain"])]
    forest = result["marks"]["squad_forest"]
    assert [(f["shape"], f["change"]) for f in forest] == [("square", 2.14), ("square", -0.6), ("diamond", 1.3)]
    assert len(result["marks"]["dose_blocks"]) == 2
    for columns, names in ((result["columns"], ("Verdict", "Change (%)", "95 % CI (%)")),
                           (result["pooledColumns"], ("Change (%)", "95 % CI (%)"))):
        shown = {c["text"]: c for c in columns}
        for name in names:
            assert shown[name]["right"] <= width, (name, shown[name])


def test_screenshot_at_phone_width(built_reports, tmp_path):
    ws, _ = built_reports
    shot = tmp_path / "gainer-phone.png"
    chromium(tmp_path, 500, f"--screenshot={shot}", (ws.reports_dir / "gainer" / "index.html").as_uri())
    assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG")


def test_checker_notices_an_external_image(tmp_path):
    """Negative control: without it, a checker that always passes would go unnoticed."""
    page = tmp_path / "bad" / "index.html"
    page.parent.mkdir()
    page.write_text('<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head>'
                    '<body><img src="http://example.invalid/x.png" alt="x"></body></html>', encoding="utf-8")
    result = browser_check(page, tmp_path)
    assert result["images"] == 1 and result["decoded"] == 0
    with pytest.raises(AssertionError):
        assert_renders_cleanly(result, page)


def test_checker_notices_small_figure_text(tmp_path):
    """Negative control for the font measurement: an SVG chart with 8 px text fails."""
    page = tmp_path / "small" / "index.html"
    page.parent.mkdir()
    page.write_text('<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head><body>'
                    '<div class="chart" id="c"><svg width="300" height="50"><text x="5" y="20" font-size="8px">'
                    'tiny</text></svg></div></body></html>', encoding="utf-8")
    result = browser_check(page, tmp_path)
    assert result["fonts"][0]["px"] == pytest.approx(8)
    with pytest.raises(AssertionError):
        assert_readable(result, page)


# --- the demo athletes, end to end (slow: simulate -> ingest -> analyze -> report) --------------------------

def _headline_rows(ws, athlete: str) -> tuple[dict, dict, float]:
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        rows = con.execute("SELECT * FROM block_effects WHERE athlete_id = ? AND method = 'its' AND metric IN "
                           "('economy_m_per_beat', 'hr_at_ref_bpm')", [athlete]).df()
        ref = con.execute("SELECT ref_speed_m_s FROM analysis_runs WHERE athlete_id = ? AND status = 'ok' "
                          "ORDER BY started_at DESC LIMIT 1", [athlete]).fetchone()[0]
        n_runs = con.execute("SELECT count(*) FROM run_metrics WHERE athlete_id = ?", [athlete]).fetchone()[0]
        n_controls = con.execute("SELECT count(*) FROM placebo_checks WHERE athlete_id = ? AND metric = "
                                 "'economy_m_per_beat' AND method = 'its' AND change_pct IS NOT NULL",
                                 [athlete]).fetchone()[0]
    finally:
        con.close()
    econ = rows[rows["metric"] == "economy_m_per_beat"].iloc[0].to_dict()
    hr = rows[rows["metric"] == "hr_at_ref_bpm"].iloc[0].to_dict()
    return econ, hr, ref, n_runs, n_controls


def _calibrated(row: dict, name: str):
    value = row.get(f"calibrated_{name}")
    return row[name] if value is None or (isinstance(value, float) and math.isnan(value)) else value


@pytest.mark.slow
@pytest.mark.parametrize("athlete", ["demo_gain", "demo_heat", "demo_faster"])
def test_demo_athlete_pages_in_chromium(demo_reports, tmp_path, athlete):
    ws, _ = demo_reports
    page = ws.reports_dir / athlete / "index.html"
    econ, hr, ref_speed, n_runs, n_controls = _headline_rows(ws, athlete)
    phone = browser_check(page, tmp_path, PHONE_WIDTH)
    for result in (phone, browser_check(page, tmp_path, DESKTOP_WIDTH)):
        assert_renders_cleanly(result, page)
        assert_readable(result, page)
    # the trend, its extrapolation band and the response level are drawn
    for mark in ("trend_band", "trend_line", "response_level"):
        assert phone["marks"][mark] and phone["marks"][mark][0]["d"] > 20, mark
    # the headline states the (calibrated) verdict, and bpm and pace matching block_effects / analysis_runs
    verdict, change = _calibrated(econ, "verdict"), _calibrated(econ, "change_pct")
    assert phone["verdict"] == verdict
    bpm = hr["baseline_value"] * (1 - 1 / (1 + change / 100))
    if econ.get("calibrated_change_pct") is None or math.isnan(econ.get("calibrated_change_pct") or math.nan):
        assert bpm == pytest.approx(hr["baseline_value"] - hr["response_value"], abs=1e-6)
    assert f" {round(abs(bpm))} bpm {'lower' if bpm > 0 else 'higher'}" in phone["runner"]
    seconds = round(1000 / ref_speed)
    assert f"{seconds // 60}:{seconds % 60:02d} /km" in phone["runner"]
    # secondary methods are grey; only the headline carries the verdict's colour
    estimates = phone["marks"]["estimates"]
    assert estimates[0]["fill"] == VERDICT_FILLS.get(verdict, GREY)
    assert len(estimates) >= 2 and all(e["fill"] == GREY for e in estimates[1:])
    # the honesty line on the athlete's own negative controls, and the estimate drawn against them: every
    # control, the raw estimate, and the calibrated one (the headline's) with its CI
    assert "negative control" in phone["honesty"]
    assert n_controls > 0 and len(phone["marks"]["controls"]) == n_controls
    assert phone["marks"]["real_estimate"][0]["change"] == pytest.approx(econ["change_pct"])
    if not math.isnan(econ.get("calibrated_change_pct") or math.nan):
        assert phone["marks"]["calibrated_estimate"][0]["change"] == pytest.approx(econ["calibrated_change_pct"])
        assert phone["change"] == f"{format_signed_1dp(change)} %"
    # hover data for every run
    runs = _hovered_runs(phone)
    assert len(runs) == n_runs and all(all(r.get(k) for k in HOVER_FIELDS) for r in runs)
    assert phone["hover"]["visible"]


@pytest.mark.slow
def test_demo_squad_page_in_chromium(demo_reports, tmp_path):
    ws, index = demo_reports
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        n_effects = con.execute("SELECT count(*) FROM block_effects WHERE metric = 'economy_m_per_beat' "
                                "AND method = 'its'").fetchone()[0]
        n_blocks, n_pooled = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                              for t in ("squad_blocks", "squad_pooled WHERE meta_method = 'reml_hksj'"))
    finally:
        con.close()
    assert n_effects == 3 and n_blocks == 3 and n_pooled >= 1
    for width in (PHONE_WIDTH, DESKTOP_WIDTH):
        result = browser_check(index, tmp_path, width)
        assert_renders_cleanly(result, index)
        assert_readable(result, index)
        assert len(result["marks"]["block_effects"]) == n_effects
        shapes = [f["shape"] for f in result["marks"]["squad_forest"]]
        assert shapes == ["square"] * n_blocks + ["diamond"] * n_pooled
        assert len(result["marks"]["dose_blocks"]) == n_blocks
