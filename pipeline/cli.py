"""Command line: ``pipeline ...`` and ``python -m pipeline ...``.

Thin by design: each command resolves the workspace, takes the lock when it writes, and calls one
stage function. Errors reach the user as one line ``Error: ...``, never a traceback (set
``PIPELINE_DEBUG=1`` to see one): exit code 1 when the work failed, 2 for a usage error. Stages are
imported inside the commands that use them so that ``pipeline --help`` and a busy-workspace message come
at once, without loading pandas, DuckDB and matplotlib first (not to dodge import cycles: there are none).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path

import click

from pipeline.errors import PipelineError
from pipeline.warehouse.db import workspace_lock
from pipeline.workspace import Workspace, resolve_workspace


class _Group(click.Group):
    """One rule for every error: one line ``Error: ...`` on stderr, never a traceback.

    Exit codes: 1 when the work failed (bad data, busy workspace, missing warehouse, any PipelineError or
    unexpected exception); 2 for a usage error (unknown command or option, bad argument), which names
    the help to read.
    """

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            where = f" (see `{_command_path(e.ctx)} --help`)" if e.ctx is not None else ""
            _fail(e.format_message() + where, code=2)
        except click.ClickException as e:
            _fail(e.format_message(), code=e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", code=1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except PipelineError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; nothing half-written was kept, run the command again to finish")
        except Exception as e:  # noqa: BLE001 - the CLI boundary: no tracebacks for users
            if os.environ.get("PIPELINE_DEBUG"):
                raise
            _fail(f"unexpected {type(e).__name__}: {e} (set PIPELINE_DEBUG=1 for the traceback)")


def _command_path(ctx: click.Context) -> str:
    """``pipeline export`` whatever name the program was started under (``python -m pipeline``, a test)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["pipeline", *reversed(names)])


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _fail_if_analysis_failed(summary) -> None:
    """Exit 1 after the work for everyone else is done and shown, when some athlete (or the squad analysis)
    could not be analysed."""
    if summary.failures:
        names = ", ".join(f.athlete_id for f in summary.failures)
        _fail(f"{len(summary.failures)} athlete(s) could not be analysed ({names}); the others' results were "
              "stored. The reasons are above and in `pipeline status`.")
    if summary.squad_error:
        _fail(f"the squad analysis failed ({summary.squad_error}); every athlete's own results were stored")


def _ws(ctx: click.Context) -> Workspace:
    return ctx.obj["workspace"]


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding data/raw, data/processed and reports "
                   "[default: $PIPELINE_WORKSPACE, else the current directory].")
@click.version_option(package_name="pipeline")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """Did my strength block make my running more economical?

    Reads watch exports and strength logs from data/raw/<athlete>/, loads them into
    data/processed/warehouse.duckdb, analyses running economy around strength blocks and writes
    reports/<athlete>/index.html.
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = resolve_workspace(workspace)


_RAW_HELP = ("Read data/raw from this URL instead of the workspace's folder (http://host:8000/raw/, "
             "file:///mnt/share/raw, s3://bucket/raw with s3fs); default: [raw] url of pipeline.toml "
             "(docs/scaling.md).")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--athlete", "athlete_id", default=None,
              help="Athlete the given PATHS belong to [default: from their folder under data/raw].")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel parser processes [default: all cores].")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Parse files on a dask cluster: a scheduler address (tcp://host:8786) or local:N "
                   "(docs/scaling.md).")
@click.option("--raw", "raw", default=None, metavar="URL", help=_RAW_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def ingest(ctx, paths, athlete_id, jobs, cluster, raw, quiet):
    """Parse run files and strength logs into the warehouse (default: everything under data/raw)."""
    ws = _ws(ctx)
    if raw is not None and paths:
        raise click.UsageError("--raw names the raw data root the warehouse follows: give it without PATHS")
    with workspace_lock(ws, "ingest"):
        from pipeline.ingest.run import ingest_paths

        with _engine(cluster) as engine:
            summary = ingest_paths(ws, list(paths) or None, athlete_id=athlete_id, jobs=jobs,
                                   progress=not quiet, engine=engine, raw=raw)
    click.echo(summary.render())


@cli.command()
@click.option("--athlete", "athlete_id", default=None, help="Only this athlete's runs [default: all].")
@click.option("--retry-no-data", is_flag=True, help="Ask again for runs the archive had no data for.")
@click.pass_context
def weather(ctx, athlete_id, retry_no_data):
    """Look up the air temperature, dew point, humidity and wind of each outdoor run in a historical
    weather archive (sends only rounded positions and dates; offline it says so and changes nothing)."""
    ws = _ws(ctx)
    with workspace_lock(ws, "weather"):
        from pipeline.weather.run import weather_workspace

        summary = weather_workspace(ws, athlete_id=athlete_id, retry_no_data=retry_no_data)
    click.echo(summary.render())


@cli.command()
@click.pass_context
def status(ctx):
    """What the warehouse holds: files by status, activities by sport, strength, blocks, errors."""
    from pipeline.status import render_status

    click.echo(render_status(_ws(ctx)))


_CLUSTER_HELP = ("Run the per-file/per-athlete work on a dask cluster: a scheduler address (tcp://host:8786) or "
                 "local:N for N worker processes on this machine (docs/scaling.md).")
_FORCE_HELP = "Redo every athlete (and page), even those whose inputs did not change."


@cli.command()
@click.option("--athlete", "athlete_id", default=None, help="Only this athlete [default: all].")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@click.option("--cluster", default=None, metavar="ADDRESS", help=_CLUSTER_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def analyze(ctx, athlete_id, force, cluster, quiet):
    """Compute run_metrics, weekly, strength_blocks and block_effects from the staging tables, for the
    athletes whose inputs changed since their last analysis."""
    ws = _ws(ctx)
    with workspace_lock(ws, "analyze"):
        from pipeline.analyze.run import analyze_workspace

        with _engine(cluster) as engine:
            summary = analyze_workspace(ws, athlete_id=athlete_id, force=force, progress=not quiet, engine=engine)
    click.echo(summary.render())
    _fail_if_analysis_failed(summary)


@cli.command()
@click.option("--athlete", "athlete_id", default=None, help="Only this athlete's page [default: all].")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def report(ctx, athlete_id, force, quiet):
    """Write reports/<athlete>/index.html + PNGs and reports/index.html from the analysis tables (pages
    whose data did not change are kept as they are)."""
    from pipeline.report.build import report_workspace

    result = report_workspace(_ws(ctx), athlete_id=athlete_id, force=force, progress=not quiet)
    click.echo(result.render())


@cli.command()
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parallel parser processes.")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@click.option("--cluster", default=None, metavar="ADDRESS", help=_CLUSTER_HELP)
@click.option("--raw", "raw", default=None, metavar="URL", help=_RAW_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def run(ctx, jobs, force, cluster, raw, quiet):
    """Ingest, weather, analyze and report, in that order (weather is skipped, in one line, when offline)."""
    ws = _ws(ctx)
    with workspace_lock(ws, "run"):
        from pipeline.analyze.run import analyze_workspace
        from pipeline.ingest.run import ingest_paths
        from pipeline.report.build import report_workspace
        from pipeline.weather.run import weather_workspace

        with _engine(cluster) as engine:
            click.echo(ingest_paths(ws, None, jobs=jobs, progress=not quiet, engine=engine, raw=raw).render())
            weather_failed = _run_weather(ws, weather_workspace)
            analysed = analyze_workspace(ws, force=force, progress=not quiet, engine=engine)
            click.echo(analysed.render())
        result = report_workspace(ws, force=force, progress=not quiet)   # every athlete's page, failed ones too
    click.echo(result.render())
    _fail_if_analysis_failed(analysed)
    if weather_failed:
        _fail(f"the weather stage failed ({weather_failed}); everything else was done")


def _engine(cluster: str | None):
    """The ``--cluster`` engine as a context manager (nothing to start without the option). dask is
    imported only when a cluster is asked for: it adds a second to every start-up otherwise."""
    if not cluster:
        return contextlib.nullcontext(None)
    from pipeline.engine import open_engine

    return open_engine(cluster)


def _run_weather(ws: Workspace, weather_workspace) -> str | None:
    """The weather step of ``pipeline run``: an enrichment, so an unexpected failure in it (say, a run dated
    in a year the archive client cannot compute with) is one line, and ingest's data still get analysed and
    reported; the command then exits 1. Settings errors (a PipelineError) stop the command as everywhere."""
    try:
        click.echo(weather_workspace(ws).render())
        return None
    except PipelineError:
        raise
    except Exception as e:  # noqa: BLE001 - isolation boundary: named, then the other stages go on
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        click.echo(f"Weather: not fetched: {reason}; the analysis goes on without it")
        return reason


@cli.command()
@click.option("--seed", type=int, default=2024, show_default=True, help="Random seed of the simulation.")
@click.option("--if-empty", is_flag=True,
              help="Only write the demo when data/raw/ holds no athlete data (used by `make report`).")
@click.option("--squad", is_flag=True,
              help="Write a simulated squad instead: 12 teammates, 8 with strength blocks of 0.5-2 sessions/week "
                   "(planted gain 2 %% per weekly session) and 4 without (controls), for the squad analysis.")
@click.option("--season-pct", type=float, default=0.0, show_default=True,
              help="With --squad: a shared season moving every teammate's economy by this many percent.")
@click.pass_context
def demo(ctx, seed, if_empty, squad, season_pct):
    """Write simulated demo athletes (FIT, GPX, Strong CSV) into data/raw/."""
    from pipeline.workspace import discover_athletes

    ws = _ws(ctx)
    if if_empty:
        from pipeline.rawroot import raw_root

        root = raw_root(ws)
        if not root.is_local:
            click.echo(f"data/raw is read from {root.url} (pipeline.toml [raw]); demo not written.")
            return
    existing = discover_athletes(ws.raw_dir)
    if if_empty and existing:
        click.echo(f"data/raw/ holds {len(existing)} athlete(s) ({', '.join(existing)}); demo not written.")
        return
    with workspace_lock(ws, "demo"):
        from pipeline.demo.write import write_demo

        if squad:
            from pipeline.demo.squad import SquadDesign, write_squad

            written = write_squad(ws.raw_dir, seed=seed, design=SquadDesign(season_gain_pct=season_pct))
        else:
            written = write_demo(ws.raw_dir, seed=seed)
    click.echo(f"Demo athletes written to {ws.raw_dir}: {', '.join(written)}")


@cli.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.pass_context
def sql(ctx, query, as_csv):
    """Run SQL QUERY on the warehouse and print the result.

    Read-only for the warehouse, and nothing outside it: writes (INSERT, UPDATE, CREATE...) are refused,
    and so are COPY ... TO, reading other files (read_csv, read_parquet, glob), ATTACH, EXPORT DATABASE
    and INSTALL/LOAD of extensions. To change the warehouse use `pipeline shell --write`.
    """
    from pipeline.warehouse.query import run_sql

    click.echo(run_sql(_ws(ctx), query, as_csv=as_csv))


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--athlete", "athlete_id", default=None, help="Only this athlete's rows [default: all].")
@click.pass_context
def export(ctx, out_dir, fmt, athlete_id):
    """Write warehouse tables to OUT_DIR as Parquet or CSV (samples partitioned by athlete)."""
    from pipeline.warehouse.export import export_tables

    written = export_tables(_ws(ctx), out_dir, fmt=fmt, athlete_id=athlete_id)
    click.echo(f"Wrote {len(written)} file(s) to {out_dir}")


@cli.command()
@click.pass_context
def check(ctx):
    """Run the declarative data checks on the warehouse and list violations (exit 1 if any)."""
    from pipeline.warehouse.checks import run_checks

    result = run_checks(_ws(ctx))
    click.echo(result.render())
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.option("--write", is_flag=True, help="Open read-write (default read-only).")
@click.pass_context
def shell(ctx, write):
    """Open the warehouse in the DuckDB command-line shell (read-only by default)."""
    from pipeline.warehouse.shell import open_shell

    open_shell(_ws(ctx), write=write)


def main() -> None:
    """The ``pipeline`` command (console script and ``python -m pipeline``)."""
    try:
        cli(obj={})
        code = 0
    except SystemExit as e:
        code = e.code
    _exit_without_teardown(code)


def _exit_without_teardown(code) -> None:
    """Exit as ``sys.exit(code)`` would, minus tearing the interpreter's modules down one by one.

    Every command imports pandas, SciPy, matplotlib and (for the squad) PyMARE with SymPy; freeing all of
    that at exit took ~0.7 s on every command, which is nothing the user waits for: a quarter of ``make
    report`` with nothing new, ~8 % of a re-run after one new run. Everything an exit must do still happens:
    the ``atexit`` handlers run (e.g. the fsspec cache of :mod:`pipeline.rawroot`, logging), the streams are
    flushed, and files and warehouse connections are already closed by the commands' ``with`` blocks. With a
    non-daemon thread still running (which a normal exit would wait for), or a non-integer code, this falls
    back to the normal exit."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others or not (code is None or isinstance(code, int)):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
