"""The built report against the warehouse rows it was built from (tests/report/conftest.py)."""

from __future__ import annotations

import base64
import html
import re

import duckdb
import pytest

from pipeline.errors import PipelineError
from pipeline.report.build import build_reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = {"economy_timeline.png", "baseline_vs_response.png", "hr_vs_speed.png", "weekly_volume.png",
               "raw_vs_economy.png"}


def page(ws, athlete: str) -> str:
    return (ws.reports_dir / athlete / "index.html").read_text(encoding="utf-8")


def headline_text(page_html: str) -> str:
    m = re.search(r'<p class="headline[^"]*" id="headline">(.*?)</p>', page_html, re.S)
    assert m, "page has no headline paragraph"
    return html.unescape(m.group(1))


def effect_row(ws, athlete, metric="economy_m_per_beat", method="its") -> dict:
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        cur = con.execute("SELECT * FROM block_effects WHERE athlete_id=? AND metric=? AND method=?",
                          [athlete, metric, method])
        cols = [d[0] for d in cur.description]
        return dict(zip(cols, cur.fetchone()))
    finally:
        con.close()


def one_decimal(v: float) -> str:
    return f"{v:.1f}".replace("-", "\u2212")


def test_build_returns_squad_page_and_writes_every_athlete(built_reports):
    ws, index = built_reports
    assert index == ws.reports_dir / "index.html"
    squad = index.read_text(encoding="utf-8")
    for athlete in ("gainer", "nullish", "nohr", "ghost", "thin"):
        assert (ws.reports_dir / athlete / "index.html").exists()
        assert f'href="{athlete}/index.html"' in squad
    assert (ws.reports_dir / "block_effects_forest.png").read_bytes().startswith(PNG_MAGIC)


def test_headline_numbers_are_the_block_effects_values(built_reports):
    ws, _ = built_reports
    row = effect_row(ws, "gainer")
    text = headline_text(page(ws, "gainer"))
    assert row["verdict"] == "gain"
    expected = (f"running economy was {one_decimal(row['change_pct'])} % better than the pre-block trend predicted "
                f"(95 % CI {one_decimal(row['ci_low_pct'])} to {one_decimal(row['ci_high_pct'])} %; "
                f"smallest worthwhile change {one_decimal(row['swc_pct'])} %)")
    assert expected in text
    # Weeks counted from the block start to the response window, and the block's start date.
    assert text.startswith("In weeks 6\u201312 after your strength block started (12 Mar 2025)")
    assert "coincided" in text and "caused" not in text.replace("does not prove the block caused", "")


def test_squad_row_shows_the_headline_estimate_and_ci(built_reports):
    ws, index = built_reports
    row = effect_row(ws, "gainer")
    squad = html.unescape(index.read_text(encoding="utf-8"))
    m = re.search(r"Gail <Gainer>.*?</tr>", squad, re.S)
    assert m
    assert f"+{one_decimal(row['change_pct'])}" in m.group(0)
    assert f"{one_decimal(row['ci_low_pct'])} to {one_decimal(row['ci_high_pct'])}" in m.group(0)
    assert "gain" in m.group(0)


def test_every_figure_is_written_as_png_for_sharing_and_linked(built_reports):
    ws, _ = built_reports
    out = ws.reports_dir / "gainer"
    assert {p.name for p in out.glob("*.png")} == ALL_FIGURES
    body = page(ws, "gainer")
    assert {name for name in ALL_FIGURES if f'href="{name}"' in body} == ALL_FIGURES
    on_disk = {(out / name).read_bytes() for name in ALL_FIGURES}
    for png in on_disk:
        assert png.startswith(PNG_MAGIC)
        width = int.from_bytes(png[16:20], "big")
        assert width >= 1000, "figures must be sharp enough to share"


def test_pages_are_self_contained(built_reports):
    ws, index = built_reports
    for path in [index, *ws.reports_dir.glob("*/index.html")]:
        body = path.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', body), path
        assert "<link" not in body and "<script src" not in body and "@import" not in body
        assert 'name="viewport"' in body
        assert "https://vega.github.io/editor" not in body.split('"editor":')[0][-200:]  # editor action off


def test_shared_pngs_say_who_which_block_verdict_and_range(built_reports):
    from pipeline.report.build import share_line
    from pipeline.report.data import load_athlete_tables

    ws, _ = built_reports
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    line = share_line(load_athlete_tables(con, "gainer"))
    con.close()
    assert line.startswith("Gail <Gainer> · strength block from 12 Mar 2025 · verdict: gain (+2.1 %, 95 % CI 0.9")
    assert "runs 1 Nov 2024 to" in line and "pipeline " in line


def test_shared_pngs_hold_every_text_inside_the_image(built_reports):
    """The athlete figures are saved at their own size, drawn once (no ``bbox_inches="tight"``): every title,
    label, legend and the wrapped share footer must still lie inside the image, even for a long footer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pipeline.report import figures as fg
    from pipeline.report.build import ATHLETE_FIGURES, _focus, share_line
    from pipeline.report.data import load_athlete_tables

    ws, _ = built_reports
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    tables = load_athlete_tables(con, "gainer")
    con.close()
    footer = share_line(tables) + " · a coach's note that makes the footer run over two lines" * 3
    drawn = 0
    for spec in ATHLETE_FIGURES:
        fig = spec.draw(tables, _focus(tables))
        if fig is None:
            continue
        fg.add_share_footer(fig, footer)
        assert fg.figure_png(fig).startswith(PNG_MAGIC)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        content = fig.get_tightbbox(canvas.get_renderer())   # inches
        assert content.x0 >= 0 and content.y0 >= 0, (spec.filename, content)
        assert content.x1 <= fig.get_figwidth() + 1e-6 and content.y1 <= fig.get_figheight() + 1e-6, \
            (spec.filename, content)
        assert fig.get_supxlabel().count("\n") >= 1, spec.filename     # wrapped, not run off the edge
        drawn += 1
    assert drawn == len(ALL_FIGURES)


def test_footer_wraps_to_the_width_and_keeps_every_word():
    from pipeline.report.figures import _TEXT_RENDERER, wrap_to_width

    from matplotlib.font_manager import FontProperties

    text = "Demo athlete with a rather long name · strength block from 13 Jul 2026 · verdict: gain " * 4
    wrapped = wrap_to_width(text, 8, 6.0)
    widths = [_TEXT_RENDERER.get_text_width_height_descent(line, FontProperties(size=8), ismath=False)[0]
              for line in wrapped.split("\n")]
    assert len(widths) >= 3 and max(widths) <= 6.0 * 72 and min(widths[:-1]) > 0.8 * 6.0 * 72
    assert wrapped.split() == text.split()
    assert wrap_to_width("short line", 8, 6.0) == "short line"


def test_footer_says_when_data_version_and_settings(built_reports):
    ws, index = built_reports
    body = page(ws, "gainer")
    footer = re.search(r'<footer class="muted" id="page-footer">(.*?)</footer>', body, re.S).group(1)
    assert "Generated on" in footer and "data up to" in footer and "pipeline 0.1.0" in footer
    assert "swc_pct" in footer   # the analysis settings, from analysis_runs
    assert 'id="page-footer"' in index.read_text(encoding="utf-8")


def test_charts_carry_the_trend_and_every_run(built_reports):
    ws, _ = built_reports
    body = page(ws, "gainer")
    assert "trend_band" in body and "response_level" in body and 'id="chart-timeline"' in body
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    n = con.execute("SELECT count(*) FROM run_metrics WHERE athlete_id = 'gainer'").fetchone()[0]
    con.close()
    assert len(re.findall(r'<tr data-period="', body)) == n


def test_display_names_and_messages_are_escaped(built_reports):
    ws, index = built_reports
    assert "Gail &lt;Gainer&gt;" in index.read_text(encoding="utf-8")
    body = page(ws, "gainer")
    assert "<Gainer>" not in body and "header says 4000 bytes &lt;b&gt;" in body


def test_data_quality_table_counts_exclusions_and_failed_files(built_reports):
    ws, _ = built_reports
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    reasons = con.execute("SELECT exclusion_reason, count(*) FROM run_metrics WHERE athlete_id='gainer' "
                          "AND NOT included GROUP BY 1").fetchall()
    n_runs, n_included = con.execute("SELECT count(*), count(*) FILTER (WHERE included) FROM run_metrics "
                                     "WHERE athlete_id='gainer'").fetchone()
    con.close()
    body = page(ws, "gainer")
    table = re.search(r'<table id="exclusions">.*?</table>', body, re.S).group(0)
    for reason, count in reasons:
        assert re.search(rf"<td>{re.escape(reason)}</td><td class=\"num\">{count}</td>", table), reason
    assert f"{n_runs} runs found: {n_included} included, {n_runs - n_included} excluded" in body
    failed = re.search(r'<table id="failed-files">.*?</table>', body, re.S).group(0)
    assert "data/raw/gainer/broken.fit" in failed and "a.gpx" not in failed


def test_placebo_sentence_counts_gains_among_rated_fake_starts(built_reports):
    ws, _ = built_reports
    # Fixture: 5 fake starts, one "insufficient data" (not rated), one "gain".
    assert "At 1 of 4 fake block starts before the real block, the same method would have claimed a gain" \
        in page(ws, "gainer")


def test_sections_appear_in_the_specified_order(built_reports):
    ws, _ = built_reports
    body = page(ws, "gainer")
    ids = ["headline", "timeline", "comparison", "blocks", "weekly", "record", "hr-speed", "runs", "data-quality",
           "placebo", "methods"]
    positions = [body.index(f'id="{i}"') for i in ids]
    assert positions == sorted(positions)


@pytest.mark.parametrize("athlete, says, figures", [
    ("ghost", "No runs were found for this athlete", set()),
    ("nohr", "None of the runs carries heart-rate data", {"weekly_volume.png"}),
    ("nullish", "strength sessions were found, but none formed a sustained block",
     ALL_FIGURES - {"baseline_vs_response.png"}),
    ("thin", "Not enough steady runs around your strength block", None),
])
def test_edge_case_pages_say_so_plainly(built_reports, athlete, says, figures):
    ws, _ = built_reports
    body = page(ws, athlete)
    assert says in headline_text(body)
    written = {p.name for p in (ws.reports_dir / athlete).glob("*.png")}
    if figures is not None:
        assert written == figures
    # No empty/broken images: the page links exactly the PNGs written beside it.
    markup = re.sub(r"<script>.*?</script>", "", body, flags=re.S)
    assert "<img " not in markup and set(re.findall(r'href="([a-z_]+\.png)"', body)) == written


def test_unknown_athlete_is_a_clear_error(filled_workspace):
    with pytest.raises(PipelineError, match="no athlete 'nobody' in the warehouse"):
        build_reports(filled_workspace, athlete_id="nobody")


def test_one_athlete_only_and_stale_figures_removed(filled_workspace):
    ws = filled_workspace
    stale = ws.reports_dir / "ghost" / "economy_timeline.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    index = build_reports(ws, athlete_id="ghost")
    assert index.exists() and (ws.reports_dir / "ghost" / "index.html").exists()
    assert not stale.exists(), "a figure without data must not linger beside the page"
    assert not (ws.reports_dir / "gainer").exists()
    # The squad page links only to pages that exist.
    squad = index.read_text(encoding="utf-8")
    assert 'href="ghost/index.html"' in squad and 'href="gainer/index.html"' not in squad


def test_no_warehouse_is_a_clear_error(workspace):
    with pytest.raises(PipelineError, match="no warehouse"):
        build_reports(workspace)
