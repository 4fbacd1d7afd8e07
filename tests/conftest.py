"""Shared fixtures: the real-file corpus and throw-away workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
# The corpus lives beside the project (../shared/corpus) and is never copied into it.
CORPUS_DIR = (REPO_ROOT / ".." / "shared" / "corpus").resolve()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS_DIR / "CORPUS.tsv").exists():
        pytest.skip(f"real-file corpus not found at {CORPUS_DIR} (CI always has it)")
    return CORPUS_DIR


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty workspace with the standard folders."""
    ws = Workspace(tmp_path.resolve())
    ws.raw_dir.mkdir(parents=True)
    ws.processed_dir.mkdir(parents=True)
    ws.reports_dir.mkdir(parents=True)
    return ws
