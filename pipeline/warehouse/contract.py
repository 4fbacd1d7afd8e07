"""The warehouse contract: every table and view, its columns in schema order, with types, units and meaning.

This is the ONE place a table's column list is written. Everything else reads it from here:

* the DDL (:func:`schema_sql`, run by :mod:`pipeline.warehouse.migrations` when a warehouse is opened;
  columns added here are added to existing warehouses on open, so "add columns freely" needs no migration);
* the column comments written into the warehouse (any DuckDB client shows them) and docs/warehouse.md,
  generated from those comments (``python -m pipeline.warehouse.docs``; a test fails when it drifts);
* the frames readers return (:mod:`pipeline.ingest.parsed`), the rows analysis writes, the report's reads;
* the shared vocabularies below (file statuses, set types, block sources, metrics, methods, verdicts),
  used by the loaders, the analysis, the data checks and the report.

Units are in column names (``_s`` seconds, ``_m`` metres, ``_km`` kilometres, ``_m_s`` metres/second,
``_bpm`` beats/minute, ``_spm`` steps/minute, ``_w`` watts, ``_c`` degrees Celsius, ``_deg`` WGS84 degrees,
``_kg`` kilograms, ``_pct`` percent, ``m_per_beat`` metres per heartbeat). Every time is TIMESTAMPTZ in UTC.
Names are a public interface (DESIGN.md, "Warehouse contract"): add columns freely, rename or drop none
without a numbered migration (:mod:`pipeline.warehouse.migrations`).
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------------ vocabularies

# source_files.status: ok (data loaded), error (unreadable), duplicate (same data already loaded from a
# richer source), skipped (readable, nothing to analyse).
FILE_STATUSES = ("ok", "error", "duplicate", "skipped")
# strength_sets.set_type, and the ones that count as work (volume load, n_working_sets): only warm-ups
# are excluded; drop sets and sets to failure are hard work.
SET_TYPES = ("warmup", "working", "drop", "failure")
WORK_SET_TYPES = ("working", "drop", "failure")
# strength_blocks.source
BLOCK_SOURCES = ("detected", "declared")
# block_effects.metric / .method / .verdict (placebo_checks too)
EFFECT_METRICS = ("economy_m_per_beat", "m_per_beat", "gap_m_per_beat", "hr_at_ref_bpm", "decoupling_pct")
EFFECT_METHODS = ("window", "its")
VERDICTS = ("gain", "loss", "no clear change", "insufficient data")
# block_effects.calibrated_verdict: the headline verdict, on the CI calibrated against negative controls.
CALIBRATED_VERDICTS = ("gain", "loss", "no clear change", "cannot tell", "insufficient data")
# block_effects.calibration_source; placebo_checks.calibration_class and .position
CALIBRATION_SOURCES = ("own", "squad", "default")
CALIBRATION_CLASSES = ("season", "heat", "none")
CONTROL_POSITIONS = ("before", "between", "after", "no block")
# run_metrics.temperature_source
TEMPERATURE_SOURCES = ("air", "device", "imputed", "none")
# The headline effect (DESIGN.md, "Statistics"): the report's one sentence is about this metric and method.
HEADLINE_METRIC = "economy_m_per_beat"
HEADLINE_METHOD = "its"
# analysis_runs.status
ANALYSIS_STATUSES = ("ok", "error")
# Squad-level analysis (pipeline/analyze/squad.py): how block estimates are pooled, which estimate of a
# block was pooled (the calibrated one when issue-12 calibration has filled it, else the raw one), what was
# pooled, the moderators of the dose-response meta-regression and the parallel-trends check's outcomes.
META_METHODS = ("reml_hksj", "dersimonian_laird")
ESTIMATE_SOURCES = ("calibrated", "raw")
POOLED_TARGETS = ("block_effect", "did")
DOSE_MODERATORS = ("sessions_per_week", "volume_kg_per_week", "block_weeks", "run_km_change_pct")
PARALLEL_TRENDS = ("ok", "violated", "not checked")
# runs_tidy.period: where a run lies relative to a strength block (windows of the window method)
RUN_PERIODS = ("baseline", "ramp", "response", "other")
# block_trends.segment: where a day lies relative to the block's ITS fit
TREND_SEGMENTS = ("fit", "ramp", "response")
# weather.source (the archives the weather stage can read, and 'simulated' for rows a simulator or a test
# writes with its own planted air) and weather.status: ok (values stored) or no_data (the archive answered
# without values for the run's hours, or refused the request); a run with either is never fetched again.
WEATHER_SOURCES = ("open_meteo_archive", "simulated")
WEATHER_STATUSES = ("ok", "no_data")
# The per-run weather values the analysis merges into its activities frame (NaN when unknown), in order.
WEATHER_VALUE_COLUMNS = ("air_temperature_c", "dew_point_c", "relative_humidity_pct", "wind_speed_m_s")
# Relation layers: who writes them.
LAYERS = ("meta", "staging", "weather", "analysis", "view")


@dataclass(frozen=True)
class Column:
    """One column: name (unit in the name), DuckDB type ('' for view columns), meaning, NOT NULL."""

    name: str
    sql_type: str
    description: str
    not_null: bool = False


@dataclass(frozen=True)
class Relation:
    """One table or view: its name, the layer that writes it, its grain and its columns in schema order."""

    name: str
    layer: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def is_view(self) -> bool:
        return self.layer == "view"

    def create_sql(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this table (views are defined in views.sql)."""
        lines = [f'    "{c.name}" {c.sql_type}{" NOT NULL" if c.not_null else ""}' for c in self.columns]
        if self.primary_key:
            lines.append(f"    PRIMARY KEY ({', '.join(self.primary_key)})")
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n' + ",\n".join(lines) + "\n);"


# Descriptions shared by several columns.
_ATHLETE = "Athlete id: the folder name under data/raw/."
_ACTIVITY = "Activity this row belongs to (activities.activity_id)."
_SESSION = "Strength session this row belongs to (strength_sessions.session_id)."
_FILE = "sha256 (hex) of the source file's bytes (source_files.file_id)."
_BLOCK = "Block id, unique per athlete (strength_blocks.block_id)."
_RUN_ID = ("The analysis that wrote this row (analysis_runs.analysis_run_id): its settings, pipeline version "
           "and fitted model values.")
_DID_CONTROLS = ("Teammates without a strength block over the same calendar weeks (no block of theirs within "
                 "its_pre_start .. response_end + the response window), each with enough runs in both windows.")

RELATIONS: dict[str, Relation] = {
    'pipeline_meta': Relation(
        'pipeline_meta', 'meta',
        "Key/value facts about the warehouse itself; key 'schema_version' is the schema version the warehouse was"
        " built or migrated to (see 'Schema versions').",
        (
            Column('key', 'VARCHAR', "Name of the fact, e.g. 'schema_version', 'schema_hash', "
                   "'squad_input_fingerprint' (what the squad tables were computed from: every athlete's "
                   "analysis, the [squad] settings and the code; docs/scaling.md), 'raw_root' (the raw data "
                   "root the last ingest of data/raw reconciled the warehouse with: 'data/raw' or a URL)."),
            Column('value', 'VARCHAR', 'Its value, as text.', not_null=True),
        ),
        primary_key=('key',),
    ),
    'athletes': Relation(
        'athletes', 'staging',
        'One row per athlete folder seen by ingest, with the optional settings of its athlete.toml.',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('display_name', 'VARCHAR',
                   'Name shown in reports (athlete.toml display_name); NULL means use athlete_id.'),
            Column('hr_rest_bpm', 'DOUBLE', 'Resting heart rate from athlete.toml; NULL when not given.'),
            Column('hr_max_bpm', 'DOUBLE', 'Maximum heart rate from athlete.toml; NULL when not given.'),
            Column('ref_speed_m_s', 'DOUBLE',
                   "Reference speed for the economy index from athlete.toml; NULL means the athlete's median "
                   'steady grade-adjusted speed is used.'),
            Column('time_zone', 'VARCHAR',
                   'IANA time zone for strength logs with local times and no offset; NULL means UTC.'),
            Column('updated_at', 'TIMESTAMPTZ', "When ingest last read the athlete's settings (UTC)."),
            Column('units', 'VARCHAR',
                   "athlete.toml units: metric (pace in min/km, the default when NULL) or imperial (min/mi) for "
                   'the report; the warehouse itself is always metric.'),
        ),
        primary_key=('athlete_id',),
    ),
    'source_files': Relation(
        'source_files', 'staging',
        "One row per file seen by ingest (archive members too, path 'archive.zip!member'), whatever became of it:"
        ' the audit trail of what was read, skipped, duplicated or could not be read.',
        (
            Column('path', 'VARCHAR',
                   'File path relative to the workspace (posix); absolute when outside it. Primary key.'),
            Column('file_id', 'VARCHAR',
                   "sha256 (hex) of the file's bytes; the same content under two paths has one file_id.", not_null=True),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('format', 'VARCHAR',
                   'Detected format: fit, gpx, tcx, strong_csv, hevy_csv, fitnotes_csv, generic_csv, zip, ...'),
            Column('size_bytes', 'BIGINT', 'File size in bytes (decompressed size for archive members).'),
            Column('status', 'VARCHAR',
                   'ok (data loaded), error (unreadable, see message), duplicate (same activity already loaded '
                   'from a richer source), skipped (readable but nothing to analyse).', not_null=True),
            Column('message', 'VARCHAR',
                   'Human-readable reason or summary, e.g. why a file was an error or a duplicate.'),
            Column('ingested_at', 'TIMESTAMPTZ', 'When ingest recorded the file (UTC).', not_null=True),
            Column('n_activities', 'INTEGER', 'Activities or strength sessions loaded from the file.'),
            Column('n_samples', 'BIGINT', 'Samples loaded from the file.'),
            Column('duplicate_of', 'VARCHAR',
                   'For status duplicate: the activity_id or session_id the file duplicates.'),
            Column('shadowed_by', 'VARCHAR[]',
                   "Activity and session ids, from other files of the same athlete, that hold data this file "
                   'also has and that were kept instead of its own (duplicates, identical copies, partly '
                   'duplicated files). When any of them is gone, the next ingest reads this file again, so '
                   'its data is not lost. Empty when nothing was shadowed; NULL for rows written before '
                   'schema version 3 that had nothing to record.'),
        ),
        primary_key=('path',),
    ),
    'source_versions': Relation(
        'source_versions', 'staging',
        "One row per file read from a raw data root given as a URL (pipeline.toml [raw] url or --raw; "
        "docs/scaling.md): the version marker its listing showed when its bytes were last read and hashed. "
        "A file whose listing shows the same marker, and whose source_files row still holds that content, "
        "is not downloaded again. Files of the workspace's own data/raw have no row: they are hashed on "
        "every ingest.",
        (
            Column('path', 'VARCHAR', 'The file (source_files.path).'),
            Column('file_id', 'VARCHAR', "sha256 (hex) of the bytes read when the marker was recorded "
                   "(source_files.file_id at that time).", not_null=True),
            Column('version', 'VARCHAR',
                   "The storage's marker: its ETag (HTTP, S3) or generation, else its modification time, "
                   "each with the size, e.g. 'Last-Modified=Tue, 01 Jul 2025 06:15:00 GMT;size=81234'.",
                   not_null=True),
        ),
        primary_key=('path',),
    ),
    'activities': Relation(
        'activities', 'staging',
        'One row per recorded activity (a multisport FIT file gives several), any sport.',
        (
            Column('activity_id', 'VARCHAR',
                   "Stable id: athlete, UTC start to the second and the session's index in its file (e.g. "
                   'anna-20240501T061502Z-0), so re-ingesting the same run gives the same id.'),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('file_id', 'VARCHAR',
                   'The file the activity was loaded from (source_files.file_id); when the same run came in '
                   'several files, the richest source.', not_null=True),
            Column('sport', 'VARCHAR',
                   'Sport as fitparse names it (running, cycling, training, ...) or the raw FIT number.'),
            Column('sub_sport', 'VARCHAR',
                   'Sub-sport (trail, treadmill, track, generic, ...) when the source gives one.'),
            Column('start_time', 'TIMESTAMPTZ', 'Start of the activity (UTC).', not_null=True),
            Column('elapsed_s', 'DOUBLE', 'Wall-clock duration, pauses included.'),
            Column('timer_s', 'DOUBLE',
                   'Moving (timer) duration, pauses excluded; NULL when the source has no timer.'),
            Column('distance_m', 'DOUBLE',
                   'Total distance as recorded by the device (else summed from positions).'),
            Column('avg_heart_rate_bpm', 'DOUBLE',
                   'Mean heart rate as recorded by the device (else over the samples).'),
            Column('device', 'VARCHAR', 'Recording device (manufacturer/product) when known.'),
            Column('name', 'VARCHAR', 'Title when the source gives one (GPX <name>, Strava CSV).'),
            Column('source_format', 'VARCHAR', 'Format of the source: fit, gpx or tcx.'),
            Column('session_index', 'INTEGER', 'Position of this activity among the sessions of its file, from 0.'),
            Column('n_samples', 'INTEGER', 'Number of rows in samples for this activity.'),
        ),
        primary_key=('activity_id',),
    ),
    'samples': Relation(
        'samples', 'staging',
        'One row per recorded point of an activity (typically one per second). The largest table; exported '
        'partitioned by athlete_id.',
        (
            Column('activity_id', 'VARCHAR', _ACTIVITY, not_null=True),
            Column('athlete_id', 'VARCHAR',
                   _ATHLETE + ' Repeated here so samples can be partitioned and filtered by athlete.', not_null=True),
            Column('ts', 'TIMESTAMPTZ', 'Time of the point (UTC).', not_null=True),
            Column('elapsed_s', 'DOUBLE', "Seconds since the activity's start_time, wall clock, pauses included."),
            Column('lat_deg', 'DOUBLE', 'Latitude (WGS84); NULL without GPS.'),
            Column('lon_deg', 'DOUBLE', 'Longitude (WGS84); NULL without GPS.'),
            Column('altitude_m', 'DOUBLE', 'Altitude above sea level (enhanced/barometric when available).'),
            Column('distance_m', 'DOUBLE', 'Cumulative distance since the start.'),
            Column('speed_m_s', 'DOUBLE',
                   'Device speed (FIT enhanced_speed preferred); NULL when the source has none.'),
            Column('heart_rate_bpm', 'DOUBLE',
                   'Heart rate as recorded (not cleaned; cleaning happens in analyze).'),
            Column('cadence_spm', 'DOUBLE',
                   'Running cadence in steps per minute (FIT strides/min x 2 + fractional part).'),
            Column('power_w', 'DOUBLE', 'Running power when the device records it.'),
            Column('temperature_c', 'DOUBLE', 'Device temperature sensor reading.'),
        ),
    ),
    'laps': Relation(
        'laps', 'staging',
        'One row per lap of an activity, as recorded by the device.',
        (
            Column('activity_id', 'VARCHAR', _ACTIVITY),
            Column('lap_index', 'INTEGER', 'Position of the lap in the activity, from 0.'),
            Column('start_time', 'TIMESTAMPTZ', 'Start of the lap (UTC).'),
            Column('elapsed_s', 'DOUBLE', 'Wall-clock duration of the lap.'),
            Column('timer_s', 'DOUBLE', 'Moving (timer) duration of the lap.'),
            Column('distance_m', 'DOUBLE', 'Distance of the lap.'),
            Column('avg_heart_rate_bpm', 'DOUBLE', 'Mean heart rate over the lap as recorded by the device.'),
            Column('avg_speed_m_s', 'DOUBLE', 'Mean speed over the lap as recorded by the device.'),
        ),
        primary_key=('activity_id', 'lap_index'),
    ),
    'strength_sessions': Relation(
        'strength_sessions', 'staging',
        'One row per strength workout, from strength-app CSV exports or FIT strength activities.',
        (
            Column('session_id', 'VARCHAR',
                   'Stable id: athlete and session start in UTC to the minute, so the same workout from two '
                   'exports gets one id.'),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('start_time', 'TIMESTAMPTZ',
                   'Start of the workout (UTC; local app times converted with athlete.toml time_zone).', not_null=True),
            Column('duration_s', 'DOUBLE', 'Duration of the workout when the source gives it.'),
            Column('title', 'VARCHAR', 'Workout name from the app.'),
            Column('source_format', 'VARCHAR', 'strong_csv, hevy_csv, fitnotes_csv, generic_csv or fit.'),
            Column('file_id', 'VARCHAR', _FILE, not_null=True),
            Column('n_sets', 'INTEGER', 'Number of sets in strength_sets for this session.'),
            Column('n_working_sets', 'INTEGER', 'Number of those sets with set_type working.'),
        ),
        primary_key=('session_id',),
    ),
    'strength_sets': Relation(
        'strength_sets', 'staging',
        'One row per set of a strength session.',
        (
            Column('session_id', 'VARCHAR', _SESSION),
            Column('set_index', 'INTEGER', 'Order of the set within the session, from 0.'),
            Column('exercise', 'VARCHAR', "Exercise name as logged (e.g. 'Squat (Barbell)')."),
            Column('category', 'VARCHAR', 'Exercise category (e.g. squat, hinge, plyometric, upper) when known.'),
            Column('set_type', 'VARCHAR',
                   'warmup, working, drop or failure; warm-ups do not count towards block volume.'),
            Column('reps', 'INTEGER', 'Repetitions performed.'),
            Column('weight_kg', 'DOUBLE', 'External load (pounds converted once at ingest, 1 lb = 0.45359237 kg).'),
            Column('duration_s', 'DOUBLE', 'Duration of timed sets (planks, carries).'),
            Column('rpe', 'DOUBLE', 'Rating of perceived exertion (1-10) when logged.'),
            Column('distance_m', 'DOUBLE', 'Distance of distance-based sets (sled push, carries).'),
        ),
        primary_key=('session_id', 'set_index'),
    ),
    'declared_blocks': Relation(
        'declared_blocks', 'staging',
        'Strength blocks the athlete declared in data/raw/<athlete>/blocks.csv (label,start,end); they win over '
        'detected blocks in strength_blocks.',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('label', 'VARCHAR', 'Block label from blocks.csv.'),
            Column('start_date', 'DATE', 'First day of the block.'),
            Column('end_date', 'DATE', 'Last day of the block.', not_null=True),
        ),
        primary_key=('athlete_id', 'label', 'start_date'),
    ),
    'weather': Relation(
        'weather', 'weather',
        "One row per outdoor run (a running activity with GPS positions) looked up by `pipeline weather` in a "
        "historical weather archive: the air at the run's start position over the run's hours, or why there is "
        'none. The table is the cache: a run with a row is never fetched again.',
        (
            Column('activity_id', 'VARCHAR', _ACTIVITY),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('source', 'VARCHAR',
                   'Archive the row comes from: open_meteo_archive (the Open-Meteo historical weather API: '
                   'reanalysis from ERA5, ERA5-Land and ECMWF IFS, hourly, global, 1940 to about 5 days ago), '
                   'or simulated (rows a simulator or test wrote with its planted air; never `pipeline weather`).',
                   not_null=True),
            Column('status', 'VARCHAR',
                   "ok (values stored) or no_data (the archive answered without values for the run's hours, "
                   'or refused the request: see message). Neither is fetched again.', not_null=True),
            Column('fetched_at', 'TIMESTAMPTZ', 'When the archive answered (UTC).', not_null=True),
            Column('air_temperature_c', 'DOUBLE',
                   "Air temperature 2 m above ground, mean over the run's span (start_time to start_time + "
                   'elapsed_s) of the hourly values interpolated linearly in time; NULL when the archive has '
                   'none.'),
            Column('dew_point_c', 'DOUBLE', 'Dew point 2 m above ground, averaged like air_temperature_c.'),
            Column('relative_humidity_pct', 'DOUBLE',
                   'Relative humidity 2 m above ground, averaged like air_temperature_c.'),
            Column('wind_speed_m_s', 'DOUBLE',
                   'Wind speed 10 m above ground (the standard level, stronger than at head height), '
                   'averaged like air_temperature_c.'),
            Column('n_hours', 'INTEGER',
                   "Hourly archive values the run's means were interpolated from (the hour at or before its "
                   'start to the hour at or after its end).'),
            Column('cell_id', 'VARCHAR',
                   "The position sent to the archive, as 'lat,lon': the run's first GPS position rounded to the "
                   'grid ([weather] grid_deg, default 0.1 degrees, about 11 km). Runs in one cell share '
                   'requests.'),
            Column('grid_lat_deg', 'DOUBLE',
                   "Latitude of the archive's grid cell the values are for (from its answer)."),
            Column('grid_lon_deg', 'DOUBLE',
                   "Longitude of the archive's grid cell the values are for (from its answer)."),
            Column('grid_elevation_m', 'DOUBLE',
                   'Elevation the archive adjusted its values to (its terrain model at the sent position, not '
                   "the run's altitude)."),
            Column('distance_km', 'DOUBLE',
                   "Great-circle distance from the run's first GPS position to the archive's grid cell."),
            Column('message', 'VARCHAR', "For no_data: why (e.g. the archive's own reason)."),
        ),
        primary_key=('activity_id',),
    ),
    'strength_blocks': Relation(
        'strength_blocks', 'analysis',
        'One row per block of consistent strength work: declared in blocks.csv, else detected from session dates '
        '(about 1.5 sessions/week sustained for 4 weeks or more, gaps of up to 10 days bridged).',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', 'Block id, unique per athlete.'),
            Column('start_date', 'DATE', 'First day of the block (first session).', not_null=True),
            Column('end_date', 'DATE', 'Last day of the block (last session).', not_null=True),
            Column('sessions', 'INTEGER', 'Strength sessions inside the block.'),
            Column('sessions_per_week', 'DOUBLE', 'sessions / weeks, weeks = (end_date - start_date + 1 day) / 7.'),
            Column('volume_kg', 'DOUBLE',
                   "Volume load: sum of weight_kg x reps over the block's working, drop and failure sets "
                   '(warm-ups excluded).'),
            Column('source', 'VARCHAR', 'detected (from session dates) or declared (blocks.csv).'),
            Column('label', 'VARCHAR', 'Label from blocks.csv, or a generated one for detected blocks.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id'),
    ),
    'run_metrics': Relation(
        'run_metrics', 'analysis',
        'One row per running activity with the cleaned, steady-state running-economy metrics; runs without enough'
        ' steady time or heart-rate coverage are kept with included = false and a reason.',
        (
            Column('activity_id', 'VARCHAR', _ACTIVITY),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('start_time', 'TIMESTAMPTZ', 'Start of the run (UTC).', not_null=True),
            Column('sub_sport', 'VARCHAR', 'Sub-sport of the run (trail, treadmill, ...), copied from activities.'),
            Column('duration_s', 'DOUBLE', 'Elapsed duration of the run.'),
            Column('distance_km', 'DOUBLE', 'Distance of the run.'),
            Column('steady_s', 'DOUBLE',
                   'Seconds of steady, clean samples used for the metrics (after warm-up, pauses, implausible HR '
                   'and cadence lock are removed).'),
            Column('speed_m_s', 'DOUBLE', 'Mean speed over the steady samples.'),
            Column('gap_speed_m_s', 'DOUBLE',
                   'Mean grade-adjusted speed over the steady samples (Minetti et al. 2002 cost of running on '
                   'slopes; grade from altitude smoothed over >= 50 m).'),
            Column('heart_rate_bpm', 'DOUBLE', 'Mean heart rate over the steady samples.'),
            Column('m_per_beat', 'DOUBLE',
                   'Pace per heartbeat: speed in m/min / heart rate (= efficiency factor in metric units). Not '
                   'pace-invariant.'),
            Column('gap_m_per_beat', 'DOUBLE', 'Pace per heartbeat with grade-adjusted speed.'),
            Column('hr_at_ref_bpm', 'DOUBLE',
                   "Heart rate predicted at the athlete's reference speed by the athlete-level model of HR "
                   'against grade-adjusted speed (shared slope, per-run intercept), adjusted to a fixed elapsed '
                   'time (cardiac drift) and for heat where temperature is known.'),
            Column('economy_m_per_beat', 'DOUBLE',
                   'Headline economy index: v_ref x 60 / hr_at_ref_bpm. Higher = more economical; pace-invariant.'),
            Column('decoupling_pct', 'DOUBLE',
                   'Aerobic decoupling: (r1 - r2) / r1 x 100 with r1, r2 the pace per heartbeat of the first and '
                   'second half of the steady part.'),
            Column('temperature_c', 'DOUBLE', 'Mean device temperature over the run; NULL when not recorded.'),
            Column('included', 'BOOLEAN',
                   'True when the run has enough steady time and HR coverage to enter the analysis.', not_null=True),
            Column('exclusion_reason', 'VARCHAR', 'Why a run is not included (NULL when included).'),
            Column('temperature_source', 'VARCHAR',
                   'Where the heat model\'s temperature for this run came from: air (archive weather at the '
                   'run\'s start), device (the watch\'s settled reading), imputed (no temperature: the mean '
                   'heat adjustment of runs within 14 days) or none (no temperature and none nearby, or no '
                   'heat model for the athlete).'),
            Column('heat_temperature_c', 'DOUBLE',
                   'The temperature the heat model used: apparent temperature (Steadman 1994) from archive '
                   'air temperature and dew point, or the settled device reading (put on the air scale when '
                   'runs with both exist); NULL when none.'),
            Column('heat_adjustment_bpm', 'DOUBLE',
                   'Beats per minute removed from hr_at_ref_bpm for heat: gamma x max(0, temperature - '
                   'threshold), both estimated from the athlete\'s runs.'),
            Column('climb_m_per_km', 'DOUBLE',
                   'Ascent per km over the steady samples (positive altitude changes of the smoothed profile used '
                   'for the grade); 0 on treadmills.'),
            Column('mean_abs_grade_pct', 'DOUBLE',
                   'Mean absolute grade over the steady samples, percent (time-weighted).'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('activity_id',),
    ),
    'weekly': Relation(
        'weekly', 'analysis',
        'One row per athlete and week (Monday start) with running volume, strength sessions and economy.',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('week_start', 'DATE', 'Monday of the week (UTC dates).'),
            Column('runs', 'INTEGER', 'Running activities in the week.'),
            Column('run_km', 'DOUBLE', 'Running distance in the week.'),
            Column('strength_sessions', 'INTEGER', 'Strength sessions in the week.'),
            Column('economy_m_per_beat', 'DOUBLE', "Median economy index over the week's included runs."),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'week_start'),
    ),
    'block_effects': Relation(
        'block_effects', 'analysis',
        'One row per athlete x block x metric x method: the change in the metric that coincided with the strength'
        ' block. change_pct > 0 always means more economical.',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('metric', 'VARCHAR',
                   'economy_m_per_beat, m_per_beat, gap_m_per_beat, hr_at_ref_bpm or decoupling_pct.'),
            Column('method', 'VARCHAR',
                   'window (response-window mean vs baseline-window mean) or its (interrupted time series: change'
                   ' beyond the pre-block trend). The headline is economy_m_per_beat/its.'),
            Column('baseline_start', 'DATE',
                   'window: first day of the baseline window (default 6 weeks before block start). its: first '
                   'day of the pre-block period the trend is fitted on (default 16 weeks before block start, '
                   "or later when an earlier block's response window or the record's start is later)."),
            Column('baseline_end', 'DATE',
                   'window: end of the baseline window; its: end of the pre-block fitting period. Both are the '
                   'block start (exclusive).'),
            Column('response_start', 'DATE',
                   'First day of the response window (default 6 weeks after block start).'),
            Column('response_end', 'DATE', 'End of the response window, exclusive (default 12 weeks after block start).'),
            Column('n_baseline', 'INTEGER', 'Included runs in the baseline window.'),
            Column('n_response', 'INTEGER', 'Included runs in the response window.'),
            Column('baseline_value', 'DOUBLE',
                   "In the metric's unit. window: mean over the baseline window; its: the pre-block trend "
                   'extrapolated to the response window (the counterfactual; on season-adjusted values where '
                   'season_controlled).'),
            Column('response_value', 'DOUBLE',
                   "In the metric's unit. window: mean over the response window; its: the fitted level in the "
                   'response window.'),
            Column('change_pct', 'DOUBLE',
                   'Estimated change in percent of the baseline; > 0 means more economical (sign flipped for '
                   'metrics where lower is better).'),
            Column('ci_low_pct', 'DOUBLE',
                   'Lower bound of the 95 % confidence interval of change_pct (serial correlation respected: '
                   'block bootstrap or HAC/GLS).'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of the 95 % confidence interval of change_pct.'),
            Column('p_value', 'DOUBLE', 'Two-sided p-value of the change.'),
            Column('swc_pct', 'DOUBLE', 'Smallest worthwhile change used for the verdict (default about 1 %).'),
            Column('verdict', 'VARCHAR',
                   'Raw verdict (uncalibrated CI): gain (CI above zero and estimate > swc_pct), loss '
                   '(mirrored), no clear change, or insufficient data (too few runs per window). The '
                   'headline answer is calibrated_verdict.'),
            Column('se_pct', 'DOUBLE',
                   'Standard error of the change on the model scale x 100 (log scale for ratio metrics, so '
                   '~percent; pool across athletes as log(1 + change_pct/100) with se_pct/100).'),
            Column('calibrated_change_pct', 'DOUBLE',
                   'change_pct calibrated against the athlete\'s negative controls (economy index only): the '
                   'raw estimate minus the systematic error the controls show (Schuemie et al. 2014, 2018). '
                   'NULL for other metrics.'),
            Column('calibrated_ci_low_pct', 'DOUBLE',
                   'Lower bound of the calibrated 95 % CI (sampling error, systematic error and its '
                   'uncertainty).'),
            Column('calibrated_ci_high_pct', 'DOUBLE',
                   'Upper bound of the calibrated 95 % CI.'),
            Column('calibrated_se_pct', 'DOUBLE',
                   'Standard error of the calibrated change on the log scale x 100 (for pooling as with '
                   'se_pct).'),
            Column('calibrated_verdict', 'VARCHAR',
                   'The headline verdict, on the calibrated CI: gain, loss, no clear change, cannot tell (CI '
                   'too wide to tell a typical 2-8 % effect from none, or an HR device change that cannot be '
                   'separated from the block) or insufficient data.'),
            Column('verdict_reason', 'VARCHAR',
                   'Why, in words: where the calibration came from, what was not controlled (season, heat), '
                   'a device change, a change in running volume.'),
            Column('systematic_mu_pct', 'DOUBLE',
                   'Mean of the systematic-error distribution used (posterior mean, percent).'),
            Column('systematic_tau_pct', 'DOUBLE',
                   'Its spread (posterior root-mean-square tau, percent).'),
            Column('n_controls', 'INTEGER',
                   'Negative controls (fake block starts) of this athlete for this metric and method.'),
            Column('n_effective_controls', 'DOUBLE',
                   'What the correlated controls are worth as independent ones (1\' R^-1 1).'),
            Column('calibration_source', 'VARCHAR',
                   'own (enough own controls), squad (the workspace\'s other athletes of the same class, '
                   'updated by own controls) or default (conservative default, updated by own controls).'),
            Column('season_controlled', 'BOOLEAN',
                   'True when the model carried the annual season (>= 12 months of included runs).'),
            Column('heat_controlled', 'BOOLEAN',
                   'True when a heat model was estimated for the athlete (temperature on enough runs).'),
            Column('sensor_change', 'BOOLEAN',
                   'True when the HR device changed between the pre-block runs and the response window.'),
            Column('device_adjusted_change_pct', 'DOUBLE',
                   'Calibrated change with one level shift per HR device (NULL when no change was flagged or '
                   'the shift cannot be separated from the block).'),
            Column('device_adjusted_ci_low_pct', 'DOUBLE',
                   'Lower bound of its calibrated 95 % CI.'),
            Column('device_adjusted_ci_high_pct', 'DOUBLE',
                   'Upper bound of its calibrated 95 % CI.'),
            Column('volume_change_pct', 'DOUBLE',
                   'Running km per week from block start to the response window\'s end against the pre-block '
                   'period, percent.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id', 'metric', 'method'),
    ),
    'placebo_checks': Relation(
        'placebo_checks', 'analysis',
        'Negative controls: the block-effect estimator re-run at fake block starts every 2 weeks across the whole '
        "record (before, between and after real blocks, never inside a block's ramp or response window), where "
        "nothing began; their spread calibrates the real blocks' estimates.",
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('metric', 'VARCHAR', 'Metric, as in block_effects.metric.'),
            Column('method', 'VARCHAR', 'Method, as in block_effects.method.'),
            Column('fake_start', 'DATE', 'The fake block start used.'),
            Column('change_pct', 'DOUBLE', 'Estimated change at the fake start (percent, > 0 more economical).'),
            Column('ci_low_pct', 'DOUBLE', 'Lower bound of its 95 % confidence interval.'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of its 95 % confidence interval.'),
            Column('verdict', 'VARCHAR',
                   'Raw verdict at the fake start (anything but \'no clear change\' is a false alarm of the '
                   'uncalibrated method).'),
            Column('se_pct', 'DOUBLE',
                   'Standard error of the estimate on the log scale x 100.'),
            Column('position', 'VARCHAR',
                   'Where the fake start lies: before, between or after the real blocks, or \'no block\' '
                   '(block_id is then empty; otherwise it is the nearest real block).'),
            Column('calibration_class', 'VARCHAR',
                   'season (season modelled), heat (heat adjusted, season not) or none: controls pool across '
                   'a squad only within a class.'),
            Column('n_effective_controls', 'DOUBLE',
                   'What this athlete\'s correlated controls (this metric and method) are worth as '
                   'independent ones.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id', 'metric', 'method', 'fake_start'),
    ),
    'block_trends': Relation(
        'block_trends', 'analysis',
        "One row per athlete x block x metric x day from the first run of the ITS fitting period to the end of the "
        "response window: the counterfactual the headline estimate is measured against, from the same fit as the "
        "block_effects its row (pipeline/analyze/trends.py). The report draws it on the timeline.",
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('metric', 'VARCHAR', 'Metric, as in block_effects.metric (the headline economy_m_per_beat).'),
            Column('day', 'DATE', 'The day (UTC); values are taken at its midday.'),
            Column('weeks_from_block_start', 'DOUBLE', 'Time of that midday in weeks from block start (the ITS t).'),
            Column('segment', 'VARCHAR',
                   'fit (the pre-block period the trend is fitted on), ramp (block start to the response window: '
                   'extrapolated, runs not used) or response (the response window: extrapolated).'),
            Column('trend_value', 'DOUBLE',
                   "The fitted pre-block trend a + b*t (covariates at their mean), plus the annual season the fit "
                   "removed where the season is controlled, in the metric's unit: what the trend predicts without "
                   'the block (the counterfactual) in the ramp and response segments.'),
            Column('trend_low', 'DOUBLE',
                   'Lower bound of the pointwise 95 % confidence band of trend_value (uncertainty of the trend line, '
                   'from the fit\'s parameter covariance and the season harmonics\' covariance; not the spread of '
                   'single runs).'),
            Column('trend_high', 'DOUBLE', 'Upper bound of that band.'),
            Column('response_value', 'DOUBLE',
                   'Response segment only: the fitted response-window level a + b*t + c + d*(t - t_c) (plus the '
                   'season). At the mean time of the response runs response_value / trend_value = 1 + the raw '
                   'block_effects.change_pct, and without a season the two equal block_effects.response_value and '
                   'baseline_value (with one, those are season-adjusted); NULL elsewhere.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id', 'metric', 'day'),
    ),
    'analysis_runs': Relation(
        'analysis_runs', 'analysis',
        'One row per athlete each time `pipeline analyze` analysed it: when, with which pipeline version and '
        'settings, and whether it worked. The provenance of the rows the analysis tables hold for the athlete '
        '(the latest ok run) and the record of failures.',
        (
            Column('analysis_run_id', 'VARCHAR', 'Unique id of this analysis of this athlete.'),
            Column('athlete_id', 'VARCHAR', _ATHLETE, not_null=True),
            Column('started_at', 'TIMESTAMPTZ', "When the athlete's analysis started (UTC).", not_null=True),
            Column('finished_at', 'TIMESTAMPTZ', "When it finished (UTC)."),
            Column('status', 'VARCHAR', 'ok (analysis tables hold its results) or error (see message).',
                   not_null=True),
            Column('message', 'VARCHAR', 'For errors: what went wrong and, where known, the file or activity.'),
            Column('pipeline_version', 'VARCHAR', 'Version of the pipeline package that ran the analysis.'),
            Column('settings_json', 'VARCHAR',
                   'Every analysis and block-detection setting used ([analysis] and [blocks] of pipeline.toml, '
                   'defaults included), as JSON.'),
            Column('n_runs', 'INTEGER', 'Running activities analysed for the athlete.'),
            Column('n_included', 'INTEGER', 'Of those, runs included in the economy model.'),
            Column('ref_speed_m_s', 'DOUBLE', 'Fitted model: reference speed v_ref of the economy index.'),
            Column('ref_elapsed_s', 'DOUBLE', 'Fitted model: elapsed time every run is referred to (cardiac drift).'),
            Column('ref_temperature_c', 'DOUBLE', 'Fitted model: heat threshold, settled device temperature.'),
            Column('hr_speed_slope_bpm_per_m_s', 'DOUBLE',
                   'Fitted model: HR rise per m/s of grade-adjusted speed (shared by all runs, within-run).'),
            Column('slope_method', 'VARCHAR', 'How the slope was estimated (adjacent_bins_iv or within).'),
            Column('drift_bpm_per_h', 'DOUBLE', 'Fitted model: cardiac drift, HR rise per hour of elapsed time.'),
            Column('heat_bpm_per_c', 'DOUBLE',
                   'Fitted model: heat coefficient, bpm per degC of heat excess (0 when not adjusted).'),
            Column('heat_se_bpm_per_c', 'DOUBLE', 'Standard error of heat_bpm_per_c (block jackknife; 0 for fixed).'),
            Column('heat_method', 'VARCHAR', 'detrended, fixed or none.'),
            Column('model_samples', 'INTEGER', 'Steady-sample bins the HR model was fitted on.'),
            Column('input_fingerprint', 'VARCHAR',
                   "sha256 of everything this athlete's analysis depended on (the parts in input_parts_json): "
                   '`pipeline analyze` redoes the athlete only when the current inputs give another value '
                   '(docs/scaling.md, "Re-runs").'),
            Column('input_parts_json', 'VARCHAR',
                   'The digest of each input, as JSON: source_files (path and sha256 of each ok file), activities, '
                   'weather (ok rows), strength (sessions and sets), declared_blocks, athlete (its athletes row), '
                   'athlete_toml (sha256 of the file), settings ([analysis] and [blocks]) and code (pipeline '
                   'version and the analysis source); `pipeline status` names the parts that changed.'),
            Column('pooled_fingerprint', 'VARCHAR',
                   "For an analysis that drew on other athletes' results (calibration on the squad's pooled "
                   'negative controls): the digest of every athlete\'s input_fingerprint at the time; a change '
                   'of any of them redoes this athlete too. \'pending squad calibration\' while stored before '
                   'the squad calibration pass (an interrupted analyze redoes it). NULL when the analysis used '
                   'its own data only.'),
        ),
        primary_key=('analysis_run_id',),
    ),
    'squad_blocks': Relation(
        'squad_blocks', 'analysis',
        "One row per athlete x strength block with a headline estimate (economy_m_per_beat, its): the estimate the "
        'squad analysis pools (calibrated when present, else raw, and which), its standard error, its weight in '
        'the pooled estimate and the block\'s dose (the moderators of the dose-response meta-regression).',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('block_start', 'DATE', 'First day of the block (strength_blocks.start_date).'),
            Column('estimate_source', 'VARCHAR',
                   'calibrated (block_effects calibrated_change_pct, its CI and calibrated_se_pct: empirical '
                   'calibration against negative controls) or raw (change_pct and its CI).'),
            Column('change_pct', 'DOUBLE', 'The pooled estimate of this block: change in economy, percent (> 0 more '
                   'economical).'),
            Column('ci_low_pct', 'DOUBLE', 'Lower bound of its 95 % CI.'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of its 95 % CI.'),
            Column('log_change', 'DOUBLE', 'The estimate on the log scale, ln(1 + change_pct/100): what is pooled.'),
            Column('se_log', 'DOUBLE',
                   'Standard error on the log scale: se_pct/100 when calibration gives one, else the CI width on the '
                   'log scale / (2 x 1.96).'),
            Column('weight_pct', 'DOUBLE',
                   'Share of this block in the pooled random-effects estimate (reml_hksj), percent of the total.'),
            Column('sessions_per_week', 'DOUBLE', 'Dose: strength sessions per week over the block.'),
            Column('volume_kg_per_week', 'DOUBLE', 'Dose: volume load (kg x reps, working sets) per week of block.'),
            Column('block_weeks', 'DOUBLE', 'Dose: block length, weeks (end_date - start_date + 1 day) / 7.'),
            Column('run_km_change_pct', 'DOUBLE',
                   'Running volume during the block (mean weekly km from block start to the end of the response '
                   'window) against the baseline weeks before it, percent.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id'),
    ),
    'squad_pooled': Relation(
        'squad_pooled', 'analysis',
        'Squad-level pooled effects: a random-effects meta-analysis of the blocks in squad_blocks (target '
        'block_effect) and of the difference-in-differences estimates in squad_did (target did), by each meta-'
        'analysis method. One row per target x method.',
        (
            Column('target', 'VARCHAR',
                   'block_effect (each block\'s headline estimate, squad_blocks) or did (each block\'s estimate '
                   'minus its teammate controls\', squad_did).'),
            Column('meta_method', 'VARCHAR',
                   'reml_hksj (REML tau^2, Hartung-Knapp-Sidik-Jonkman CI with t(k-1), its variance never below '
                   'the unscaled one (Knapp & Hartung 2003 floor); the default) or dersimonian_laird '
                   '(DerSimonian-Laird tau^2, normal-theory CI).'),
            Column('k', 'INTEGER', 'Blocks pooled.'),
            Column('n_athletes', 'INTEGER', 'Athletes they belong to.'),
            Column('estimate_source', 'VARCHAR', 'calibrated, raw, or mixed (some blocks calibrated, some raw); '
                   'did rows are raw (the teammates are the control for shared systematic error).'),
            Column('estimate_pct', 'DOUBLE', 'Pooled change in economy, percent (> 0 more economical).'),
            Column('ci_low_pct', 'DOUBLE', 'Lower bound of the 95 % CI of the pooled mean.'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of the 95 % CI of the pooled mean.'),
            Column('pi_low_pct', 'DOUBLE',
                   'Lower bound of the 95 % prediction interval: where the effect of a new athlete\'s block is '
                   'expected (Higgins et al. 2009, t(k-2)); NULL below 3 blocks.'),
            Column('pi_high_pct', 'DOUBLE', 'Upper bound of the 95 % prediction interval.'),
            Column('p_value', 'DOUBLE', 'Two-sided p-value of the pooled mean.'),
            Column('tau2', 'DOUBLE', 'Between-block variance of the true effects, log scale.'),
            Column('tau_pct', 'DOUBLE', 'Between-block SD of the true effects, approximately percent (100 x tau).'),
            Column('i2_pct', 'DOUBLE',
                   'I^2: share of the total variance due to between-block heterogeneity, percent (from tau^2 and '
                   'the typical within-block variance, as metafor reports it).'),
            Column('q', 'DOUBLE', "Cochran's Q."),
            Column('q_p_value', 'DOUBLE', 'p-value of Q (chi-square, k-1 df): homogeneity test.'),
            Column('computed_at', 'TIMESTAMPTZ', 'When the squad analysis ran (UTC).'),
            Column('settings_json', 'VARCHAR', 'The squad settings used, as JSON.'),
        ),
        primary_key=('target', 'meta_method'),
    ),
    'squad_did': Relation(
        'squad_did', 'analysis',
        'Teammates as controls: per athlete block, a difference-in-differences estimate: the athlete\'s change '
        'beyond its own pre-block trend (block_effects economy_m_per_beat/its) minus the same estimate for teammates'
        ' without a block over the same calendar windows, so the season, the weather and the calendar cancel. '
        'Assumes parallel trends (checked at fake starts in the pre-period: squad_did_placebo).',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('its_pre_start', 'DATE', 'First day of the pre-block period whose trend is extrapolated.'),
            Column('block_start', 'DATE', 'Block start: end of the pre-period.'),
            Column('response_start', 'DATE', 'First day of the response window.'),
            Column('response_end', 'DATE', 'Day after the response window.'),
            Column('n_controls', 'INTEGER', 'Controls used. ' + _DID_CONTROLS),
            Column('controls', 'VARCHAR', 'Their athlete ids, comma-separated.'),
            Column('athlete_change_pct', 'DOUBLE', "The athlete's change beyond trend, percent."),
            Column('controls_change_pct', 'DOUBLE',
                   "The controls' change beyond trend over the same windows, percent (random-effects mean)."),
            Column('did_change_pct', 'DOUBLE',
                   'Difference in differences, percent: (1 + athlete) / (1 + controls) - 1 (difference on the log '
                   'scale); > 0 more economical than the teammates.'),
            Column('ci_low_pct', 'DOUBLE', 'Lower bound of its 95 % CI (athlete and controls SEs in quadrature).'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of its 95 % CI.'),
            Column('p_value', 'DOUBLE', 'Two-sided p-value of the difference.'),
            Column('n_pre_checks', 'INTEGER', 'Fake starts in the pre-period where the same estimate was computed.'),
            Column('n_pre_checks_nonzero', 'INTEGER', 'Of those, estimates whose 95 % CI excludes 0.'),
            Column('parallel_trends', 'VARCHAR',
                   'ok (no more fake starts whose CI excludes 0 than chance allows: the 95th percentile of '
                   'Binomial(n, 0.05), i.e. at most 1 of up to 7), violated, or not checked (no fake start fits in '
                   'the pre-period).'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id'),
    ),
    'squad_did_placebo': Relation(
        'squad_did_placebo', 'analysis',
        'The parallel-trends check of squad_did: the same difference-in-differences estimate at fake block starts in '
        'the pre-period (only runs before the real block), where it should find nothing.',
        (
            Column('athlete_id', 'VARCHAR', _ATHLETE),
            Column('block_id', 'VARCHAR', _BLOCK),
            Column('fake_start', 'DATE', 'The fake block start.'),
            Column('n_controls', 'INTEGER', 'Controls with an estimate at this fake start.'),
            Column('did_change_pct', 'DOUBLE', 'Difference in differences at the fake start, percent.'),
            Column('ci_low_pct', 'DOUBLE', 'Lower bound of its 95 % CI.'),
            Column('ci_high_pct', 'DOUBLE', 'Upper bound of its 95 % CI.'),
            Column('analysis_run_id', 'VARCHAR', _RUN_ID),
        ),
        primary_key=('athlete_id', 'block_id', 'fake_start'),
    ),
    'squad_dose_response': Relation(
        'squad_dose_response', 'analysis',
        'Dose-response: a random-effects meta-regression of the blocks\' estimates (squad_blocks) on one moderator '
        'at a time (few blocks cannot carry several): change_pct ~ intercept + slope x moderator.',
        (
            Column('moderator', 'VARCHAR',
                   'sessions_per_week, volume_kg_per_week, block_weeks or run_km_change_pct (squad_blocks columns).'),
            Column('meta_method', 'VARCHAR', 'reml_hksj or dersimonian_laird, as in squad_pooled.'),
            Column('k', 'INTEGER', 'Blocks with the moderator.'),
            Column('moderator_mean', 'DOUBLE', 'Mean of the moderator over those blocks (the intercept is there).'),
            Column('intercept_pct', 'DOUBLE', 'Fitted change at the moderator\'s mean, percent.'),
            Column('slope_pct_per_unit', 'DOUBLE',
                   'Change in the effect per unit of the moderator, percentage points (log scale x 100).'),
            Column('slope_ci_low', 'DOUBLE', 'Lower bound of the 95 % CI of the slope.'),
            Column('slope_ci_high', 'DOUBLE', 'Upper bound of the 95 % CI of the slope.'),
            Column('slope_p_value', 'DOUBLE', 'Two-sided p-value of the slope.'),
            Column('tau2', 'DOUBLE', 'Residual between-block variance, log scale.'),
            Column('computed_at', 'TIMESTAMPTZ', 'When the squad analysis ran (UTC).'),
        ),
        primary_key=('moderator', 'meta_method'),
    ),
    'runs': Relation(
        'runs', 'view',
        'Stable view: one row per running activity with its metrics and the facts from activities, for analysis '
        'in any client. Defined in pipeline/warehouse/views.sql.',
        (
            Column('activity_id', '', _ACTIVITY),
            Column('athlete_id', '', _ATHLETE),
            Column('run_date', '', 'Date of the run (UTC).'),
            Column('start_time', '', 'Start of the run (UTC).'),
            Column('sport', '', 'activities.sport (running).'),
            Column('sub_sport', '', 'activities.sub_sport (trail, treadmill, ...).'),
            Column('source_format', '', 'activities.source_format (fit, gpx, tcx).'),
            Column('distance_km', '', 'activities.distance_m / 1000.'),
            Column('duration_s', '', 'activities.elapsed_s (wall clock).'),
            Column('steady_s', '', 'run_metrics.steady_s.'),
            Column('speed_m_s', '', 'run_metrics.speed_m_s.'),
            Column('gap_speed_m_s', '', 'run_metrics.gap_speed_m_s.'),
            Column('heart_rate_bpm', '', 'run_metrics.heart_rate_bpm.'),
            Column('m_per_beat', '', 'run_metrics.m_per_beat.'),
            Column('gap_m_per_beat', '', 'run_metrics.gap_m_per_beat.'),
            Column('hr_at_ref_bpm', '', 'run_metrics.hr_at_ref_bpm.'),
            Column('economy_m_per_beat', '', 'run_metrics.economy_m_per_beat (headline economy index).'),
            Column('decoupling_pct', '', 'run_metrics.decoupling_pct.'),
            Column('temperature_c', '', 'run_metrics.temperature_c.'),
            Column('included', '', 'run_metrics.included.'),
            Column('exclusion_reason', '', 'run_metrics.exclusion_reason.'),
            Column('temperature_source', '',
                   'run_metrics.temperature_source (air | device | imputed | none).'),
            Column('heat_temperature_c', '',
                   'run_metrics.heat_temperature_c.'),
            Column('heat_adjustment_bpm', '',
                   'run_metrics.heat_adjustment_bpm.'),
        ),
    ),
    'runs_tidy': Relation(
        'runs_tidy', 'view',
        'Stable view for modelling: one row per running activity with its block and period label (baseline, ramp, '
        'response, other), included flag and reason, every metric and the covariates (temperature and its source, '
        'grade, duration, drift, device). Defined in pipeline/warehouse/views.sql.',
        (
            Column('activity_id', '', _ACTIVITY),
            Column('athlete_id', '', _ATHLETE),
            Column('run_date', '', 'Date of the run (UTC).'),
            Column('start_time', '', 'Start of the run (UTC).'),
            Column('block_id', '', 'The block whose window the run lies in (NULL for period other).'),
            Column('period', '',
                   'baseline (the window method\'s weeks before block start), ramp (block start to the response '
                   'window, adaptations building), response (the response window) or other. A run in windows of two '
                   'blocks takes response over baseline over ramp, then the later block.'),
            Column('weeks_from_block_start', '', 'Weeks from that block\'s start (negative before it); NULL for other.'),
            Column('included', '', 'run_metrics.included.'),
            Column('exclusion_reason', '', 'run_metrics.exclusion_reason.'),
            Column('economy_m_per_beat', '', 'Headline economy index (m per beat at the reference speed).'),
            Column('hr_at_ref_bpm', '', 'HR at the reference speed (bpm).'),
            Column('m_per_beat', '', 'Raw pace per heartbeat (m per beat).'),
            Column('gap_m_per_beat', '', 'Grade-adjusted pace per heartbeat (m per beat).'),
            Column('decoupling_pct', '', 'Aerobic decoupling (drift of pace per beat, first vs second half), %.'),
            Column('speed_m_s', '', 'Mean steady speed.'),
            Column('gap_speed_m_s', '', 'Mean steady grade-adjusted speed.'),
            Column('heart_rate_bpm', '', 'Mean steady heart rate.'),
            Column('steady_s', '', 'Steady seconds used.'),
            Column('duration_s', '', 'Elapsed duration of the run.'),
            Column('distance_km', '', 'Distance of the run.'),
            Column('temperature_c', '', 'Mean device temperature over the steady samples.'),
            Column('heat_temperature_c', '', 'Temperature the heat model uses (run_metrics.heat_temperature_c).'),
            Column('temperature_source', '', 'run_metrics.temperature_source (air | device | imputed | none).'),
            Column('heat_adjustment_bpm', '', 'run_metrics.heat_adjustment_bpm (bpm removed for heat).'),
            Column('climb_m_per_km', '', 'Ascent per km over the steady samples.'),
            Column('mean_abs_grade_pct', '', 'Mean absolute grade over the steady samples, %.'),
            Column('sub_sport', '', 'Sub-sport (trail, treadmill, ...).'),
            Column('device', '', 'activities.device.'),
            Column('source_format', '', 'activities.source_format (fit, gpx, tcx).'),
            Column('analysis_run_id', '', 'run_metrics.analysis_run_id (provenance).'),
        ),
    ),
    'block_summary': Relation(
        'block_summary', 'view',
        'Stable view: one row per strength block with its headline effect (metric economy_m_per_beat, method its),'
        " calibrated against the athlete's negative controls, beside it; the raw values follow. Defined in "
        'pipeline/warehouse/views.sql.',
        (
            Column('athlete_id', '', _ATHLETE),
            Column('block_id', '', _BLOCK),
            Column('label', '', 'strength_blocks.label.'),
            Column('source', '', 'strength_blocks.source (detected | declared).'),
            Column('start_date', '', 'strength_blocks.start_date.'),
            Column('end_date', '', 'strength_blocks.end_date.'),
            Column('weeks', '', 'Block length in weeks: (end_date - start_date + 1) / 7.'),
            Column('sessions', '', 'strength_blocks.sessions.'),
            Column('sessions_per_week', '', 'strength_blocks.sessions_per_week.'),
            Column('volume_kg', '', 'strength_blocks.volume_kg.'),
            Column('n_baseline', '',
                   'Headline effect: included runs in the baseline window (NULL when not estimated).'),
            Column('n_response', '', 'Headline effect: included runs in the response window.'),
            Column('change_pct', '',
                   'Headline effect, calibrated (block_effects.calibrated_change_pct; the raw value for rows '
                   'analysed before calibration existed): change in the economy index, percent (> 0 more '
                   'economical).'),
            Column('ci_low_pct', '',
                   'Headline effect: lower bound of the calibrated 95 % CI.'),
            Column('ci_high_pct', '',
                   'Headline effect: upper bound of the calibrated 95 % CI.'),
            Column('swc_pct', '', 'Headline effect: smallest worthwhile change.'),
            Column('verdict', '',
                   'Headline effect: the calibrated verdict (gain, loss, no clear change, cannot tell or '
                   'insufficient data).'),
            Column('verdict_reason', '',
                   'block_effects.verdict_reason: why, in words.'),
            Column('calibration_source', '',
                   'block_effects.calibration_source (own | squad | default).'),
            Column('n_controls', '',
                   'Negative controls of the athlete behind the calibration.'),
            Column('season_controlled', '',
                   'block_effects.season_controlled.'),
            Column('heat_controlled', '',
                   'block_effects.heat_controlled.'),
            Column('sensor_change', '',
                   'block_effects.sensor_change.'),
            Column('raw_change_pct', '',
                   'Headline effect before calibration (block_effects.change_pct).'),
            Column('raw_ci_low_pct', '',
                   'Lower bound of the raw 95 % CI.'),
            Column('raw_ci_high_pct', '',
                   'Upper bound of the raw 95 % CI.'),
            Column('raw_verdict', '',
                   'Verdict on the raw CI (block_effects.verdict).'),
        ),
    ),
    'monthly_economy': Relation(
        'monthly_economy', 'view',
        'Stable view: one row per athlete and calendar month with the median economy index of the included runs. '
        'Defined in pipeline/warehouse/views.sql.',
        (
            Column('athlete_id', '', _ATHLETE),
            Column('month', '', 'First day of the month (UTC).'),
            Column('runs', '', 'Running activities in the month (included or not).'),
            Column('included_runs', '', 'Included runs in the month.'),
            Column('run_km', '', 'Running distance in the month, all runs.'),
            Column('median_economy_m_per_beat', '', 'Median economy index over the included runs; NULL when none.'),
            Column('median_m_per_beat', '', 'Median raw pace per heartbeat over the included runs.'),
        ),
    ),
}

TABLES: dict[str, Relation] = {name: r for name, r in RELATIONS.items() if not r.is_view}
VIEW_NAMES: tuple[str, ...] = tuple(name for name, r in RELATIONS.items() if r.is_view)


def columns(name: str) -> list[str]:
    """Column names of a table or view, in schema order (KeyError names the unknown relation)."""
    return RELATIONS[name].column_names


def schema_sql() -> str:
    """DDL of every contract table, in contract order (idempotent: IF NOT EXISTS)."""
    return "\n\n".join(t.create_sql() for t in TABLES.values()) + "\n"
