"""Write simulated athletes as real export files under ``data/raw/<athlete>/`` (the ``pipeline demo`` command).

Per athlete folder::

    athlete.toml                      display_name, hr_rest_bpm, hr_max_bpm, time_zone (no ref speed),
                                      weather = false (simulated heat; see docs/demo.md)
    runs/2023-11-07_073512_easy.fit   most runs: FIT activity files (pipeline.demo.fit_writer)
    runs/2023-11-09_181003_tempo.gpx  ~15 %: GPX 1.1 with Garmin TrackPointExtension hr/cad/atemp
    strong_workouts.csv               the strength log in Strong's comma layout (local times, kg)
    .truth/truth.json                 block dates, planted effect, reference conditions, profile
    .truth/truth_runs.csv             per-run truth; match to ingested activities by start_time (UTC)
    .truth/manifest.json              the files this writer wrote (removed before a rewrite)

Hidden folders are ignored by ingest. Every file is written to a temporary name and renamed, so an
interrupted demo never leaves half a file that ingest would record as corrupt.
"""

from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipeline.demo.fit_writer import encode_fit_activity
from pipeline.demo.simulate import DEMO_SAMPLE_INTERVAL_S, SimulatedAthlete, simulate_demo

STRONG_COLUMNS = ["Date", "Workout Name", "Duration", "Exercise Name", "Set Order", "Weight", "Reps", "Distance",
                  "Seconds", "Notes", "Workout Notes", "RPE"]
STRONG_FILE_NAME = "strong_workouts.csv"
TRUTH_DIR_NAME = ".truth"
GPX_NS = "http://www.topografix.com/GPX/1/1"
GPXTPX_NS = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _utc_iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# Pure encoders: frames -> bytes
# --------------------------------------------------------------------------------------------------

def encode_gpx_activity(activity_row, samples_df: pd.DataFrame) -> bytes:
    """GPX 1.1 track of one run: lat/lon (7 decimals), ele (0.1 m), time (UTC, s), and a Garmin
    TrackPointExtension with atemp (°C), hr (bpm) and cad (strides/min, as Garmin writes running cadence).
    """
    ET.register_namespace("", GPX_NS)
    ET.register_namespace("gpxtpx", GPXTPX_NS)
    g, x = f"{{{GPX_NS}}}", f"{{{GPXTPX_NS}}}"
    root = ET.Element(f"{g}gpx", {"version": "1.1", "creator": "pipeline demo simulator"})
    meta = ET.SubElement(root, f"{g}metadata")
    ET.SubElement(meta, f"{g}time").text = _utc_iso(activity_row["start_time"])
    trk = ET.SubElement(root, f"{g}trk")
    ET.SubElement(trk, f"{g}name").text = str(activity_row.get("name") or "Run")
    ET.SubElement(trk, f"{g}type").text = "running"
    seg = ET.SubElement(trk, f"{g}trkseg")
    times = pd.to_datetime(samples_df["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    cols = {c: samples_df[c].to_numpy(dtype=float) for c in
            ("lat_deg", "lon_deg", "altitude_m", "heart_rate_bpm", "cadence_spm", "temperature_c")}
    for i in range(len(samples_df)):
        pt = ET.SubElement(seg, f"{g}trkpt", {"lat": f"{cols['lat_deg'][i]:.7f}", "lon": f"{cols['lon_deg'][i]:.7f}"})
        ET.SubElement(pt, f"{g}ele").text = f"{cols['altitude_m'][i]:.1f}"
        ET.SubElement(pt, f"{g}time").text = times[i]
        ext = ET.SubElement(ET.SubElement(pt, f"{g}extensions"), f"{x}TrackPointExtension")
        if np.isfinite(cols["temperature_c"][i]):
            ET.SubElement(ext, f"{x}atemp").text = f"{cols['temperature_c'][i]:.0f}"
        if np.isfinite(cols["heart_rate_bpm"][i]):
            ET.SubElement(ext, f"{x}hr").text = f"{cols['heart_rate_bpm'][i]:.0f}"
        if np.isfinite(cols["cadence_spm"][i]):
            ET.SubElement(ext, f"{x}cad").text = f"{cols['cadence_spm'][i] / 2.0:.0f}"
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="UTF-8", xml_declaration=True)
    return buf.getvalue()


def encode_strong_csv(sessions: pd.DataFrame, sets: pd.DataFrame, time_zone: str) -> bytes:
    """Strong's CSV export (comma layout) of the sessions: one row per set, local start time without offset.

    Sample row: ``2024-05-06 18:12:40,Lower body A,52m,Squat (Barbell),W,30.0,6.0,0,0.0,,,``
    """
    tz = ZoneInfo(time_zone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STRONG_COLUMNS)
    by_session = sets.groupby("session_id", sort=False)
    for _, sess in sessions.sort_values("start_time").iterrows():
        local = pd.Timestamp(sess["start_time"]).tz_convert(tz).strftime("%Y-%m-%d %H:%M:%S")
        duration = f"{int(round(sess['duration_s'] / 60))}m"
        order_in_exercise: dict[str, int] = {}
        for _, st in by_session.get_group(sess["session_id"]).sort_values("set_index").iterrows():
            if st["set_type"] == "warmup":
                order = "W"
            else:
                order_in_exercise[st["exercise"]] = order_in_exercise.get(st["exercise"], 0) + 1
                order = str(order_in_exercise[st["exercise"]])
            seconds = 0.0 if pd.isna(st["duration_s"]) else float(st["duration_s"])
            writer.writerow([local, sess["title"], duration, st["exercise"], order, f"{st['weight_kg']:.1f}",
                             f"{st['reps']:.1f}", "0", f"{seconds:.1f}", "", "",
                             "" if pd.isna(st["rpe"]) else f"{st['rpe']:.1f}"])
    return out.getvalue().encode("utf-8")


def encode_athlete_toml(athlete: SimulatedAthlete) -> bytes:
    """athlete.toml with display name, resting/max HR, time zone (ref speed left to the analysis) and
    ``weather = false``: the simulated heat must not be replaced by the real weather of the track's city."""
    p = athlete.profile
    lines = [
        "# Simulated demo athlete (pipeline demo). Ground truth: .truth/truth.json",
        f"display_name = {json.dumps(p.display_name)}",
        f"hr_rest_bpm = {p.hr_rest_bpm:g}",
        f"hr_max_bpm = {p.hr_max_bpm:g}",
        f"time_zone = {json.dumps(p.time_zone)}",
        "# The tracks lie in a real city but the heat of each run is simulated, so the real weather of those",
        "# days would contradict it: never look it up.",
        "weather = false",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def run_file_name(activity_row) -> str:
    """``runs/<UTC start>_<type>.<fit|gpx>`` e.g. ``runs/2023-11-07_073512_easy.fit``."""
    start = pd.Timestamp(activity_row["start_time"]).tz_convert("UTC").strftime("%Y-%m-%d_%H%M%S")
    kind = str(activity_row["name"]).split()[0].lower()
    return f"runs/{start}_{kind}.{activity_row['source_format']}"


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------

def _remove_previous(folder: Path) -> None:
    """Delete the files a previous demo wrote here (listed in its manifest), and nothing else."""
    manifest = folder / TRUTH_DIR_NAME / "manifest.json"
    if not manifest.exists():
        return
    for rel in json.loads(manifest.read_text()).get("files", []):
        target = (folder / rel).resolve()
        if target.is_relative_to(folder.resolve()) and target.is_file():
            target.unlink()


def write_athlete(athlete: SimulatedAthlete, raw_dir: Path) -> list[Path]:
    """Write one simulated athlete's files under ``raw_dir/<athlete_id>/``; returns the data files written."""
    folder = Path(raw_dir) / athlete.athlete_id
    _remove_previous(folder)
    written: list[Path] = []
    samples_by_activity = dict(tuple(athlete.samples.groupby("activity_id", sort=False)))
    for _, row in athlete.activities.iterrows():
        samples = samples_by_activity[row["activity_id"]]
        path = folder / run_file_name(row)
        data = (encode_fit_activity(row, samples) if row["source_format"] == "fit"
                else encode_gpx_activity(row, samples))
        _write_atomic(path, data)
        written.append(path)
    strong = folder / STRONG_FILE_NAME
    _write_atomic(strong, encode_strong_csv(athlete.strength_sessions, athlete.strength_sets,
                                            athlete.profile.time_zone))
    written.append(strong)
    _write_atomic(folder / "athlete.toml", encode_athlete_toml(athlete))
    truth_dir = folder / TRUTH_DIR_NAME
    truth = athlete.truth.to_json_dict()
    truth["story"] = athlete.profile.story
    truth["sample_interval_s"] = athlete.sample_interval_s
    truth["profile_parameters"] = asdict(athlete.profile)
    _write_atomic(truth_dir / "truth.json", (json.dumps(truth, indent=2) + "\n").encode())
    runs = athlete.truth.truth_runs.copy()
    runs["start_time"] = runs["start_time"].map(_utc_iso)
    _write_atomic(truth_dir / "truth_runs.csv", runs.to_csv(index=False, float_format="%.4f").encode())
    rel = [p.relative_to(folder).as_posix() for p in written] + ["athlete.toml"]
    _write_atomic(truth_dir / "manifest.json", (json.dumps({"files": rel}, indent=1) + "\n").encode())
    return written


def write_demo(raw_dir: Path, seed: int = 2024, *, sample_interval_s: float = DEMO_SAMPLE_INTERVAL_S) -> list[str]:
    """Simulate the three demo athletes and write their files into ``raw_dir``; returns their ids."""
    athletes = simulate_demo(seed, sample_interval_s=sample_interval_s)
    for athlete in athletes:
        write_athlete(athlete, Path(raw_dir))
    return [a.athlete_id for a in athletes]
