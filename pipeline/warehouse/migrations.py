"""Schema versions: bring any older warehouse up to :data:`pipeline.warehouse.db.SCHEMA_VERSION`.

The version lives in ``pipeline_meta`` (key ``schema_version``). Opening a warehouse for writing runs
:func:`upgrade`, which, in ONE transaction (a failure leaves the file exactly as it was):

1. reads the stored version and refuses, with a message saying what to do, a warehouse made by a newer
   pipeline or one that holds tables but no version at all;
2. runs the numbered migrations above the stored version, in order (:data:`MIGRATIONS`);
3. creates missing tables and adds missing columns from the contract (:mod:`pipeline.warehouse.contract`;
   additive changes need no numbered migration: "add columns freely"), re-creates the stable views of
   views.sql and writes the contract's descriptions as column comments;
4. records the new version and a hash of the schema, so the next open skips all of this in one query.

Rules for a new migration: never DROP a table or column that holds data; a rename is ADD new column,
UPDATE new = old, and keep the old one (or move it to a ``*_v<N>_backup`` table); bump SCHEMA_VERSION.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import duckdb

from pipeline.errors import PipelineError
from pipeline.warehouse.transaction import transaction
from pipeline.warehouse.contract import RELATIONS, TABLES, schema_sql

# Version 0 is "no pipeline_meta": a file this pipeline did not make, or an empty one.
UNVERSIONED = 0


@dataclass(frozen=True)
class Migration:
    """One numbered step: brings a warehouse at version ``number - 1`` to version ``number``."""

    number: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _migrate_to_2(con: duckdb.DuckDBPyConnection) -> None:
    # Version 2 only added things (the declared_blocks table, the stable views runs, block_summary and
    # monthly_economy, column comments). Step 3 of upgrade() creates them; nothing in the old tables
    # changes, so there is no data to move here.
    del con


# An activity id as ingest writes it: <athlete>-<YYYYMMDDTHHMMSSZ>-<index>[-<8 hex of the file's sha256>].
_ACTIVITY_ID_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]*-[0-9]{8}T[0-9]{6}Z-[0-9]+(-[0-9a-f]{8})?"


def _migrate_to_3(con: duckdb.DuckDBPyConnection) -> None:
    """Identity per athlete, and what shadows each file (source_files.shadowed_by).

    1. Before version 3 a file with the same bytes as another athlete's file was marked ``duplicate`` of
       it and loaded nothing (identity was global). Those rows hold no data: they are deleted, so the next
       ingest reads each file for its own athlete.
    2. ``shadowed_by`` (new) is filled for the rows that have something to record: a duplicate is shadowed
       by its ``duplicate_of``; an identical copy by every activity and session of the file it copies; a
       partly duplicated file by the activity ids its message lists. (A strength log partly duplicated by
       another source named no ids before version 3: it is read again when it changes.)
    """
    con.execute('ALTER TABLE source_files ADD COLUMN IF NOT EXISTS shadowed_by VARCHAR[]')
    con.execute("""
        DELETE FROM source_files d
        WHERE d.status = 'duplicate' AND d.message LIKE 'identical content to %'
          AND EXISTS (SELECT 1 FROM source_files o WHERE o.path = substr(d.message, 22)
                                                     AND o.athlete_id <> d.athlete_id)""")
    con.execute("""
        UPDATE source_files d SET shadowed_by = (
            SELECT list(x.id ORDER BY x.id) FROM (
                SELECT a.activity_id AS id FROM activities a WHERE a.athlete_id = d.athlete_id AND a.file_id = d.file_id
                UNION ALL
                SELECT s.session_id FROM strength_sessions s WHERE s.athlete_id = d.athlete_id AND s.file_id = d.file_id
            ) x)
        WHERE d.status = 'duplicate' AND d.message LIKE 'identical content to %'""")
    con.execute("UPDATE source_files SET shadowed_by = [duplicate_of] "
                "WHERE status = 'duplicate' AND shadowed_by IS NULL AND duplicate_of IS NOT NULL")
    con.execute(f"""
        UPDATE source_files SET shadowed_by = regexp_extract_all(
            regexp_extract(message, 'already present from a richer or equal source \\(([^)]*)\\)', 1),
            '{_ACTIVITY_ID_RE}')
        WHERE status = 'ok' AND message LIKE '%already present from a richer or equal source (%'""")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "declared_blocks table; stable views runs, block_summary, monthly_economy; column comments",
              _migrate_to_2),
    Migration(3, "identity per athlete (cross-athlete identical-copy rows re-read); source_files.shadowed_by",
              _migrate_to_3),
)


def _read(name: str) -> str:
    return resources.files("pipeline.warehouse").joinpath(name).read_text(encoding="utf-8")


def views_sql() -> str:
    return _read("views.sql")


def schema_hash(target_version: int) -> str:
    """Changes whenever the contract (tables, columns, descriptions), views.sql or the version change."""
    digest = hashlib.sha256()
    for part in (str(target_version), schema_sql(), views_sql(), repr(list(RELATIONS.values()))):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def database_label(con: duckdb.DuckDBPyConnection) -> str:
    """The file behind ``con`` for messages ("an in-memory warehouse" when there is none)."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return f"the warehouse {row[0]}" if row and row[0] else "an in-memory warehouse"


def _user_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal"
    ).fetchall()
    return {r[0] for r in rows}


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM pipeline_meta").fetchall())


def stored_version(con: duckdb.DuckDBPyConnection, target_version: int) -> tuple[int, str | None]:
    """(schema version, schema hash) recorded in the warehouse; (0, None) for an empty file.

    Raises PipelineError for a warehouse this pipeline cannot safely open: made by a newer pipeline, or
    holding tables without any version record.
    """
    tables = _user_tables(con)
    if "pipeline_meta" not in tables:
        if tables:
            raise PipelineError(
                f"{database_label(con)} has tables ({', '.join(sorted(tables)[:4])}"
                f"{', ...' if len(tables) > 4 else ''}) but no pipeline_meta, so its schema version is "
                "unknown: it was not made by this pipeline, or by a pre-release of it. Move it aside "
                "(keep it if it matters) and run `pipeline ingest` to rebuild the warehouse from data/raw/"
            )
        return UNVERSIONED, None
    meta = _meta(con)
    raw = meta.get("schema_version")
    try:
        version = int(raw) if raw is not None else UNVERSIONED
    except ValueError:
        raise PipelineError(
            f"{database_label(con)} records schema_version {raw!r}, which is not a number; "
            "move it aside and run `pipeline ingest` to rebuild it from data/raw/"
        ) from None
    if version > target_version:
        raise PipelineError(
            f"{database_label(con)} has schema version {version}, newer than this pipeline knows "
            f"({target_version}): it was written by a newer version of the tool. Upgrade the pipeline "
            "(git pull, then make install) to open it"
        )
    return version, meta.get("schema_hash")


def upgrade(con: duckdb.DuckDBPyConnection, target_version: int) -> None:
    """Create or migrate the schema of ``con`` to ``target_version`` (see the module docstring)."""
    wanted_hash = schema_hash(target_version)
    version, recorded_hash = stored_version(con, target_version)
    if version == target_version and recorded_hash == wanted_hash:
        return  # the common case: already current, one catalog query and one small read
    try:
        with transaction(con):
            if version != UNVERSIONED:
                for migration in MIGRATIONS:
                    if version < migration.number <= target_version:
                        migration.apply(con)
            con.execute(schema_sql())
            add_missing_columns(con)
            con.execute(views_sql())
            apply_comments(con)
            con.execute(
                "INSERT OR REPLACE INTO pipeline_meta VALUES ('schema_version', ?), ('schema_hash', ?)",
                [str(target_version), wanted_hash],
            )
    except duckdb.Error as e:
        raise PipelineError(
            f"could not bring {database_label(con)} from schema version {version} to {target_version}; "
            f"it was left unchanged ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from e


def target_columns() -> dict[str, list[tuple[str, str]]]:
    """Columns (name, DuckDB type) of every contract table, in schema order."""
    return {name: [(c.name, c.sql_type) for c in table.columns] for name, table in TABLES.items()}


def add_missing_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for columns the contract has and the warehouse lacks; returns them.

    Added columns are NULL in existing rows; a NOT NULL in the contract is not enforced on them, since
    old rows cannot satisfy it.
    """
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal"
    ).fetchall():
        have.setdefault(table, set()).add(column)
    added = []
    for table, columns in target_columns().items():
        for column, data_type in columns:
            if column not in have.get(table, {column}):
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {data_type}')
                added.append(f"{table}.{column}")
    return added


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con: duckdb.DuckDBPyConnection) -> None:
    """Write the contract's descriptions as DuckDB comments (visible to every DuckDB client)."""
    kinds = dict(con.execute(
        "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = current_database() "
        "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal"
    ).fetchall())
    existing = {(t, c) for t, c in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
    ).fetchall()}
    for name, relation in RELATIONS.items():
        if name not in kinds:
            continue
        con.execute(f'COMMENT ON {kinds[name]} "{name}" IS {_quote(relation.description)}')
        for column in relation.columns:
            if (name, column.name) in existing:
                con.execute(f'COMMENT ON COLUMN "{name}"."{column.name}" IS {_quote(column.description)}')
