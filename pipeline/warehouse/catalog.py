"""What every warehouse table, view and column means: the single source of docs/warehouse.md.

:func:`pipeline.warehouse.db.ensure_schema` writes these texts into the warehouse as DuckDB comments
(``COMMENT ON TABLE/VIEW/COLUMN``), so any DuckDB client shows them (``SELECT column_name, comment FROM
duckdb_columns() WHERE table_name = 'run_metrics'``), and ``python -m pipeline.warehouse.docs`` generates
docs/warehouse.md from the comments of a freshly created warehouse. A test fails when a column of the live
schema has no description here, or when docs/warehouse.md is out of date, so the doc cannot drift.

Each column text says what it means and how it is computed; the unit is in the column name
(``_s`` seconds, ``_m`` metres, ``_km`` kilometres, ``_m_s`` metres/second, ``_bpm`` beats/minute,
``_spm`` steps/minute, ``_w`` watts, ``_c`` degrees Celsius, ``_deg`` WGS84 degrees, ``_kg`` kilograms,
``_pct`` percent, ``m_per_beat`` metres per heartbeat).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RelationDoc:
    """Description of one table or view: its grain, the stage that writes it, and each column."""

    description: str
    layer: str  # meta | staging | analysis | view
    columns: dict[str, str] = field(default_factory=dict)


_ATHLETE = "Athlete id: the folder name under data/raw/."
_ACTIVITY = "Activity this row belongs to (activities.activity_id)."
_SESSION = "Strength session this row belongs to (strength_sessions.session_id)."
_FILE = "sha256 (hex) of the source file's bytes (source_files.file_id)."
_BLOCK = "Block id, unique per athlete (strength_blocks.block_id)."

RELATIONS: dict[str, RelationDoc] = {
    "pipeline_meta": RelationDoc(
        "Key/value facts about the warehouse itself; key 'schema_version' is the schema version the "
        "warehouse was built or migrated to (see 'Schema versions').",
        "meta",
        {
            "key": "Name of the fact, e.g. 'schema_version', 'schema_hash'.",
            "value": "Its value, as text.",
        },
    ),
    "athletes": RelationDoc(
        "One row per athlete folder seen by ingest, with the optional settings of its athlete.toml.",
        "staging",
        {
            "athlete_id": _ATHLETE,
            "display_name": "Name shown in reports (athlete.toml display_name); NULL means use athlete_id.",
            "hr_rest_bpm": "Resting heart rate from athlete.toml; NULL when not given.",
            "hr_max_bpm": "Maximum heart rate from athlete.toml; NULL when not given.",
            "ref_speed_m_s": "Reference speed for the economy index from athlete.toml; NULL means the "
                             "athlete's median steady grade-adjusted speed is used.",
            "time_zone": "IANA time zone for strength logs with local times and no offset; NULL means UTC.",
            "updated_at": "When ingest last read the athlete's settings (UTC).",
        },
    ),
    "source_files": RelationDoc(
        "One row per file seen by ingest (archive members too, path 'archive.zip!member'), whatever became "
        "of it: the audit trail of what was read, skipped, duplicated or could not be read.",
        "staging",
        {
            "path": "File path relative to the workspace (posix); absolute when outside it. Primary key.",
            "file_id": "sha256 (hex) of the file's bytes; the same content under two paths has one file_id.",
            "athlete_id": _ATHLETE,
            "format": "Detected format: fit, gpx, tcx, strong_csv, hevy_csv, fitnotes_csv, generic_csv, zip, ...",
            "size_bytes": "File size in bytes (decompressed size for archive members).",
            "status": "ok (data loaded), error (unreadable, see message), duplicate (same activity already "
                      "loaded from a richer source), skipped (readable but nothing to analyse).",
            "message": "Human-readable reason or summary, e.g. why a file was an error or a duplicate.",
            "ingested_at": "When ingest recorded the file (UTC).",
            "n_activities": "Activities or strength sessions loaded from the file.",
            "n_samples": "Samples loaded from the file.",
            "duplicate_of": "For status duplicate: the activity_id or session_id the file duplicates.",
        },
    ),
    "activities": RelationDoc(
        "One row per recorded activity (a multisport FIT file gives several), any sport.",
        "staging",
        {
            "activity_id": "Stable id: athlete, UTC start to the second and the session's index in its file "
                           "(e.g. anna-20240501T061502Z-0), so re-ingesting the same run gives the same id.",
            "athlete_id": _ATHLETE,
            "file_id": "The file the activity was loaded from (source_files.file_id); when the same run came "
                       "in several files, the richest source.",
            "sport": "Sport as fitparse names it (running, cycling, training, ...) or the raw FIT number.",
            "sub_sport": "Sub-sport (trail, treadmill, track, generic, ...) when the source gives one.",
            "start_time": "Start of the activity (UTC).",
            "elapsed_s": "Wall-clock duration, pauses included.",
            "timer_s": "Moving (timer) duration, pauses excluded; NULL when the source has no timer.",
            "distance_m": "Total distance as recorded by the device (else summed from positions).",
            "avg_heart_rate_bpm": "Mean heart rate as recorded by the device (else over the samples).",
            "device": "Recording device (manufacturer/product) when known.",
            "name": "Title when the source gives one (GPX <name>, Strava CSV).",
            "source_format": "Format of the source: fit, gpx or tcx.",
            "session_index": "Position of this activity among the sessions of its file, from 0.",
            "n_samples": "Number of rows in samples for this activity.",
        },
    ),
    "samples": RelationDoc(
        "One row per recorded point of an activity (typically one per second). The largest table; "
        "exported partitioned by athlete_id.",
        "staging",
        {
            "activity_id": _ACTIVITY,
            "athlete_id": _ATHLETE + " Repeated here so samples can be partitioned and filtered by athlete.",
            "ts": "Time of the point (UTC).",
            "elapsed_s": "Seconds since the activity's start_time, wall clock, pauses included.",
            "lat_deg": "Latitude (WGS84); NULL without GPS.",
            "lon_deg": "Longitude (WGS84); NULL without GPS.",
            "altitude_m": "Altitude above sea level (enhanced/barometric when available).",
            "distance_m": "Cumulative distance since the start.",
            "speed_m_s": "Device speed (FIT enhanced_speed preferred); NULL when the source has none.",
            "heart_rate_bpm": "Heart rate as recorded (not cleaned; cleaning happens in analyze).",
            "cadence_spm": "Running cadence in steps per minute (FIT strides/min x 2 + fractional part).",
            "power_w": "Running power when the device records it.",
            "temperature_c": "Device temperature sensor reading.",
        },
    ),
    "laps": RelationDoc(
        "One row per lap of an activity, as recorded by the device.",
        "staging",
        {
            "activity_id": _ACTIVITY,
            "lap_index": "Position of the lap in the activity, from 0.",
            "start_time": "Start of the lap (UTC).",
            "elapsed_s": "Wall-clock duration of the lap.",
            "timer_s": "Moving (timer) duration of the lap.",
            "distance_m": "Distance of the lap.",
            "avg_heart_rate_bpm": "Mean heart rate over the lap as recorded by the device.",
            "avg_speed_m_s": "Mean speed over the lap as recorded by the device.",
        },
    ),
    "strength_sessions": RelationDoc(
        "One row per strength workout, from strength-app CSV exports or FIT strength activities.",
        "staging",
        {
            "session_id": "Stable id: athlete and session start in UTC to the minute, so the same workout "
                          "from two exports gets one id.",
            "athlete_id": _ATHLETE,
            "start_time": "Start of the workout (UTC; local app times converted with athlete.toml time_zone).",
            "duration_s": "Duration of the workout when the source gives it.",
            "title": "Workout name from the app.",
            "source_format": "strong_csv, hevy_csv, fitnotes_csv, generic_csv or fit.",
            "file_id": _FILE,
            "n_sets": "Number of sets in strength_sets for this session.",
            "n_working_sets": "Number of those sets with set_type working.",
        },
    ),
    "strength_sets": RelationDoc(
        "One row per set of a strength session.",
        "staging",
        {
            "session_id": _SESSION,
            "set_index": "Order of the set within the session, from 0.",
            "exercise": "Exercise name as logged (e.g. 'Squat (Barbell)').",
            "category": "Exercise category (e.g. squat, hinge, plyometric, upper) when known.",
            "set_type": "warmup, working, drop or failure; warm-ups do not count towards block volume.",
            "reps": "Repetitions performed.",
            "weight_kg": "External load (pounds converted once at ingest, 1 lb = 0.45359237 kg).",
            "duration_s": "Duration of timed sets (planks, carries).",
            "rpe": "Rating of perceived exertion (1-10) when logged.",
            "distance_m": "Distance of distance-based sets (sled push, carries).",
        },
    ),
    "declared_blocks": RelationDoc(
        "Strength blocks the athlete declared in data/raw/<athlete>/blocks.csv (label,start,end); they win "
        "over detected blocks in strength_blocks.",
        "staging",
        {
            "athlete_id": _ATHLETE,
            "label": "Block label from blocks.csv.",
            "start_date": "First day of the block.",
            "end_date": "Last day of the block.",
        },
    ),
    "strength_blocks": RelationDoc(
        "One row per block of consistent strength work: declared in blocks.csv, else detected from session "
        "dates (about 1.5 sessions/week sustained for 4 weeks or more, gaps of up to 10 days bridged).",
        "analysis",
        {
            "athlete_id": _ATHLETE,
            "block_id": "Block id, unique per athlete.",
            "start_date": "First day of the block (first session).",
            "end_date": "Last day of the block (last session).",
            "sessions": "Strength sessions inside the block.",
            "sessions_per_week": "sessions / weeks, weeks = (end_date - start_date + 1 day) / 7.",
            "volume_kg": "Volume load: sum of weight_kg x reps over the block's working, drop and failure "
                         "sets (warm-ups excluded).",
            "source": "detected (from session dates) or declared (blocks.csv).",
            "label": "Label from blocks.csv, or a generated one for detected blocks.",
        },
    ),
    "run_metrics": RelationDoc(
        "One row per running activity with the cleaned, steady-state running-economy metrics; runs without "
        "enough steady time or heart-rate coverage are kept with included = false and a reason.",
        "analysis",
        {
            "activity_id": _ACTIVITY,
            "athlete_id": _ATHLETE,
            "start_time": "Start of the run (UTC).",
            "sub_sport": "Sub-sport of the run (trail, treadmill, ...), copied from activities.",
            "duration_s": "Elapsed duration of the run.",
            "distance_km": "Distance of the run.",
            "steady_s": "Seconds of steady, clean samples used for the metrics (after warm-up, pauses, "
                        "implausible HR and cadence lock are removed).",
            "speed_m_s": "Mean speed over the steady samples.",
            "gap_speed_m_s": "Mean grade-adjusted speed over the steady samples (Minetti et al. 2002 cost of "
                             "running on slopes; grade from altitude smoothed over >= 50 m).",
            "heart_rate_bpm": "Mean heart rate over the steady samples.",
            "m_per_beat": "Pace per heartbeat: speed in m/min / heart rate (= efficiency factor in metric "
                          "units). Not pace-invariant.",
            "gap_m_per_beat": "Pace per heartbeat with grade-adjusted speed.",
            "hr_at_ref_bpm": "Heart rate predicted at the athlete's reference speed by the athlete-level model "
                             "of HR against grade-adjusted speed (shared slope, per-run intercept), adjusted "
                             "to a fixed elapsed time (cardiac drift) and for heat where temperature is known.",
            "economy_m_per_beat": "Headline economy index: v_ref x 60 / hr_at_ref_bpm. Higher = more "
                                  "economical; pace-invariant.",
            "decoupling_pct": "Aerobic decoupling: (r1 - r2) / r1 x 100 with r1, r2 the pace per heartbeat of "
                              "the first and second half of the steady part.",
            "temperature_c": "Mean device temperature over the run; NULL when not recorded.",
            "included": "True when the run has enough steady time and HR coverage to enter the analysis.",
            "exclusion_reason": "Why a run is not included (NULL when included).",
        },
    ),
    "weekly": RelationDoc(
        "One row per athlete and week (Monday start) with running volume, strength sessions and economy.",
        "analysis",
        {
            "athlete_id": _ATHLETE,
            "week_start": "Monday of the week (UTC dates).",
            "runs": "Running activities in the week.",
            "run_km": "Running distance in the week.",
            "strength_sessions": "Strength sessions in the week.",
            "economy_m_per_beat": "Median economy index over the week's included runs.",
        },
    ),
    "block_effects": RelationDoc(
        "One row per athlete x block x metric x method: the change in the metric that coincided with the "
        "strength block. change_pct > 0 always means more economical.",
        "analysis",
        {
            "athlete_id": _ATHLETE,
            "block_id": _BLOCK,
            "metric": "economy_m_per_beat, m_per_beat, gap_m_per_beat, hr_at_ref_bpm or decoupling_pct.",
            "method": "window (response-window mean vs baseline-window mean) or its (interrupted time "
                      "series: change beyond the pre-block trend). The headline is economy_m_per_beat/its.",
            "baseline_start": "First day of the baseline window (default 6 weeks before block start).",
            "baseline_end": "Last day of the baseline window.",
            "response_start": "First day of the response window (default 6 weeks after block start).",
            "response_end": "Last day of the response window (default 12 weeks after block start).",
            "n_baseline": "Included runs in the baseline window.",
            "n_response": "Included runs in the response window.",
            "baseline_value": "In the metric's unit. window: mean over the baseline window; its: the pre-block "
                              "trend extrapolated to the response window (the counterfactual).",
            "response_value": "In the metric's unit. window: mean over the response window; its: the fitted "
                              "level in the response window.",
            "change_pct": "Estimated change in percent of the baseline; > 0 means more economical (sign "
                          "flipped for metrics where lower is better).",
            "ci_low_pct": "Lower bound of the 95 % confidence interval of change_pct (serial correlation "
                          "respected: block bootstrap or HAC/GLS).",
            "ci_high_pct": "Upper bound of the 95 % confidence interval of change_pct.",
            "p_value": "Two-sided p-value of the change.",
            "swc_pct": "Smallest worthwhile change used for the verdict (default about 1 %).",
            "verdict": "gain (CI above zero and estimate > swc_pct), loss (mirrored), no clear change, or "
                       "insufficient data (too few runs per window).",
        },
    ),
    "placebo_checks": RelationDoc(
        "The block-effect estimator re-run at fake block starts inside the baseline period: a sanity check "
        "that the method does not find effects where there are none.",
        "analysis",
        {
            "athlete_id": _ATHLETE,
            "block_id": _BLOCK,
            "metric": "Metric, as in block_effects.metric.",
            "method": "Method, as in block_effects.method.",
            "fake_start": "The fake block start used.",
            "change_pct": "Estimated change at the fake start (percent, > 0 more economical).",
            "ci_low_pct": "Lower bound of its 95 % confidence interval.",
            "ci_high_pct": "Upper bound of its 95 % confidence interval.",
            "verdict": "Verdict at the fake start (anything but 'no clear change' hints at a problem).",
        },
    ),
    "analysis_runs": RelationDoc(
        "One row per athlete per `pipeline analyze`: whether the athlete's analysis succeeded. Kept as a "
        "history; the row with the latest started_at is the athlete's current state. An athlete whose "
        "analysis failed (an invalid athlete.toml, or any error in its analysis, e.g. impossible timestamps) "
        "has status 'error' and no rows in the other analysis tables; every other athlete is analysed as "
        "usual. `pipeline status` and the athlete's report page show the error.",
        "analysis",
        {
            "athlete_id": _ATHLETE,
            "status": "ok (analysed; its rows in run_metrics, weekly, strength_blocks, block_effects and "
                      "placebo_checks are current) or error (not analysed; see message).",
            "message": "For ok: what was analysed ('152 of 154 runs included, 1 strength block(s)'). For error: "
                       "the reason in one line, naming the settings file and key, or the activity and "
                       "file(s) involved where they can be named.",
            "started_at": "When the athlete's analysis started (UTC).",
            "finished_at": "When it finished or failed (UTC).",
        },
    ),
    # ------------------------------------------------------------------ stable views (views.sql)
    "runs": RelationDoc(
        "Stable view: one row per running activity with its metrics and the facts from activities, for "
        "analysis in any client. Defined in pipeline/warehouse/views.sql.",
        "view",
        {
            "activity_id": _ACTIVITY,
            "athlete_id": _ATHLETE,
            "run_date": "Date of the run (UTC).",
            "start_time": "Start of the run (UTC).",
            "sport": "activities.sport (running).",
            "sub_sport": "activities.sub_sport (trail, treadmill, ...).",
            "source_format": "activities.source_format (fit, gpx, tcx).",
            "distance_km": "activities.distance_m / 1000.",
            "duration_s": "activities.elapsed_s (wall clock).",
            "steady_s": "run_metrics.steady_s.",
            "speed_m_s": "run_metrics.speed_m_s.",
            "gap_speed_m_s": "run_metrics.gap_speed_m_s.",
            "heart_rate_bpm": "run_metrics.heart_rate_bpm.",
            "m_per_beat": "run_metrics.m_per_beat.",
            "gap_m_per_beat": "run_metrics.gap_m_per_beat.",
            "hr_at_ref_bpm": "run_metrics.hr_at_ref_bpm.",
            "economy_m_per_beat": "run_metrics.economy_m_per_beat (headline economy index).",
            "decoupling_pct": "run_metrics.decoupling_pct.",
            "temperature_c": "run_metrics.temperature_c.",
            "included": "run_metrics.included.",
            "exclusion_reason": "run_metrics.exclusion_reason.",
        },
    ),
    "block_summary": RelationDoc(
        "Stable view: one row per strength block with its headline effect (metric economy_m_per_beat, "
        "method its) beside it. Defined in pipeline/warehouse/views.sql.",
        "view",
        {
            "athlete_id": _ATHLETE,
            "block_id": _BLOCK,
            "label": "strength_blocks.label.",
            "source": "strength_blocks.source (detected | declared).",
            "start_date": "strength_blocks.start_date.",
            "end_date": "strength_blocks.end_date.",
            "weeks": "Block length in weeks: (end_date - start_date + 1) / 7.",
            "sessions": "strength_blocks.sessions.",
            "sessions_per_week": "strength_blocks.sessions_per_week.",
            "volume_kg": "strength_blocks.volume_kg.",
            "n_baseline": "Headline effect: included runs in the baseline window (NULL when not estimated).",
            "n_response": "Headline effect: included runs in the response window.",
            "change_pct": "Headline effect: change in the economy index, percent (> 0 more economical).",
            "ci_low_pct": "Headline effect: lower bound of the 95 % CI.",
            "ci_high_pct": "Headline effect: upper bound of the 95 % CI.",
            "swc_pct": "Headline effect: smallest worthwhile change.",
            "verdict": "Headline effect: gain, loss, no clear change or insufficient data.",
        },
    ),
    "monthly_economy": RelationDoc(
        "Stable view: one row per athlete and calendar month with the median economy index of the included "
        "runs. Defined in pipeline/warehouse/views.sql.",
        "view",
        {
            "athlete_id": _ATHLETE,
            "month": "First day of the month (UTC).",
            "runs": "Running activities in the month (included or not).",
            "included_runs": "Included runs in the month.",
            "run_km": "Running distance in the month, all runs.",
            "median_economy_m_per_beat": "Median economy index over the included runs; NULL when none.",
            "median_m_per_beat": "Median raw pace per heartbeat over the included runs.",
        },
    ),
}

VIEW_NAMES = tuple(name for name, doc in RELATIONS.items() if doc.layer == "view")
