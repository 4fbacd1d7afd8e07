"""What the weather stage did, in one line, and weather coverage per athlete for ``pipeline status``."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipeline.weather.store import weather_coverage, weather_table_exists

# Said wherever weather is missing: what the analysis does instead.
FALLBACK = "the analysis uses device temperatures where recorded"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass
class WeatherSummary:
    """Counts of one ``pipeline weather``; :meth:`render` is the one line the CLI prints."""

    enabled: bool = True
    host: str = ""
    outdoor_runs: int = 0          # outdoor runs considered (all, or one athlete's)
    pending: int = 0               # of those, without a weather row (or no_data being retried)
    fetched_ok: int = 0            # rows written with values
    fetched_no_data: int = 0       # rows written saying the archive had nothing
    requests: int = 0              # HTTP requests sent (retries included)
    call_weight: float = 0.0       # API calls by the archive's own count
    too_recent: int = 0            # runs left for later: the archive lags real time
    opted_out: list[str] = field(default_factory=list)   # athletes with weather = false in athlete.toml
    offline: str | None = None     # why no connection could be made
    stopped: str | None = None     # why fetching stopped early

    @property
    def left(self) -> int:
        """Pending runs still without a row after this run (offline, stopped, too recent)."""
        return self.pending - self.fetched_ok - self.fetched_no_data

    def render(self) -> str:
        if not self.enabled:
            return f"Weather: off (pipeline.toml); nothing was sent, {FALLBACK}"
        if self.offline is not None:
            return (f"Weather: not fetched: no network ({self.offline}); {_n(self.left, 'outdoor run')} "
                    f"{'waits' if self.left == 1 else 'wait'} for `pipeline weather` with network; {FALLBACK}")
        parts = []
        if self.fetched_ok + self.fetched_no_data:
            parts.append(f"{_n(self.fetched_ok + self.fetched_no_data, 'run')} looked up in "
                         f"{_n(self.requests, 'request')} to {self.host} (~{self.call_weight:.0f} API calls "
                         "by its count)")
        if self.fetched_no_data:
            parts.append(f"{self.fetched_no_data} without archive data")
        if self.too_recent:
            parts.append(f"{self.too_recent} too recent for the archive (it lags ~5 days), fetched later")
        if self.opted_out:
            parts.append(f"not looked up for {', '.join(self.opted_out)} (weather = false in athlete.toml)")
        if self.stopped is not None:
            parts.append(f"stopped: {self.stopped}; {_n(self.left - self.too_recent, 'run')} left for the "
                         "next `pipeline weather`")
        if not parts:
            parts.append("nothing to fetch" + (f" (all {_n(self.outdoor_runs, 'outdoor run')} with GPS "
                                               "already looked up)" if self.outdoor_runs else
                                               " (no outdoor runs with GPS positions)"))
        return "Weather: " + "; ".join(parts)


def weather_status(con: duckdb.DuckDBPyConnection) -> str:
    """``pipeline status`` lines: per athlete with outdoor runs, how many have archive weather."""
    if not weather_table_exists(con):
        return "weather: not looked up yet (run `pipeline weather`)"
    rows = weather_coverage(con)
    if not len(rows):
        return "weather: no outdoor runs with GPS positions"
    lines = ["weather (air at each outdoor run, from an archive):"]
    for r in rows.itertuples(index=False):
        text = f"  {r.athlete_id}: {r.with_weather} of {_n(int(r.outdoor_runs), 'outdoor run')} with weather"
        if r.sources:
            text += f" ({r.sources})"
        extra = [f"{r.no_data} without archive data"] if r.no_data else []
        if r.not_fetched:
            extra.append(f"{r.not_fetched} not looked up yet")
        lines.append(text + (f"; {', '.join(extra)}" if extra else ""))
    return "\n".join(lines)
