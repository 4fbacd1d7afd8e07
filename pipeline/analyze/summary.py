"""What ``pipeline analyze`` prints: one screen, per athlete runs included (and why not), blocks, headline
effects (calibrated, the raw estimate beside) and how the raw method did on the negative controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC

if TYPE_CHECKING:   # type hints only: process.py imports the estimators and scipy.stats, unneeded here
    from pipeline.analyze.process import AthleteAnalysis


@dataclass
class AthleteSummary:
    """What one athlete's analysis found, for the one-screen summary."""

    athlete_id: str
    runs: int
    included: int
    exclusions: Counter
    not_runs: Counter
    blocks: int
    headline: list[dict] = field(default_factory=list)      # per block: change, CI, verdict
    placebo_gains: int = 0
    placebo_total: int = 0
    ref_speed_m_s: float = float("nan")
    placebo_losses: int = 0


@dataclass(frozen=True)
class AthleteFailure:
    """An athlete whose analysis could not be done, and why (file and key, or activity and file)."""

    athlete_id: str
    message: str


@dataclass
class AnalyzeSummary:
    """Result of :func:`analyze_workspace`; ``render()`` gives one screen of text.

    ``athletes``/``failures``: the athletes analysed now; ``up_to_date``: those skipped because their inputs
    had not changed; ``removed``: athletes whose analysis rows went with their data; ``squad``: 'recomputed'
    or 'up to date'; ``seconds``/``cpu_seconds``: wall time and this process's CPU time; ``where``: the
    cluster the athletes were analysed on ('' = here)."""

    athletes: list[AthleteSummary] = field(default_factory=list)
    failures: list[AthleteFailure] = field(default_factory=list)
    settings_note: str | None = None     # the non-default [analysis] settings, for the "no run included" hint
    squad_error: str | None = None       # why the squad analysis (pooled effects, controls) failed, if it did
    up_to_date: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    squad: str = ""
    seconds: float = float("nan")
    cpu_seconds: float = float("nan")
    where: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and self.squad_error is None

    def render(self) -> str:
        if not self.athletes and not self.failures and not self.up_to_date:
            return "Analyze: no athletes in the warehouse; run `pipeline ingest` first."
        lines = [self.headline()]
        for a in self.athletes:
            lines.extend(_athlete_lines(a, self.settings_note))
        for f in self.failures:
            lines.append(f"  {f.athlete_id}: NOT ANALYSED: {f.message}")
        if self.squad_error:
            lines.append(f"  squad analysis (pooled effects, teammates as controls): FAILED: {self.squad_error}")
        return "\n".join(lines)

    def headline(self) -> str:
        """The one summary line: what was analysed, what was up to date, the time taken."""
        parts = [f"{len(self.athletes) + len(self.failures)} athlete(s) analysed"
                 + (f", {len(self.failures)} could not be analysed" if self.failures else "")]
        if self.up_to_date:
            parts.append(f"{len(self.up_to_date)} up to date (inputs unchanged; --force redoes them)")
        if self.removed:
            parts.append(f"{len(self.removed)} removed ({', '.join(self.removed)})")
        if self.squad:
            parts.append(f"squad {self.squad}")
        where = f" on a {self.where}" if self.where else ""
        timing = (f" in {self.seconds:.1f} s (CPU {self.cpu_seconds:.1f} s here){where}"
                  if np.isfinite(self.seconds) else where)
        return "Analyze: " + ", ".join(parts) + timing


def _athlete_lines(a: AthleteSummary, settings_note: str | None) -> list[str]:
    """The summary lines of one analysed athlete."""
    lines = [f"  {a.athlete_id}: {a.included} of {a.runs} runs included"
             + (f" (reference speed {a.ref_speed_m_s:.2f} m/s)" if np.isfinite(a.ref_speed_m_s) else "")]
    for n, example in _grouped_reasons(a.exclusions)[:4]:
        lines.append(f"      excluded {n}, e.g. {example}")
    if a.runs and not a.included:
        lines.append("      hint: no run is included, so there is no economy index; "
                     + (f"check the settings in pipeline.toml ({settings_note}) and " if settings_note else "")
                     + "the reasons above (docs/analysis.md, 'Cleaning')")
    if a.not_runs:
        lines.append("      not runs (skipped): " + ", ".join(f"{k} {v}" for k, v in a.not_runs.most_common()))
    lines.append(f"    strength blocks: {a.blocks}")
    lines.extend(_headline_line(h) for h in a.headline)
    if a.blocks:
        lines.append(f"    negative controls: the raw estimate at {a.placebo_total} fake block starts claimed a "
                     f"gain at {a.placebo_gains} and a loss at {a.placebo_losses}; the verdicts above are "
                     "calibrated on them" if a.placebo_total else
                     "    negative controls: none fit in this record (each needs 6 weeks before it and 12 "
                     "weeks after it clear of a block): calibrated with the squad's or the default")
    return lines


def _signed(x: float) -> str:
    return f"{x:+.1f}" if x is not None and np.isfinite(x) else "n/a"


def _finite(x) -> bool:
    return x is not None and np.isfinite(x)


def _headline_line(h: dict) -> str:
    """One block's calibrated headline (and the raw estimate) for the summary; numbers that could not be
    estimated read 'n/a', never 'nan'."""
    verdict = h.get("calibrated_verdict") or h["verdict"]
    if not _finite(h.get("calibrated_change_pct")):
        return (f"    block {h['block_id']}: {verdict} ({h['n_baseline']} runs before, "
                f"{h['n_response']} in the response window)")
    swc = f"; SWC {h['swc_pct']:.1f} %" if _finite(h.get("swc_pct")) else ""
    return (f"    block {h['block_id']}: economy {_signed(h['calibrated_change_pct'])} % beyond trend, calibrated "
            f"(95 % CI {_signed(h['calibrated_ci_low_pct'])} to {_signed(h['calibrated_ci_high_pct'])}; raw "
            f"{_signed(h['change_pct'])}, {_signed(h['ci_low_pct'])} to {_signed(h['ci_high_pct'])}{swc}) "
            f"-> {verdict}: {h.get('verdict_reason') or ''}")


def _grouped_reasons(reasons: Counter) -> list[tuple[int, str]]:
    """Reasons that differ only by numbers ("only 6 min steady..." / "only 9 min steady...") counted together.

    Returns (count, one real example of the group), most common first: the example keeps its numbers so
    the summary reads as a sentence, not a template.
    """
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    for reason, n in sorted(reasons.items()):
        key = re.sub(r"\d+(\.\d+)?", "#", reason.split(";")[0])
        counts[key] += n
        examples.setdefault(key, reason.split(";")[0])
    return [(n, examples[key]) for key, n in counts.most_common()]


def athlete_summary(t: AthleteAnalysis) -> AthleteSummary:
    """The summary line items of one athlete's analysis."""
    rm = t.run_metrics
    excl = Counter(rm.loc[~rm["included"], "exclusion_reason"].fillna("excluded").tolist())
    head = t.headline.to_dict("records")
    pl = t.placebo_checks
    pl = pl[(pl["metric"] == HEADLINE_METRIC) & (pl["method"] == HEADLINE_METHOD)]
    return AthleteSummary(t.athlete_id, len(rm), int(rm["included"].sum()), excl, t.not_runs, len(t.strength_blocks),
                          head, int((pl["verdict"] == "gain").sum()), len(pl),
                          t.model.ref_speed_m_s if t.model is not None else float("nan"),
                          int((pl["verdict"] == "loss").sum()))
