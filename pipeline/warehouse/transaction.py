"""One way to write atomically: ``with transaction(con): ...`` commits on success, rolls back on any error.

Every writer (the ingest loader, the analysis, migrations) uses it instead of hand-written
BEGIN/COMMIT/ROLLBACK, so an exception or a KeyboardInterrupt can never leave half a file's rows behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction on ``con``; COMMIT when it ends, ROLLBACK (and re-raise) on error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
