"""What each report page was built from, so ``pipeline report`` rebuilds only pages whose inputs changed.

A page is a pure function of the data it shows (an athlete's :class:`~pipeline.report.data.AthleteReportData`;
for the squad page every athlete's data and the squad tables) and of the report code. Its digest is one
digest per input frame (:func:`pipeline.digest.frame_digest`) plus the code's
(:func:`pipeline.digest.code_digest` of the report package, its templates and the contract). The digests of
the pages as built are kept in ``reports/.build-manifest.json``, with the files each page wrote; a page is
rebuilt when its digest differs, when a file it wrote is missing, or with ``--force``. Reading the data
is cheap (the analysis tables only); drawing the figures is what this saves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.digest import code_digest, frame_digest, parts_digest

MANIFEST_NAME = ".build-manifest.json"
REPORT_CODE = ("report", "warehouse/contract.py", "formulas.py")
SQUAD_PAGE = "_squad"          # the manifest key of reports/index.html (athlete ids cannot start with '_')


# Columns no page shows: a re-analysis that gives the same numbers names them anew, and must not count.
NOT_SHOWN = ["analysis_run_id"]


def shown_analysis_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """What a page shows of an athlete's ``analysis_runs`` history (latest first): the latest row's status
    and message (the error box), and the latest ok row's version, settings and day (the footer). Every
    ``pipeline analyze`` adds a row, so the whole history would make a re-analysis with the same numbers
    look like new data."""
    if not len(runs):
        return runs
    latest, ok = runs.iloc[0], runs[runs["status"] == "ok"]
    shown = {"status": latest["status"], "message": latest["message"]}
    if len(ok):
        run = ok.iloc[0]
        shown |= {"pipeline_version": run["pipeline_version"], "settings_json": run["settings_json"],
                  "analysed_day": str(pd.Timestamp(run["finished_at"]).date()) if pd.notna(run["finished_at"])
                  else None}
    return pd.DataFrame([shown])


def data_digest(data) -> str:
    """Digest of a dataclass of frames and values (e.g. AthleteReportData), or a dict of frames."""
    items = (data.items() if isinstance(data, dict)
             else ((f.name, getattr(data, f.name)) for f in dataclasses.fields(data)))
    return parts_digest({name: frame_digest(_shown(name, v).drop(columns=NOT_SHOWN, errors="ignore"))
                         if isinstance(v, pd.DataFrame) else repr(v) for name, v in items})


def _shown(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    return shown_analysis_runs(frame) if name == "analysis_runs" else frame


def page_digest(*inputs) -> str:
    """A page's digest: its inputs' (see :func:`data_digest`) and the report code's."""
    return parts_digest({"data": parts_digest({str(i): data_digest(x) for i, x in enumerate(inputs)}),
                         "code": code_digest(*REPORT_CODE)})


class Manifest:
    """The pages of ``reports/`` as last built: key -> {digest, files}."""

    def __init__(self, reports_dir: Path):
        self.path = reports_dir / MANIFEST_NAME
        self.reports_dir = reports_dir
        try:
            self.pages: dict[str, dict] = json.loads(self.path.read_text(encoding="utf-8")).get("pages", {})
        except (OSError, ValueError, AttributeError):
            self.pages = {}

    def is_current(self, key: str, digest: str) -> bool:
        """Built from these inputs, and every file it wrote still there."""
        entry = self.pages.get(key)
        return (entry is not None and entry.get("digest") == digest
                and all((self.reports_dir / f).exists() for f in entry.get("files", [])))

    def record(self, key: str, digest: str, files: list[Path]) -> None:
        self.pages[key] = {"digest": digest,
                           "files": sorted(f.relative_to(self.reports_dir).as_posix() for f in files)}

    def forget(self, key: str) -> None:
        self.pages.pop(key, None)

    def save(self) -> None:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"pages": self.pages}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass
class ReportSummary:
    """What ``pipeline report`` did: pages written, pages up to date (inputs unchanged), the time taken."""

    index: Path
    written: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    squad: str = ""
    seconds: float = float("nan")
    cpu_seconds: float = float("nan")

    def render(self) -> str:
        parts = [f"{len(self.written)} athlete page(s) written"]
        if self.up_to_date:
            parts.append(f"{len(self.up_to_date)} up to date (data unchanged; --force rebuilds them)")
        parts.append(f"squad page {self.squad}")
        timing = f" in {self.seconds:.1f} s (CPU {self.cpu_seconds:.1f} s)" if math.isfinite(self.seconds) else ""
        return f"Report: {', '.join(parts)}{timing}: {self.index}"
