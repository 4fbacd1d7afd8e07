"""What the page says in words: the headline sentence, the placebo line, period labels.

Everything here is a pure function of :class:`~pipeline.report.data.AthleteReportData` frames. Numbers in
sentences are the ``block_effects`` values formatted to one decimal, never recomputed, so the page
always agrees with the warehouse a scientist queries. The headline uses the CALIBRATED estimate, CI and
verdict (calibrated against the athlete's negative controls; the raw values when a row has none) and
says in one more sentence how the method did on those controls. The wording says "coincided with",
never "caused": an observational before/after comparison cannot show cause.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from pipeline.report.data import AthleteReportData
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC

INSUFFICIENT = "insufficient data"
MINUS = "\u2212"  # typographic minus: "−1.2" reads better than "-1.2" and never wraps apart

# Period of a run relative to the headline block; colours in figures follow this order.
PERIODS = ("before block", "during ramp", "response window", "after")


def format_1dp(value: float | None) -> str:
    """One decimal with a typographic minus; ``-0.04`` prints as ``0.0`` (no negative zero)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{float(value) + 0.0:.1f}"
    if text == "-0.0":
        text = "0.0"
    return text.replace("-", MINUS)


def format_signed_1dp(value: float | None) -> str:
    """Like :func:`format_1dp` but with an explicit ``+`` for positive changes."""
    text = format_1dp(value)
    return f"+{text}" if text not in ("n/a", "0.0") and not text.startswith(MINUS) else text


def format_day(ts) -> str:
    """``12 Mar 2025`` (unambiguous for readers on either side of the Atlantic)."""
    if ts is None or pd.isna(ts):
        return "unknown date"
    return f"{pd.Timestamp(ts).day} {pd.Timestamp(ts):%b %Y}"


@dataclass(frozen=True)
class HeadlineEffect:
    """The block_effects row the headline is about, with its block's start for the wording."""

    row: pd.Series
    block_start: pd.Timestamp | None
    block_label: str | None

    @property
    def weeks_phrase(self) -> str:
        """``weeks 6–12 after your strength block started`` from the response window dates."""
        if self.block_start is None or pd.isna(self.row["response_start"]):
            return "In the response window"
        first = round((self.row["response_start"] - self.block_start).days / 7)
        last = round((self.row["response_end"] - self.block_start).days / 7)
        return f"In weeks {first}\u2013{last} after your strength block started ({format_day(self.block_start)})"


def _block_starts(tables: AthleteReportData) -> dict[str, pd.Timestamp]:
    return dict(zip(tables.blocks["block_id"], tables.blocks["start_date"]))


def headline_rows(tables: AthleteReportData) -> pd.DataFrame:
    """The headline metric/method rows, most recent block first (by block start, else baseline end)."""
    eff = tables.effects
    rows = eff[(eff["metric"] == HEADLINE_METRIC) & (eff["method"] == HEADLINE_METHOD)].copy()
    starts = _block_starts(tables)
    rows["_order"] = [starts.get(b, be) for b, be in zip(rows["block_id"], rows["baseline_end"])]
    return rows.sort_values("_order", ascending=False, na_position="last").drop(columns="_order")


def as_float(value) -> float:
    """A DOUBLE (or INTEGER) value of a warehouse row as a float, NaN when NULL (None, NaN, pd.NA) or absent."""
    return math.nan if value is None or pd.isna(value) else float(value)


def log_se_from_ci_pct(ci_low_pct: float, ci_high_pct: float, quantile: float) -> float:
    """The standard error on the log scale behind a CI stored in percent (half its width on the log scale over
    the CI's ``quantile``); NaN when the bounds cannot be read."""
    if not all(math.isfinite(x) and x > -100 for x in (ci_low_pct, ci_high_pct)):
        return math.nan
    half = (math.log1p(ci_high_pct / 100) - math.log1p(ci_low_pct / 100)) / 2
    return half / quantile if half > 0 else math.nan


def calibrated(row: pd.Series, name: str):
    """The calibrated value of a block_effects column (``change_pct``, ``ci_low_pct``, ``ci_high_pct``,
    ``verdict``), or the raw one for rows without calibration."""
    value = row.get(f"calibrated_{name}")
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return row.get(name)
    return value


def headline_effect(tables: AthleteReportData) -> HeadlineEffect | None:
    """The most recent block whose headline verdict is not "insufficient data", else ``None``."""
    rows = headline_rows(tables)
    verdicts = pd.Series([calibrated(r, "verdict") for _, r in rows.iterrows()], index=rows.index, dtype=object)
    usable = rows[verdicts.notna() & (verdicts != INSUFFICIENT) & rows["change_pct"].notna()]
    if usable.empty:
        return None
    row = usable.iloc[0]
    blocks = tables.blocks.set_index("block_id") if len(tables.blocks) else None
    start = label = None
    if blocks is not None and row["block_id"] in blocks.index:
        start = blocks.loc[row["block_id"], "start_date"]
        label = blocks.loc[row["block_id"], "label"]
    return HeadlineEffect(row=row, block_start=start,
                          block_label=label if isinstance(label, str) and label else None)


def headline_sentence(tables: AthleteReportData, with_controls: bool = True) -> str:
    """The page's one-sentence answer, in the athlete's terms, with the exact block_effects numbers.
    ``with_controls``: add :func:`controls_sentence` (the report's headline box shows it on its own line)."""
    if tables.analysis_error:
        return ("Running economy could not be assessed: the analysis of this athlete's data failed "
                "(the reason is in the box above).")
    if tables.runs.empty:
        return ("No runs were found for this athlete, so running economy cannot be assessed yet: "
                "add watch exports (FIT, GPX or TCX) under data/raw/ and run the pipeline again.")
    if not tables.has_hr:
        return ("None of the runs carries heart-rate data, so running economy (pace per heartbeat) "
                "cannot be computed: record runs with a heart-rate sensor to use this report.")
    if tables.blocks.empty:
        if tables.strength_sessions.empty:
            return ("No strength training was found for this athlete, so there is no strength block to "
                    "compare running economy against.")
        return (f"{len(tables.strength_sessions)} strength sessions were found, but none formed a sustained "
                "block, so there is no before/after comparison yet.")
    effect = headline_effect(tables)
    if effect is None:
        return ("Not enough steady runs around your strength block to say whether running economy changed: "
                "each window needs enough included runs (see the data-quality table below).")
    r = effect.row
    change, lo, hi, verdict = (calibrated(r, k) for k in ("change_pct", "ci_low_pct", "ci_high_pct", "verdict"))
    ci = f"95 % CI {format_1dp(lo)} to {format_1dp(hi)} %"
    swc = f"smallest worthwhile change {format_1dp(r['swc_pct'])} %"
    controls = controls_sentence(tables, r) if with_controls else ""
    return f"{_verdict_sentence(effect.weeks_phrase, verdict, change, ci, swc, r)} {controls}".strip()


def _verdict_sentence(where: str, verdict: str, change: float, ci: str, swc: str, r: pd.Series) -> str:
    if verdict == "gain":
        return (f"{where}, running economy was {format_1dp(change)} % better than the pre-block "
                f"trend predicted ({ci}; {swc}). The block coincided with this gain; it does not prove "
                "the block caused it.")
    if verdict == "loss":
        return (f"{where}, running economy was {format_1dp(abs(change))} % worse than the "
                f"pre-block trend predicted (change {format_signed_1dp(change)} %, {ci}; {swc}).")
    if verdict == "cannot tell":
        reason = r.get("verdict_reason")
        why = f" Why: {reason}." if isinstance(reason, str) and reason else ""
        return (f"{where}, the data cannot tell whether running economy changed beyond the pre-block trend "
                f"(estimate {format_signed_1dp(change)} %, {ci}).{why}")
    return (f"{where}, there was no clear change in running economy beyond the pre-block trend "
            f"(estimate {format_signed_1dp(change)} %, {ci}; {swc}).")


def controls_sentence(tables: AthleteReportData, row: pd.Series) -> str:
    """One sentence: how the uncalibrated method did on this athlete's own negative controls, and what
    the calibrated CI therefore includes. Empty for rows without calibration."""
    source = row.get("calibration_source")
    if not isinstance(source, str):
        return ""
    pc = tables.placebo
    pc = pc[(pc["metric"] == HEADLINE_METRIC) & (pc["method"] == HEADLINE_METHOD)] if len(pc) else pc
    n = len(pc)
    gains = int((pc["verdict"] == "gain").sum()) if n else 0
    losses = int((pc["verdict"] == "loss").sum()) if n else 0
    spread = (f"{format_signed_1dp(row.get('systematic_mu_pct'))} ± "
              f"{format_1dp(row.get('systematic_tau_pct'))} %")
    seen = (f"{n} fake block starts across your record, where nothing began: the uncalibrated method "
            f"claimed a gain at {gains} and a loss at {losses} of them")
    if source == "own":
        return f"On your own negative controls ({seen}), its systematic error was {spread}; the CI above includes it."
    if n == 0:
        lead = "No negative control (a fake block start with 6 weeks before it and 12 after it) fits your record"
    else:
        lead = f"Your record holds few negative controls ({seen})"
    where = "the squad's" if source == "squad" else "a conservative default"
    return f"{lead}, too few to measure the method's systematic error: {where} ({spread}) is in the CI above."


def short_verdict(tables: AthleteReportData) -> str:
    """One or two words for the squad table."""
    if tables.runs.empty:
        return "no runs"
    if not tables.has_hr:
        return "no heart rate"
    if tables.blocks.empty:
        return "no strength block"
    effect = headline_effect(tables)
    return INSUFFICIENT if effect is None else str(calibrated(effect.row, "verdict"))


def run_periods(run_times: pd.Series, block_start, response_start, response_end) -> pd.Series:
    """Label each run time with its period relative to one block (see :data:`PERIODS`)."""
    labels = pd.Series("before block", index=run_times.index, dtype="object")
    if block_start is None or pd.isna(block_start):
        return labels
    labels[run_times >= block_start] = "during ramp"
    if response_start is not None and not pd.isna(response_start):
        # response_end is a DATE: the whole day is inside the window.
        end = response_end + pd.Timedelta(days=1)
        labels[(run_times >= response_start) & (run_times < end)] = "response window"
        labels[run_times >= end] = "after"
    return labels


@dataclass(frozen=True)
class PlaceboSummary:
    """How often the same estimator claimed a gain at fake block starts before the real block."""

    gains: int
    total: int
    sentence: str


def headline_controls(tables: AthleteReportData, block_id: str | None) -> pd.DataFrame:
    """The negative controls (``placebo_checks`` rows, headline metric and method) behind one block's
    headline: record-wide controls (rows with a ``position``) all count, as the calibration uses them;
    rows from before them are the block's own fake starts."""
    pc = tables.placebo
    if block_id is None or pc.empty:
        return pc.iloc[0:0]
    rows = pc[(pc["metric"] == HEADLINE_METRIC) & (pc["method"] == HEADLINE_METHOD)]
    record_wide = "position" in rows and rows["position"].notna().any()
    return (rows if record_wide else rows[rows["block_id"] == block_id]).sort_values("fake_start")


def placebo_summary(tables: AthleteReportData, block_id: str | None) -> PlaceboSummary:
    rows = headline_controls(tables, block_id)
    rated = rows[rows["verdict"].notna() & (rows["verdict"] != INSUFFICIENT)]
    n, k = len(rated), int((rated["verdict"] == "gain").sum())
    losses = int((rated["verdict"] == "loss").sum())
    if n == 0:
        return PlaceboSummary(0, 0, "No negative control could be run: your record has no stretch with enough "
                                    "runs around a fake block start.")
    if "position" in rows and rows["position"].notna().any():
        return PlaceboSummary(k, n, f"At {k} of {n} fake block starts across your record (before, between and "
                                    f"after your blocks), where nothing began, the uncalibrated method would have "
                                    f"claimed a gain, and a loss at {losses}. The calibrated headline allows for "
                                    "the error these show.")
    judgement = ("so a gain claimed at the real block start stands out from the background"
                 if k == 0 or k / n <= 0.1 else
                 "so gains of this size also appear without any block; treat the headline with caution")
    return PlaceboSummary(k, n, f"At {k} of {n} fake block starts before the real block, the same method "
                                f"would have claimed a gain, {judgement}.")


def exclusion_kind(reason: str) -> str:
    """The kind of an exclusion reason: its first clause with numbers replaced by N.

    Reasons carry per-run numbers ("only 14 min steady (min 15); 14 min lost to pace changes"); grouping
    the raw strings would give one row per run.
    """
    first = reason.split(";")[0].strip()
    return re.sub(r"\d+(?:\.\d+)?", "N", first)


def exclusion_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Excluded runs grouped by kind of reason, most common first: ``reason``, ``runs``, ``example``."""
    if runs.empty:
        return pd.DataFrame({"reason": [], "runs": [], "example": []})
    excluded = runs[~runs["included"].fillna(False).astype(bool)]
    reasons = excluded["exclusion_reason"].fillna("no reason recorded").astype(str)
    grouped = pd.DataFrame({"reason": reasons.map(exclusion_kind), "example": reasons})
    counts = (grouped.groupby("reason", sort=False)
              .agg(runs=("example", "size"), example=("example", "first"))
              .reset_index().sort_values(["runs", "reason"], ascending=[False, True], kind="stable"))
    return counts.reset_index(drop=True)
