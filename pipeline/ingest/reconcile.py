"""Reconciliation: the warehouse is a function of ``data/raw/``.

Every ingest of ``data/raw`` (``pipeline ingest`` without a PATH, ``pipeline run``, ``make report``):

1. **gone files** (:func:`gone_paths`, :func:`remove_files`): a ``source_files`` row under ``data/raw/``
   whose file (or archive member) is no longer there loses its row and every row it wrote. A changed file
   is replaced when it is loaded again (:func:`pipeline.ingest.load.load_parsed`).
2. **promotion** (:func:`shadowed_paths`): a file that was a duplicate of (or partly shadowed by) data
   that is now gone is read again, so its data takes the place of what went (rows record what shadowed
   them in ``source_files.shadowed_by``).
3. **gone athletes** (:func:`remove_gone_athletes`): an athlete with no file left (its folder removed)
   leaves every table, staging and analysis (its report folder is removed by the report step).

Files ingested from outside ``data/raw/`` with an explicit ``pipeline ingest PATH`` are additive: the
reconciliation never removes them (docs/ingest.md, "Reconciliation").
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.ingest.discover import Discovery, KnownFiles
from pipeline.ingest.parsed import UNCHANGED
from pipeline.warehouse.db import transaction
from pipeline.warehouse.lifecycle import delete_activities, delete_athlete_rows, warehouse_athletes
from pipeline.workspace import Workspace


def raw_prefix(ws: Workspace) -> str:
    """How paths under ``data/raw/`` start in ``source_files.path``."""
    return ws.relative(ws.raw_dir).rstrip("/") + "/"


def gone_paths(ws: Workspace, found: Discovery, known: KnownFiles) -> list[str]:
    """Stored paths under ``data/raw/`` that this discovery no longer finds (members of unchanged
    archives, which are not listed again, and files in folders of a URL root that could not be listed
    count as found)."""
    prefix = raw_prefix(ws)
    seen = found.seen_paths()
    kept = tuple(r.path + "!" for r in found.archive_rows if r.status == UNCHANGED) + tuple(found.kept_prefixes)
    return sorted(p for p in known if p.startswith(prefix) and p not in seen and not (kept and p.startswith(kept)))


_OWNED_ACTIVITIES = "SELECT a.activity_id FROM activities a JOIN _gone_owned USING (athlete_id, file_id)"
_OWNED_SESSIONS = "SELECT s.session_id FROM strength_sessions s JOIN _gone_owned USING (athlete_id, file_id)"


def remove_files(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[str]:
    """Delete the rows of ``paths`` in bulk, one transaction (as :func:`pipeline.ingest.load.delete_file_rows`
    does for one path: data rows only for the file holding them); returns the ids removed."""
    if not paths:
        return []
    con.register("_gone_paths", pd.DataFrame({"path": paths}, dtype=object))
    try:
        with transaction(con):
            con.execute("CREATE OR REPLACE TEMP TABLE _gone_owned AS SELECT DISTINCT f.athlete_id, f.file_id "
                        "FROM source_files f JOIN _gone_paths USING (path) WHERE f.status = 'ok'")
            removed = [r[0] for r in con.execute(f"{_OWNED_ACTIVITIES} UNION ALL {_OWNED_SESSIONS}").fetchall()]
            con.execute(f"CREATE OR REPLACE TEMP TABLE _gone_activities AS {_OWNED_ACTIVITIES}")
            delete_activities(con, "SELECT activity_id FROM _gone_activities", [])
            for sql in (f"DELETE FROM strength_sets WHERE session_id IN ({_OWNED_SESSIONS})",
                        f"DELETE FROM strength_sessions WHERE session_id IN ({_OWNED_SESSIONS})",
                        "DELETE FROM source_files WHERE path IN (SELECT path FROM _gone_paths)",
                        "DELETE FROM source_versions WHERE path IN (SELECT path FROM _gone_paths)",
                        "DROP TABLE _gone_owned", "DROP TABLE _gone_activities"):
                con.execute(sql)
    finally:
        con.unregister("_gone_paths")
    return removed


_SHADOWED_SQL = """
WITH refs AS (
    SELECT path, unnest(coalesce(shadowed_by,
                                 CASE WHEN duplicate_of IS NULL THEN []::VARCHAR[] ELSE [duplicate_of] END)) AS ref
    FROM source_files WHERE status IN ('ok', 'duplicate')
)
SELECT DISTINCT path FROM refs
WHERE ref NOT IN (SELECT activity_id FROM activities) AND ref NOT IN (SELECT session_id FROM strength_sessions)
ORDER BY path
"""


def shadowed_paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Files that duplicated (or partly duplicated) an activity or session that no longer exists: they must
    be read again so their data is not lost."""
    return [r[0] for r in con.execute(_SHADOWED_SQL).fetchall()]


def remove_gone_athletes(con: duckdb.DuckDBPyConnection, seen: set[str]) -> list[str]:
    """Athletes with rows in the warehouse but no file left and none seen in this run: deleted from every
    table (staging and analysis). Returns their ids."""
    with_files = {r[0] for r in con.execute("SELECT DISTINCT athlete_id FROM source_files").fetchall()}
    gone = sorted(warehouse_athletes(con) - with_files - seen)
    if gone:
        with transaction(con):
            for athlete_id in gone:
                delete_athlete_rows(con, athlete_id)
    return gone


def touched_frame(paths: set[str]) -> pd.DataFrame:
    return pd.DataFrame({"path": sorted(paths)}, dtype=object)
