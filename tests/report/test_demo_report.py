"""End to end on the demo athletes: simulate -> ingest -> analyze -> report, then read the pages.

The demo's stories (pipeline/demo): demo_gain has a planted ~3 % economy gain; demo_heat has no effect
but summer heat; demo_faster has no effect but runs faster after the block starts. The report must show
every figure for each, and tell the stories: a gain only for demo_gain -- found by the raw estimate; the
headline's calibrated verdict for a lone 40-week record (5 overlapping negative controls, season not
controlled) is "gain" only if it clears the conservative default systematic error, else "cannot tell",
saying why.
"""

from __future__ import annotations

import html
import re

import duckdb
import pytest

pytestmark = pytest.mark.slow


FIGURES = {"economy_timeline.png", "baseline_vs_response.png", "hr_vs_speed.png", "weekly_volume.png",
           "raw_vs_economy.png"}
DEMO = ("demo_gain", "demo_heat", "demo_faster")


def headline(ws, athlete) -> tuple[str, str]:
    body = (ws.reports_dir / athlete / "index.html").read_text(encoding="utf-8")
    m = re.search(r'<p class="headline ([^"]*)" id="headline">(.*?)</p>', body, re.S)
    return m.group(1), html.unescape(m.group(2))


@pytest.mark.parametrize("athlete", DEMO)
def test_every_figure_is_produced_for_each_demo_athlete(demo_reports, athlete):
    ws, _ = demo_reports
    assert {p.name for p in (ws.reports_dir / athlete).glob("*.png")} == FIGURES
    page = (ws.reports_dir / athlete / "index.html").read_text(encoding="utf-8")
    for name in FIGURES:   # each PNG is offered for sharing from the page
        assert f'href="{name}"' in page


def test_demo_stories_are_told(demo_reports):
    ws, index = demo_reports
    verdict, text = headline(ws, "demo_gain")
    assert (verdict == "gain" and "% better than the pre-block trend predicted" in text) or (
        verdict == "cannot-tell" and "too few negative controls" in text and "season not controlled" in text)
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    raw = dict(con.execute("SELECT athlete_id, verdict FROM block_effects WHERE metric = 'economy_m_per_beat' "
                           "AND method = 'its'").fetchall())
    con.close()
    assert raw["demo_gain"] == "gain" and raw["demo_heat"] != "gain"
    for athlete in ("demo_heat", "demo_faster"):
        verdict, text = headline(ws, athlete)
        assert verdict != "gain" and "better" not in text, (athlete, text)
    # Each demo record is under 12 months: the warehouse says so (season_controlled false), and so must the
    # box's "Read with care" line, read from the same DuckDB BOOLEAN.
    for athlete in DEMO:
        page = (ws.reports_dir / athlete / "index.html").read_text(encoding="utf-8")
        trust = re.search(r'<p class="trust" id="trust">(.*?)</p>', page, re.S)
        assert trust and "the season is not modelled" in html.unescape(trust.group(1)), athlete
    squad = index.read_text(encoding="utf-8")
    assert squad.count('href="demo_') == 3


def test_demo_headlines_quote_block_effects(demo_reports):
    ws, _ = demo_reports
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    # The headline quotes the calibrated values.
    rows = con.execute("SELECT athlete_id, calibrated_change_pct, calibrated_ci_low_pct, calibrated_ci_high_pct "
                       "FROM block_effects WHERE metric = 'economy_m_per_beat' AND method = 'its'").fetchall()
    con.close()
    assert {r[0] for r in rows} == set(DEMO)
    for athlete, change, lo, hi in rows:
        _, text = headline(ws, athlete)
        for value in (lo, hi):
            assert f"{value:.1f}".replace("-", "\u2212") in text, (athlete, value, text)
        assert f"{abs(change):.1f}" in text
