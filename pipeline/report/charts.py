"""The page's interactive charts: Vega-Lite specs (built with Altair) from DataFrames, drawn in the browser.

Each function takes frames shaped like the warehouse tables (times tz-naive UTC) and returns a Vega-Lite
spec as a dict, or None when there is nothing to draw. Charts are drawn for the width they are shown at
(``width: "container"``), so their text keeps its size in CSS pixels on a phone and on a desktop:
:data:`FONT_PX` for every label, never below 11 px. Legends are written in HTML beside the chart (they wrap
on a phone). Hover shows each run's facts (date, distance, pace, heart rate, temperature and its source,
included or why not); the time axis zooms (wheel or pinch, drag to pan, double-click to reset).

The PNGs for sharing are drawn separately with matplotlib (:mod:`pipeline.report.figures`).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from pipeline.report.figures import (
    BASELINE_COLOUR, BLOCK_SHADE, OKABE_ITO, PERIOD_COLOURS, RESPONSE_COLOUR, VERDICT_COLOURS, rolling_median,
)
from pipeline.report.story import PERIODS

FONT_PX = 12          # every figure text, CSS px (the browser test checks >= 11 at 390 px)
HEIGHT_PX = 260
SECONDARY_GREY = "#8c8c8c"
TREND_COLOUR = "#333333"
TEMPERATURE_COLOURS = {"air": OKABE_ITO["vermillion"], "device": OKABE_ITO["orange"]}
ZOOM_NAME = "zoom"


def _config(chart: alt.TopLevelMixin, height: int = HEIGHT_PX) -> dict:
    """The spec with the report's sizes and fonts (shared by every chart)."""
    chart = chart.properties(width="container", height=height, autosize=alt.AutoSizeParams(type="fit",
                                                                                          contains="padding"))
    chart = (chart.configure_axis(labelFontSize=FONT_PX, titleFontSize=FONT_PX, titleFontWeight="normal",
                                  labelOverlap=True, grid=True, gridColor="#e4e4e4")
             .configure_text(fontSize=FONT_PX).configure_view(stroke=None)
             .configure_legend(labelFontSize=FONT_PX, titleFontSize=FONT_PX))
    spec = chart.to_dict()
    spec.pop("$schema", None)   # only a version tag; dropped so nothing in the page even names a URL
    return spec


def _time_x(title: str | None = None, zoom: bool = False) -> alt.X:
    return alt.X("t:T", title=title, axis=alt.Axis(format="%b %Y", labelAngle=0, tickCount=5))


def _blocks_layer(blocks: pd.DataFrame) -> alt.Chart | None:
    if blocks.empty:
        return None
    data = pd.DataFrame({"t": blocks["start_date"], "t2": blocks["end_date"] + pd.Timedelta(days=1),
                         "label": [f"strength block {_day(s)} to {_day(e)}" for s, e in
                                   zip(blocks["start_date"], blocks["end_date"])]})
    return alt.Chart(data).mark_rect(color=BLOCK_SHADE, opacity=0.14).encode(
        x="t:T", x2="t2:T", tooltip=alt.Tooltip("label:N", title="Block"))


def _day(ts) -> str:
    ts = pd.Timestamp(ts)
    return f"{ts.day} {ts:%b %Y}"


def _zoom() -> alt.Parameter:
    return alt.selection_interval(bind="scales", encodings=["x"], name=ZOOM_NAME)


def _layered(*layers) -> alt.LayerChart:
    return alt.layer(*[layer for layer in layers if layer is not None])


def timeline_chart(runs: pd.DataFrame, trend: pd.DataFrame, blocks: pd.DataFrame, sessions: pd.DataFrame,
                   gap: dict | None, response_colour: str) -> dict | None:
    """Economy index per run over time: the runs (hover), their 21-day rolling median, the fitted pre-block
    trend with its extrapolation and 95 % band, the fitted response-window level and the gap between them
    (the headline estimate), strength blocks, strength sessions, and excluded runs along the bottom.

    ``runs``: :func:`run_hover_frame` rows (all runs; the included ones carry ``economy``). ``trend``:
    block_trends rows of the headline block (may be empty). ``gap``: ``{"t", "trend", "response",
    "label"}`` where the gap is drawn, or None.
    """
    included = _slim(runs[runs["economy"].notna()], "economy", "economy_text")
    if included.empty:
        return None
    excluded = _slim(runs[runs["economy"].isna()])
    lo, hi = float(included["economy"].min()), float(included["economy"].max())
    if len(trend):
        lo, hi = min(lo, float(trend["trend_low"].min())), max(hi, float(trend["trend_high"].max()))
    pad = (hi - lo) * 0.08 or 0.02
    y_scale = alt.Scale(domain=[lo - 2.5 * pad, hi + pad], zero=False, nice=False)
    y = alt.Y("economy:Q", title="economy index (m/beat)", scale=y_scale)
    tooltip = HOVER_TOOLTIP + [alt.Tooltip("economy_text:N", title="Economy index")]
    layers = [_blocks_layer(blocks)]
    if len(trend):
        t = trend.assign(t=trend["day"] + pd.Timedelta(hours=12))
        t["part"] = np.where(t["segment"] == "fit", "pre-block trend (fitted)", "trend extrapolated")
        layers.append(alt.Chart(t, name="trend_band").mark_area(color=TREND_COLOUR, opacity=0.16).encode(
            x="t:T", y=alt.Y("trend_low:Q", scale=y_scale), y2="trend_high:Q"))
        layers.append(alt.Chart(t, name="trend_line").mark_line(color=TREND_COLOUR, strokeWidth=2).encode(
            x="t:T", y=alt.Y("trend_value:Q", scale=y_scale),
            strokeDash=alt.StrokeDash("part:N", scale=alt.Scale(domain=["pre-block trend (fitted)",
                                                                          "trend extrapolated"],
                                                                  range=[[1, 0], [6, 4]]), legend=None)))
        resp = t[t["response_value"].notna()]
        layers.append(alt.Chart(resp, name="response_level").mark_line(color=response_colour, strokeWidth=3.5).encode(
            x="t:T", y=alt.Y("response_value:Q", scale=y_scale)))
    layers.append(alt.Chart(included, name="runs").mark_circle(size=34, color=OKABE_ITO["blue"], opacity=0.6).encode(
        x=_time_x(), y=y, tooltip=tooltip).add_params(_zoom()))
    med = rolling_median(included["t"], included["economy"]).dropna()
    if len(med):
        layers.append(alt.Chart(pd.DataFrame({"t": med.index, "median": med.to_numpy()})).mark_line(
            color=OKABE_ITO["black"], strokeWidth=1.2, opacity=0.55).encode(x="t:T", y=alt.Y("median:Q", scale=y_scale)))
    if gap is not None:
        g = pd.DataFrame([gap])
        layers.append(alt.Chart(g, name="gap").mark_rule(color=response_colour, strokeWidth=2).encode(
            x="t:T", y=alt.Y("trend:Q", scale=y_scale), y2="response:Q"))
        layers.append(alt.Chart(g).mark_text(align="right", dx=-6, dy=-8, fontWeight="bold",
                                             color=response_colour).encode(
            x="t:T", y=alt.Y("response:Q", scale=y_scale), text="label:N"))
    if len(excluded):
        layers.append(alt.Chart(excluded, name="excluded_runs").mark_point(shape="cross", size=40, color=SECONDARY_GREY).encode(
            x="t:T", y=alt.value(HEIGHT_PX - 8), tooltip=tooltip))
    if len(sessions):
        s = pd.DataFrame({"t": sessions["start_time"], "what": sessions["title"].fillna("strength session")})
        layers.append(alt.Chart(s).mark_tick(color=OKABE_ITO["vermillion"], thickness=2, size=12).encode(
            x="t:T", y=alt.value(HEIGHT_PX - 22), tooltip=[alt.Tooltip("t:T", title="Strength session",
                                                                    format="%a %-d %b %Y"),
                                                         alt.Tooltip("what:N", title="Title")]))
    return _config(_layered(*layers), height=HEIGHT_PX + 40)


def _slim(runs: pd.DataFrame, *values: str) -> pd.DataFrame:
    """Only the columns a chart uses (the hover texts, time and its values): each chart embeds its own data."""
    return runs[["t", *HOVER_COLUMNS, *values]]


# Hover fields of a run (columns of run_hover_frame).
HOVER_COLUMNS = ["when", "distance", "pace", "hr", "temperature", "status"]
HOVER_TOOLTIP = [alt.Tooltip("when:N", title="Run"), alt.Tooltip("distance:N", title="Distance"),
                 alt.Tooltip("pace:N", title="Pace"), alt.Tooltip("hr:N", title="Heart rate"),
                 alt.Tooltip("temperature:N", title="Temperature"), alt.Tooltip("status:N", title="Used")]


def temperature_chart(runs: pd.DataFrame, blocks: pd.DataFrame, domain: tuple) -> dict | None:
    """Temperature per run: archive air temperature where the run has weather, else the watch sensor; the
    colour says which. ``runs``: :func:`run_hover_frame` rows; ``domain``: the timeline's time range."""
    data = _slim(runs[runs["temperature_c"].notna()], "temperature_c", "temperature_source")
    if len(data) < 3:
        return None
    colour = alt.Color("temperature_source:N", legend=None,
                       scale=alt.Scale(domain=list(TEMPERATURE_COLOURS), range=list(TEMPERATURE_COLOURS.values())))
    points = alt.Chart(data, name="temperature_runs").mark_circle(size=26, opacity=0.7).encode(
        x=alt.X("t:T", title=None, scale=alt.Scale(domain=list(domain)), axis=alt.Axis(format="%b %Y", tickCount=5)),
        y=alt.Y("temperature_c:Q", title="temperature (°C)"), color=colour, tooltip=HOVER_TOOLTIP).add_params(_zoom())
    return _config(_layered(_blocks_layer(blocks), points), height=150)


def estimates_chart(rows: pd.DataFrame, swc_pct: float | None) -> dict | None:
    """The estimated change with its 95 % CI per method: the headline row in its verdict's colour, the
    secondary estimates grey. ``rows``: label, change, lo, hi, colour, note (one row per estimate, headline
    first)."""
    return forest_chart(rows, swc_pct, "estimates")


FOREST_X_TITLE = "change in economy, % (> 0 = more economical)"


def forest_chart(rows: pd.DataFrame, swc_pct: float | None, name: str, row_px: int = 78,
                 x_title: str = FOREST_X_TITLE, notes: bool = True) -> dict | None:
    """A forest plot drawn for a phone: one row per estimate, its label written above the dot and its note
    below (not on a y axis, which would take half a phone's width), the 95 % CI as a bar, the smallest
    worthwhile change as a grey band and the zero line.

    ``rows``: label, change, lo, hi, colour, note, change_text; optional ``shape`` (a Vega symbol: circle,
    square, diamond), ``size`` (mark area, px²) and ``pi_lo``/``pi_hi`` (a prediction interval, drawn as a
    thin line, clipped to the axis, which is set by the estimates and their CIs). ``notes``: False writes
    the notes in the hover only (a shorter row for long lists). The dots' mark is named ``name`` (the browser
    test reads its colours and data).
    """
    if rows.empty or rows["change"].isna().all():
        return None
    d = rows.reset_index(drop=True).assign(y=lambda f: f.index.astype(float))
    d["text"] = d["label"]
    d["shape"] = d["shape"] if "shape" in d else "circle"
    d["size"] = d["size"] if "size" in d else 110.0
    xs = pd.concat([d["lo"], d["hi"], d["change"]]).dropna()
    span = max(abs(xs.min()), abs(xs.max()), (swc_pct or 1) * 1.5, 2.0) * 1.15
    x_scale = alt.Scale(domain=[-span, span])
    x = alt.X("change:Q", title=x_title, scale=x_scale)
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[len(d) - 0.3, -0.75]))
    colour = alt.Color("colour:N", scale=None)
    layers = []
    if swc_pct is not None and not pd.isna(swc_pct):
        layers.append(alt.Chart(pd.DataFrame({"a": [-swc_pct], "b": [swc_pct]})).mark_rect(
            color="#cccccc", opacity=0.45).encode(x="a:Q", x2="b:Q"))
    layers.append(alt.Chart(pd.DataFrame({"z": [0.0]})).mark_rule(color="black").encode(x="z:Q"))
    tip = [alt.Tooltip("label:N", title="Estimate"), alt.Tooltip("change_text:N", title="Change"),
           alt.Tooltip("note:N", title="Note")]
    if "pi_lo" in d and d["pi_lo"].notna().any():
        pi = d[d["pi_lo"].notna()]
        layers.append(alt.Chart(pi).mark_rule(strokeWidth=1.2, clip=True).encode(
            x=alt.X("pi_lo:Q", scale=x_scale), x2="pi_hi:Q", y=y, color=colour))
    layers.append(alt.Chart(d).mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", scale=x_scale), x2="hi:Q", y=y,
                                                               color=colour, tooltip=tip))
    layers.append(alt.Chart(d, name=name).mark_point(filled=True, opacity=1).encode(
        x=x, y=y, color=colour, tooltip=tip, shape=alt.Shape("shape:N", scale=None),
        size=alt.Size("size:Q", scale=None)))
    layers.append(alt.Chart(d).mark_text(align="left", baseline="bottom", dy=-9, limit=330).encode(
        x=alt.value(0), y=y, text="text:N", color=colour))
    if notes:
        layers.append(alt.Chart(d).mark_text(align="left", baseline="top", dy=9, limit=330).encode(
            x=alt.value(0), y=y, text="note:N", color=colour))
    return _config(_layered(*layers), height=70 + row_px * len(d))


def dose_chart(blocks: pd.DataFrame, line: pd.DataFrame, x_title: str) -> dict | None:
    """Each block's change in economy (95 % CI) against its dose, with the meta-regression's fitted line.

    ``blocks``: dose, change, lo, hi, label, change_text (one row per block); ``line``: dose, fit (may be
    empty)."""
    d = blocks[blocks["dose"].notna() & blocks["change"].notna()]
    if d.empty:
        return None
    pad = max((d["dose"].max() - d["dose"].min()) * 0.08, 0.25)
    x_scale = alt.Scale(domain=[float(d["dose"].min() - pad), float(d["dose"].max() + pad)], zero=False, nice=False)
    x = alt.X("dose:Q", title=x_title, scale=x_scale)
    tip = [alt.Tooltip("label:N", title="Block"), alt.Tooltip("dose:Q", title=x_title, format=".2f"),
           alt.Tooltip("change_text:N", title="Change")]
    layers = [alt.Chart(pd.DataFrame({"z": [0.0]})).mark_rule(color="black").encode(y="z:Q"),
              alt.Chart(d).mark_rule(color=OKABE_ITO["blue"], strokeWidth=2).encode(
                  x=x, y=alt.Y("lo:Q", title="change in economy, %"), y2="hi:Q", tooltip=tip),
              alt.Chart(d, name="dose_blocks").mark_circle(size=70, color=OKABE_ITO["blue"], opacity=0.9).encode(
                  x=x, y="change:Q", tooltip=tip)]
    if len(line):
        layers.append(alt.Chart(line).mark_line(color=OKABE_ITO["vermillion"], strokeWidth=2.5).encode(
            x=alt.X("dose:Q", scale=x_scale), y="fit:Q"))
    return _config(_layered(*layers), height=260)


def blocks_chart(rows: pd.DataFrame) -> dict | None:
    """Every block of the athlete side by side: its headline change (%) with the 95 % CI, coloured by
    verdict. ``rows``: label, change, lo, hi, colour, verdict."""
    rows = rows[rows["change"].notna()]
    if len(rows) < 2:
        return None
    return estimates_chart(rows.assign(note=rows["verdict"]), None)


def decoupling_chart(runs: pd.DataFrame, blocks: pd.DataFrame) -> dict | None:
    """Aerobic decoupling per run (%, lower = steadier heart rate over the run) and its rolling median."""
    d = _slim(runs[runs["decoupling_pct"].notna() & runs["economy"].notna()], "decoupling_pct")
    if len(d) < 3:
        return None
    points = alt.Chart(d, name="decoupling_runs").mark_circle(size=24, color=OKABE_ITO["purple"], opacity=0.5).encode(
        x=_time_x(), y=alt.Y("decoupling_pct:Q", title="decoupling (%)"), tooltip=HOVER_TOOLTIP).add_params(_zoom())
    med = rolling_median(d["t"], d["decoupling_pct"]).dropna()
    line = alt.Chart(pd.DataFrame({"t": med.index, "m": med.to_numpy()})).mark_line(
        color=OKABE_ITO["black"], strokeWidth=2).encode(x="t:T", y="m:Q")
    return _config(_layered(_blocks_layer(blocks), points, line), height=200)


def relative_chart(runs: pd.DataFrame, reference: tuple | None) -> dict | None:
    """Raw pace per heartbeat beside the economy index, both as % of their median over the reference period
    (baseline window, else the whole record): 21-day rolling medians, with the runs faint behind them."""
    d = runs[runs["economy"].notna() & runs["m_per_beat"].notna()]
    if len(d) < 3:
        return None
    ref = d
    if reference is not None:
        inside = d[(d["t"] >= reference[0]) & (d["t"] < reference[1] + pd.Timedelta(days=1))]
        ref = inside if len(inside) >= 3 else d
    frames = []
    for col, name in (("m_per_beat", "raw pace per heartbeat"), ("economy", "economy index")):
        pct = (d[col] / ref[col].median() - 1) * 100
        med = rolling_median(d["t"], pct)
        frames.append(pd.DataFrame({"t": med.index, "pct": med.to_numpy(), "series": name}).dropna())
    lines = pd.concat(frames)
    colour = alt.Color("series:N", legend=None, scale=alt.Scale(domain=["raw pace per heartbeat", "economy index"],
                                                                range=[OKABE_ITO["orange"], OKABE_ITO["blue"]]))
    chart = alt.Chart(lines).mark_line(strokeWidth=2.4).encode(
        x=_time_x(), y=alt.Y("pct:Q", title="% vs reference median"), color=colour,
        tooltip=[alt.Tooltip("series:N", title="Series"), alt.Tooltip("t:T", title="Date", format="%-d %b %Y"),
                 alt.Tooltip("pct:Q", title="% vs reference", format="+.1f")]).add_params(_zoom())
    zero = alt.Chart(pd.DataFrame({"z": [0.0]})).mark_rule(color="black").encode(y="z:Q")
    return _config(_layered(zero, chart), height=220)


def weekly_chart(weekly: pd.DataFrame, blocks: pd.DataFrame) -> dict | None:
    """Running km per week (bars) with strength sessions per week (red dots, right axis), blocks shaded, so a
    jump in running volume during the block is visible."""
    if weekly.empty:
        return None
    w = weekly.assign(t=weekly["week_start"] + pd.Timedelta(days=3.5), km=weekly["run_km"].fillna(0),
                      strength=weekly["strength_sessions"].fillna(0).astype(int),
                      week=[f"week of {_day(d)}" for d in weekly["week_start"]])
    tip = [alt.Tooltip("week:N", title="Week"), alt.Tooltip("km:Q", title="Running km", format=".1f"),
           alt.Tooltip("runs:Q", title="Runs"), alt.Tooltip("strength:Q", title="Strength sessions")]
    bars = alt.Chart(w).mark_bar(color=OKABE_ITO["blue"], opacity=0.85).encode(
        x=_time_x(), y=alt.Y("km:Q", title="running (km/week)"), tooltip=tip).add_params(_zoom())
    layers = [_blocks_layer(blocks), bars]
    if w["strength"].sum() > 0:
        s = w[w["strength"] > 0]
        layers.append(alt.Chart(s).mark_circle(size=60, color=OKABE_ITO["vermillion"]).encode(
            x="t:T", y=alt.Y("strength:Q", title="strength sessions/week", axis=alt.Axis(orient="right", tickMinStep=1)),
            tooltip=tip))
        return _config(_layered(*layers).resolve_scale(y="independent"), height=220)
    return _config(_layered(*layers), height=220)


def intensity_chart(runs: pd.DataFrame, blocks: pd.DataFrame, pace_text) -> dict | None:
    """Weekly intensity: mean steady heart rate (bpm) of the week's runs, and their mean speed shown as pace
    (``pace_text``: m/s -> text) in the hover, so harder running around the block shows beside the volume."""
    d = runs[runs["heart_rate_bpm"].notna()]
    if len(d) < 3:
        return None
    week = d["t"].dt.to_period("W-SUN").dt.start_time
    w = d.groupby(week).agg(hr=("heart_rate_bpm", "mean"), speed=("speed_m_s", "mean"),
                            n=("heart_rate_bpm", "size")).reset_index()
    w = w.rename(columns={w.columns[0]: "week_start"})
    w["t"] = w["week_start"] + pd.Timedelta(days=3.5)
    w["week"] = [f"week of {_day(x)}" for x in w["week_start"]]
    w["pace"] = w["speed"].map(pace_text)
    tip = [alt.Tooltip("week:N", title="Week"), alt.Tooltip("hr:Q", title="Mean heart rate", format=".0f"),
           alt.Tooltip("pace:N", title="Mean pace"), alt.Tooltip("n:Q", title="Runs")]
    line = alt.Chart(w).mark_line(point=True, color=OKABE_ITO["vermillion"]).encode(
        x=_time_x(), y=alt.Y("hr:Q", title="mean heart rate (bpm)", scale=alt.Scale(zero=False)),
        tooltip=tip).add_params(_zoom())
    return _config(_layered(_blocks_layer(blocks), line), height=180)


def hr_speed_chart(runs: pd.DataFrame, units: str) -> dict | None:
    """Mean heart rate against mean grade-adjusted speed per run (as pace on the axis), coloured by period
    around the headline block, with a straight-line fit per period (5 runs or more)."""
    d = _slim(runs[runs["heart_rate_bpm"].notna() & runs["gap_speed_m_s"].notna()], "heart_rate_bpm", "gap_speed_m_s",
              "period")
    if d.empty:
        return None
    colour = alt.Color("period:N", legend=None, scale=alt.Scale(domain=list(PERIODS),
                                                                range=[PERIOD_COLOURS[p] for p in PERIODS]))
    pts = alt.Chart(d, name="hr_speed_runs").mark_circle(size=30, opacity=0.7).encode(
        x=alt.X("gap_speed_m_s:Q", title="grade-adjusted speed (m/s)", scale=alt.Scale(zero=False)),
        y=alt.Y("heart_rate_bpm:Q", title="heart rate (bpm)", scale=alt.Scale(zero=False)),
        color=colour, tooltip=HOVER_TOOLTIP + [alt.Tooltip("period:N", title="Period")])
    fits = []
    for period in PERIODS:
        sub = d[d["period"] == period]
        if len(sub) >= 5 and sub["gap_speed_m_s"].std() > 0:
            slope, intercept = np.polyfit(sub["gap_speed_m_s"], sub["heart_rate_bpm"], 1)
            xs = np.linspace(sub["gap_speed_m_s"].min(), sub["gap_speed_m_s"].max(), 2)
            fits.append(pd.DataFrame({"gap_speed_m_s": xs, "heart_rate_bpm": intercept + slope * xs, "period": period}))
    layers = [pts]
    if fits:
        layers.append(alt.Chart(pd.concat(fits)).mark_line(strokeWidth=2.2).encode(
            x="gap_speed_m_s:Q", y="heart_rate_bpm:Q", color=colour, detail="period:N"))
    return _config(_layered(*layers).interactive(), height=280)


CONTROL_BIN_FRACTION = 1 / 28   # dot-plot bin width as a share of the x range (about 12 px at 390 px)


def stack_dots(values: pd.Series, width: float) -> np.ndarray:
    """The level (0, 1, 2, ...) of each value in a dot plot with bins ``width`` wide (Wilkinson 1999), so
    nearby estimates stack instead of hiding one another."""
    bins = np.floor(values.to_numpy(dtype=float) / width)
    level = pd.Series(bins).groupby(bins).cumcount().to_numpy()
    return level.astype(float)


def controls_chart(controls: pd.DataFrame, real: dict) -> dict | None:
    """The real block's estimate against the athlete's negative controls: each fake block start's estimate
    as a grey dot (stacked where they are close), the systematic-error distribution fitted to them (mu ±
    1.96 tau, shaded) where the calibration stored it, the real block's raw estimate as a line, and the
    calibrated estimate with its 95 % CI above, in its verdict's colour.

    ``controls``: fake_start, change (%), text, verdict; ``real``: change, text, colour, and optionally
    mu, tau, cal_change, cal_lo, cal_hi, cal_text (percent)."""
    c = controls[controls["change"].notna()].reset_index(drop=True)
    if c.empty or real.get("change") is None or pd.isna(real["change"]):
        return None
    xs = [*c["change"], real["change"]]
    xs += [v for k in ("cal_lo", "cal_hi") if (v := real.get(k)) is not None and not pd.isna(v)]
    span = max(abs(min(xs)), abs(max(xs)), 2.0) * 1.12
    x_scale = alt.Scale(domain=[-span, span])
    width = 2 * span * CONTROL_BIN_FRACTION
    c["level"] = stack_dots(c["change"], width)
    top = float(c["level"].max()) + 1
    y_scale = alt.Scale(domain=[-0.6, top + 2.2], nice=False)
    y = alt.Y("level:Q", axis=None, scale=y_scale)
    layers = []
    mu, tau = real.get("mu"), real.get("tau")
    if mu is not None and tau is not None and not (pd.isna(mu) or pd.isna(tau)):
        band = pd.DataFrame({"a": [mu - 1.96 * tau], "b": [mu + 1.96 * tau],
                             "text": [f"systematic error {real.get('mu_text', '')}"]})
        layers.append(alt.Chart(band, name="systematic_band").mark_rect(color=OKABE_ITO["orange"], opacity=0.22).encode(
            x=alt.X("a:Q", scale=x_scale), x2="b:Q", tooltip=alt.Tooltip("text:N", title="Fitted to the controls")))
    layers.append(alt.Chart(pd.DataFrame({"z": [0.0]})).mark_rule(color="black").encode(x=alt.X("z:Q", scale=x_scale)))
    tip = [alt.Tooltip("when:N", title="Fake block start"), alt.Tooltip("text:N", title="Estimate"),
           alt.Tooltip("verdict:N", title="Uncalibrated verdict")]
    layers.append(alt.Chart(c, name="controls").mark_circle(size=70, color=SECONDARY_GREY, opacity=0.85).encode(
        x=alt.X("change:Q", scale=x_scale, title="change in economy, % (> 0 = more economical)"), y=y, tooltip=tip))
    r = pd.DataFrame([{"change": real["change"], "text": real["text"], "y0": -0.6, "y1": top + 0.4,
                       "label": f"your block {real['short']}", "ly": top + 0.5}])
    layers.append(alt.Chart(r, name="real_estimate").mark_rule(color=real["colour"], strokeWidth=3).encode(
        x=alt.X("change:Q", scale=x_scale), y=alt.Y("y0:Q", scale=y_scale), y2="y1:Q",
        tooltip=alt.Tooltip("text:N", title="Your block, before calibration")))
    layers.append(alt.Chart(r).mark_text(baseline="bottom", fontWeight="bold", color=real["colour"]).encode(
        x=alt.X("change:Q", scale=x_scale), y=alt.Y("ly:Q", scale=y_scale), text="label:N"))
    if real.get("cal_change") is not None and not pd.isna(real["cal_change"]):
        k = pd.DataFrame([{"change": real["cal_change"], "lo": real["cal_lo"], "hi": real["cal_hi"],
                           "text": real["cal_text"], "y": top + 1.7}])
        layers.append(alt.Chart(k).mark_rule(color=real["colour"], strokeWidth=3).encode(
            x=alt.X("lo:Q", scale=x_scale), x2="hi:Q", y=alt.Y("y:Q", scale=y_scale)))
        layers.append(alt.Chart(k, name="calibrated_estimate").mark_point(filled=True, shape="diamond", size=160,
                                                                           color=real["colour"], opacity=1).encode(
            x=alt.X("change:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale),
            tooltip=alt.Tooltip("text:N", title="Calibrated")))
    return _config(_layered(*layers), height=int(110 + 13 * top))
