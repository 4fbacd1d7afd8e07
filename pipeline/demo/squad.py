"""A simulated squad with a known answer: teammates with and without strength blocks, doses, a shared season.

Built on :mod:`pipeline.demo.simulate`'s public API (``simulate_athlete`` and its profiles); what that
simulator has no knob for is done here, after it, on the frames it returns:

* **Dose.** The simulator plans two sessions a week (Mon/Fri) through the block. An athlete's dose
  (``sessions_per_week`` of :class:`SquadDesign`, cycled over the block athletes: 0.5, 1, 1.5, 2) is made
  by dropping planned sessions (every Friday for 1/week, odd-week Fridays for 1.5/week, ...). The planted
  economy gain is dose-dependent: ``gain_pct_per_session`` x sessions per week (1 %, 2 %, 3 %, 4 %).
  Blocks below the detector's 1.5 sessions/week are declared in ``blocks.csv``, as a coach would.
* **Controls.** Teammates without a block: every strength session removed, no planted gain.
* **A shared season.** ``season_gain_pct`` moves every athlete's economy by the same calendar-time course
  (a half-cosine ramp between ``season_start_week`` and ``season_end_week`` of the record): each run's
  recorded HR is shifted by hr_at_ref x (1 / (1 + s) - 1), dithered before rounding to whole bpm so the
  files stay exactly what a watch writes and the mean shift is exact. The season lands in the blocks'
  response windows, so it fools a single-athlete estimate; teammates share it, so the
  difference in differences removes it.

Truth per athlete (``SquadAthlete``): the dose, the planted gain, the season, and the change in the
economy index the ITS estimate should find over the response window (:func:`expected_change_pct`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.demo.simulate import (
    DEFAULT_START_DATE, PROFILES, SimulatedAthlete, simulate_athlete, smooth_ramp,
)
from pipeline.demo.write import TRUTH_DIR_NAME, write_athlete

DOSES = (0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class SquadDesign:
    """What the simulated squad looks like (defaults: the issue's 12 athletes, 8 with blocks, 4 without)."""

    n_block: int = 8
    n_control: int = 4
    weeks: int = 40                          # record length
    block_start_week: int = 26               # first block's start; the others follow a week apart in turn
    block_start_spread_weeks: int = 2        # blocks start in weeks block_start_week .. + spread
    block_weeks: int = 12
    sessions_per_week: tuple[float, ...] = DOSES   # cycled over the block athletes
    gain_pct_per_session: float = 2.0        # planted economy gain, % per weekly session
    season_gain_pct: float = 0.0             # shared season: economy change (%, > 0 more economical)
    season_start_week: float = 29.0          # season ramp, weeks since the record's start: it lands in the
    season_end_week: float = 33.0            # blocks' response windows (weeks 6-12 after their start)
    sample_interval_s: float = 10.0
    start_date: dt.date = DEFAULT_START_DATE


@dataclass
class SquadAthlete:
    """One simulated teammate and its truth."""

    athlete: SimulatedAthlete
    has_block: bool
    sessions_per_week: float                 # nominal dose (0 for controls)
    planted_gain_pct: float
    block_start: dt.date | None
    block_end: dt.date | None
    season_pct: pd.Series = field(default_factory=pd.Series)   # per activity_id, the season's economy change

    @property
    def athlete_id(self) -> str:
        return self.athlete.athlete_id


def season_fraction(design: SquadDesign, when) -> np.ndarray:
    """The shared season's economy change (fraction) at ``when`` (UTC timestamps)."""
    start = pd.Timestamp(design.start_date, tz="UTC")
    weeks = (pd.to_datetime(pd.Series(when), utc=True) - start).dt.total_seconds().to_numpy() / (7 * 86400)
    return design.season_gain_pct / 100 * smooth_ramp(weeks, design.season_start_week, design.season_end_week)


def _thin_sessions(a: SimulatedAthlete, rate: float) -> SimulatedAthlete:
    """Keep the block sessions that give ``rate`` sessions a week (0 drops every strength session)."""
    s = a.strength_sessions
    day = pd.to_datetime(s["start_time"], utc=True)
    start = pd.Timestamp(a.truth.block_start, tz="UTC")
    week = ((day - start).dt.days // 7).to_numpy()
    friday = (day.dt.day_of_week >= 3).to_numpy()      # the second session of the week (Fri, local evening)
    odd = week % 2 == 1
    drop = {2.0: np.zeros(len(s), bool), 1.5: friday & odd, 1.0: friday,
            0.5: friday | odd, 0.0: np.ones(len(s), bool)}[rate]
    keep = s[~drop]
    a.strength_sessions = keep.reset_index(drop=True)
    a.strength_sets = a.strength_sets[a.strength_sets["session_id"].isin(keep["session_id"])].reset_index(drop=True)
    return a


def _apply_season(a: SimulatedAthlete, design: SquadDesign, rng: np.random.Generator) -> pd.Series:
    """Shift every run's HR by the season (dithered to whole bpm); returns the season per activity (%)."""
    truth = a.truth.truth_runs.set_index("activity_id")
    s = pd.Series(season_fraction(design, truth["start_time"]), index=truth.index)
    if design.season_gain_pct == 0:
        return s * 100
    offset = truth["true_hr_at_ref_bpm"] * (1 / (1 + s) - 1)
    per_sample = a.samples["activity_id"].map(offset).to_numpy(dtype=float)
    hr = a.samples["heart_rate_bpm"].to_numpy(dtype=float)
    # Dither: round(x + u), u ~ U(-0.5, 0.5) has expectation x, so the mean shift is exact on whole bpm.
    a.samples["heart_rate_bpm"] = np.round(hr + per_sample + rng.uniform(-0.5, 0.5, len(hr)))
    mean_hr = a.samples.groupby("activity_id")["heart_rate_bpm"].mean()
    fit = a.activities["source_format"] == "fit"
    avg = a.activities["activity_id"].map(mean_hr)
    a.activities["avg_heart_rate_bpm"] = np.where(fit, np.round(avg), avg)
    a.truth.truth_runs["true_economy_m_per_beat"] *= 1 + s.reindex(a.truth.truth_runs["activity_id"]).to_numpy()
    return s * 100


def with_season(squad: list[SquadAthlete], design: SquadDesign, seed: int = 2024) -> list[SquadAthlete]:
    """Copies of the members with ``design``'s shared season applied (the simulation is not repeated)."""
    out = []
    for k, m in enumerate(squad):
        a = replace(m.athlete, activities=m.athlete.activities.copy(), samples=m.athlete.samples.copy(),
                    truth=replace(m.athlete.truth, truth_runs=m.athlete.truth.truth_runs.copy()))
        season = _apply_season(a, design, np.random.default_rng(seed * 1000 + k))
        out.append(replace(m, athlete=a, season_pct=season))
    return out


def simulate_squad(seed: int = 2024, design: SquadDesign | None = None) -> list[SquadAthlete]:
    """Simulate the squad: ``n_block`` athletes with blocks of varying dose, then ``n_control`` without."""
    d = design or SquadDesign()
    rng = np.random.default_rng(seed)
    out = []
    for k in range(d.n_block + d.n_control):
        has_block = k < d.n_block
        rate = d.sessions_per_week[k % len(d.sessions_per_week)] if has_block else 0.0
        gain = d.gain_pct_per_session * rate
        profile = replace(
            PROFILES["null"], athlete_id=f"squad_{k + 1:02d}",
            display_name=f"Squad {k + 1:02d}" + (f" ({rate:g} sessions/week)" if has_block else " (no block)"),
            story="Simulated teammate " + (f"with a {rate:g}-sessions/week block, planted gain {gain:.1f} %"
                                           if has_block else "without a strength block (a control)"),
            planted_gain_pct=gain, weeks=d.weeks, block_weeks=d.block_weeks, sporadic_strength_weeks=(),
            block_start_week=d.block_start_week + (k % (d.block_start_spread_weeks + 1)),
            hr_intercept_bpm=float(76 + rng.normal(0, 3)), hr_slope_bpm_per_m_s=float(22 + rng.normal(0, 1.2)),
            easy_speed_m_s=float(2.9 + rng.normal(0, 0.15)))
        a = simulate_athlete(profile, seed * 100 + k, sample_interval_s=d.sample_interval_s, start_date=d.start_date)
        a = _thin_sessions(a, rate)
        season = _apply_season(a, d, np.random.default_rng(seed * 1000 + k))
        out.append(SquadAthlete(a, has_block, rate, gain, a.truth.block_start if has_block else None,
                                a.truth.block_end if has_block else None, season))
    return out


def expected_change_pct(member: SquadAthlete, response_start_weeks: float = 6.0,
                        response_end_weeks: float = 12.0, with_season: bool = True) -> float:
    """The change in the economy index (%) the block's ITS estimate targets: the planted gain (and the
    season) averaged over the response window's runs. The gain divides the HR model's (a + b v) by 1 + g
    but not its drift term, so the index moves a little less than g itself (as in tests/analyze)."""
    a = member.athlete
    if member.block_start is None:
        return 0.0
    tr = a.truth.truth_runs
    t = pd.to_datetime(tr["start_time"], utc=True)
    start = pd.Timestamp(member.block_start, tz="UTC")
    inside = ((t >= start + pd.Timedelta(weeks=response_start_weeks))
              & (t < start + pd.Timedelta(weeks=response_end_weeks))).to_numpy()
    g = tr["effect_pct"].to_numpy() / 100
    drift = a.profile.drift_bpm_per_h * a.truth.ref_elapsed_s / 3600
    hr = tr["true_hr_at_ref_bpm"].to_numpy()
    ratio = ((hr - drift) * (1 + g) + drift) / hr
    if with_season:
        ratio = ratio * (1 + member.season_pct.reindex(tr["activity_id"]).to_numpy() / 100)
    return float(ratio[inside].mean() - 1) * 100


def write_squad(raw_dir: Path, seed: int = 2024, design: SquadDesign | None = None) -> list[str]:
    """Write the simulated squad as export files under ``raw_dir`` (one folder per athlete, blocks.csv for
    the blocks, ``.truth/squad.json`` with dose, planted gain and season); returns the athlete ids."""
    d = design or SquadDesign()
    squad = simulate_squad(seed, d)
    for m in squad:
        write_athlete(m.athlete, Path(raw_dir))
        folder = Path(raw_dir) / m.athlete_id
        blocks = folder / "blocks.csv"
        if m.has_block:
            blocks.write_text(f"label,start,end\nSquad strength block,{m.block_start},{m.block_end}\n")
        elif blocks.exists():
            blocks.unlink()
        truth = {"has_block": m.has_block, "sessions_per_week": m.sessions_per_week,
                 "planted_gain_pct": m.planted_gain_pct, "expected_change_pct": expected_change_pct(m),
                 "expected_change_without_season_pct": expected_change_pct(m, with_season=False),
                 "design": {k: (str(v) if isinstance(v, dt.date) else v) for k, v in asdict(d).items()}}
        (folder / TRUTH_DIR_NAME / "squad.json").write_text(json.dumps(truth, indent=2) + "\n")
    return [m.athlete_id for m in squad]
