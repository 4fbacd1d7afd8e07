-- Stable views for people who query the warehouse directly (docs/warehouse.md, "Views").
-- They read only the contract tables (pipeline/warehouse/contract.py); their names and columns are a public interface like
-- the tables' (add columns freely, rename none without a migration). ensure_schema re-creates them.

-- runs: one row per running activity, metrics beside the facts of the activity.
CREATE OR REPLACE VIEW runs AS
WITH metrics AS (
    SELECT * FROM run_metrics
),
activity_facts AS (
    SELECT activity_id, sport, sub_sport, source_format, distance_m, elapsed_s
    FROM activities
)
SELECT
    metrics.activity_id,
    metrics.athlete_id,
    -- AT TIME ZONE 'UTC': dates and months are UTC whatever the client's TimeZone setting.
    CAST(metrics.start_time AT TIME ZONE 'UTC' AS DATE)     AS run_date,
    metrics.start_time,
    activity_facts.sport,
    coalesce(activity_facts.sub_sport, metrics.sub_sport)    AS sub_sport,
    activity_facts.source_format,
    coalesce(activity_facts.distance_m / 1000.0, metrics.distance_km) AS distance_km,
    coalesce(activity_facts.elapsed_s, metrics.duration_s)   AS duration_s,
    metrics.steady_s,
    metrics.speed_m_s,
    metrics.gap_speed_m_s,
    metrics.heart_rate_bpm,
    metrics.m_per_beat,
    metrics.gap_m_per_beat,
    metrics.hr_at_ref_bpm,
    metrics.economy_m_per_beat,
    metrics.decoupling_pct,
    metrics.temperature_c,
    metrics.included,
    metrics.exclusion_reason,
    metrics.temperature_source,
    metrics.heat_temperature_c,
    metrics.heat_adjustment_bpm
FROM metrics
LEFT JOIN activity_facts USING (activity_id);

-- block_summary: each strength block with its headline effect (economy index, interrupted time series),
-- calibrated against the athlete's negative controls; the raw (uncalibrated) values beside it.
CREATE OR REPLACE VIEW block_summary AS
WITH headline_effects AS (
    SELECT *
    FROM block_effects
    WHERE metric = 'economy_m_per_beat' AND method = 'its'
)
SELECT
    blocks.athlete_id,
    blocks.block_id,
    blocks.label,
    blocks.source,
    blocks.start_date,
    blocks.end_date,
    round((blocks.end_date - blocks.start_date + 1) / 7.0, 1) AS weeks,
    blocks.sessions,
    blocks.sessions_per_week,
    blocks.volume_kg,
    headline_effects.n_baseline,
    headline_effects.n_response,
    coalesce(headline_effects.calibrated_change_pct, headline_effects.change_pct)   AS change_pct,
    coalesce(headline_effects.calibrated_ci_low_pct, headline_effects.ci_low_pct)   AS ci_low_pct,
    coalesce(headline_effects.calibrated_ci_high_pct, headline_effects.ci_high_pct) AS ci_high_pct,
    headline_effects.swc_pct,
    coalesce(headline_effects.calibrated_verdict, headline_effects.verdict)         AS verdict,
    headline_effects.verdict_reason,
    headline_effects.calibration_source,
    headline_effects.n_controls,
    headline_effects.season_controlled,
    headline_effects.heat_controlled,
    headline_effects.sensor_change,
    headline_effects.change_pct   AS raw_change_pct,
    headline_effects.ci_low_pct   AS raw_ci_low_pct,
    headline_effects.ci_high_pct  AS raw_ci_high_pct,
    headline_effects.verdict      AS raw_verdict
FROM strength_blocks AS blocks
LEFT JOIN headline_effects USING (athlete_id, block_id);

-- monthly_economy: the economy trend at a glance, one row per athlete and month.
CREATE OR REPLACE VIEW monthly_economy AS
WITH runs_by_month AS (
    SELECT
        athlete_id,
        CAST(date_trunc('month', start_time AT TIME ZONE 'UTC') AS DATE) AS month,
        included,
        distance_km,
        economy_m_per_beat,
        m_per_beat
    FROM run_metrics
)
SELECT
    athlete_id,
    month,
    count(*)                                                   AS runs,
    count(*) FILTER (WHERE included)                           AS included_runs,
    sum(distance_km)                                           AS run_km,
    median(economy_m_per_beat) FILTER (WHERE included)         AS median_economy_m_per_beat,
    median(m_per_beat) FILTER (WHERE included)                 AS median_m_per_beat
FROM runs_by_month
GROUP BY athlete_id, month;

-- runs_tidy: one row per run for modelling, labelled with the period it lies in around a strength block.
-- Periods come from each block's window-method dates in block_effects (baseline = the weeks before the block,
-- response = the response window, ramp = in between); runs outside every window are 'other'.
CREATE OR REPLACE VIEW runs_tidy AS
WITH windows AS (
    SELECT effects.athlete_id, effects.block_id, blocks.start_date AS block_start,
           effects.baseline_start, effects.baseline_end, effects.response_start, effects.response_end
    FROM block_effects AS effects
    JOIN strength_blocks AS blocks USING (athlete_id, block_id)
    WHERE effects.metric = 'economy_m_per_beat' AND effects.method = 'window'
),
run_dates AS (
    SELECT activity_id, athlete_id, CAST(start_time AT TIME ZONE 'UTC' AS DATE) AS run_date
    FROM run_metrics
),
labelled AS (
    SELECT run_dates.activity_id, windows.block_id, windows.block_start, run_dates.run_date,
           CASE WHEN run_date >= response_start AND run_date < response_end THEN 'response'
                WHEN run_date >= baseline_start AND run_date < baseline_end THEN 'baseline'
                WHEN run_date >= block_start AND run_date < response_start THEN 'ramp' END AS period
    FROM run_dates JOIN windows USING (athlete_id)
),
best AS (
    SELECT activity_id, block_id, block_start, run_date, period,
           row_number() OVER (PARTITION BY activity_id
                              ORDER BY CASE period WHEN 'response' THEN 0 WHEN 'baseline' THEN 1 ELSE 2 END,
                                       block_start DESC) AS rank_in_run
    FROM labelled
    WHERE period IS NOT NULL
)
SELECT
    metrics.activity_id,
    metrics.athlete_id,
    CAST(metrics.start_time AT TIME ZONE 'UTC' AS DATE)       AS run_date,
    metrics.start_time,
    best.block_id,
    coalesce(best.period, 'other')                            AS period,
    round((best.run_date - best.block_start) / 7.0, 2)        AS weeks_from_block_start,
    metrics.included,
    metrics.exclusion_reason,
    metrics.economy_m_per_beat,
    metrics.hr_at_ref_bpm,
    metrics.m_per_beat,
    metrics.gap_m_per_beat,
    metrics.decoupling_pct,
    metrics.speed_m_s,
    metrics.gap_speed_m_s,
    metrics.heart_rate_bpm,
    metrics.steady_s,
    coalesce(activity.elapsed_s, metrics.duration_s)          AS duration_s,
    coalesce(activity.distance_m / 1000.0, metrics.distance_km) AS distance_km,
    metrics.temperature_c,
    metrics.heat_temperature_c,
    metrics.temperature_source,
    metrics.heat_adjustment_bpm,
    metrics.climb_m_per_km,
    metrics.mean_abs_grade_pct,
    coalesce(activity.sub_sport, metrics.sub_sport)           AS sub_sport,
    activity.device,
    activity.source_format,
    metrics.analysis_run_id
FROM run_metrics AS metrics
LEFT JOIN best ON best.activity_id = metrics.activity_id AND best.rank_in_run = 1
LEFT JOIN activities AS activity ON activity.activity_id = metrics.activity_id;
