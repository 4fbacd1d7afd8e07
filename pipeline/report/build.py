"""Building the report: ``reports/<athlete>/index.html`` + PNGs, and ``reports/index.html``.

Recipe (:func:`build_reports`):

1. open the warehouse read-only and read each athlete's rows (:mod:`pipeline.report.data`);
2. per athlete, draw the figures that have data (:func:`draw_athlete_figures`, the figures listed in
   :data:`ATHLETE_FIGURES`, drawn by :mod:`pipeline.report.figures`), write each as PNG beside the page
   and inline the same bytes as a base64 ``data:`` URI, so the page is one self-contained file that
   opens offline, on a phone or as an e-mail attachment;
3. put the words together (:func:`athlete_page_context`, no I/O; :mod:`pipeline.report.story`) and
   render the Jinja2 templates (autoescaped);
4. render the squad page with the forest plot of every athlete's block effects.

Pages whose data did not change since they were last built are kept as they are
(:mod:`pipeline.report.manifest`); :func:`report_workspace` says which were written and how long it took.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from tqdm import tqdm

from pipeline.errors import PipelineError
import pipeline
from pipeline.report import charts, interactive
from pipeline.report import figures as fg
from pipeline.report import story
from pipeline.report.headline import CALIBRATED_FIELDS, calibrated, headline_box, pace_text
from pipeline.report.vega import EMBED_OPTIONS, script_safe_json, vega_bundle
from pipeline.report.data import (AthleteReportData, latest_analysis_error, list_athletes, load_athlete_tables,
                                  load_squad_tables)
from pipeline.report.manifest import SQUAD_PAGE, Manifest, ReportSummary, page_digest
from pipeline.report.squad_section import squad_section
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace, validate_athlete_id

PAGE_NAME = "index.html"
FOREST_PNG = "block_effects_forest.png"

METRIC_NAMES = {
    "economy_m_per_beat": ("economy index", "m/beat", 3),
    "m_per_beat": ("raw pace per heartbeat", "m/beat", 3),
    "gap_m_per_beat": ("grade-adjusted pace per heartbeat", "m/beat", 3),
    "hr_at_ref_bpm": ("HR at reference speed", "bpm", 1),
    "decoupling_pct": ("aerobic decoupling", "%", 1),
}
METHOD_NAMES = {"its": "vs pre-block trend (ITS)", "window": "window means"}


@dataclass(frozen=True)
class RenderedFigure:
    """One figure as written: PNG file name beside the page and the same image as a data URI."""

    key: str
    filename: str
    data_uri: str
    alt: str
    min_font_px: float = 0.0   # smallest text in PNG pixels (see figures.min_font_px)


def _environment() -> Environment:
    # autoescape: athlete names, file paths and error messages come from users' files.
    env = Environment(loader=PackageLoader("pipeline.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = story.format_1dp
    env.filters["signed_pct"] = story.format_signed_1dp
    env.filters["day"] = story.format_day
    return env


def _render_figure(fig, out_dir: Path, key: str, alt: str, fit_to_content: bool = False) -> RenderedFigure:
    png = fg.figure_png(fig, fit_to_content=fit_to_content)
    filename = f"{key}.png"
    _write_bytes(out_dir / filename, png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return RenderedFigure(key=key, filename=filename, data_uri=uri, alt=alt, min_font_px=fg.min_font_px(fig))


def _write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader never sees a half-written page or image."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _format_value(metric: str, value) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    decimals = METRIC_NAMES.get(metric, ("", "", 2))[2]
    return f"{value:.{decimals}f}".replace("-", story.MINUS)


def _effect_table_rows(effects: pd.DataFrame) -> list[dict]:
    rows = []
    order = {m: i for i, m in enumerate(METRIC_NAMES)}
    effects = effects.assign(_o=effects["metric"].map(order).fillna(99)).sort_values(["_o", "method"])
    for _, r in effects.iterrows():
        name, unit, _ = METRIC_NAMES.get(r["metric"], (r["metric"], "", 2))
        rows.append({
            "metric": f"{name} ({unit})" if unit else name,
            "headline": r["metric"] == HEADLINE_METRIC and r["method"] == HEADLINE_METHOD,
            "method": METHOD_NAMES.get(r["method"], r["method"]),
            "n": f"{fg._int(r['n_baseline'])} / {fg._int(r['n_response'])}",
            "baseline": _format_value(r["metric"], r["baseline_value"]),
            "response": _format_value(r["metric"], r["response_value"]),
            "change": story.format_signed_1dp(r["change_pct"]),
            "ci": (f"{story.format_1dp(r['ci_low_pct'])} to {story.format_1dp(r['ci_high_pct'])}"
                   if not pd.isna(r["ci_low_pct"]) else "n/a"),
            "verdict": r["verdict"] if isinstance(r["verdict"], str) else "n/a",
        })
    return rows


def _focus_block(tables: AthleteReportData) -> str | None:
    """The block the detailed sections are about: the headline's, else the most recent with effects."""
    effect = story.headline_effect(tables)
    if effect is not None:
        return effect.row["block_id"]
    rows = story.headline_rows(tables)
    if len(rows):
        return rows.iloc[0]["block_id"]
    return tables.blocks.iloc[-1]["block_id"] if len(tables.blocks) else None


@dataclass(frozen=True)
class _Focus:
    """The block the page's detailed sections are about, with its headline-metric effects.

    ``effects``: its block_effects rows of the headline metric (any method), also ``by_method`` (indexed
    by method). ``quoted``: the row whose dates and run counts the page quotes, the headline method's,
    else whichever method exists (None without effects). ``start``: the block's first day (None: no block).
    """

    block_id: str | None
    effects: pd.DataFrame
    by_method: pd.DataFrame
    quoted: pd.Series | None
    start: pd.Timestamp | None


def _focus(tables: AthleteReportData) -> _Focus:
    """The :class:`_Focus` of an athlete (see :func:`_focus_block` for which block that is)."""
    block_id = _focus_block(tables)
    eff = tables.effects
    headline_rows = eff[eff["metric"] == HEADLINE_METRIC]
    effects = headline_rows[headline_rows["block_id"] == block_id]
    by_method = effects.set_index("method")
    quoted = (by_method.loc[HEADLINE_METHOD] if HEADLINE_METHOD in by_method.index
              else effects.iloc[0] if len(effects) else None)
    block = tables.blocks[tables.blocks["block_id"] == block_id]
    start = block.iloc[0]["start_date"] if len(block) else None
    return _Focus(block_id, effects, by_method, quoted, start)


def _timeline_figure(tables: AthleteReportData, focus: _Focus) -> fg.Figure | None:
    included = tables.included_runs
    if not len(included):
        return None
    windows = tables.effects[tables.effects["metric"] == HEADLINE_METRIC]
    trend = tables.trends[(tables.trends["block_id"] == focus.block_id)
                          & (tables.trends["metric"] == HEADLINE_METRIC)] if len(tables.trends) else None
    box = headline_box(tables)
    colour = fg.VERDICT_COLOURS.get(box.verdict if box else "", fg.OKABE_ITO["grey"])
    return fg.economy_timeline_plot(included, tables.strength_sessions, tables.blocks, windows, trend, colour)


def _comparison_figure(tables: AthleteReportData, focus: _Focus) -> fg.Figure | None:
    included = tables.included_runs
    if not (len(included) and len(focus.effects) and focus.quoted is not None
            and focus.effects["change_pct"].notna().any()):
        return None
    swc = focus.effects["swc_pct"].dropna()
    return fg.block_comparison_plot(included, focus.effects, swc.iloc[0] if len(swc) else None)


def _hr_speed_figure(tables: AthleteReportData, focus: _Focus) -> fg.Figure | None:
    runs = tables.runs
    hr_runs = runs[runs["heart_rate_bpm"].notna() & runs["gap_speed_m_s"].notna()]
    if not len(hr_runs):
        return None
    w = focus.quoted
    periods = story.run_periods(hr_runs["start_time"], focus.start,
                                None if w is None else w["response_start"],
                                None if w is None else w["response_end"])
    return fg.hr_speed_plot(hr_runs, periods)


def _weekly_figure(tables: AthleteReportData, focus: _Focus) -> fg.Figure | None:
    return fg.weekly_volume_plot(tables.weekly, tables.blocks) if len(tables.weekly) else None


def _raw_vs_economy_figure(tables: AthleteReportData, focus: _Focus) -> fg.Figure | None:
    included = tables.included_runs
    raw_runs = included[included["m_per_beat"].notna()]
    if len(raw_runs) < 3:
        return None
    # The % scale is relative to the few weeks before the block (the window method's baseline).
    ref_row = focus.by_method.loc["window"] if "window" in focus.by_method.index else focus.quoted
    reference = (None if ref_row is None or pd.isna(ref_row["baseline_start"])
                 else (ref_row["baseline_start"], ref_row["baseline_end"]))
    return fg.raw_vs_economy_plot(raw_runs, reference)


class AthleteFigure(NamedTuple):
    """One figure of the athlete page: ``figures[key]`` in the template, ``<filename>.png`` beside the
    page, its alt text, and ``draw(tables, focus)`` -> a Figure, or None when there is nothing to draw."""

    key: str
    filename: str
    alt: str
    draw: Callable[[AthleteReportData, _Focus], fg.Figure | None]


# The athlete page's figures, in page order. A new figure: a drawing function in figures.py, a row here,
# and its place in templates/athlete.html.j2.
ATHLETE_FIGURES = (
    AthleteFigure("timeline", "economy_timeline",
                  "Economy index per run over time with rolling median, strength sessions, blocks and windows",
                  _timeline_figure),
    AthleteFigure("comparison", "baseline_vs_response",
                  "Economy in baseline and response windows and estimated change", _comparison_figure),
    AthleteFigure("hr_speed", "hr_vs_speed", "Heart rate against grade-adjusted speed per run, by period",
                  _hr_speed_figure),
    AthleteFigure("weekly", "weekly_volume", "Weekly running km and strength sessions", _weekly_figure),
    AthleteFigure("raw_vs_economy", "raw_vs_economy",
                  "Raw pace per heartbeat beside the economy index, and running speed", _raw_vs_economy_figure),
)


def draw_athlete_figures(tables: AthleteReportData, out_dir: Path) -> dict[str, RenderedFigure]:
    """Draw the athlete's figures that have data, write each as PNG into ``out_dir``; keyed as the page uses."""
    focus = _focus(tables)
    figures: dict[str, RenderedFigure] = {}
    footer = share_line(tables)
    for spec in ATHLETE_FIGURES:
        fig = spec.draw(tables, focus)
        if fig is not None:
            fg.add_share_footer(fig, footer)
            figures[spec.key] = _render_figure(fig, out_dir, spec.filename, spec.alt)
    return figures


def share_line(tables: AthleteReportData) -> str:
    """What a shared PNG says under it: the athlete, the block, the verdict, the data range, the version."""
    parts = [tables.display_name]
    box = headline_box(tables)
    effect = story.headline_effect(tables)
    if effect is not None and effect.block_start is not None:
        parts.append(f"strength block from {story.format_day(effect.block_start)}")
    if box is not None:
        parts.append(f"verdict: {box.verdict} ({box.change} %, 95 % CI {box.ci} %)")
    if len(tables.runs):
        parts.append(f"runs {story.format_day(tables.runs['start_time'].min())} to "
                     f"{story.format_day(tables.runs['start_time'].max())}")
    parts.append(f"pipeline {pipeline.__version__}")
    return " · ".join(parts)


def athlete_page_context(tables: AthleteReportData, figures: dict[str, RenderedFigure]) -> dict:
    """Everything the athlete template shows, from the tables and the already-rendered figures (no I/O)."""
    runs = tables.runs
    focus = _focus(tables)
    files = tables.source_files
    return {
        "athlete_id": tables.athlete_id,
        "name": tables.display_name,
        "headline": story.headline_sentence(tables),
        "verdict": story.short_verdict(tables),
        "figures": figures,
        "n_runs": len(runs),
        "n_included": len(tables.included_runs),
        "has_hr": tables.has_hr,
        "n_sessions": len(tables.strength_sessions),
        "blocks": _block_rows(tables.blocks, focus.block_id),
        "windows": _window_rows(focus.by_method) if focus.block_id is not None else [],
        "effect_rows": (_effect_table_rows(tables.effects[tables.effects["block_id"] == focus.block_id])
                        if focus.block_id is not None else []),
        "exclusions": story.exclusion_counts(runs).to_dict("records"),
        "failed_files": files.loc[files["status"] == "error", ["path", "format", "status", "message"]]
                        .fillna("").to_dict("records"),
        "status_counts": files["status"].value_counts().to_dict() if len(files) else {},
        "placebo": story.placebo_summary(tables, focus.block_id),
        "placebo_rows": story.headline_controls(tables, focus.block_id).to_dict("records"),
        "has_temperature": bool(runs["temperature_c"].notna().any()) if len(runs) else False,
        "box": headline_box(tables),
        "analysis_error": tables.analysis_error,
        "weather_note": weather_note(tables),
        "footer": page_footer(tables),
        **interactive_context(tables, focus),
    }


def interactive_context(tables: AthleteReportData, focus: _Focus) -> dict:
    """The page's charts (Vega-Lite specs by element id, only those with data) and the per-run table rows."""
    w = focus.quoted
    periods = (story.run_periods(tables.runs["start_time"], focus.start, None if w is None else w["response_start"],
                                 None if w is None else w["response_end"]) if len(tables.runs) else None)
    runs = interactive.run_hover_frame(tables, periods)
    trend = tables.trends[(tables.trends["block_id"] == focus.block_id)
                          & (tables.trends["metric"] == HEADLINE_METRIC)] if len(tables.trends) else tables.trends
    its = focus.by_method.loc[HEADLINE_METHOD] if HEADLINE_METHOD in focus.by_method.index else None
    box = headline_box(tables)
    colour = fg.VERDICT_COLOURS.get(box.verdict if box else "", fg.OKABE_ITO["grey"])
    specs = {"chart-timeline": charts.timeline_chart(runs, trend, tables.blocks, tables.strength_sessions,
                                                     interactive.gap_marker(trend, its), colour)}
    if len(runs) and runs["economy"].notna().any():
        domain = (runs["t"].min() - pd.Timedelta(days=3), runs["t"].max() + pd.Timedelta(days=3))
        specs["chart-temperature"] = charts.temperature_chart(runs, tables.blocks, domain)
    if focus.block_id is not None:
        specs["chart-estimates"] = charts.estimates_chart(interactive.method_rows(tables, focus.block_id),
                                                          _first(focus.effects["swc_pct"]))
        controls, real = interactive.control_rows(tables, focus.block_id)
        specs["chart-controls"] = charts.controls_chart(controls, real) if real is not None else None
    specs["chart-blocks"] = charts.blocks_chart(interactive.block_rows(tables))
    specs["chart-weekly"] = charts.weekly_chart(tables.weekly, tables.blocks)
    specs["chart-intensity"] = charts.intensity_chart(runs, tables.blocks, lambda v: pace_text(v, tables.units))
    specs["chart-hr-speed"] = charts.hr_speed_chart(runs, tables.units)
    specs["chart-decoupling"] = charts.decoupling_chart(runs, tables.blocks)
    ref_row = focus.by_method.loc["window"] if "window" in focus.by_method.index else focus.quoted
    reference = (None if ref_row is None or pd.isna(ref_row["baseline_start"])
                 else (ref_row["baseline_start"], ref_row["baseline_end"]))
    specs["chart-relative"] = charts.relative_chart(runs, reference)
    specs = {k: v for k, v in specs.items() if v is not None}
    return {"charts": specs, "charts_json": script_safe_json(specs), "embed_json": script_safe_json(EMBED_OPTIONS),
            "run_rows": run_table_rows(runs), "has_trend": bool(len(trend))}


def _first(values: pd.Series):
    values = values.dropna()
    return float(values.iloc[0]) if len(values) else None


def run_table_rows(runs: pd.DataFrame) -> list[dict]:
    """The per-run table: one row per run, newest first, with sortable values beside the shown texts."""
    rows = []
    for _, r in runs.sort_values("t", ascending=False).iterrows():
        rows.append({"date": r["t"].strftime("%Y-%m-%d"), "when": r["when"], "period": r["table_period"],
                     "block": r["block_id"] or "", "distance": r["distance"], "pace": r["pace"], "hr": r["hr"],
                     "economy": "" if pd.isna(r["economy"]) else f"{r['economy']:.3f}",
                     "decoupling": "" if pd.isna(r["decoupling_pct"]) else f"{r['decoupling_pct']:.1f}",
                     "temperature": r["temperature"], "included": r["status"] == "included",
                     "reason": "" if r["status"] == "included" else r["status"].removeprefix("excluded: ")})
    return rows


def weather_note(tables: AthleteReportData) -> str:
    """Which runs had archive weather (air temperature) and where the others' temperature came from."""
    runs = tables.runs
    if runs.empty:
        return ""
    with_air = int(runs["activity_id"].isin(tables.weather["activity_id"]).sum()) if len(tables.weather) else 0
    device = int((~runs["activity_id"].isin(tables.weather.get("activity_id", pd.Series(dtype=object)))
                  & runs["temperature_c"].notna()).sum())
    none = len(runs) - with_air - device
    return (f"Temperature: {with_air} of {len(runs)} runs have the air temperature from the weather archive "
            f"(Open-Meteo), {device} only the watch's own sensor (it reads warmer than the air), {none} none.")


def page_footer(tables: AthleteReportData | None) -> dict:
    """generated on / data up to / pipeline version / settings, for every page's footer."""
    footer = {"generated": story.format_day(pd.Timestamp.now(tz="UTC").tz_localize(None)),
              "version": pipeline.__version__, "data_until": None, "settings": None, "analysed": None}
    if tables is not None and len(tables.runs):
        footer["data_until"] = story.format_day(tables.runs["start_time"].max())
    run = tables.analysis if tables is not None else None
    if run is not None:
        footer["version"] = run["pipeline_version"] or footer["version"]
        footer["settings"] = run["settings_json"]
        footer["analysed"] = story.format_day(run["finished_at"])
    return footer


def _block_rows(blocks: pd.DataFrame, focus: str | None) -> list[dict]:
    """The strength blocks table: label (else id), dates, sessions, sessions/week, source, is it the focus."""
    return [{"label": b["label"] if isinstance(b["label"], str) and b["label"] else b["block_id"],
             "start": b["start_date"], "end": b["end_date"],
             "sessions": fg._int(b["sessions"]),
             "per_week": "n/a" if pd.isna(b["sessions_per_week"]) else f"{b['sessions_per_week']:.1f}",
             "source": b["source"] if isinstance(b["source"], str) else "",
             "focus": b["block_id"] == focus}
            for _, b in blocks.iterrows()]


def _window_rows(by_method: pd.DataFrame) -> list[dict]:
    """Baseline and response windows of the focus block, one row per method."""
    return [{"method": METHOD_NAMES.get(m, m),
             "baseline_start": r["baseline_start"], "baseline_end": r["baseline_end"],
             "response_start": r["response_start"], "response_end": r["response_end"],
             "n_baseline": fg._int(r["n_baseline"]), "n_response": fg._int(r["n_response"])}
            for m, r in by_method.sort_index().iterrows()]


def write_athlete_page(tables: AthleteReportData, reports_dir: Path, env: Environment | None = None,
                       vega_cache: Path | None = None) -> Path:
    """Write ``reports/<athlete>/index.html`` and its PNGs; returns the page's path. ``vega_cache``: where the
    charts' JavaScript bundle is cached (:func:`pipeline.report.vega.vega_bundle`)."""
    env = env or _environment()
    out_dir = reports_dir / validate_athlete_id(tables.athlete_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = athlete_page_context(tables, draw_athlete_figures(tables, out_dir))
    # Figures that no longer have data must not linger beside the page and contradict it.
    written = {f.filename for f in context["figures"].values()}
    for old in out_dir.glob("*.png"):
        if old.name not in written:
            old.unlink()
    html = env.get_template("athlete.html.j2").render(**context,
                                                      vega_js=vega_bundle(vega_cache) if context["charts"] else "")
    page = out_dir / PAGE_NAME
    _write_bytes(page, html.encode("utf-8"))
    return page


def squad_rows(all_tables: list[AthleteReportData], reports_dir: Path) -> list[dict]:
    rows = []
    for t in all_tables:
        effect = story.headline_effect(t)
        r = effect.row if effect is not None else None
        page = reports_dir / t.athlete_id / PAGE_NAME
        rows.append({
            "athlete_id": t.athlete_id,
            "name": t.display_name,
            "link": f"{t.athlete_id}/{PAGE_NAME}" if page.exists() else None,
            "runs_included": len(t.included_runs),
            "runs": len(t.runs),
            "blocks": len(t.blocks),
            "verdict": "not analysed" if t.analysis_error else story.short_verdict(t),
            "estimate": None if r is None else story.format_signed_1dp(calibrated(r, "change_pct")),
            "ci": None if r is None else (f"{story.format_1dp(calibrated(r, 'ci_low_pct'))} to "
                                          f"{story.format_1dp(calibrated(r, 'ci_high_pct'))}"),
        })
    return rows


def forest_rows(all_tables: list[AthleteReportData]) -> pd.DataFrame:
    """Every athlete × block headline effect (economy, ITS), labelled for the forest plot: the calibrated
    change, CI and verdict where the row has them (as the athletes' headlines), else the raw ones."""
    frames = []
    for t in all_tables:
        eff = t.effects
        rows = eff[(eff["metric"] == HEADLINE_METRIC) & (eff["method"] == HEADLINE_METHOD)]
        if rows.empty:
            continue
        rows = rows.assign(**{k: [calibrated(r, k) for _, r in rows.iterrows()] for k in CALIBRATED_FIELDS})
        starts = dict(zip(t.blocks["block_id"], t.blocks["start_date"]))
        labels = [f"{t.display_name} · block from {story.format_day(starts.get(b))}" if b in starts
                  else f"{t.display_name} · {b}" for b in rows["block_id"]]
        frames.append(rows.assign(row_label=labels, _start=[starts.get(b) for b in rows["block_id"]])
                      .sort_values("_start").drop(columns="_start"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_squad_page(all_tables: list[AthleteReportData], reports_dir: Path, env: Environment | None = None,
                     squad_tables: dict | None = None, vega_cache: Path | None = None) -> Path:
    """Write ``reports/index.html`` (the athletes' table, every block effect, the squad section) and its
    PNGs for sharing; the page's figures are interactive charts drawn for the width they are shown at."""
    env = env or _environment()
    reports_dir.mkdir(parents=True, exist_ok=True)
    effects = forest_rows(all_tables)
    forest = None
    if len(effects):
        forest = _render_figure(fg.block_effects_forest_plot(effects), reports_dir, FOREST_PNG.removesuffix(".png"),
                                "Forest plot of each athlete's block effect on running economy with 95 % CI",
                                fit_to_content=True)   # its row labels name athletes: any length
    elif (reports_dir / FOREST_PNG).exists():
        (reports_dir / FOREST_PNG).unlink()
    squad = squad_section(squad_tables, {t.athlete_id: t.display_name for t in all_tables}, reports_dir) \
        if squad_tables is not None else None
    specs = {"chart-effects": charts.forest_chart(effect_forest_rows(effects), _first(effects["swc_pct"]),
                                                  "block_effects", notes=True) if len(effects) else None,
             **(squad["charts"] if squad else {})}
    specs = {k: v for k, v in specs.items() if v is not None}
    footer = page_footer(None)
    ends = [t.runs["start_time"].max() for t in all_tables if len(t.runs)]
    footer["data_until"] = story.format_day(max(ends)) if ends else None
    html = env.get_template("squad.html.j2").render(
        rows=squad_rows(all_tables, reports_dir), forest=forest, squad=squad, footer=footer, charts=specs,
        charts_json=script_safe_json(specs), embed_json=script_safe_json(EMBED_OPTIONS),
        vega_js=vega_bundle(vega_cache) if specs else "")
    page = reports_dir / PAGE_NAME
    _write_bytes(page, html.encode("utf-8"))
    return page


def effect_forest_rows(effects: pd.DataFrame) -> pd.DataFrame:
    """:func:`forest_rows` as rows of :func:`pipeline.report.charts.forest_chart`, coloured by verdict."""
    return pd.DataFrame({
        "label": effects["row_label"], "change": effects["change_pct"], "lo": effects["ci_low_pct"],
        "hi": effects["ci_high_pct"],
        "colour": [fg.VERDICT_COLOURS.get(str(v), fg.OKABE_ITO["grey"]) for v in effects["verdict"]],
        "note": effects["verdict"].astype(str),
        "change_text": [f"{story.format_signed_1dp(c)} % (95 % CI {story.format_1dp(lo)} to {story.format_1dp(hi)})"
                        if not pd.isna(c) else "insufficient data"
                        for c, lo, hi in zip(effects["change_pct"], effects["ci_low_pct"], effects["ci_high_pct"])]})


def remove_stale_pages(reports_dir: Path, athletes: list[str]) -> list[str]:
    """Delete ``reports/<folder>/`` of athletes the warehouse no longer holds (their data folder is gone).

    Only folders this step wrote are touched: a folder holding an ``index.html`` and nothing but pages and
    figures (``*.html``, ``*.png``); anything else found there is left alone. Returns the folders removed.
    """
    removed = []
    if not reports_dir.is_dir():
        return removed
    for folder in sorted(p for p in reports_dir.iterdir() if p.is_dir() and p.name not in athletes):
        files = list(folder.iterdir())
        ours = all(f.is_file() and f.suffix in (".html", ".png", ".tmp") for f in files)
        if ours and (folder / PAGE_NAME).is_file():
            for f in files:
                f.unlink()
            folder.rmdir()
            removed.append(folder.name)
    return removed


def _write_error_page(athlete_id: str, message: str, analysis_error: str | None, reports_dir: Path,
                      env: Environment) -> None:
    """A page saying why an athlete's report could not be built, so the squad page's link is not dead."""
    out_dir = reports_dir / validate_athlete_id(athlete_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    html = env.get_template("athlete_error.html.j2").render(athlete_id=athlete_id, message=message,
                                                            analysis_error=analysis_error,
                                                            footer=page_footer(None))
    _write_bytes(out_dir / PAGE_NAME, html.encode("utf-8"))


def _one_line(error: BaseException) -> str:
    text = str(error) if isinstance(error, PipelineError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:300]


def build_reports(ws: Workspace, athlete_id: str | None = None, force: bool = False) -> Path:
    """:func:`report_workspace`; returns the squad page's path."""
    return report_workspace(ws, athlete_id=athlete_id, force=force).index


def report_workspace(ws: Workspace, athlete_id: str | None = None, force: bool = False,
                     progress: bool = False) -> ReportSummary:
    """Write every athlete's page (or only ``athlete_id``'s) and the squad page, skipping pages whose data
    did not change since they were built (:mod:`pipeline.report.manifest`; ``force`` rebuilds them).

    Reads the warehouse read-only. Raises :class:`PipelineError` for an unknown athlete or no warehouse.
    One athlete's page failing (unreadable rows, a figure that cannot be drawn) costs no other athlete
    theirs: that athlete gets a page saying why, every other page and the squad page are written, and a
    PipelineError naming the athlete(s) is raised at the end (the CLI exits 1).
    """
    clock = (time.perf_counter(), time.process_time())
    env, manifest = _environment(), Manifest(ws.reports_dir)
    summary = ReportSummary(ws.reports_dir / PAGE_NAME)
    failures: list[tuple[str, str]] = []
    all_tables: list[AthleteReportData] = []
    con = connect(ws, read_only=True)
    try:
        athletes = list_athletes(con)
        if athlete_id is not None and athlete_id not in athletes:
            known = ", ".join(athletes) or "none"
            raise PipelineError(f"no athlete {athlete_id!r} in the warehouse (athletes: {known})")
        for a in tqdm(athletes, unit="page", desc="report", disable=None if progress else True, leave=False):
            try:
                tables = load_athlete_tables(con, a)
                if athlete_id is None or a == athlete_id:
                    _athlete_page(tables, ws.reports_dir, env, manifest, summary, force, ws.processed_dir)
                all_tables.append(tables)
            except Exception as e:  # noqa: BLE001 - isolation boundary: named in the page and the error
                failures.append((a, _one_line(e)))
                manifest.forget(a)
                if athlete_id is None or a == athlete_id:
                    _write_error_page(a, _one_line(e), latest_analysis_error(con, a), ws.reports_dir, env)
        squad_tables = load_squad_tables(con)
    finally:
        con.close()
    if athlete_id is None:
        remove_stale_pages(ws.reports_dir, athletes)
        for key in set(manifest.pages) - set(athletes) - {SQUAD_PAGE}:   # athletes the warehouse no longer holds
            manifest.forget(key)
    _squad_page(all_tables, squad_tables, ws.reports_dir, env, manifest, summary, force or bool(failures),
                ws.processed_dir)
    manifest.save()
    summary.seconds, summary.cpu_seconds = time.perf_counter() - clock[0], time.process_time() - clock[1]
    if failures:
        named = "; ".join(f"{a} ({message})" for a, message in failures)
        raise PipelineError(f"the report page of {len(failures)} athlete(s) could not be built: {named}; every "
                            f"other page and the squad page {summary.index} were written")
    return summary


def _athlete_page(tables: AthleteReportData, reports_dir: Path, env: Environment, manifest: Manifest,
                  summary: ReportSummary, force: bool, vega_cache: Path | None = None) -> None:
    """Write the athlete's page unless it was built from the same data (then count it up to date);
    ``vega_cache``: where the charts' JavaScript bundle is cached."""
    digest = page_digest(tables)
    if not force and manifest.is_current(tables.athlete_id, digest):
        summary.up_to_date.append(tables.athlete_id)
        return
    manifest.forget(tables.athlete_id)         # recorded again only once the page is whole
    page = write_athlete_page(tables, reports_dir, env, vega_cache)
    manifest.record(tables.athlete_id, digest, [page, *page.parent.glob("*.png")])
    summary.written.append(tables.athlete_id)


def _squad_page(all_tables: list[AthleteReportData], squad_tables: dict, reports_dir: Path, env: Environment,
                manifest: Manifest, summary: ReportSummary, force: bool, vega_cache: Path | None = None) -> None:
    """Write the squad page unless its data (every athlete's, the squad tables, the links) is unchanged."""
    links = sorted(t.athlete_id for t in all_tables if (reports_dir / t.athlete_id / PAGE_NAME).exists())
    digest = page_digest(*all_tables, squad_tables, {"links": links})
    if not force and manifest.is_current(SQUAD_PAGE, digest):
        summary.squad = "up to date"
        return
    page = write_squad_page(all_tables, reports_dir, env, squad_tables, vega_cache)
    manifest.record(SQUAD_PAGE, digest, [page, *reports_dir.glob("*.png")])
    summary.squad = "written"
