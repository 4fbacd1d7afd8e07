"""Workspace resolution and athlete discovery (DESIGN.md, "Workspace and command line")."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.workspace import (
    DEFAULT_ATHLETE_ID,
    WORKSPACE_ENV,
    athlete_id_for,
    discover_athletes,
    load_athlete_config,
    resolve_workspace,
)


def test_option_beats_environment_beats_cwd(tmp_path, monkeypatch):
    opt, env, cwd = (tmp_path / name for name in ("opt", "env", "cwd"))
    for d in (opt, env, cwd):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv(WORKSPACE_ENV, str(env))
    assert resolve_workspace(opt).root == opt.resolve()
    assert resolve_workspace(None).root == env.resolve()
    monkeypatch.delenv(WORKSPACE_ENV)
    assert resolve_workspace(None).root == cwd.resolve()


def test_workspace_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(PipelineError, match="is a file, not a folder"):
        resolve_workspace(f)


def test_athletes_are_first_level_folders_and_loose_files_go_to_default(workspace):
    raw = workspace.raw_dir
    (raw / "ana" / "garmin" / "2024").mkdir(parents=True)
    (raw / "ana" / "garmin" / "2024" / "run.fit").write_bytes(b"x")
    (raw / "ben").mkdir()
    (raw / "ben" / "athlete.toml").write_text('display_name = "Ben"\n')  # config only: not data
    (raw / "loose.gpx").write_text("<gpx/>")
    (raw / "carl" / ".truth").mkdir(parents=True)
    (raw / "carl" / ".truth" / "truth.json").write_text("{}")  # hidden folder: not data
    (raw / "README.md").write_text("readme")

    assert discover_athletes(raw) == ["ana", DEFAULT_ATHLETE_ID]
    assert athlete_id_for(raw / "ana" / "garmin" / "2024" / "run.fit", raw) == "ana"
    assert athlete_id_for(raw / "loose.gpx", raw) == DEFAULT_ATHLETE_ID


def test_athlete_toml_values_and_validation(workspace):
    d = workspace.raw_dir / "ana"
    d.mkdir()
    (d / "athlete.toml").write_text(
        'display_name = "Ana R."\nhr_rest_bpm = 48\nhr_max_bpm = 188\nref_speed_m_s = 3.1\n'
        'time_zone = "Europe/Madrid"\nweight_unit = "lbs"\nshoe = "x"\n'
    )
    cfg = load_athlete_config(workspace.raw_dir, "ana")
    assert (cfg.name, cfg.hr_rest_bpm, cfg.hr_max_bpm, cfg.ref_speed_m_s) == ("Ana R.", 48, 188, 3.1)
    assert (cfg.time_zone, cfg.weight_unit, cfg.extra) == ("Europe/Madrid", "lbs", {"shoe": "x"})
    assert load_athlete_config(workspace.raw_dir, "nobody").name == "nobody"

    (d / "athlete.toml").write_text('hr_rest_bpm = "fifty"\n')
    with pytest.raises(PipelineError, match="hr_rest_bpm must be a number"):
        load_athlete_config(workspace.raw_dir, "ana")
    (d / "athlete.toml").write_text("hr_rest_bpm = \n")
    with pytest.raises(PipelineError, match="not valid TOML"):
        load_athlete_config(workspace.raw_dir, "ana")


def test_relative_paths_inside_and_outside(workspace, tmp_path_factory):
    inside = workspace.raw_dir / "a.fit"
    inside.write_bytes(b"")
    assert workspace.relative(inside) == "data/raw/a.fit"
    outside = Path(tmp_path_factory.mktemp("elsewhere")) / "b.fit"
    outside.write_bytes(b"")
    assert workspace.relative(outside) == outside.resolve().as_posix()
