-- Warehouse contract (DESIGN.md, "Warehouse contract"). Names are a public interface: add columns
-- freely, rename none without a migration (pipeline/warehouse/db.py, SCHEMA_VERSION).
-- Units are in column names; every time is TIMESTAMPTZ in UTC.

CREATE TABLE IF NOT EXISTS pipeline_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per athlete folder seen by ingest (settings from athlete.toml, all optional).
CREATE TABLE IF NOT EXISTS athletes (
    athlete_id     VARCHAR PRIMARY KEY,
    display_name   VARCHAR,
    hr_rest_bpm    DOUBLE,
    hr_max_bpm     DOUBLE,
    ref_speed_m_s  DOUBLE,
    time_zone      VARCHAR,
    updated_at     TIMESTAMPTZ
);

-- ---------------------------------------------------------------- staging (written by ingest)

-- One row per file seen by ingest (archive members included, path "archive.zip!member").
CREATE TABLE IF NOT EXISTS source_files (
    path         VARCHAR PRIMARY KEY,   -- relative to the workspace (posix), absolute if outside it
    file_id      VARCHAR NOT NULL,      -- sha256 of the file's bytes (hex)
    athlete_id   VARCHAR NOT NULL,
    format       VARCHAR,               -- fit, gpx, tcx, strong_csv, hevy_csv, fitnotes_csv, generic_csv, zip, ...
    size_bytes   BIGINT,
    status       VARCHAR NOT NULL,      -- ok | error | duplicate | skipped
    message      VARCHAR,               -- human-readable reason / summary
    ingested_at  TIMESTAMPTZ NOT NULL,
    n_activities INTEGER,
    n_samples    BIGINT,
    duplicate_of VARCHAR                -- activity_id or session_id this file duplicates
);

-- One row per recorded activity (a multisport FIT file gives several).
CREATE TABLE IF NOT EXISTS activities (
    activity_id        VARCHAR PRIMARY KEY,  -- stable across re-ingest
    athlete_id         VARCHAR NOT NULL,
    file_id            VARCHAR NOT NULL,
    sport              VARCHAR,              -- fitparse names (running, cycling, training...) or the raw number
    sub_sport          VARCHAR,
    start_time         TIMESTAMPTZ NOT NULL,
    elapsed_s          DOUBLE,
    timer_s            DOUBLE,
    distance_m         DOUBLE,
    avg_heart_rate_bpm DOUBLE,
    device             VARCHAR,
    name               VARCHAR,              -- title when the source gives one (Strava CSV, GPX <name>)
    source_format      VARCHAR,              -- fit | gpx | tcx
    session_index      INTEGER,              -- position of the session inside its file
    n_samples          INTEGER
);

-- One row per recorded point.
CREATE TABLE IF NOT EXISTS samples (
    activity_id    VARCHAR NOT NULL,
    athlete_id     VARCHAR NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,
    elapsed_s      DOUBLE,      -- seconds since the activity's start_time (wall clock, pauses included)
    lat_deg        DOUBLE,
    lon_deg        DOUBLE,
    altitude_m     DOUBLE,
    distance_m     DOUBLE,      -- cumulative
    speed_m_s      DOUBLE,      -- device speed (enhanced_* preferred); NULL when the source has none
    heart_rate_bpm DOUBLE,
    cadence_spm    DOUBLE,      -- running: steps/min (FIT strides/min x 2 + fractional)
    power_w        DOUBLE,
    temperature_c  DOUBLE
);

CREATE TABLE IF NOT EXISTS laps (
    activity_id        VARCHAR NOT NULL,
    lap_index          INTEGER NOT NULL,
    start_time         TIMESTAMPTZ,
    elapsed_s          DOUBLE,
    timer_s            DOUBLE,
    distance_m         DOUBLE,
    avg_heart_rate_bpm DOUBLE,
    avg_speed_m_s      DOUBLE,
    PRIMARY KEY (activity_id, lap_index)
);

CREATE TABLE IF NOT EXISTS strength_sessions (
    session_id    VARCHAR PRIMARY KEY,
    athlete_id    VARCHAR NOT NULL,
    start_time    TIMESTAMPTZ NOT NULL,
    duration_s    DOUBLE,
    title         VARCHAR,
    source_format VARCHAR,     -- strong_csv, hevy_csv, fitnotes_csv, generic_csv, fit
    file_id       VARCHAR NOT NULL,
    n_sets        INTEGER,
    n_working_sets INTEGER
);

CREATE TABLE IF NOT EXISTS strength_sets (
    session_id VARCHAR NOT NULL,
    set_index  INTEGER NOT NULL,   -- order within the session, from 0
    exercise   VARCHAR,
    category   VARCHAR,
    set_type   VARCHAR,            -- warmup | working | drop | failure
    reps       INTEGER,
    weight_kg  DOUBLE,
    duration_s DOUBLE,
    rpe        DOUBLE,
    distance_m DOUBLE,
    PRIMARY KEY (session_id, set_index)
);

-- Strength blocks the athlete declared in data/raw/<athlete>/blocks.csv (label,start,end); they win over
-- detected blocks in strength_blocks.
CREATE TABLE IF NOT EXISTS declared_blocks (
    athlete_id VARCHAR NOT NULL,
    label      VARCHAR NOT NULL,
    start_date DATE NOT NULL,
    end_date   DATE NOT NULL,
    PRIMARY KEY (athlete_id, label, start_date)
);

-- ---------------------------------------------------------------- analysis (written by analyze)

CREATE TABLE IF NOT EXISTS strength_blocks (
    athlete_id        VARCHAR NOT NULL,
    block_id          VARCHAR NOT NULL,
    start_date        DATE NOT NULL,
    end_date          DATE NOT NULL,
    sessions          INTEGER,
    sessions_per_week DOUBLE,
    volume_kg         DOUBLE,      -- volume load, sum of weight_kg x reps over non-warm-up sets
    source            VARCHAR,     -- detected | declared
    label             VARCHAR,
    PRIMARY KEY (athlete_id, block_id)
);

CREATE TABLE IF NOT EXISTS run_metrics (
    activity_id        VARCHAR PRIMARY KEY,
    athlete_id         VARCHAR NOT NULL,
    start_time         TIMESTAMPTZ NOT NULL,
    sub_sport          VARCHAR,
    duration_s         DOUBLE,
    distance_km        DOUBLE,
    steady_s           DOUBLE,      -- seconds of steady, clean samples used for the metrics
    speed_m_s          DOUBLE,      -- mean speed over steady samples
    gap_speed_m_s      DOUBLE,      -- mean grade-adjusted speed (Minetti 2002)
    heart_rate_bpm     DOUBLE,      -- mean HR over steady samples
    m_per_beat         DOUBLE,      -- speed (m/min) / HR (bpm)
    gap_m_per_beat     DOUBLE,
    hr_at_ref_bpm      DOUBLE,      -- model HR at the athlete's reference speed, drift- and heat-adjusted
    economy_m_per_beat DOUBLE,      -- headline: v_ref * 60 / hr_at_ref_bpm
    decoupling_pct     DOUBLE,
    temperature_c      DOUBLE,
    included           BOOLEAN NOT NULL,
    exclusion_reason   VARCHAR
);

CREATE TABLE IF NOT EXISTS weekly (
    athlete_id         VARCHAR NOT NULL,
    week_start         DATE NOT NULL,   -- Monday
    runs               INTEGER,
    run_km             DOUBLE,
    strength_sessions  INTEGER,
    economy_m_per_beat DOUBLE,          -- median over included runs of the week
    PRIMARY KEY (athlete_id, week_start)
);

CREATE TABLE IF NOT EXISTS block_effects (
    athlete_id     VARCHAR NOT NULL,
    block_id       VARCHAR NOT NULL,
    metric         VARCHAR NOT NULL,  -- economy_m_per_beat | m_per_beat | gap_m_per_beat | hr_at_ref_bpm | decoupling_pct
    method         VARCHAR NOT NULL,  -- window | its
    baseline_start DATE,
    baseline_end   DATE,
    response_start DATE,
    response_end   DATE,
    n_baseline     INTEGER,
    n_response     INTEGER,
    baseline_value DOUBLE,
    response_value DOUBLE,
    change_pct     DOUBLE,            -- > 0 always means more economical
    ci_low_pct     DOUBLE,
    ci_high_pct    DOUBLE,
    p_value        DOUBLE,
    swc_pct        DOUBLE,
    verdict        VARCHAR,           -- gain | loss | no clear change | insufficient data
    PRIMARY KEY (athlete_id, block_id, metric, method)
);

-- Placebo check: the same estimator at fake block starts inside the baseline period.
CREATE TABLE IF NOT EXISTS placebo_checks (
    athlete_id  VARCHAR NOT NULL,
    block_id    VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    method      VARCHAR NOT NULL,
    fake_start  DATE NOT NULL,
    change_pct  DOUBLE,
    ci_low_pct  DOUBLE,
    ci_high_pct DOUBLE,
    verdict     VARCHAR,
    PRIMARY KEY (athlete_id, block_id, metric, method, fake_start)
);

-- One row per athlete per `pipeline analyze`: whether its analysis succeeded and, if not, why. Kept as a
-- history (the latest row per athlete is its current state). Provenance columns (pipeline_version,
-- settings_json, input_fingerprint) are to be added here as plain nullable columns.
CREATE TABLE IF NOT EXISTS analysis_runs (
    athlete_id  VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,   -- ok | error
    message     VARCHAR,            -- ok: what was analysed; error: the reason, with the activity/file(s) involved
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (athlete_id, started_at)
);
