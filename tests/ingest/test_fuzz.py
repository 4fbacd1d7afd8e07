"""Fuzzing as a test: 300 seeded mutants of small FIT/GPX/TCX/CSV files (bit flips, byte stamps,
truncation, chunk duplication/removal, extreme numbers and impossible or shuffled times; FIT CRCs fixed
up after mutation so the decoder parses the garbage). Each ends as exactly one source_files row, no
exception escapes, no message is an internal error, and no ``ok`` row holds a value the sanity gate
forbids."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from fuzz_mutants import base_files, fix_fit_crcs, mutants
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.run import ingest_paths
from pipeline.ingest.sanity import FOOT_SPORTS, SanityRules
from pipeline.warehouse.checks import run_checks
from pipeline.warehouse.db import connect

N_PER_BASE = 60          # x 5 base files = 300 mutants
INTERNAL = re.compile(r"internal|please report|Traceback", re.IGNORECASE)
RULES = SanityRules()


@pytest.fixture(scope="module")
def fuzz_set() -> list:
    return mutants(N_PER_BASE)


def _violations(samples: pd.DataFrame, activities: pd.DataFrame, laps: pd.DataFrame) -> list[str]:
    """Values outside the sanity gate's default bounds."""
    out = []
    lo, hi = RULES.time_bounds()
    if len(samples):
        ts = pd.to_datetime(samples["ts"], utc=True)
        if not ((ts >= lo) & (ts <= hi)).all():
            out.append("ts outside the time range")
        if samples.duplicated(["activity_id", "ts"]).any():
            out.append("repeated (activity_id, ts)")
    sport = samples["activity_id"].map(dict(zip(activities["activity_id"], activities["sport"])))
    top = np.where(sport.isin(FOOT_SPORTS), RULES.max_foot_speed_m_s, RULES.max_speed_m_s)
    bounds = {"heart_rate_bpm": RULES.hr_range_bpm, "cadence_spm": RULES.cadence_range_spm,
              "altitude_m": RULES.altitude_range_m, "power_w": RULES.power_range_w,
              "temperature_c": RULES.temperature_range_c, "lat_deg": (-90, 90), "lon_deg": (-180, 180),
              "distance_m": (0, RULES.max_distance_m), "speed_m_s": (0, top)}
    for col, (a, b) in bounds.items():
        v = pd.to_numeric(samples[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(v)
        if (present & (~np.isfinite(v) | (v < a) | (v > b))).any():
            out.append(f"samples.{col}")
    for col, (a, b) in {"elapsed_s": (0, RULES.max_activity_h * 3600), "distance_m": (0, RULES.max_distance_m),
                        "avg_heart_rate_bpm": RULES.hr_range_bpm}.items():
        v = pd.to_numeric(activities[col], errors="coerce").dropna()
        if ((v < a) | (v > b)).any():
            out.append(f"activities.{col}")
    if len(laps):
        v = pd.to_numeric(laps["avg_speed_m_s"], errors="coerce").dropna()
        if ((v < 0) | (v > RULES.max_speed_m_s)).any():
            out.append("laps.avg_speed_m_s")
    return out


def test_fix_fit_crcs_makes_a_mutant_pass_the_crc_check():
    data = bytearray(base_files()["run.fit"])
    data[200] ^= 0x10
    fixed = fix_fit_crcs(data)
    p = read_bytes(fixed, "x.fit", ReadContext(path="x.fit", file_id="f", athlete_id="a"))
    assert "CRC mismatch" not in p.message


def test_every_mutant_reads_to_a_clear_status_and_no_absurd_value(fuzz_set):
    statuses = Counter()
    for m in fuzz_set:
        p = read_bytes(m.data, m.name, ReadContext(path=m.name, file_id="f", athlete_id="anna"))  # never raises
        statuses[(m.name.rsplit(".", 1)[1], p.status)] += 1
        assert p.status in ("ok", "error", "skipped"), m.name
        assert p.message and not INTERNAL.search(p.message), (m.name, p.message)
        if p.status == "ok":
            assert not _violations(p.samples, p.activities, p.laps), (m.name, _violations(p.samples, p.activities, p.laps))
    # the fuzz set really exercises both outcomes for every format
    for ext in ("fit", "gpx", "tcx", "csv"):
        assert statuses[(ext, "ok")] >= 5 and statuses[(ext, "error")] + statuses[(ext, "skipped")] >= 2, statuses


@pytest.mark.slow
def test_mutants_through_the_warehouse_one_row_each_and_checks_clean(workspace, fuzz_set):
    for k, m in enumerate(fuzz_set):
        athlete = ("anna", "bob")[k % 2]
        folder = workspace.raw_dir / athlete
        folder.mkdir(exist_ok=True)
        (folder / m.name).write_bytes(m.data)
    summary = ingest_paths(workspace, None, jobs=2, progress=False)
    con = connect(workspace, read_only=True)
    try:
        rows = con.execute("SELECT path, status, message FROM source_files").fetchall()
        tables = {t: con.sql(f"SELECT * FROM {t}").to_arrow_table().to_pandas() for t in ("samples", "activities", "laps")}
    finally:
        con.close()
    assert sorted(p.rsplit("/", 1)[-1] for p, _, _ in rows) == sorted(m.name for m in fuzz_set)
    assert sum(summary.files.values()) == len(fuzz_set)
    assert not [(p, msg) for p, _, msg in rows if msg and INTERNAL.search(msg)]
    assert not _violations(tables["samples"], tables["activities"], tables["laps"])
    result = run_checks(workspace)
    assert result.ok, result.render()
