"""Generate docs/warehouse.md from the live schema: ``python -m pipeline.warehouse.docs [--check]``.

The column tables are read from a freshly created warehouse (``duckdb_columns()``, its types, keys and
the comments that ensure_schema writes from contract.py), the prose and example queries from
docs_template.md, and the list of data checks from checks.py. ``--check`` exits 1 when the file on disk
differs from what would be generated; a test does the same, so the doc cannot drift from the schema.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from pathlib import Path

import duckdb

from pipeline.warehouse.checks import expand_checks
from pipeline.warehouse.contract import RELATIONS
from pipeline.warehouse.db import SCHEMA_VERSION, ensure_schema

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
LAYER_TITLES = {
    "staging": "Staging tables (written by `pipeline ingest`)",
    "weather": "Weather (written by `pipeline weather`)",
    "analysis": "Analysis tables (written by `pipeline analyze`)",
    "view": "Stable views (pipeline/warehouse/views.sql)",
    "meta": "Warehouse metadata",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def live_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str, bool, str | None]]]:
    """relation -> [(column, type, nullable, comment)] in column order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND NOT internal ORDER BY table_name, column_index"
    ).fetchall()
    out: dict[str, list] = {}
    for table, column, data_type, nullable, comment in rows:
        out.setdefault(table, []).append((column, data_type, nullable, comment))
    return out


def primary_keys(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY' AND schema_name = 'main'"
    ).fetchall()
    return {table: list(columns) for table, columns in rows}


def relation_comments(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    return dict(con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
    ).fetchall())


def undocumented(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables, views and columns of the live schema without a description in contract.py."""
    missing = [name for name, comment in relation_comments(con).items() if not comment]
    for table, columns in live_columns(con).items():
        missing += [f"{table}.{column}" for column, _, _, comment in columns if not comment]
    return sorted(missing)


def render_relations(con: duckdb.DuckDBPyConnection) -> str:
    columns = live_columns(con)
    keys = primary_keys(con)
    comments = relation_comments(con)
    # Relations of the contract come in its order; any others (undocumented) at the end.
    order = [n for n in RELATIONS if n in columns] + sorted(set(columns) - set(RELATIONS))
    parts: list[str] = []
    for layer, title in LAYER_TITLES.items():
        names = [n for n in order if (RELATIONS[n].layer if n in RELATIONS else "staging") == layer]
        if not names:
            continue
        parts += [f"### {title}", ""]
        for name in names:
            key = keys.get(name, [])
            parts += [f"#### `{name}`", "", _cell(comments.get(name) or "(undocumented)"), ""]
            if key:
                parts += [f"Key: ({', '.join(key)}).", ""]
            parts += ["| column | type | null | description |", "|---|---|---|---|"]
            for column, data_type, nullable, comment in columns[name]:
                null = "" if nullable else "not null"
                parts.append(f"| `{column}` | {data_type} | {null} | {_cell(comment or '(undocumented)')} |")
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_checks() -> str:
    lines = ["| check | fails when |", "|---|---|"]
    lines += [f"| `{c.name}` | {_cell(c.description)} |" for c in expand_checks()]
    return "\n".join(lines) + "\n"


def example_queries(text: str | None = None) -> list[str]:
    """The fenced ```sql blocks of docs/warehouse.md (the tests execute each one)."""
    text = DOC_PATH.read_text(encoding="utf-8") if text is None else text
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def generate() -> str:
    """The full text of docs/warehouse.md for the current schema."""
    template = resources.files("pipeline.warehouse").joinpath("docs_template.md").read_text(encoding="utf-8")
    con = duckdb.connect()
    try:
        ensure_schema(con)
        text = (template
                .replace("{{ schema_version }}", str(SCHEMA_VERSION))
                .replace("{{ relations }}", render_relations(con).rstrip())
                .replace("{{ checks }}", render_checks().rstrip()))
    finally:
        con.close()
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.warehouse.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date, write nothing")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help=f"default: {DOC_PATH}")
    args = parser.parse_args(argv)
    text = generate()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run `python -m pipeline.warehouse.docs`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
