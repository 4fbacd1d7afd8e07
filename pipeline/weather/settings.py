"""Settings of the weather stage: ``[weather]`` in pipeline.toml (or the shorthand ``weather = "off"``).

Read by the one settings parser (:func:`pipeline.settings.settings_from_section`), which rejects unknown keys
and wrong types; :meth:`WeatherSettings.validate` checks ranges. Every default is explained in
docs/analysis.md ("Weather") and the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineError
from pipeline.settings import settings_from_section

# The archives the stage can read. Only Open-Meteo's is implemented (why: docs/analysis.md, "Weather").
PROVIDERS = ("open_meteo",)
OPEN_METEO_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
# The shorthand top-level key: weather = "off" (or "on") instead of a [weather] table.
SHORTHAND_VALUES = {"off": False, "on": True}


@dataclass(frozen=True)
class WeatherSettings:
    """Defaults of the weather stage (``[weather]`` section)."""

    enabled: bool = True                  # false: the stage only says it is off; nothing leaves the machine
    provider: str = "open_meteo"          # the archive (see PROVIDERS)
    base_url: str = OPEN_METEO_ARCHIVE_URL  # the archive endpoint (tests point it at a local server)
    # Positions leave the machine rounded to this grid: 0.1 deg (~11 km N-S) is the grid of ERA5-Land, the
    # finest reanalysis behind the archive, so a finer position would not change the answer.
    grid_deg: float = 0.1
    # One request covers one cell and at most a year: a 5-year history in one place is ~5 requests.
    max_days_per_request: int = 366
    # A gap longer than this between a cell's run days starts a new request. Open-Meteo counts a request
    # of our 4 variables as max(1, 0.4 x days / 14) calls, so bridging a gap costs gap/35 calls and a new
    # request at least 1: beyond 35 days a new request is cheaper.
    max_gap_days: int = 35
    # The archive (ERA5) lags real time by about 5 days; newer runs wait for a later `pipeline weather`.
    min_age_days: int = 6
    request_interval_s: float = 1.0       # pacing: at least this long between two requests
    timeout_s: float = 30.0               # longest wait for an answer (connecting: at most 10 s, then offline)
    max_retries: int = 4                  # tries after the first, for time-outs, 5xx and rate limits
    backoff_s: float = 2.0                # wait before retry k is backoff_s x 2^(k-1): 2, 4, 8, 16 s
    max_wait_s: float = 120.0             # longest rate-limit wait honoured; longer: stop, say when to retry

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> WeatherSettings:
        """Settings from the parsed pipeline.toml (the whole file): ``[weather]``, or ``weather = "off"``."""
        section = (cfg or {}).get("weather")
        if isinstance(section, str):
            if section.lower() not in SHORTHAND_VALUES:
                raise PipelineError(f'pipeline.toml: weather = {section!r}; use weather = "off" or "on", '
                                    "or a [weather] table (see README)")
            return cls(enabled=SHORTHAND_VALUES[section.lower()])
        if isinstance(section, bool):
            return cls(enabled=section)
        return settings_from_section(cls, section, "weather")

    def validate(self) -> None:
        """Reject settings that cannot work, saying which and why."""
        where = "pipeline.toml [weather]"
        if self.provider not in PROVIDERS:
            raise PipelineError(f"{where}: provider = {self.provider!r} is not one of {', '.join(PROVIDERS)}")
        if not self.base_url.startswith(("http://", "https://")):
            raise PipelineError(f"{where}: base_url must start with http:// or https://, got {self.base_url!r}")
        if not 0 < self.grid_deg <= 1:
            raise PipelineError(f"{where}: grid_deg must be in (0, 1] degrees, got {self.grid_deg!r}")
        for key in ("max_days_per_request", "min_age_days", "max_gap_days"):
            if getattr(self, key) < (1 if key == "max_days_per_request" else 0):
                raise PipelineError(f"{where}: {key} must be >= {1 if key == 'max_days_per_request' else 0}")
        for key in ("request_interval_s", "backoff_s", "max_wait_s", "max_retries"):
            if getattr(self, key) < 0:
                raise PipelineError(f"{where}: {key} must be >= 0")
        if self.timeout_s <= 0:
            raise PipelineError(f"{where}: timeout_s must be > 0")
