"""Validation matrix: the block verdicts on simulated athletes the method was not tuned on (``make validate``).

Each cell is a scenario (issue 12): where the temperature comes from (wrist device with +2/+5/+8 C of
warming, archive air weather, a share of files without any, none at all), the season and the block's
place in it (spring, summer/autumn), the record's length and the block's place in it (12 or 26 weeks in,
34-104 weeks), the recording (1 s, smart 5-9 s, 15 s), a heart-rate sensor change at the block, more
running volume during the block, 2-3 runs a week, very noisy records. Within every cell each athlete also
draws the physiology the method could be tuned to: HR-speed slope (18-26 bpm per m/s) and curvature
(0-3 bpm per (m/s)^2), HR lag (25-60 s), cardiac drift (2-8 bpm/h), heat coefficient (0.4-1.2 bpm/C
above an air threshold of 10-20 C, driven by air or apparent temperature), day-to-day noise (1.2-3 bpm,
i.e. ~1-2 %) with lag-1 autocorrelation 0.2-0.7, within-run noise, fitness that rises linearly or
saturates and wanders slowly, a non-heat seasonal swing of 0-4 % (0-10 % in the season cells).

Null cells (no planted effect) run 20 seeds, planted cells (economy +2.1 %, reached over weeks 3-8 after
block start, ~3 bpm at ~145 bpm) 10. Athletes are simulated in memory at 15 s sampling (1 s and smart
5-9 s where the cell is about recording) and analysed with :func:`pipeline.analyze.process.athlete_process`
exactly as ``pipeline analyze`` would, in a process pool (one athlete per task). Each athlete is a lone
user (calibration from its own controls or the default); the "squad" columns recalibrate each athlete
with the other athletes of its cell as its squad (leave-one-out).

Prints one table (per cell: truth, mean estimate raw and calibrated, CI coverage, verdict counts raw and
calibrated, lone and squad) and the issue's targets, met or missed with the figure; writes
``bench/out/validate.csv`` (one row per athlete). ``--quick`` runs a few seeds of a few cells.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import multiprocessing as mp
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

OUT_DIR = Path(__file__).resolve().parent / "out"
PLANTED_GAIN_PCT = 2.1
NULL_SEEDS, PLANTED_SEEDS = 20, 10
SPRING, SUMMER = "2024-04-01", "2024-08-05"     # block starts (Mondays): spring, summer/autumn
HOT = {"temp_mean_c": 16.0, "temp_amplitude_c": 10.0}   # Madrid-like: ~6 C in January, ~26 C in July


@dataclasses.dataclass(frozen=True)
class Cell:
    """One scenario of the matrix (null and/or planted variants)."""

    name: str
    what: str
    overrides: dict
    block_date: str = SPRING
    temperature: bool = True          # most runs carry a temperature (device or air)
    planted: bool = True              # also run a planted variant
    sample_interval_s: float = 15.0


CELLS: tuple[Cell, ...] = (
    Cell("device-spring", "wrist temperature, block in April, 40 wk, block at week 26", {}),
    Cell("device-summer", "wrist temperature, block in August (cooler response window)", {}, SUMMER),
    Cell("weather-spring", "no device temperature; archive air weather in the activity rows; hot summer "
         "arrives in the response window", {"no_temperature_share": 1.0, "weather_in_activities": True, **HOT}),
    Cell("notemp-spring", "no temperature at all; hot summer arrives in the response window",
         {"no_temperature_share": 1.0, **HOT}, temperature=False),
    Cell("notemp-summer", "no temperature at all; block in summer, cooler response window",
         {"no_temperature_share": 1.0, **HOT}, SUMMER, temperature=False),
    Cell("partial-temp", "20 % of files without temperature, hot climate",
         {"no_temperature_share": 0.2, **HOT}),
    Cell("year2-notemp", "104 wk, block at week 60 (spring of year 2), no temperature, season swing 6 %",
         {"weeks": 104, "block_start_week": 60, "no_temperature_share": 1.0, "season_swing_pct": 6.0, **HOT},
         SPRING, temperature=False),
    Cell("block12-78wk", "78 wk, block 12 weeks in, wrist temperature, season swing 6 %",
         {"weeks": 78, "block_start_week": 12, "season_swing_pct": 6.0}),
    Cell("short-1s", "34 wk, block 12 weeks in, 1-s recording",
         {"weeks": 34, "block_start_week": 12}, sample_interval_s=1.0),
    Cell("smart", "smart recording every 5-9 s", {"recording": "smart"}),
    Cell("sensor", "HR sensor change at block start (+2 bpm, noisier, more cadence lock)",
         {"sensor_change_week": 0.0}, planted=False),
    Cell("volume", "30 % more running during the block; fitness follows the chronic load",
         {"block_volume_factor": 1.3, "volume_fitness_bpm_per_km_week": 0.15}, planted=False),
    Cell("2-3-per-week", "2-3 runs a week", {"week_plan": ((1, "extra"), (3, "tempo"), (6, "long")),
                                            "extra_easy_prob": 0.6, "skip_prob": 0.08}),
    Cell("noisy", "run-to-run noise 4-5 % (day-to-day SD 6-7 bpm, autocorrelation 0.5-0.7)",
         {"day_noise_sd_bpm": "noisy"}),
    Cell("season-short", "40 wk, non-heat season swing 10 %, wrist temperature",
         {"season_swing_pct": 10.0}, planted=False),
)


def _seed(cell: str, k: int, planted: bool) -> int:
    return (zlib.crc32(f"{cell}/{'planted' if planted else 'null'}".encode()) % 100_000) * 100 + k


def physiology(seed: int) -> dict:
    """The athlete's constants, drawn within the ranges the issue names (see the module docstring)."""
    rng = np.random.default_rng([seed, 12])
    lo_warm = float(rng.choice([2.0, 5.0, 8.0]))
    return {
        "hr_intercept_bpm": rng.uniform(70, 82), "hr_slope_bpm_per_m_s": rng.uniform(18, 26),
        "hr_curvature_bpm_per_m_s2": rng.uniform(0, 3), "hr_tau_s": rng.uniform(25, 60),
        "drift_bpm_per_h": rng.uniform(2, 8), "heat_bpm_per_c": rng.uniform(0.4, 1.2),
        "heat_threshold_c": rng.uniform(10, 20), "heat_driver": str(rng.choice(["air", "apparent"])),
        "day_noise_sd_bpm": rng.uniform(1.2, 3.0), "day_noise_ar": rng.uniform(0.2, 0.7),
        "within_run_noise_sd_bpm": rng.uniform(0.8, 2.0),
        "fitness_shape": str(rng.choice(["linear", "saturating"])),
        "fitness_trend_bpm_per_month": rng.uniform(-0.7, 0.0), "fitness_total_bpm": rng.uniform(2, 8),
        "fitness_tau_weeks": rng.uniform(15, 40), "fitness_wander_sd_bpm": rng.uniform(0, 1.0),
        "season_swing_pct": rng.uniform(0, 4), "season_worst_doy": rng.uniform(0, 60),
        "device_temp_offset_c": (lo_warm - 1.5, lo_warm + 1.5), "temp_day_ar": rng.uniform(0.3, 0.7),
        "temp_day_sd_c": rng.uniform(2.0, 3.5), "weather_error_sd_c": rng.uniform(0.5, 1.5),
        "climate": "annual", "temp_mean_c": 12.0, "temp_amplitude_c": 8.0,
    }


def athlete_profile(cell: Cell, seed: int, planted: bool):
    from pipeline.demo.simulate import PROFILES
    values = physiology(seed)
    rng = np.random.default_rng([seed, 13])
    for key, value in cell.overrides.items():
        values[key] = (rng.uniform(6.0, 7.0) if value == "noisy" else value)
    if cell.name == "noisy":
        values["day_noise_ar"] = rng.uniform(0.5, 0.7)
    values["planted_gain_pct"] = PLANTED_GAIN_PCT if planted else 0.0
    return dataclasses.replace(PROFILES["null"], athlete_id=f"v_{cell.name}_{seed}", **values)


def run_one(task: tuple[str, int, bool]) -> dict:
    """Simulate and analyse one athlete; the figures of its headline block."""
    from pipeline.analyze.params import AnalysisParams
    from pipeline.analyze.process import athlete_process
    from pipeline.demo.simulate import simulate_athlete, truth_block_change_pct
    from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
    name, seed, planted = task
    cell = next(c for c in CELLS if c.name == name)
    profile = athlete_profile(cell, seed, planted)
    block = dt.date.fromisoformat(cell.block_date)
    start = block - dt.timedelta(weeks=profile.block_start_week)
    t0 = time.perf_counter()
    a = simulate_athlete(profile, seed, sample_interval_s=cell.sample_interval_s, start_date=start)
    declared = pd.DataFrame(columns=["athlete_id", "label", "start_date", "end_date"])
    blocks = strength_blocks_for_athlete(a.athlete_id, a.strength_sessions, a.strength_sets, declared, BlockParams())
    params = AnalysisParams()
    t = athlete_process(a.athlete_id, a.activities, a.samples.groupby("activity_id", sort=False),
                        a.strength_sessions, blocks, params)
    truth = truth_block_change_pct(a) if planted else 0.0
    seconds = time.perf_counter() - t0
    return {**_result(cell, seed, planted, truth, t, seconds), **error_budget(a, t, blocks, params, truth)}


def error_budget(a, t, blocks: pd.DataFrame, params, truth_pct: float) -> dict:
    """The headline estimator (same windows, same context: season, covariates) applied to the simulator's
    truth for the athlete's included runs, to split its error into parts:

    ``struct_pct``  noise-free economy (fitness trend, wander, non-heat season, planted gain; no heat, no
                    day-to-day noise, no measurement): the error the trend and season model leave;
    ``noise_pct``   the same plus the day-to-day noise (each run's intercept offset): + the noise's share;
    ``oracle_pct``  the day-to-day noise of the response window's runs alone, as an economy change: what
                    an estimator that knew the counterfactual course exactly would still err by (the
                    floor for any method on this record).

    The raw estimate's remaining error (raw - noise) is what heat, recording and cleaning add. Not part of
    the method: the truth is only known in a simulation."""
    from pipeline.analyze.effects import block_limits, block_windows, effect_its, fit_season
    from pipeline.analyze.process import HEADLINE, effect_context
    from pipeline.demo.simulate import REF_SPEED_M_S
    inc = t.run_metrics[t.run_metrics["included"]]
    if len(t.headline) != 1 or inc.empty:
        return {}
    truth = a.truth.truth_runs.set_index("activity_id").reindex(inc["activity_id"])
    ctx = effect_context(inc, blocks, t.model, params)
    ctx = dataclasses.replace(ctx, heat_se={}, heat_draws=None)    # the truth carries no heat
    block, not_before = next((b, nb) for b, nb in block_limits(blocks, params)
                             if b["block_id"] == t.headline.iloc[0]["block_id"])
    windows = block_windows(block["_start"], params, not_before)
    out = {}
    hr = truth["true_hr_at_ref_bpm"].to_numpy(float)
    for name, hr_bpm in (("struct_pct", hr), ("noise_pct", hr + truth["day_offset_bpm"].to_numpy(float))):
        runs = inc.assign(**{HEADLINE[0]: REF_SPEED_M_S * 60.0 / hr_bpm})
        # The whole estimator on the truth series: its season (stage 1) estimated from that series too.
        own = dataclasses.replace(ctx, season_fit=fit_season(runs, ctx)) if ctx.season_fit is not None else ctx
        out[name] = effect_its(runs, windows, HEADLINE[0], own).effect.change_pct
    t_run = pd.to_datetime(inc["start_time"], utc=True)
    resp = ((t_run >= windows.response_start) & (t_run < windows.response_end)).to_numpy()
    rel = np.log(hr / (hr + truth["day_offset_bpm"].to_numpy(float)))[resp]   # > 0: noise made HR lower
    out["oracle_pct"] = truth_pct + float(np.expm1(rel.mean()) * 100) if resp.any() else np.nan
    return out


def _result(cell: Cell, seed: int, planted: bool, truth: float, t, seconds: float) -> dict:
    from pipeline.analyze.process import HEADLINE
    rm = t.run_metrics[t.run_metrics["included"]]
    base = {"cell": cell.name, "seed": seed, "planted": planted, "truth_pct": truth, "seconds": seconds,
            "runs_included": len(rm), "air_share": float((rm["temperature_source"] == "air").mean())}
    h = t.headline
    if len(h) != 1:
        return {**base, "raw_verdict": "no block", "cal_verdict": "no block"}
    r = h.iloc[0]
    fit = next(f for ids, f in t.fits if (f.effect.metric, f.effect.method) == HEADLINE)
    slim = dataclasses.replace(fit, weights=None)
    note = t.notes[r["block_id"]]
    note = dataclasses.replace(note, device_fit=dataclasses.replace(note.device_fit, weights=None)
                               if note.device_fit is not None else None)
    return {**base, "raw_pct": r["change_pct"], "raw_lo": r["ci_low_pct"], "raw_hi": r["ci_high_pct"],
            "raw_verdict": r["verdict"], "cal_pct": r["calibrated_change_pct"], "cal_lo": r["calibrated_ci_low_pct"],
            "cal_hi": r["calibrated_ci_high_pct"], "cal_verdict": r["calibrated_verdict"],
            "cal_se": r["calibrated_se_pct"],
            "source": r["calibration_source"], "n_controls": r["n_controls"], "n_eff": r["n_effective_controls"],
            "mu_pct": r["systematic_mu_pct"], "tau_pct": r["systematic_tau_pct"],
            "season": bool(r["season_controlled"]), "heat": bool(r["heat_controlled"]),
            "sensor": bool(r["sensor_change"]), "reason": r["verdict_reason"],
            "_fit": slim, "_notes": note, "_controls": t.controls.get(HEADLINE), "_class": t.calibration_class}


def squad_verdicts(results: list[dict]) -> None:
    """Recalibrate each athlete with the other athletes of its cell (same null/planted variant) as its
    squad: adds sq_pct, sq_lo, sq_hi, sq_verdict, sq_source in place."""
    from pipeline.analyze.calibration import calibration_for
    from pipeline.analyze.effects import METRICS
    from pipeline.analyze.params import AnalysisParams
    from pipeline.analyze.verdict import verdict_columns
    params = AnalysisParams()
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if "_fit" in r:
            groups.setdefault((r["cell"], r["planted"]), []).append(r)
    for members in groups.values():
        for r in members:
            others = [m["_controls"] for m in members if m is not r and m["_controls"] is not None
                      and m["_class"] == r["_class"]]
            cal = calibration_for(r["_controls"], r["_class"], params.calibration_min_effective_controls, others)
            cols = verdict_columns(r["_fit"], METRICS["economy_m_per_beat"], cal, r["_notes"], params)
            r.update(sq_pct=cols["calibrated_change_pct"], sq_lo=cols["calibrated_ci_low_pct"],
                     sq_hi=cols["calibrated_ci_high_pct"], sq_verdict=cols["calibrated_verdict"],
                     sq_source=cal.source)


def _counts(verdicts: pd.Series, labels: tuple[str, ...]) -> str:
    return "/".join(str(int((verdicts == v).sum())) for v in labels)


RAW_LABELS = ("gain", "loss", "no clear change", "insufficient data")
CAL_LABELS = ("gain", "loss", "no clear change", "cannot tell", "insufficient data")


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and variant: truth, mean estimates, coverage, verdict counts."""
    rows = []
    for (cell, planted), g in df.groupby(["cell", "planted"], sort=False):
        truth = g["truth_pct"]
        cover = lambda lo, hi: float(((g[lo] <= truth) & (truth <= g[hi])).mean() * 100)  # noqa: E731
        rows.append({
            "cell": cell, "variant": "planted" if planted else "null", "n": len(g), "truth": truth.mean(),
            "raw": g["raw_pct"].mean(), "cal": g["cal_pct"].mean(), "cal_sd": g["cal_pct"].std(),
            "raw_cov": cover("raw_lo", "raw_hi"), "cal_cov": cover("cal_lo", "cal_hi"),
            "sq_cov": cover("sq_lo", "sq_hi"),
            "raw_v": _counts(g["raw_verdict"], RAW_LABELS), "cal_v": _counts(g["cal_verdict"], CAL_LABELS),
            "sq_v": _counts(g["sq_verdict"], CAL_LABELS),
            "src": "/".join(f"{k}{int(v)}" for k, v in g["source"].value_counts().items()),
            "tau": g["tau_pct"].mean(), "s_per_athlete": g["seconds"].mean(), "pooled": _pooled(g),
        })
    return pd.DataFrame(rows)


def _pooled(g: pd.DataFrame) -> str:
    """Inverse-variance pooled calibrated change of the cell's athletes (log scale) with its 95 % CI: what
    a squad of them would show together (fixed effect; the squad analysis proper is a random-effects
    meta-analysis)."""
    theta = np.log1p(g["cal_pct"].to_numpy(float) / 100)
    se = g["cal_se"].to_numpy(float) / 100
    ok = np.isfinite(theta) & np.isfinite(se) & (se > 0)
    if not ok.any():
        return "n/a"
    w = 1 / se[ok] ** 2
    est, sd = float(np.sum(w * theta[ok]) / np.sum(w)), float(1 / np.sqrt(np.sum(w)))
    pct = [np.expm1(x) * 100 for x in (est, est - 1.96 * sd, est + 1.96 * sd)]
    return f"{pct[0]:+.1f} [{pct[1]:+.1f},{pct[2]:+.1f}]"


def error_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell and variant: mean and SD of each part of the headline's error (see :func:`error_budget`),
    and the detection a perfectly calibrated estimator with the raw error's SD could reach on a +2 %
    gain (the CI would be +-1.96 SD wide: Phi(2 / SD - 1.96), bias ignored): the power ceiling of this
    estimator on these records, whatever the calibration does."""
    rows = []
    for (cell, planted), g in df.groupby(["cell", "planted"], sort=False):
        err = {k: g[k] - g["truth_pct"] for k in ("struct_pct", "noise_pct", "raw_pct", "oracle_pct") if k in g}
        if len(err) < 4:
            continue
        sd_raw, sd_oracle = float(err["raw_pct"].std()), float(err["oracle_pct"].std())
        rows.append({"cell": cell, "variant": "planted" if planted else "null", "n": len(g),
                     **{f"{k[:-4]}_bias": float(e.mean()) for k, e in err.items()},
                     **{f"{k[:-4]}_sd": float(e.std()) for k, e in err.items()},
                     "ceiling": _detect(sd_raw), "oracle_ceiling": _detect(sd_oracle)})
    return pd.DataFrame(rows)


def _detect(sd_pct: float, gain_pct: float = 2.0) -> float:
    """Share (%) of ``gain_pct`` gains an unbiased estimate with error SD ``sd_pct`` and a CI of +-1.96 SD
    would call (CI above 0)."""
    return float(stats.norm.cdf(gain_pct / sd_pct - 1.96) * 100) if sd_pct > 0 else float("nan")


def render_errors(table: pd.DataFrame) -> str:
    head = (f"{'cell':<15} {'var':<7} {'n':>3}  {'bias: struct':>12} {'+noise':>7} {'raw':>6}   "
            f"{'SD: struct':>10} {'+noise':>7} {'raw':>6} {'oracle':>6}   {'ceiling: raw':>12} {'oracle':>6}")
    lines = ["Error budget of the raw headline estimate (percentage points; truth = what was planted):",
             head, "-" * len(head)]
    for r in table.itertuples():
        lines.append(f"{r.cell:<15} {r.variant:<7} {r.n:>3}  {r.struct_bias:>+12.2f} {r.noise_bias:>+7.2f} "
                     f"{r.raw_bias:>+6.2f}   {r.struct_sd:>10.2f} {r.noise_sd:>7.2f} {r.raw_sd:>6.2f} "
                     f"{r.oracle_sd:>6.2f}   {r.ceiling:>11.0f}% {r.oracle_ceiling:>5.0f}%")
    lines.append("struct = the same estimator on the noise-free truth (trend, wander, season it cannot follow); "
                 "+noise = with the day-to-day noise; raw = the real estimate (+ heat, recording, cleaning); "
                 "oracle = the day-to-day noise of the response window alone (an estimator that knew the "
                 "counterfactual exactly); ceiling = share of +2 % gains an unbiased, perfectly calibrated "
                 "estimate with that SD would call: Phi(2/SD - 1.96)")
    return "\n".join(lines)


def render(table: pd.DataFrame) -> str:
    head = (f"{'cell':<15} {'var':<7} {'n':>3} {'truth':>6} {'raw':>6} {'cal':>6} {'sd':>5} {'cov raw':>7} "
            f"{'cov cal':>7} {'cov sq':>6}  {'raw g/l/n/i':<12} {'cal g/l/n/c/i':<15} {'squad g/l/n/c/i':<15} "
            f"{'source':<18} {'tau':>4} {'s':>4}  {'pooled (all athletes of the cell)':<20}")
    lines = [head, "-" * len(head)]
    for r in table.itertuples():
        lines.append(f"{r.cell:<15} {r.variant:<7} {r.n:>3} {r.truth:>+6.2f} {r.raw:>+6.2f} {r.cal:>+6.2f} "
                     f"{r.cal_sd:>5.2f} {r.raw_cov:>6.0f}% {r.cal_cov:>6.0f}% {r.sq_cov:>5.0f}%  {r.raw_v:<12} "
                     f"{r.cal_v:<15} {r.sq_v:<15} {r.src:<18} {r.tau:>4.1f} {r.s_per_athlete:>4.0f}  {r.pooled}")
    lines.append("verdicts: g gain, l loss, n no clear change, c cannot tell, i insufficient data; cov = CI "
                 "covers the truth; cal = lone athlete (own controls or default), squad = the cell's other "
                 "athletes as squad; tau = mean systematic-error SD used (%); pooled = inverse-variance "
                 "mean of the cell's calibrated estimates with its 95 % CI")
    return "\n".join(lines)


def _long(cell: Cell) -> bool:
    return cell.overrides.get("weeks", 40) >= 52


def targets(df: pd.DataFrame) -> list[str]:
    """The issue's targets, each met or missed with the measured figure (lone-athlete calibration)."""
    out = []
    for cell in CELLS:
        for planted in (False, True):
            g = df[(df["cell"] == cell.name) & (df["planted"] == planted)]
            if g.empty:
                continue
            n = len(g)
            gain, loss = (g["cal_verdict"] == "gain").mean() * 100, (g["cal_verdict"] == "loss").mean() * 100
            if not planted:
                ok = gain <= 5 and loss <= 5
                out.append(f"{'MET   ' if ok else 'MISSED'} {cell.name} null: false gain {gain:.0f} %, "
                           f"false loss {loss:.0f} % of {n} (target <= 5 % each)")
                continue
            bias = float((g["cal_pct"] - g["truth_pct"]).mean())
            cover = float(((g["cal_lo"] <= g["truth_pct"]) & (g["truth_pct"] <= g["cal_hi"])).mean() * 100)
            if cell.temperature or _long(cell):
                ok = gain >= 70 and abs(bias) <= 0.5 and cover >= 90
                out.append(f"{'MET   ' if ok else 'MISSED'} {cell.name} planted: detected {gain:.0f} % "
                           f"(>= 70), bias {bias:+.2f} pt (within 0.5), coverage {cover:.0f} % (>= 90) of {n}")
            else:
                said = g["reason"].fillna("").str.contains("temperature|season").mean() * 100
                ok = loss == 0 and said == 100
                out.append(f"{'MET   ' if ok else 'MISSED'} {cell.name} planted, no temperature, < 12 months: "
                           f"false loss {loss:.0f} %, gain {gain:.0f} %, reason names heat/season in {said:.0f} % "
                           f"of {n}")
    return out


def target_conflicts(df: pd.DataFrame, detect_pct: float = 70.0, null_max_pct: float = 5.0) -> list[str]:
    """Where the planted-detection target and the null target contradict each other for a lone athlete.

    A verdict that calls ``detect_pct`` % of a planted cell's gains must call every estimate above that
    cell's (100 - detect_pct)th percentile of raw estimates (for a threshold on the estimate). For each
    planted cell under the detection target, the share of null athletes of the same calibration class
    (those calibrated alike: same default or squad prior) whose raw estimate lies at or above that
    percentile, in the null cell where it is largest. Above ``null_max_pct`` no threshold on the estimate
    meets both targets: those nulls and these gains look alike to the calibration."""
    from pipeline.analyze.calibration import calibration_class

    out = []
    cls = df.assign(_cls=[calibration_class(bool(se), bool(h)) for se, h in zip(df["season"], df["heat"])])
    nulls = cls[~cls["planted"]]
    for cell in CELLS:
        g = cls[(cls["cell"] == cell.name) & cls["planted"]]
        if g.empty or not (cell.temperature or _long(cell)):
            continue
        cut = float(np.percentile(g["raw_pct"], 100 - detect_pct))
        same = nulls[nulls["_cls"].isin(set(g["_cls"]))]
        if same.empty:
            continue
        share = same.groupby("cell")["raw_pct"].apply(lambda x: float((x >= cut).mean() * 100))
        worst = share.idxmax()
        verdict = "CONFLICT" if share[worst] > null_max_pct else "no conflict"
        classes = "/".join(sorted(set(g["_cls"])))
        out.append(f"{verdict:<11} {cell.name} planted: a threshold calling {detect_pct:.0f} % of its gains "
                   f"(raw >= {cut:+.1f} %) calls {share[worst]:.0f} % of {worst} null athletes gains "
                   f"({classes} class; target <= {null_max_pct:.0f} %)")
    return out


def se_needed_pct(gain_pct: float = 2.0, detect_pct: float = 70.0, z_ci: float = 1.96) -> float:
    """The largest SE with which an unbiased estimate of a ``gain_pct`` change has a 95 % CI above 0 in
    ``detect_pct`` % of athletes: gain / (z_ci + z_detect) (2 / (1.96 + 0.52) = 0.81 for +2 % and 70 %)."""
    return gain_pct / (z_ci + float(stats.norm.ppf(detect_pct / 100)))


def season_power(df: pd.DataFrame, gain_pct: float = 2.0, detect_pct: float = 70.0) -> list[str]:
    """For each planted cell whose athletes model the season (>= 12 months, own controls): the median raw
    SE of the headline estimate (from its 95 % CI), the median calibrated SE with the systematic-error tau
    and effective number of controls behind it, against :func:`se_needed_pct`. Where even the raw SE is
    above what is needed, no calibration can reach the detection target with this estimator."""
    need = se_needed_pct(gain_pct, detect_pct)
    out = []
    for cell in CELLS:
        g = df[(df["cell"] == cell.name) & df["planted"] & df["season"].astype(bool)]
        if g.empty:
            continue
        raw_se = float(((g["raw_hi"] - g["raw_lo"]) / (2 * 1.96)).median())
        cal_se, tau, n_eff = (float(g[c].median()) for c in ("cal_se", "tau_pct", "n_eff"))
        verdict = "SE TOO WIDE" if raw_se > need else "raw SE ok  "
        out.append(f"{verdict} {cell.name} planted: raw SE {raw_se:.2f} pt ({raw_se / need:.1f}x the "
                   f"{need:.2f} needed to call {detect_pct:.0f} % of +{gain_pct:.0f} % gains); calibrated SE "
                   f"{cal_se:.2f} (tau {tau:.2f} from {n_eff:.1f} effective controls); medians of {len(g)}")
    return out


def squad_power(df: pd.DataFrame, gain_pct: float = 2.0) -> list[str]:
    """Where the power is instead: for each planted cell whose athletes model the season, the cell's
    calibrated estimates pooled as a squad by the squad analysis' own random-effects meta-analysis (REML,
    HKSJ CI with the Knapp-Hartung floor), and how many such athletes a squad needs to call a +2 % average
    gain 80 % of the time (the squad page's planning figure, pipeline/report/squad_power.py). Only the
    season class: shorter records share their season error, which pooling does not average out."""
    from pipeline.analyze.squad import meta_analysis
    from pipeline.report.squad_power import SQUAD_POWER, blocks_needed, pooled_detectable_change_pct
    out = []
    for cell in CELLS:
        g = df[(df["cell"] == cell.name) & df["planted"] & df["season"].astype(bool)]
        theta = np.log1p(g["cal_pct"].to_numpy(float) / 100)
        se = g["cal_se"].to_numpy(float) / 100
        ok = np.isfinite(theta) & np.isfinite(se) & (se > 0)
        if ok.sum() < 2:
            continue
        r = meta_analysis(theta[ok], se[ok], "reml_hksj")
        k = int(ok.sum())
        need = blocks_needed(r.se, k, "reml_hksj", gain_pct)
        pct = [float(np.expm1(x) * 100) for x in (r.estimate, r.ci_low, r.ci_high)]
        seen = pooled_detectable_change_pct(r.se, k, "reml_hksj")
        out.append(f"{cell.name} planted: {k} athletes pool to {pct[0]:+.1f} [{pct[1]:+.1f},{pct[2]:+.1f}] "
                   f"(truth {g['truth_pct'].mean():+.1f}); they would see {seen:.1f} % "
                   f"{100 * SQUAD_POWER:.0f} % of the time; a +{gain_pct:.0f} % average gain needs about "
                   f"{need if need is not None else 'more than 1000'} such athletes")
    return out


def tasks(cells: list[Cell], null_seeds: int, planted_seeds: int) -> list[tuple[str, int, bool]]:
    out = []
    for cell in cells:
        out += [(cell.name, _seed(cell.name, k, False), False) for k in range(null_seeds)]
        if cell.planted:
            out += [(cell.name, _seed(cell.name, k, True), True) for k in range(planted_seeds)]
    # Longest first, so the pool does not end waiting on one 104-week athlete.
    return sorted(out, key=lambda t: -next(c for c in CELLS if c.name == t[0]).overrides.get("weeks", 40))


def _worker_init() -> None:
    """Column labels as plain Python strings in the workers: pandas 3's Arrow-backed string labels make
    every column insert of the per-run cleaning ~25 % slower; the numbers are identical either way
    (checked on an athlete: same estimates to the last digit). The option is deprecated in pandas 3,
    hence the silenced warning; without it the matrix only takes longer."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pd.set_option("future.infer_string", False)
        except (KeyError, ValueError):
            pass


def run_matrix(cells: list[Cell], null_seeds: int, planted_seeds: int, workers: int) -> pd.DataFrame:
    todo = tasks(cells, null_seeds, planted_seeds)
    results = []
    if workers <= 1:
        _worker_init()
        results = [run_one(t) for t in todo]
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver"), initializer=_worker_init) as pool:
            for k, r in enumerate(pool.map(run_one, todo, chunksize=1)):
                results.append(r)
                if (k + 1) % 20 == 0:
                    print(f"  {k + 1} of {len(todo)} athletes", file=sys.stderr, flush=True)
    squad_verdicts(results)
    return pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in results])


QUICK_CELLS = ("device-spring", "notemp-spring", "year2-notemp")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.validate", description=__doc__.split("\n")[0])
    ap.add_argument("--cells", nargs="*", help="only these cells (names or substrings)")
    ap.add_argument("--null-seeds", type=int, default=NULL_SEEDS)
    ap.add_argument("--planted-seeds", type=int, default=PLANTED_SEEDS)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help=f"3 null + 3 planted seeds of {', '.join(QUICK_CELLS)}")
    args = ap.parse_args(argv)
    cells = [c for c in CELLS if not args.cells or any(s in c.name for s in args.cells)]
    if args.quick:
        cells = [c for c in cells if c.name in QUICK_CELLS]
        args.null_seeds, args.planted_seeds = 3, 3
    t0 = time.perf_counter()
    df = run_matrix(cells, args.null_seeds, args.planted_seeds, args.workers)
    OUT_DIR.mkdir(exist_ok=True)
    df.to_csv(OUT_DIR / "validate.csv", index=False)
    print(render(summarise(df)))
    print()
    print(render_errors(error_table(df)))
    print()
    print("\n".join(targets(df)))
    print()
    print("Can one athlete's verdict meet both targets? A threshold on the raw estimate calling 70 % of a cell's "
          "planted gains, against the null athletes of the same calibration class. Heat class (< 12 months, "
          "default prior shared): those nulls and these gains look alike to any calibration. Season class "
          "(>= 12 months, own controls): the spread of this estimator, which a better one could narrow.")
    print("\n".join(target_conflicts(df)))
    print()
    print("Power of one record that models the season: the headline estimate's SE against the SE an unbiased "
          "estimate needs to call 70 % of +2 % gains with its 95 % CI above 0.")
    print("\n".join(season_power(df)))
    print()
    print("Where the power is: the season-class planted athletes pooled as a squad (REML-HKSJ), and the squad "
          "size that calls a +2 % average gain 80 % of the time.")
    print("\n".join(squad_power(df)))
    print(f"\n{len(df)} athletes in {time.perf_counter() - t0:.0f} s with {args.workers} worker(s); "
          f"per-athlete rows in {OUT_DIR / 'validate.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
