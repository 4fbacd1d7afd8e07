"""Warehouse fixtures: a small contract-shaped warehouse, built once per session and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def populated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse file holding tests/warehouse/fixtures/populated.sql (never modified by tests)."""
    ws = Workspace(tmp_path_factory.mktemp("populated").resolve())
    con = connect(ws)
    try:
        con.execute((FIXTURES / "populated.sql").read_text(encoding="utf-8"))
    finally:
        con.close()
    return ws.warehouse_path


@pytest.fixture
def populated_ws(workspace: Workspace, populated_template: Path) -> Workspace:
    """A workspace whose warehouse is a fresh copy of the populated template (tests may change it)."""
    shutil.copyfile(populated_template, workspace.warehouse_path)
    return workspace
