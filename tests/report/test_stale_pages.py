"""A full report build removes the page folders of athletes the warehouse no longer holds, and nothing else."""

from __future__ import annotations

from pipeline.report.build import remove_stale_pages


def test_only_page_folders_of_departed_athletes_are_removed(tmp_path):
    reports = tmp_path / "reports"
    for name, files in {"kept": ["index.html", "economy_timeline.png"],
                        "gone": ["index.html", "economy_timeline.png", "hr_vs_speed.png"],
                        "notes": ["index.html", "my_notes.txt"],        # someone else's file inside: left
                        "assets": ["logo.png"]}.items():                  # no page of ours: left
        (reports / name).mkdir(parents=True)
        for f in files:
            (reports / name / f).write_text("x")
    (reports / "index.html").write_text("squad")
    assert remove_stale_pages(reports, ["kept"]) == ["gone"]
    assert sorted(p.name for p in reports.iterdir()) == ["assets", "index.html", "kept", "notes"]
    assert remove_stale_pages(tmp_path / "nowhere", []) == []
