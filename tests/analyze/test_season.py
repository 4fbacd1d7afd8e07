"""Season: when it is modelled, the terms that model it, and that a spring block is then compared with the
season's expected course instead of a straight line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.effects import EffectContext, block_windows, choose_harmonics, effect_its, fit_season
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.season import natural_spline_basis, season_harmonic_columns, season_spec

P = AnalysisParams()
BLOCK = pd.Timestamp("2025-04-07", tz="UTC")


def test_natural_spline_basis():
    x = np.linspace(0, 100, 201)
    assert natural_spline_basis(x, 0, 100, 0).shape == (201, 2)
    B = natural_spline_basis(x, 0, 100, 1)
    assert B.shape == (201, 3)
    # It spans straight lines exactly, and is linear beyond its boundary knots (natural).
    line = 3 + 0.2 * x
    coef, *_ = np.linalg.lstsq(B, line, rcond=None)
    assert B @ coef == pytest.approx(line)
    outside = natural_spline_basis(np.array([100.0, 110.0, 120.0]), 0, 100, 1)
    assert np.diff(outside, 2, axis=0) == pytest.approx(np.zeros((1, 3)), abs=1e-9)


def test_season_spec_needs_a_year_of_runs_in_most_months():
    def days(n_days, every=3):
        return pd.Series(pd.date_range("2024-01-01", periods=n_days // every, freq=f"{every}D", tz="UTC"))
    short = season_spec(days(270), P)
    assert not short.controlled and "9 months" in short.reason and "needs 12" in short.reason
    year = season_spec(days(400), P)
    assert year.controlled and year.trend_knots == 0
    assert season_spec(days(760), P).trend_knots == 1
    gappy = pd.concat([days(120), days(120) + pd.Timedelta(days=300)])
    assert not season_spec(gappy, P).controlled and "calendar months" in season_spec(gappy, P).reason
    h = season_harmonic_columns(pd.Series(pd.to_datetime(["2024-01-01", "2024-07-01"], utc=True)), 2)
    assert h.shape == (2, 4) and h[0, 1] == pytest.approx(1.0) and h[1, 1] == pytest.approx(-1.0, abs=0.01)


def _two_years(rng, step_pct=0.0, swing_pct=8.0, second=0.0, ar=0.4, noise_pct=1.2, trend_pct_year=2.0):
    """Runs every ~2 days over two years; economy swings with the season (worst in winter), improves
    slowly, AR(1) noise; a step in the response window of a block starting in April of year 2."""
    days = np.arange(0, 730, 1.9) + rng.uniform(0, 0.5)
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    doy = t.day_of_year.to_numpy()
    season = -swing_pct / 200 * np.cos(2 * np.pi * (doy - 15) / 365.25) + second / 100 * np.cos(4 * np.pi * doy / 365.25)
    e = np.zeros(len(days))
    z = rng.normal(0, noise_pct / 100 * np.sqrt(1 - ar ** 2), len(days))
    for k in range(1, len(days)):
        e[k] = ar * e[k - 1] + z[k]
    weeks = (t - BLOCK) / pd.Timedelta(weeks=1)
    step = np.where((weeks >= 6), step_pct / 100, 0.0)
    y = 1.3 * np.exp(season + trend_pct_year / 100 * days / 365.25 + step + e)
    return pd.DataFrame({"start_time": t, "economy_m_per_beat": y})


def _ctx(runs) -> EffectContext:
    spec = season_spec(runs["start_time"], P)
    ctx = EffectContext(P, spec, (BLOCK,))
    ctx = replace(ctx, season=replace(spec, harmonics=choose_harmonics(runs, ctx)))
    return replace(ctx, season_fit=fit_season(runs, ctx))


def test_spring_block_compared_with_the_seasons_course():
    """Economy improves from winter to summer by ~8 % whatever the athlete does. The local ITS (a
    straight line through the 16 weeks before an April block) misreads the spring rise; with the annual
    harmonic estimated over the whole record (jointly with the block) and removed first, it recovers the
    planted +2 % and 0, and the harmonic's uncertainty widens the CI."""
    rng = np.random.default_rng(11)
    w = block_windows(BLOCK, P)
    local, record, record_null = [], [], []
    for _ in range(8):
        runs = _two_years(rng, step_pct=2.0)
        ctx = _ctx(runs)
        assert ctx.season.controlled
        local.append(effect_its(runs, w, "economy_m_per_beat", EffectContext(P)).change_pct)
        fit = effect_its(runs, w, "economy_m_per_beat", ctx)
        record.append(fit.change_pct)
        assert fit.ci_low_pct < fit.change_pct < fit.ci_high_pct
        certain = replace(ctx, season_fit=replace(ctx.season_fit, cov=0 * ctx.season_fit.cov))
        assert fit.se > effect_its(runs, w, "economy_m_per_beat", certain).se   # the harmonic's uncertainty
        null = _two_years(rng)
        record_null.append(effect_its(null, w, "economy_m_per_beat", _ctx(null)).change_pct)
    assert np.mean(record) == pytest.approx(2.0, abs=0.6)
    assert np.mean(record_null) == pytest.approx(0.0, abs=0.6)
    assert abs(np.mean(local) - 2.0) > 2 * abs(np.mean(record) - 2.0)


def test_second_harmonic_only_when_bic_prefers_it():
    rng = np.random.default_rng(12)
    assert _ctx(_two_years(rng)).season.harmonics == 1
    assert _ctx(_two_years(rng, second=3.0)).season.harmonics == 2
