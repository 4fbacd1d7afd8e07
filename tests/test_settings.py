"""Every setting is validated with a message naming the file and the key: pipeline.toml [analysis] and
[blocks], athlete.toml, blocks.csv. Files are written as a user would write them (TOML accepts inf and
nan literally) and read through the same functions the commands use."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.analyze.params import AnalysisParams, setting_bounds
from pipeline.cli import cli
from pipeline.errors import PipelineError
from pipeline.analyze.blocks import BlockParams
from pipeline.ingest.declared_blocks import read_declared_blocks
from pipeline.workspace import load_athlete_config


def _analysis(workspace, body: str) -> AnalysisParams:
    (workspace.root / "pipeline.toml").write_text(body)
    config = workspace.pipeline_config()
    return AnalysisParams.from_config(config.get("analysis"))


@pytest.mark.parametrize("body, message", [
    ("[analysis]\nbaseline_weeks = inf\n",
     "pipeline.toml [analysis]: baseline_weeks = inf is not a finite number (must be above 0 and at most 104 weeks)"),
    ("[analysis]\nits_pre_weeks = 1e300\n",
     "pipeline.toml [analysis]: its_pre_weeks = 1e+300 is out of range (must be above 0 and at most 520 weeks)"),
    ("[analysis]\nswc_pct = nan\n",
     "pipeline.toml [analysis]: swc_pct = nan is not a finite number (must be at least 0 and at most 100 %)"),
    ("[analysis]\nwarmup_s = -60\n",
     "pipeline.toml [analysis]: warmup_s = -60 is out of range (must be at least 0 and at most 604800 s)"),
    ("[analysis]\nhr_min_bpm = 200\nhr_max_bpm = 120\n",
     "pipeline.toml [analysis]: hr_min_bpm (200) must be below hr_max_bpm (120)"),
    ("[analysis]\nmin_speed_m_s = 5.0\nmax_speed_m_s = 2.0\n",
     "pipeline.toml [analysis]: min_speed_m_s (5) must be below max_speed_m_s (2)"),
    ("[analysis]\nunknown_sport_speed_range_m_s = [6.5, 1.6]\n",
     "pipeline.toml [analysis]: unknown_sport_speed_range_m_s = [6.5, 1.6] must be increasing"),
    ("[analysis]\nmin_runs = 2.5\n", "pipeline.toml [analysis]: min_runs = 2.5 must be a whole number"),
    ("[analysis]\nmin_runs = inf\n",
     "pipeline.toml [analysis]: min_runs = inf is not a finite number (must be at least 1 and at most 100000)"),
    ("[analysis]\nswc_pct = true\n", "pipeline.toml [analysis]: swc_pct must be a number, got True"),
    ('[analysis]\nswc_pct = "1"\n', "pipeline.toml [analysis]: swc_pct must be a number, got '1'"),
    ("[analysis]\nci_level = 1\n",
     "pipeline.toml [analysis]: ci_level = 1 is out of range (must be above 0 and at most 0.999 (fraction))"),
    ('[analysis]\nheat_method = 5\n', "pipeline.toml [analysis]: heat_method must be a str, got 5"),
    ("analysis = 5\n", "pipeline.toml: [analysis] must be a table of settings (a [analysis] header with "
                       "key = value lines), got 5"),
])
def test_analysis_settings_rejected_with_file_and_key(workspace, body, message):
    with pytest.raises(PipelineError) as e:
        _analysis(workspace, body)
    assert str(e.value) == message


def test_valid_analysis_settings_and_generic_bounds(workspace):
    p = _analysis(workspace, "[analysis]\nmin_runs = 10.0\nswc_pct = 0.5\nref_speed_margin_m_s = 1.5\n")
    assert (p.min_runs, p.swc_pct, p.ref_speed_margin_m_s) == (10, 0.5, 1.5)
    assert isinstance(p.min_runs, int)
    AnalysisParams().validate()        # every default lies inside its own bounds
    # A setting added later is checked by its unit suffix without an entry of its own.
    assert setting_bounds("season_window_weeks").high == 520
    assert setting_bounds("some_new_speed_m_s").high == 12
    assert setting_bounds("a_new_count", whole=True).whole


def test_binary_and_broken_settings_files_are_one_line(workspace):
    (workspace.root / "pipeline.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    with pytest.raises(PipelineError) as e:
        workspace.pipeline_config()
    assert str(e.value) == "pipeline.toml: not a TOML text file (byte 0x89 at position 0 is not UTF-8)"
    (workspace.root / "pipeline.toml").write_text("[analysis\nswc_pct = 1\n")
    with pytest.raises(PipelineError) as e:
        workspace.pipeline_config()
    assert str(e.value).startswith("pipeline.toml: not valid TOML (") and "\n" not in str(e.value)


def test_cli_prints_the_settings_error_as_one_line(workspace):
    (workspace.root / "pipeline.toml").write_text("[analysis]\nbaseline_weeks = inf\n")
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "analyze"])
    assert result.exit_code == 1
    assert result.output == ("Error: pipeline.toml [analysis]: baseline_weeks = inf is not a finite number "
                             "(must be above 0 and at most 104 weeks)\n")


@pytest.mark.parametrize("body, message", [
    ("ref_speed_m_s = 0\n", "ref_speed_m_s = 0 is out of range (must be at least 1 and at most 7 m/s)"),
    ("ref_speed_m_s = -3\n", "ref_speed_m_s = -3 is out of range (must be at least 1 and at most 7 m/s)"),
    ("ref_speed_m_s = nan\n", "ref_speed_m_s = nan is not a finite number (must be at least 1 and at most 7 m/s)"),
    ("hr_max_bpm = inf\n", "hr_max_bpm = inf is not a finite number (must be at least 100 and at most 250 bpm)"),
    ("hr_rest_bpm = 60\nhr_max_bpm = 55.5\n",
     "hr_max_bpm = 55.5 is out of range (must be at least 100 and at most 250 bpm)"),
    ("hr_rest_bpm = 110\nhr_max_bpm = 105\n", "hr_rest_bpm (110) must be below hr_max_bpm (105)"),
    ('hr_rest_bpm = "fifty"\n', "hr_rest_bpm must be a number, got 'fifty'"),
    ('time_zone = "Mars/Olympus"\n', "time_zone 'Mars/Olympus' is not a known IANA time zone (e.g. 'Europe/Madrid')"),
    ("time_zone = 1\n", "time_zone must be a non-empty text in quotes, got 1"),
    ('weight_unit = "stone"\n', "weight_unit must be 'kg' or 'lbs', got 'stone'"),
])
def test_athlete_toml_rejected_with_file_and_key(workspace, body, message):
    (workspace.raw_dir / "ana").mkdir()
    (workspace.raw_dir / "ana" / "athlete.toml").write_text(body)
    with pytest.raises(PipelineError) as e:
        load_athlete_config(workspace.raw_dir, "ana")
    assert str(e.value) == f"data/raw/ana/athlete.toml: {message}"


def test_binary_athlete_toml_is_one_line_naming_the_file(workspace):
    (workspace.raw_dir / "ana").mkdir()
    (workspace.raw_dir / "ana" / "athlete.toml").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(PipelineError) as e:
        load_athlete_config(workspace.raw_dir, "ana")
    assert str(e.value) == "data/raw/ana/athlete.toml: not a TOML text file (byte 0x80 at position 128 is not UTF-8)"
    # Valid UTF-8 that is not TOML (a CSV saved under the wrong name) names the file too, on one line.
    (workspace.raw_dir / "ana" / "athlete.toml").write_text("label,start,end\nA,2025-01-06,2025-03-16\n")
    with pytest.raises(PipelineError) as e:
        load_athlete_config(workspace.raw_dir, "ana")
    assert str(e.value).startswith("data/raw/ana/athlete.toml: not valid TOML (") and "\n" not in str(e.value)


@pytest.mark.parametrize("section, message", [
    ({"blocks": 5}, "pipeline.toml: [blocks] must be a table of settings (a [blocks] header with key = value "
                    "lines), got 5"),
    ({"blocks": {"min_weeks": float("inf")}},
     "pipeline.toml [blocks]: min_weeks = inf is not a finite number (must be above 0 and at most 104 weeks)"),
    ({"blocks": {"min_sessions_per_week": float("nan")}},
     "pipeline.toml [blocks]: min_sessions_per_week = nan is not a finite number (must be above 0 and at most "
     "14 sessions per week)"),
    ({"blocks": {"max_gap_days": 1e300}},
     "pipeline.toml [blocks]: max_gap_days = 1e+300 is out of range (must be above 0 and at most 365 days)"),
    ({"blocks": {"min_weeks": -4}},
     "pipeline.toml [blocks]: min_weeks = -4 is out of range (must be above 0 and at most 104 weeks)"),
])
def test_blocks_settings_rejected_with_key(section, message):
    with pytest.raises(PipelineError) as e:
        BlockParams.from_config(section)
    assert str(e.value) == message


def test_blocks_csv_rejects_bad_rows_and_overlaps_and_keeps_the_rest():
    data = ("label,start,end\n"
            "Winter,2025-01-06,2025-03-16\n"
            "Plyo,2025-03-01,2025-04-15\n"            # overlaps Winter: rejected, Winter kept
            "Backwards,2025-08-01,2025-07-01\n"
            "Typo,0205-05-05,0205-06-29\n"
            "Summer,2025-05-05,2025-06-29\n").encode()
    read = read_declared_blocks(data, path="data/raw/ana/blocks.csv", athlete_id="ana")
    assert read.blocks["label"].tolist() == ["Winter", "Summer"]
    assert read.problems == [
        "data/raw/ana/blocks.csv row 3: block 'Plyo' (2025-03-01 to 2025-04-15) overlaps block 'Winter' "
        "(row 2, 2025-01-06 to 2025-03-16); row ignored",
        "data/raw/ana/blocks.csv row 4: end 2025-07-01 is before start 2025-08-01; row ignored",
        "data/raw/ana/blocks.csv row 5: dates must lie between 1970 and 2100 (start 0205-05-05, end 0205-06-29); "
        "row ignored",
    ]


def test_settings_that_leave_no_run_included_give_a_hint(workspace):
    from dataclasses import replace

    from pipeline.analyze.run import analyze_workspace
    from pipeline.demo.simulate import PROFILES, simulate_athlete
    from pipeline.demo.write import write_athlete
    from pipeline.ingest.run import ingest_paths

    athlete = simulate_athlete(replace(PROFILES["null"], weeks=2, block_start_week=1, sporadic_strength_weeks=()),
                               7, sample_interval_s=15.0, athlete_id="ana")
    write_athlete(athlete, workspace.raw_dir)
    ingest_paths(workspace, None, jobs=1, progress=False)
    (workspace.root / "pipeline.toml").write_text("[analysis]\nmin_steady_s = 7200\n")
    text = analyze_workspace(workspace).render()
    n = len(athlete.activities)
    assert f"  ana: 0 of {n} runs included" in text
    assert ("      hint: no run is included, so there is no economy index; check the settings in pipeline.toml "
            "(min_steady_s = 7200.0) and the reasons above (docs/analysis.md, 'Cleaning')") in text
    (workspace.root / "pipeline.toml").write_text("")
    text = analyze_workspace(workspace).render()
    assert "hint:" not in text and f"ana: {n} of {n} runs included" in text
