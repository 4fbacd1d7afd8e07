"""What ``pipeline analyze`` prints: one screen, per athlete runs included (and why not), blocks, headline
effects (calibrated, the raw estimate beside) and how the raw method did on the negative controls."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.analyze.process import AthleteAnalysis
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC


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


@dataclass
class AnalyzeSummary:
    """Result of :func:`analyze_workspace`; ``render()`` gives one screen of text."""

    athletes: list[AthleteSummary] = field(default_factory=list)

    def render(self) -> str:
        if not self.athletes:
            return "Analyze: no athletes in the warehouse; run `pipeline ingest` first."
        lines = [f"Analyze: {len(self.athletes)} athlete(s)"]
        for a in self.athletes:
            lines.append(f"  {a.athlete_id}: {a.included} of {a.runs} runs included"
                         + (f" (reference speed {a.ref_speed_m_s:.2f} m/s)" if np.isfinite(a.ref_speed_m_s) else ""))
            for n, example in _grouped_reasons(a.exclusions)[:4]:
                lines.append(f"      excluded {n}, e.g. {example}")
            if a.not_runs:
                lines.append("      not runs (skipped): " + ", ".join(f"{k} {v}" for k, v in a.not_runs.most_common()))
            lines.append(f"    strength blocks: {a.blocks}")
            lines += [_headline_line(h) for h in a.headline]
            if a.blocks:
                lines.append(f"    negative controls: the raw estimate at {a.placebo_total} fake block starts claimed a "
                             f"gain at {a.placebo_gains} and a loss at {a.placebo_losses}; the verdicts above are "
                             "calibrated on them" if a.placebo_total else
                             "    negative controls: none fit in this record (each needs 6 weeks before it and 12 "
                             "weeks after it clear of a block): calibrated with the squad's or the default")
        return "\n".join(lines)


def _headline_line(h: dict) -> str:
    """One block's calibrated headline (and the raw estimate) for the summary."""
    if not np.isfinite(h.get("calibrated_change_pct", np.nan)):
        return (f"    block {h['block_id']}: {h.get('calibrated_verdict') or h['verdict']} ({h['n_baseline']} runs "
                f"before, {h['n_response']} in the response window)")
    return (f"    block {h['block_id']}: economy {h['calibrated_change_pct']:+.1f} % beyond trend, calibrated "
            f"(95 % CI {h['calibrated_ci_low_pct']:+.1f} to {h['calibrated_ci_high_pct']:+.1f}; raw "
            f"{h['change_pct']:+.1f}, {h['ci_low_pct']:+.1f} to {h['ci_high_pct']:+.1f}; SWC {h['swc_pct']:.1f} %) "
            f"-> {h['calibrated_verdict']}: {h['verdict_reason']}")


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
