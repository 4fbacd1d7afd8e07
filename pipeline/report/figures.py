"""The report's figures: each a function of DataFrames that returns a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so no global state
and no GUI backend is involved; rendering is Agg. Colours are the Okabe–Ito palette, which stays
distinguishable for the common forms of colour blindness (Okabe & Ito 2008).

Callers pass frames shaped like the warehouse tables (see :mod:`pipeline.report.data`); times are
tz-naive UTC. A function is only called when it has something to draw: the page says "no data" in
words instead of showing an empty axis.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # why: reports are built on headless machines (CI, servers)

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from pipeline.report.story import PERIODS  # noqa: E402

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#999999",
}
PERIOD_COLOURS = dict(zip(PERIODS, (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"],
                                    OKABE_ITO["purple"])))
# "cannot tell" (the calibrated CI is too wide to tell a typical effect from none) in a dark grey: a verdict
# of its own, set apart from the lighter grey of secondary estimates and of "insufficient data".
VERDICT_COLOURS = {"gain": OKABE_ITO["green"], "loss": OKABE_ITO["vermillion"],
                   "no clear change": OKABE_ITO["blue"], "cannot tell": "#4D4D4D",
                   "insufficient data": OKABE_ITO["grey"]}
BLOCK_SHADE = "#E69F00"
BASELINE_COLOUR = OKABE_ITO["sky"]
RESPONSE_COLOUR = OKABE_ITO["green"]
# Rolling median of the per-run economy: 21 days smooths day-to-day noise (sleep, weather) while a
# 6–12-week response still shows.
ROLLING_WINDOW = "21D"
PNG_DPI = 170
FOOTER_FONT_PT = 8
FOOTER_PAD_IN = 0.1   # as the margin savefig's bbox_inches="tight" used to leave
# A 72-dpi renderer measures text in points (one small canvas, made once, for wrapping the footer).
_TEXT_RENDERER = RendererAgg(1, 1, 72)


def figure_png(fig: Figure, dpi: int = PNG_DPI, fit_to_content: bool = False) -> bytes:
    """The figure as PNG bytes (the same bytes go to the .png file and into the page).

    Every figure lays itself out (``layout="constrained"``, the share footer a ``supxlabel`` it makes room
    for), so by default the PNG is the figure's own size and is drawn once. ``fit_to_content`` (the squad
    figures, whose row labels and title carry athletes' names of any length) grows the image to whatever it
    holds, as ``bbox_inches="tight"`` does, at the price of drawing it twice (once to measure, once to
    paint): ~40 % of a figure's time, which is why the athlete figures, whose texts are fixed or wrapped,
    do without."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight" if fit_to_content else None)
    return buf.getvalue()


def min_font_px(fig: Figure, dpi: int = PNG_DPI) -> float:
    """The smallest visible text of ``fig`` in pixels of its PNG at ``dpi`` (the page scales it to CSS px by
    the width it is shown at; the browser test does that)."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return round(min(sizes) * dpi / 72, 2) if sizes else 0.0


def add_share_footer(fig: Figure, text: str) -> Figure:
    """A footer line under the figure (who, which block, verdict, data range, version), so a PNG shared on
    its own still says what it shows. It is the figure's ``supxlabel``, so the constrained layout keeps room
    for it; wrapped here to the figure's width (:func:`wrap_to_width`)."""
    fig.supxlabel(wrap_to_width(text, FOOTER_FONT_PT, fig.get_figwidth() - 2 * FOOTER_PAD_IN), x=FOOTER_PAD_IN
                  / fig.get_figwidth(), ha="left", fontsize=FOOTER_FONT_PT, color="#444444")
    return fig


def wrap_to_width(text: str, font_pt: float, width_in: float) -> str:
    """``text`` broken at spaces into lines no wider than ``width_in`` inches at ``font_pt``.

    One measurement of the whole line gives the average character width; ``textwrap`` breaks at that many
    characters, and narrower while a line still measures too wide. Matplotlib's own ``wrap=True`` measures
    every candidate line at every draw (~0.1 s per figure); this measures a handful of lines once."""
    font = FontProperties(size=font_pt)

    def width_pt(line: str) -> float:
        return _TEXT_RENDERER.get_text_width_height_descent(line, font, ismath=False)[0]

    whole_pt = width_pt(text)
    if whole_pt <= width_in * 72:
        return text
    chars = int(len(text) * width_in * 72 / whole_pt)
    lines = textwrap.wrap(text, chars)
    while chars > 20 and max(width_pt(line) for line in lines) > width_in * 72:
        chars -= 2
        lines = textwrap.wrap(text, chars)
    return "\n".join(lines)


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _style(ax) -> None:
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _shade_blocks(ax, blocks: pd.DataFrame) -> None:
    for _, b in blocks.iterrows():
        # end_date is a DATE: the block covers that whole day.
        ax.axvspan(b["start_date"], b["end_date"] + pd.Timedelta(days=1), color=BLOCK_SHADE, alpha=0.13,
                   linewidth=0, zorder=0)


def rolling_median(times: pd.Series, values: pd.Series, window: str = ROLLING_WINDOW) -> pd.Series:
    """Time-based rolling median (centred on nothing: each point summarises the runs up to it)."""
    s = pd.Series(values.to_numpy(), index=pd.DatetimeIndex(times)).sort_index()
    return s.rolling(window, min_periods=3).median()


def economy_timeline_plot(runs: pd.DataFrame, sessions: pd.DataFrame, blocks: pd.DataFrame,
                          windows: pd.DataFrame, trend: pd.DataFrame | None = None,
                          response_colour: str = RESPONSE_COLOUR) -> Figure:
    """Per-run economy index (m/beat) over time with its rolling median, strength sessions as ticks,
    blocks shaded and each block's baseline and response windows marked as bars above the data.

    ``runs``: included runs (start_time, economy_m_per_beat). ``windows``: block_effects rows of the
    headline metric (block_id, method, baseline_start/_end, response_start/_end), any methods.
    """
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    _shade_blocks(ax, blocks)
    ax.scatter(runs["start_time"], runs["economy_m_per_beat"], s=16, color=OKABE_ITO["blue"], alpha=0.55,
               linewidths=0, label="run (economy index)", zorder=3)
    med = rolling_median(runs["start_time"], runs["economy_m_per_beat"])
    ax.plot(med.index, med.to_numpy(), color=OKABE_ITO["black"], linewidth=1.2, alpha=0.6,
            label="rolling median (21 days)", zorder=4)
    if trend is not None and len(trend):
        _draw_trend(ax, trend, response_colour)
    _leave_room_for_marks(ax, runs["economy_m_per_beat"])
    its_baseline = _draw_window_bars(ax, windows)
    if len(sessions):
        ax.plot(sessions["start_time"], np.full(len(sessions), 0.03),
                transform=blended_transform_factory(ax.transData, ax.transAxes), linestyle="none",
                marker="|", markersize=11, markeredgewidth=1.4, color=OKABE_ITO["vermillion"], zorder=5)
    ax.legend(handles=_timeline_legend_handles(ax, sessions, blocks, windows, its_baseline), loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_ylabel("economy index (m per heartbeat\nat reference speed)")
    ax.set_title("Running economy over time (higher = more economical)", loc="left", fontsize=11)
    _date_axis(ax)
    return fig


def _draw_trend(ax, trend: pd.DataFrame, response_colour: str) -> None:
    """block_trends rows of one block: the fitted pre-block trend (solid), its extrapolation (dashed), the
    95 % band, and the fitted response-window level."""
    t = trend["day"] + pd.Timedelta(hours=12)
    ax.fill_between(t, trend["trend_low"], trend["trend_high"], color="#333333", alpha=0.15, linewidth=0,
                    label="95 % band of the trend", zorder=2)
    fit = trend["segment"] == "fit"
    ax.plot(t[fit], trend["trend_value"][fit], color="#333333", linewidth=2, label="pre-block trend", zorder=4)
    ax.plot(t[~fit], trend["trend_value"][~fit], color="#333333", linewidth=2, linestyle="--",
            label="trend extrapolated", zorder=4)
    resp = trend["response_value"].notna()
    ax.plot(t[resp], trend["response_value"][resp], color=response_colour, linewidth=3.2,
            label="response-window level", zorder=5)


def _leave_room_for_marks(ax, values: pd.Series) -> None:
    """y limits with headroom above the points for the window bars and room below for the session ticks."""
    lo, hi = np.nanmin(values), np.nanmax(values)
    pad = max(hi - lo, 0.02 * max(abs(hi), 1e-9))
    ax.set_ylim(lo - 0.22 * pad, hi + 0.3 * pad)


def _window_bar(ax, start, end, colour: str, y: float, width: float, label: str | None = None) -> None:
    """A horizontal bar from ``start`` to the end of day ``end`` at axes height ``y`` (0-1), labelled above."""
    if pd.isna(start) or pd.isna(end):
        return
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot([start, end + pd.Timedelta(days=1)], [y, y], transform=trans, color=colour, linewidth=width,
            solid_capstyle="butt", zorder=5)
    if label:
        ax.text(start + (end - start) / 2, 0.985, label, transform=trans, ha="center", va="top",
                fontsize=8, color="#333333")


def _draw_window_bars(ax, windows: pd.DataFrame) -> bool:
    """Baseline and response windows of every block; True when an ITS pre-block trend line was drawn.

    The window method compares with the few weeks before the block (thick bar); the ITS fits its
    pre-block trend on the whole record before the block (thin line), so both are drawn when they differ.
    """
    its_baseline = False
    for _, w in windows.drop_duplicates(["block_id", "method"]).iterrows():
        has_window_row = bool(((windows["block_id"] == w["block_id"]) & (windows["method"] == "window")).any())
        if w["method"] == "its" and has_window_row:
            _window_bar(ax, w["baseline_start"], w["baseline_end"], BASELINE_COLOUR, 0.915, 2)
            its_baseline = True
        else:
            _window_bar(ax, w["baseline_start"], w["baseline_end"], BASELINE_COLOUR, 0.955, 6, "baseline")
    for _, w in windows.drop_duplicates(["block_id", "response_start", "response_end"]).iterrows():
        _window_bar(ax, w["response_start"], w["response_end"], RESPONSE_COLOUR, 0.955, 6, "response")
    return its_baseline


def _timeline_legend_handles(ax, sessions: pd.DataFrame, blocks: pd.DataFrame, windows: pd.DataFrame,
                             its_baseline: bool) -> list:
    """The plotted series' handles plus proxies for the marks that are drawn without a label."""
    handles, _ = ax.get_legend_handles_labels()
    if len(sessions):
        handles.append(Line2D([], [], linestyle="none", marker="|", markersize=11, markeredgewidth=1.4,
                              color=OKABE_ITO["vermillion"], label="strength session"))
    if len(blocks):
        handles.append(Patch(color=BLOCK_SHADE, alpha=0.25, label="strength block"))
    if len(windows):
        handles.append(Line2D([], [], color=BASELINE_COLOUR, linewidth=6, label="baseline window"))
        handles.append(Line2D([], [], color=RESPONSE_COLOUR, linewidth=6, label="response window"))
    if its_baseline:
        handles.append(Line2D([], [], color=BASELINE_COLOUR, linewidth=2, label="pre-block trend fitted (ITS)"))
    return handles


def _draw_effect(ax, y: float, effect: pd.Series, *, fontsize: float, capsize: float, markersize: float,
                 linewidth: float) -> None:
    """One block_effects row at height y: the estimate with its CI in the verdict's colour, or a note
    when there was too little data for an estimate."""
    if pd.isna(effect["change_pct"]):
        ax.text(0, y, "insufficient data", ha="center", va="center", fontsize=fontsize, color="#555555")
        return
    ax.errorbar(effect["change_pct"], y, xerr=[[effect["change_pct"] - effect["ci_low_pct"]],
                                               [effect["ci_high_pct"] - effect["change_pct"]]],
                fmt="o", color=VERDICT_COLOURS.get(effect["verdict"], OKABE_ITO["grey"]), capsize=capsize,
                markersize=markersize, linewidth=linewidth)


def block_comparison_plot(runs: pd.DataFrame, effects: pd.DataFrame, swc_pct: float | None) -> Figure:
    """Left: each run's economy in the baseline and response windows with the window means.
    Right: the estimated change (%) with its 95 % CI per method, the SWC band and zero.

    ``runs``: included runs of the athlete. ``effects``: block_effects rows of one block for the headline
    metric (one per method).
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    for ax in (left, right):
        _style(ax)
    # Window means come from the plain window comparison when present (the ITS row's values are
    # model-based); the dates are the same for both methods.
    by_method = effects.set_index("method")
    ref = by_method.loc["window"] if "window" in by_method.index else effects.iloc[0]
    end_day = pd.Timedelta(days=1)
    for x, (start, end, colour, name, mean) in enumerate((
            (ref["baseline_start"], ref["baseline_end"], BASELINE_COLOUR, "baseline", ref["baseline_value"]),
            (ref["response_start"], ref["response_end"], RESPONSE_COLOUR, "response", ref["response_value"]))):
        if pd.isna(start):
            continue
        inside = runs[(runs["start_time"] >= start) & (runs["start_time"] < end + end_day)]
        jitter = np.random.default_rng(x).uniform(-0.12, 0.12, len(inside))
        left.scatter(x + jitter, inside["economy_m_per_beat"], s=16, color=colour, alpha=0.7, linewidths=0)
        if not pd.isna(mean):
            left.plot([x - 0.25, x + 0.25], [mean, mean], color="black", linewidth=2)
    left.set_xticks([0, 1], [f"baseline\n(n={_int(ref['n_baseline'])})", f"response\n(n={_int(ref['n_response'])})"])
    left.set_xlim(-0.6, 1.6)
    left.set_ylabel("economy index (m/beat)")
    left.set_title("Runs in each window (bar = window mean)", loc="left", fontsize=10)

    method_names = {"its": "vs pre-block trend (ITS)", "window": "response vs baseline mean"}
    rows = effects.sort_values("method").reset_index(drop=True)
    if swc_pct is not None and not pd.isna(swc_pct):
        right.axvspan(-swc_pct, swc_pct, color="#cccccc", alpha=0.5, linewidth=0,
                      label=f"smallest worthwhile change (±{swc_pct:.1f} %)")
    right.axvline(0, color="black", linewidth=0.8)
    for y, r in rows.iterrows():
        _draw_effect(right, y, r, fontsize=9, capsize=4, markersize=7, linewidth=2)
    right.set_yticks(range(len(rows)), [method_names.get(m, m) for m in rows["method"]])
    right.set_ylim(-0.7, len(rows) - 0.3)
    right.set_xlabel("change in economy, % (> 0 = more economical), 95 % CI")
    right.set_title("Estimated change", loc="left", fontsize=10)
    if swc_pct is not None and not pd.isna(swc_pct):
        right.legend(loc="lower right", fontsize=8, frameon=False)
    return fig


def _int(value) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))


def hr_speed_plot(runs: pd.DataFrame, periods: pd.Series) -> Figure:
    """Mean heart rate (bpm) against mean grade-adjusted speed (m/s) per run, coloured by period, with a
    straight-line fit per period: a more economical period sits lower (fewer beats at the same speed).
    """
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    data = runs.assign(period=periods.to_numpy())
    data = data[data["gap_speed_m_s"].notna() & data["heart_rate_bpm"].notna()]
    for period in PERIODS:
        sub = data[data["period"] == period]
        if sub.empty:
            continue
        colour = PERIOD_COLOURS[period]
        ax.scatter(sub["gap_speed_m_s"], sub["heart_rate_bpm"], s=20, color=colour, alpha=0.7, linewidths=0,
                   label=f"{period} (n={len(sub)})")
        if len(sub) >= 5 and sub["gap_speed_m_s"].std() > 0:
            slope, intercept = np.polyfit(sub["gap_speed_m_s"], sub["heart_rate_bpm"], 1)
            xs = np.linspace(sub["gap_speed_m_s"].min(), sub["gap_speed_m_s"].max(), 20)
            ax.plot(xs, intercept + slope * xs, color=colour, linewidth=1.8)
    ax.set_xlabel("grade-adjusted speed (m/s), steady part of the run")
    ax.set_ylabel("heart rate (bpm), steady part of the run")
    ax.set_title("Heart rate against grade-adjusted speed (lower line = fewer beats at the same speed)",
                 loc="left", fontsize=10)
    secondary = ax.secondary_xaxis("top", functions=(_pace_min_per_km, _pace_min_per_km))
    secondary.xaxis.set_major_formatter(FuncFormatter(_format_pace))
    secondary.set_xlabel("pace (min:s per km)", fontsize=8)
    secondary.tick_params(labelsize=8)
    ax.legend(fontsize=8, frameon=False)
    return fig


def _pace_min_per_km(x):
    """m/s <-> min/km (the same formula both ways: 1000 / 60 / x)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 1000.0 / 60.0 / np.where(x > 0, x, 1), np.inf)


def _format_pace(minutes_per_km, _pos=None) -> str:
    """5.5 -> "5:30" (runners read pace as minutes:seconds, not decimal minutes)."""
    if not np.isfinite(minutes_per_km) or minutes_per_km <= 0:
        return ""
    total = int(round(minutes_per_km * 60))
    return f"{total // 60}:{total % 60:02d}"


def weekly_volume_plot(weekly: pd.DataFrame, blocks: pd.DataFrame) -> Figure:
    """Weekly running distance (km, top) and strength sessions per week (bottom), blocks shaded."""
    has_strength = bool(weekly["strength_sessions"].fillna(0).sum() > 0)
    fig = Figure(figsize=(10, 4.6 if has_strength else 3.4), layout="constrained")
    # Without any strength session a second, empty panel would only look broken.
    axes = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1)) if has_strength else [fig.add_subplot()]
    for ax in axes:
        _style(ax)
        _shade_blocks(ax, blocks)
    top = axes[0]
    width = pd.Timedelta(days=5.5)
    # Bars are centred on the middle of the week (week_start is a Monday).
    centre = weekly["week_start"] + pd.Timedelta(days=3.5)
    top.bar(centre, weekly["run_km"].fillna(0), width=width, color=OKABE_ITO["blue"])
    top.set_ylabel("running (km/week)")
    title = "Weekly running distance and strength sessions" if has_strength else \
        "Weekly running distance (no strength sessions recorded)"
    top.set_title(title, loc="left", fontsize=11)
    handles = [Patch(color=OKABE_ITO["blue"], label="running km")]
    if has_strength:
        bottom = axes[1]
        bottom.bar(centre, weekly["strength_sessions"].fillna(0), width=width, color=OKABE_ITO["vermillion"])
        bottom.set_ylabel("strength\n(sessions/week)")
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles.append(Patch(color=OKABE_ITO["vermillion"], label="strength sessions"))
    if len(blocks):
        handles.append(Patch(color=BLOCK_SHADE, alpha=0.25, label="strength block"))
    top.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    _date_axis(axes[-1])
    return fig


def raw_vs_economy_plot(runs: pd.DataFrame, reference: tuple | None = None) -> Figure:
    """Raw pace per heartbeat (``m_per_beat``) beside the economy index, both as % of their own median
    over a reference period (the baseline window, else the whole record), plus the running speed below
    and, when recorded, the temperature.

    The raw ratio climbs whenever the athlete simply runs faster, because heart rate does not start at
    zero; the economy index, taken at a fixed reference speed, should not.
    """
    # Heat raises HR at the same pace; when the watch recorded temperature, show it so a summer
    # dip in the raw ratio can be told apart from a loss of economy.
    has_temperature = int(runs["temperature_c"].notna().sum()) >= 3 if "temperature_c" in runs else False
    ratios = (2, 1, 1) if has_temperature else (2, 1)
    fig = Figure(figsize=(10, 6.4 if has_temperature else 5.2), layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
    top, bottom = axes[0], axes[1]
    for ax in axes:
        _style(ax)
    ref_runs = runs
    if reference is not None:
        start, end = reference
        inside = runs[(runs["start_time"] >= start) & (runs["start_time"] < end + pd.Timedelta(days=1))]
        if len(inside) >= 3:
            ref_runs = inside
    series = (("m_per_beat", "raw pace per heartbeat", OKABE_ITO["orange"]),
              ("economy_m_per_beat", "economy index (at reference speed)", OKABE_ITO["blue"]))
    for col, name, colour in series:
        base = ref_runs[col].median()
        pct = (runs[col] / base - 1) * 100
        top.scatter(runs["start_time"], pct, s=10, color=colour, alpha=0.35, linewidths=0)
        med = rolling_median(runs["start_time"], pct)
        top.plot(med.index, med.to_numpy(), color=colour, linewidth=2.2, label=f"{name}, rolling median")
    top.axhline(0, color="black", linewidth=0.8)
    ref_text = "baseline window" if ref_runs is not runs else "whole record"
    top.set_ylabel(f"% vs median of\n{ref_text}")
    top.set_title("Raw pace per heartbeat vs the economy index", loc="left", fontsize=11)
    top.legend(fontsize=8, frameon=False, loc="upper left")
    bottom.scatter(runs["start_time"], runs["speed_m_s"], s=10, color=OKABE_ITO["grey"], alpha=0.6, linewidths=0)
    med = rolling_median(runs["start_time"], runs["speed_m_s"])
    bottom.plot(med.index, med.to_numpy(), color=OKABE_ITO["black"], linewidth=1.8, label="running speed")
    bottom.set_ylabel("speed (m/s)")
    if has_temperature:
        temp = runs[runs["temperature_c"].notna()]
        axes[2].scatter(temp["start_time"], temp["temperature_c"], s=10, color=OKABE_ITO["vermillion"], alpha=0.6,
                        linewidths=0)
        axes[2].set_ylabel("temperature (°C,\nwatch sensor)")
    _date_axis(axes[-1])
    return fig


def block_effects_forest_plot(effects: pd.DataFrame) -> Figure:
    """Forest plot: one row per athlete × block, the estimated change (%) with 95 % CI, each row's SWC
    band shaded and the zero line. ``effects`` needs a ``row_label`` column besides block_effects columns.
    """
    rows = effects.reset_index(drop=True)
    fig = Figure(figsize=(9, 1.2 + 0.45 * max(len(rows), 1)), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    ax.axvline(0, color="black", linewidth=0.8)
    for y, r in rows.iterrows():
        if not pd.isna(r["swc_pct"]):
            ax.fill_betweenx([y - 0.38, y + 0.38], -r["swc_pct"], r["swc_pct"], color="#cccccc", alpha=0.6,
                             linewidth=0)
        _draw_effect(ax, y, r, fontsize=8, capsize=3, markersize=6, linewidth=1.8)
    ax.set_yticks(range(len(rows)), rows["row_label"])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first athlete at the top
    ax.set_xlabel("change in running economy beyond the pre-block trend, % (95 % CI; > 0 = more economical)")
    ax.set_title("Strength blocks and running economy, all athletes", loc="left", fontsize=11)
    handles = [Patch(color="#cccccc", alpha=0.6, label="smallest worthwhile change")]
    handles += [Line2D([], [], marker="o", linestyle="none", color=c, label=v)
                for v, c in VERDICT_COLOURS.items() if v in set(rows["verdict"])]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _diamond(ax, y: float, est: float, lo: float, hi: float, colour: str, label: str) -> None:
    """A pooled estimate as the classic forest-plot diamond: centre at the estimate, tips at the CI."""
    ax.fill([lo, est, hi, est], [y, y - 0.35, y, y + 0.35], color=colour, alpha=0.85, linewidth=0, label=label)


def squad_forest_plot(blocks: pd.DataFrame, pooled: pd.DataFrame) -> Figure:
    """Forest plot of the squad: each block's pooled estimate (% change in economy, 95 % CI, marker size by
    its weight) and, below, the pooled diamonds: every block (random effects) and, where teammates without
    a block were available, the difference in differences. The prediction interval of the pooled effect is
    the thin line through its diamond.

    ``blocks``: squad_blocks rows plus ``row_label``; ``pooled``: squad_pooled rows of one meta_method.
    """
    rows = blocks.reset_index(drop=True)
    n_pooled = len(pooled)
    fig = Figure(figsize=(9, 1.6 + 0.42 * (len(rows) + n_pooled)), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    ax.axvline(0, color="black", linewidth=0.8)
    weights = rows["weight_pct"].fillna(100 / max(len(rows), 1)).to_numpy(dtype=float)
    for y, r in rows.iterrows():
        ax.plot([r["ci_low_pct"], r["ci_high_pct"]], [y, y], color=OKABE_ITO["blue"], linewidth=1.6)
        ax.plot(r["change_pct"], y, "s", color=OKABE_ITO["blue"], markersize=4 + 0.5 * np.sqrt(weights[y] * 4))
    labels = list(rows["row_label"])
    names = {"block_effect": ("pooled: all blocks", OKABE_ITO["black"]),
             "did": ("pooled: vs teammates without a block", OKABE_ITO["vermillion"])}
    for j, (_, p) in enumerate(pooled.iterrows()):
        y = len(rows) + 0.5 + j
        name, colour = names.get(p["target"], (p["target"], OKABE_ITO["grey"]))
        if not pd.isna(p["pi_low_pct"]):
            ax.plot([p["pi_low_pct"], p["pi_high_pct"]], [y, y], color=colour, linewidth=0.9)
        _diamond(ax, y, p["estimate_pct"], p["ci_low_pct"], p["ci_high_pct"], colour, name)
        labels.append(f"{name} (k={int(p['k'])})")
    ax.set_yticks(list(range(len(rows))) + [len(rows) + 0.5 + j for j in range(n_pooled)], labels)
    ax.set_ylim(len(rows) + n_pooled, -0.7)
    ax.set_xlabel("change in running economy, % (95 % CI; > 0 = more economical)")
    ax.set_title("Squad: each block and the pooled effect (diamond; thin line = prediction interval)",
                 loc="left", fontsize=11)
    return fig


def dose_response_line(fit: pd.Series, doses: np.ndarray) -> np.ndarray:
    """The meta-regression's fitted change (%) at ``doses``: intercept + slope x (dose - mean dose) on the
    log scale, drawn back in percent. ``fit``: a squad_dose_response row."""
    return np.expm1(np.log1p(fit["intercept_pct"] / 100) + fit["slope_pct_per_unit"] / 100
                    * (doses - fit["moderator_mean"])) * 100


def dose_response_plot(blocks: pd.DataFrame, fit: pd.Series | None, moderator: str = "sessions_per_week",
                       xlabel: str = "strength sessions per week") -> Figure:
    """Each block's change in economy (%, 95 % CI) against its dose, with the meta-regression's fitted line.

    ``blocks``: squad_blocks rows; ``fit``: the squad_dose_response row of ``moderator`` (None: no line).
    The line is intercept + slope x (dose - mean dose) on the log scale, drawn back in percent.
    """
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    d = blocks[blocks[moderator].notna()]
    ax.errorbar(d[moderator], d["change_pct"], yerr=[d["change_pct"] - d["ci_low_pct"], d["ci_high_pct"] - d["change_pct"]],
                fmt="o", color=OKABE_ITO["blue"], alpha=0.8, capsize=3, label="block (95 % CI)")
    ax.axhline(0, color="black", linewidth=0.8)
    if fit is not None and len(d):
        xs = np.linspace(d[moderator].min(), d[moderator].max(), 30)
        line = dose_response_line(fit, xs)
        ax.plot(xs, line, color=OKABE_ITO["vermillion"], linewidth=2,
                label=f"meta-regression: {fit['slope_pct_per_unit']:+.2f} points per unit "
                      f"(95 % CI {fit['slope_ci_low']:+.2f} to {fit['slope_ci_high']:+.2f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("change in economy, %")
    ax.set_title("Dose-response across the squad", loc="left", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return fig
