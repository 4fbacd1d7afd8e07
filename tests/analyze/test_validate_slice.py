"""A small seeded slice of the validation matrix (bench/validate.py; the whole matrix is ``make validate``).

Athletes the method was not tuned on: physiology drawn per athlete (HR-speed slope and curvature, HR
lag, drift, heat response driven by air or apparent temperature, autocorrelated day-to-day noise,
fitness that saturates and wanders, a non-heat season), analysed exactly as ``pipeline analyze`` does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.validate import _seed, error_table, run_one, squad_verdicts, summarise


def _athletes(cell: str, planted: bool, n: int) -> list[dict]:
    return [run_one((cell, _seed(cell, k, planted), planted)) for k in range(n)]


@pytest.mark.slow
def test_weather_path_no_false_verdict_where_summer_arrives_and_a_planted_gain_is_still_found():
    """Files without any temperature; the activity rows carry archive air weather (as the weather stage
    adds it) and hot summer arrives in the response window. Treated as cool, the heat would read as a
    ~5-10 % loss; here the air-weather heat curve removes it."""
    null, planted = _athletes("weather-spring", False, 3), _athletes("weather-spring", True, 3)
    for r in null + planted:
        assert r["air_share"] == pytest.approx(1.0)          # every run's heat from the air weather
        assert r["heat"] and not r["season"]
    # Matrix (20 null, 10 planted athletes of this cell): raw null +0.6 +- 2.0 %, planted +2.5 +- 3.3 %
    # (truth +2.0); calibrated CIs covered the truth in all 30, no calibrated gain or loss in the null ones.
    for r in null:
        assert r["cal_verdict"] not in ("gain", "loss"), r
        assert abs(r["raw_pct"]) < 6.0 and r["cal_lo"] <= 0 <= r["cal_hi"]
    for r in planted:
        assert r["cal_verdict"] != "loss"
        assert r["cal_lo"] <= r["truth_pct"] <= r["cal_hi"]
    raw_gap = np.mean([r["raw_pct"] for r in planted]) - np.mean([r["raw_pct"] for r in null])
    assert raw_gap == pytest.approx(planted[0]["truth_pct"], abs=4.0)
    # Together the three planted athletes find the gain: the calibrated estimates pooled.
    squad_verdicts(null + planted)
    frame = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in null + planted])
    table = summarise(frame)
    assert set(table["variant"]) == {"null", "planted"}
    # The error budget: on the noise-free truth the same estimator errs by the trend and season it cannot
    # follow only (matrix: SD 0.3-0.9 pt), far less than with the day-to-day noise and the measurement.
    for r in null + planted:
        assert abs(r["struct_pct"] - r["truth_pct"]) < 2.0, r
        assert np.isfinite(r["noise_pct"])
    errors = error_table(frame)
    assert len(errors) == 2 and (errors[["ceiling", "oracle_ceiling"]].stack().between(0, 100)).all()


@pytest.mark.slow
def test_no_temperature_and_a_short_record_gives_no_confident_false_verdict_and_says_why():
    rows = _athletes("notemp-summer", False, 2) + _athletes("notemp-summer", True, 1)
    for r in rows:
        assert not r["heat"] and not r["season"]
        assert r["cal_verdict"] not in ("gain", "loss") or (r["planted"] and r["cal_verdict"] == "gain"), r
        assert "heat not controlled" in r["reason"] and "season not controlled" in r["reason"]
        assert r["source"] == "default" and r["tau_pct"] > 5
    # The raw method is fooled by the heat leaving with the summer (why calibration is needed here).
    assert np.mean([r["raw_pct"] for r in rows if not r["planted"]]) > 3.0


def test_target_conflicts_name_the_null_cell_a_detecting_threshold_would_call():
    """Planted raw estimates 1..10 %: calling 70 % of them means calling everything >= the 30th percentile
    (3.7 %). Null athletes of the same class at 0..9 % (6 of 10 at or above it) conflict; nulls of another
    class do not count; nulls all below it are no conflict."""
    from bench.validate import target_conflicts

    def rows(cell, planted, values, season=False, heat=True):
        return pd.DataFrame({"cell": cell, "planted": planted, "raw_pct": values, "season": season, "heat": heat})

    planted = rows("device-spring", True, np.arange(1.0, 11.0))
    same_class = rows("season-short", False, np.arange(0.0, 10.0))
    other_class = rows("year2-notemp", False, np.full(10, 50.0), season=True, heat=False)
    lines = target_conflicts(pd.concat([planted, same_class, other_class], ignore_index=True))
    assert lines == ["CONFLICT    device-spring planted: a threshold calling 70 % of its gains (raw >= +3.7 %) "
                     "calls 60 % of season-short null athletes gains (heat class; target <= 5 %)"]
    quiet = rows("season-short", False, np.full(10, -1.0))
    assert target_conflicts(pd.concat([planted, quiet], ignore_index=True))[0].startswith("no conflict")


def test_season_power_compares_the_median_raw_se_with_the_se_a_70_percent_detection_needs():
    """2 / (1.96 + 0.524) = 0.805: an unbiased estimate of +2 % with that SE has its CI above 0 in 70 % of
    athletes. Raw CIs of half-width 3.92 (SE 2.0) are 2.5x too wide; half-width 1.176 (SE 0.6) is enough.
    Short records (season not modelled) and null athletes are not counted."""
    from bench.validate import season_power, se_needed_pct

    assert se_needed_pct() == pytest.approx(0.8054, abs=1e-3)
    assert se_needed_pct(2.0, 50.0) == pytest.approx(2.0 / 1.96)

    def rows(cell, planted, half, season=True):
        n = 5
        return pd.DataFrame({"cell": cell, "planted": planted, "season": season, "raw_lo": 2.0 - half,
                             "raw_hi": 2.0 + half, "cal_se": np.linspace(2.0, 3.0, n), "tau_pct": 1.1,
                             "n_eff": 6.0}, index=range(n))

    df = pd.concat([rows("block12-78wk", True, 3.92), rows("year2-notemp", True, 1.176),
                    rows("year2-notemp", False, 50.0), rows("device-spring", True, 50.0, season=False)],
                   ignore_index=True)
    lines = season_power(df)
    assert lines == [
        "raw SE ok   year2-notemp planted: raw SE 0.60 pt (0.7x the 0.81 needed to call 70 % of +2 % gains); "
        "calibrated SE 2.50 (tau 1.10 from 6.0 effective controls); medians of 5",
        "SE TOO WIDE block12-78wk planted: raw SE 2.00 pt (2.5x the 0.81 needed to call 70 % of +2 % gains); "
        "calibrated SE 2.50 (tau 1.10 from 6.0 effective controls); medians of 5",
    ]


def test_squad_power_pools_the_season_class_planted_athletes_with_the_squad_meta_analysis():
    """Five athletes each +2 % with a calibrated SE of 2 points: REML finds no spread (tau 0), the HKSJ
    scaling is floored at the unscaled SE 2/sqrt(5), so the CI is log(1.02) +- t(4) 0.894 points = -0.5 to
    +4.6 %. A squad calling +2 % 80 % of the time needs about ((1.96 + 0.84) x 2 / 1.98)^2 = 8 athletes by
    the normal approximation, a few more with HKSJ's t quantile and scaling. Short records and null athletes
    are not counted."""
    from bench.validate import squad_power

    def rows(cell, planted, season=True, n=5):
        return pd.DataFrame({"cell": cell, "planted": planted, "season": season, "cal_pct": 2.0, "cal_se": 2.0,
                             "truth_pct": 2.0}, index=range(n))

    df = pd.concat([rows("block12-78wk", True), rows("block12-78wk", False), rows("device-spring", True, False)],
                   ignore_index=True)
    lines = squad_power(df)
    assert len(lines) == 1
    assert lines[0].startswith("block12-78wk planted: 5 athletes pool to +2.0 [-0.5,+4.6] (truth +2.0)")
    need = int(lines[0].split("needs about ")[1].split()[0])
    assert 8 <= need <= 12
