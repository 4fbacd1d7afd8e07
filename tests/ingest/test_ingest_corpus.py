"""Manifest-driven test over every file of ../shared/corpus (CORPUS.tsv): real files, real DuckDB.

Each listed file is either read with the manifest's sport and record count, or recorded as
``error``/``skipped`` with a reason; the full ingest accounts for every file exactly once.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes, read_unchecked
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

CORPUS_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus").resolve()

FIT_EPOCH_S = 631065600


def _manifest() -> list[dict[str, str]]:
    path = CORPUS_DIR / "CORPUS.tsv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


MANIFEST = _manifest()


def expected_sports(sport: str) -> set[str] | None:
    """Manifest sport column -> set of fitparse sport names (None: anything, e.g. '?' or 'n/a')."""
    if sport in ("?", "") or sport.startswith("n/a"):
        return None
    out = set()
    for part in sport.split("+"):
        part = part.split(" (")[0].split("/")[0]
        number = re.search(r"\((\d+)\)", part)
        out.add(number.group(1) if number else part.strip())
    return out


@pytest.mark.parametrize("row", [r for r in MANIFEST if r["format"] in ("fit", "gpx", "tcx")],
                         ids=lambda r: r["path"].rsplit("/", 1)[-1])
def test_reader_matches_manifest(corpus_dir, row):
    data = (corpus_dir / row["path"]).read_bytes()
    parsed = read_bytes(data, row["path"], ReadContext(path=row["path"], file_id="x", athlete_id="a"))
    if "FitCRCError" in row["notes"]:  # corrupt on purpose: the CRC is verified, as fitparse does
        assert parsed.status == "error" and "CRC mismatch" in parsed.message, parsed.message
    if parsed.status != "ok":
        # Broken-on-purpose files, non-activity files, tracks without usable times: a reason, never a crash.
        assert parsed.status in ("error", "skipped")
        assert parsed.message
        broken = "CORRUPT" in row["notes"] or "EDGE" in row["notes"] or row["sport"] in ("?",)
        # a device clock never set (FIT times relative to power-on, 1990 dates): the sanity gate's time_range
        unset_clock = "the device clock was not set, so the date of the recording is unknown" in parsed.message
        broken = broken or (parsed.status == "error" and unset_clock)
        no_points = row["n_records"] in ("0", "?")
        assert broken or no_points or row["sport"].startswith("n/a") or "no timestamps" in row["notes"] \
            or row["format"] == "gpx", f"{row['path']} unexpectedly {parsed.status}: {parsed.message}"
        return
    if row["n_records"] == "?":  # the manifest does not know (files other parsers fail on): some data
        assert len(parsed.samples) > 0 and parsed.activities["n_samples"].sum() == len(parsed.samples)
        return
    n_expected = int(row["n_records"])
    if any("no usable timestamps" in w for w in parsed.warnings):  # untimed tracks left out, with a warning
        n_untimed = sum(int(re.search(r"\((\d+) points", w).group(1)) for w in parsed.warnings
                        if "no usable timestamps" in w)
        n_expected -= n_untimed
    # points the sanity gate removed (repeated or impossible timestamps), each counted in a warning
    n_expected -= sum(int(m.group(1)) for w in parsed.warnings
                      if (m := re.match(r"sanity \w+: (\d+) point\(s\)", w)))
    assert len(parsed.samples) == n_expected
    assert parsed.activities["n_samples"].sum() == n_expected
    sports = expected_sports(row["sport"])
    got = set(parsed.activities["sport"])
    if sports is not None:
        assert got == sports or (got - {"generic"}) == sports, f"sports {got} != {sports}"
    assert parsed.samples["ts"].dt.tz is not None
    assert parsed.activities["activity_id"].is_unique


def _oracle_pairs():
    return [(r["path"], r["path"].replace("-records.csv", ".fit")) for r in MANIFEST
            if r["path"].endswith("-records.csv")]


@pytest.mark.parametrize("oracle,fit", _oracle_pairs(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_samples_match_fitparse_oracle(corpus_dir, oracle, fit):
    """The python-fitparse test suite's expected record values, field by field (the reader before the
    sanity gate, which collapses the 15 repeated timestamps of the Edge 500 file, as tested below)."""
    parsed = read_unchecked((corpus_dir / fit).read_bytes(), fit, ReadContext(path=fit, file_id="x", athlete_id="a"))
    assert parsed.status == "ok", parsed.message
    s = parsed.samples.dropna(subset=["heart_rate_bpm", "speed_m_s", "distance_m"], how="all").reset_index(drop=True)
    exp = pd.read_csv(corpus_dir / oracle, na_values=["null", "None", ""], skipinitialspace=True)
    exp.columns = [c.strip().lower() for c in exp.columns]
    assert len(s) == len(exp)
    if "timestamp" in exp and exp["timestamp"].astype(str).str.isdigit().all():  # raw FIT timestamps
        ts = pd.to_datetime(exp["timestamp"].astype("int64") + FIT_EPOCH_S, unit="s", utc=True)
        assert (s["ts"].to_numpy() == ts.to_numpy()).all()
    col = {c.split(" [")[0]: c for c in exp.columns}
    np.testing.assert_allclose(s["heart_rate_bpm"], exp[col.get("heart rate", col.get("heart_rate"))], atol=0.5)
    np.testing.assert_allclose(s["speed_m_s"], exp[col["speed"]], atol=1e-3)
    np.testing.assert_allclose(s["distance_m"], exp[col["distance"]], atol=1e-2)
    if "position_lat" in col:
        # the oracle carries the last fix forward where the device recorded none; we keep NULL there
        fix = s["lat_deg"].notna().to_numpy()
        assert (~fix).sum() <= 0.01 * len(s)
        np.testing.assert_allclose(s["lat_deg"][fix], exp["position_lat"][fix] * 180 / 2**31, atol=1e-7)
        np.testing.assert_allclose(s["lon_deg"][fix], exp["position_long"][fix] * 180 / 2**31, atol=1e-7)
        np.testing.assert_allclose(s["altitude_m"], exp["altitude"], atol=0.2)
        np.testing.assert_allclose(s["temperature_c"], exp["temperature"], atol=0.5)


@pytest.fixture(scope="module")
def corpus_warehouse(corpus_dir, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("corpus_ws"))
    (ws.raw_dir / "corpus").mkdir(parents=True)
    summary = ingest_paths(ws, [corpus_dir], athlete_id="corpus", jobs=2, progress=False)
    con = connect(ws, read_only=True)
    yield ws, con, summary
    con.close()


def test_full_ingest_accounts_for_every_file(corpus_warehouse, corpus_dir):
    ws, con, summary = corpus_warehouse
    rows = con.execute("SELECT path, status, message, n_samples, duplicate_of FROM source_files").df()
    by_path = {Path(p).resolve(): r for p, r in zip(rows["path"], rows.itertuples())}
    for entry in MANIFEST:
        r = by_path.get((corpus_dir / entry["path"]).resolve())
        assert r is not None, f"{entry['path']} has no source_files row"
        assert r.status in ("ok", "error", "skipped", "duplicate")
        assert r.message, entry["path"]
        if r.status == "ok" and entry["format"] in ("fit", "gpx", "tcx") and "STRENGTH" not in entry["notes"]:
            # ok files hold every record, unless a session of theirs was already present from another file
            if "already present" not in r.message and entry["n_records"] != "?" and "warnings" not in r.message:
                assert r.n_samples == int(entry["n_records"]), entry["path"]
        if r.status == "duplicate":
            assert r.duplicate_of is not None
    assert summary.files["ok"] >= 50 and summary.files["error"] >= 5
    # the oracle CSVs are not strength logs: skipped, with the reason
    oracle = rows[rows["path"].str.endswith("-records.csv")]
    assert (oracle["status"] == "skipped").all() and oracle["message"].str.contains("not a recognised").all()


def _status(con, name: str) -> tuple[str, str | None]:
    return con.execute("SELECT status, duplicate_of FROM source_files WHERE path LIKE ?", [f"%/{name}"]).fetchone()


def test_same_ride_from_fit_gpx_tcx_is_one_activity(corpus_warehouse):
    _, con, _ = corpus_warehouse
    fit_status, _ = _status(con, "4801048867.fit")
    assert fit_status == "ok"
    fit_activity = con.execute("SELECT a.activity_id FROM activities a JOIN source_files s USING (file_id) "
                               "WHERE s.path LIKE '%/4801048867.fit'").fetchone()[0]
    for other in ("4801048867_strava.gpx", "activity_4801048867.gpx", "activity_4801048867.tcx"):
        assert _status(con, other) == ("duplicate", fit_activity)
    fit_2, _ = _status(con, "4078723797.fit")
    gpx_2, dup = _status(con, "4078723797_strava.gpx")
    assert (fit_2, gpx_2) == ("ok", "duplicate") and dup.startswith("corpus-20190920T1410")
    n = con.execute("SELECT count(*) FROM activities WHERE start_time BETWEEN TIMESTAMPTZ '2020-04-18 11:00:00+00' "
                    "AND TIMESTAMPTZ '2020-04-18 11:20:00+00'").fetchone()[0]
    assert n == 1


def test_corpus_fit_sample_values(corpus_warehouse):
    _, con, _ = corpus_warehouse
    # fenix 2 run: running cadence in steps/min (strides x 2), plausible speeds, positions in degrees
    row = con.execute("""SELECT median(cadence_spm), max(speed_m_s), avg(lat_deg), count(*) FROM samples
                         WHERE activity_id IN (SELECT a.activity_id FROM activities a JOIN source_files s
                         USING (file_id) WHERE s.path LIKE '%/activity-small-fenix2-run.fit')""").fetchone()
    assert 150 < row[0] < 200 and 2.0 < row[1] < 8.0 and -90 < row[2] < 90 and row[3] == 2809
    sports = dict(con.execute("SELECT sport, count(*) FROM activities a JOIN source_files s USING (file_id) "
                              "WHERE s.path LIKE '%/activity-large-fenxi2-multisport.fit' GROUP BY 1").fetchall())
    assert sum(sports.values()) == 7 and sports.get("running") == 2
    unknown = con.execute("SELECT sport FROM activities a JOIN source_files s USING (file_id) "
                          "WHERE s.path LIKE '%/snorkeling-unknown-sport.fit'").fetchone()[0]
    assert unknown == "82"
