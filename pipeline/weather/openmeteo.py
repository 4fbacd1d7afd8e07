"""Client of the Open-Meteo historical weather archive (https://open-meteo.com/en/docs/historical-weather-api).

One request asks for the hourly air temperature, dew point, relative humidity and wind speed of ONE grid
position over a range of dates, in UTC and metres per second::

    GET https://archive-api.open-meteo.com/v1/archive?latitude=51.5&longitude=-0.2
        &start_date=2024-01-01&end_date=2024-12-31
        &hourly=temperature_2m,dew_point_2m,relative_humidity_2m,wind_speed_10m&timezone=GMT&wind_speed_unit=ms

and the archive answers with JSON (the documented "JSON Return Object")::

    {"latitude": 51.5, "longitude": -0.19999695, "generationtime_ms": 2.2, "utc_offset_seconds": 0,
     "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 23.0,
     "hourly_units": {"time": "iso8601", "temperature_2m": "°C", "dew_point_2m": "°C",
                      "relative_humidity_2m": "%", "wind_speed_10m": "m/s"},
     "hourly": {"time": ["2024-01-01T00:00", ...], "temperature_2m": [8.1, ...], ...}}

``latitude``/``longitude`` are the centre of the grid cell the values are for; a value is ``null`` where the
archive has none (e.g. the last ~5 days). Errors are ``{"error": true, "reason": "..."}`` with HTTP 400; the
free API's rate limits (600 calls a minute, 5,000 an hour, 10,000 a day per IP) answer HTTP 429 with reasons
such as "Minutely API request limit exceeded. Please try again in one minute." and no Retry-After header.

Plain HTTP with ``requests`` rather than the ``openmeteo-requests`` client: that client asks for the
FlatBuffers format, whose answers a local test server could only fake with the SDK's own encoder, and it adds
a binary SDK; the JSON answer is documented field by field and four hourly variables need no speed-up.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
import requests
import urllib3

import pipeline
from pipeline.weather.settings import WeatherSettings

SOURCE = "open_meteo_archive"
# Archive variable -> our column (units in the name; the request asks for degC and m/s).
HOURLY_VARIABLES = {
    "temperature_2m": "air_temperature_c",
    "dew_point_2m": "dew_point_c",
    "relative_humidity_2m": "relative_humidity_pct",
    "wind_speed_10m": "wind_speed_m_s",
}
# Units the answer may state, and how to turn them into ours (hourly_units). Anything else is refused.
_TO_CELSIUS = {"°C": lambda x: x, "°F": lambda x: (x - 32.0) * 5.0 / 9.0}
_TO_M_S = {"m/s": lambda x: x, "km/h": lambda x: x / 3.6, "mph": lambda x: x * 0.44704,
           "kn": lambda x: x * 0.514444}
_UNITS = {"temperature_2m": _TO_CELSIUS, "dew_point_2m": _TO_CELSIUS, "relative_humidity_2m": {"%": lambda x: x},
          "wind_speed_10m": _TO_M_S}
USER_AGENT = f"pipeline/{pipeline.__version__} (running-economy analysis; weather archive client)"
# The free API's minutely limit resets every minute (its rate limiter's sweep); wait this long for it.
MINUTELY_LIMIT_WAIT_S = 61.0
# A connection not made within this long means no route to the archive (a firewall that drops packets),
# which must not hold `pipeline run` for retries x timeout; a slow answer is allowed [weather] timeout_s.
CONNECT_TIMEOUT_S = 10.0


class ArchiveError(Exception):
    """The archive could not give an answer for a request (the message says why, in plain words)."""


class ArchiveOffline(ArchiveError):
    """No connection to the archive at all (no network, DNS failure, connection refused, proxy refusal)."""


class ArchiveRefused(ArchiveError):
    """The archive refused this one request (HTTP 400 with a reason); other requests may work."""


class ArchiveStopped(ArchiveError):
    """Stop asking for now: rate limit too long, repeated server errors or time-outs, or an unexpected answer."""


@dataclass(frozen=True)
class HourlySeries:
    """One answer: the archive's grid cell and its hourly values (UTC ``time`` + our columns)."""

    grid_lat_deg: float
    grid_lon_deg: float
    grid_elevation_m: float
    hourly: pd.DataFrame


def archive_query(lat_deg: float, lon_deg: float, start: date, end: date) -> dict[str, str]:
    """The query parameters of one request: a grid position, a date range (UTC), four hourly variables."""
    return {
        "latitude": f"{lat_deg:g}",
        "longitude": f"{lon_deg:g}",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "hourly": ",".join(HOURLY_VARIABLES),
        "timezone": "GMT",
        "wind_speed_unit": "ms",
    }


def call_weight(n_days: int, n_variables: int = len(HOURLY_VARIABLES)) -> float:
    """How many API calls the free Open-Meteo API counts for one request of ``n_days`` days (inclusive).

    Its documented rule (pricing FAQ; ``calculateQueryWeight`` in the open-meteo server): 14 days and 10
    variables weigh 1, scaled linearly beyond: max(1, v/10 x max(1, days/14)).
    """
    variables = n_variables / 10.0
    return max(1.0, max(variables, variables * n_days / 14.0))


def parse_archive_json(payload: object) -> HourlySeries:
    """The documented JSON answer -> :class:`HourlySeries` (times in UTC, values in our units, NaN for null).

    Raises :class:`ArchiveStopped` for anything that is not that format (the message says what is wrong).
    """
    if not isinstance(payload, dict) or payload.get("error"):
        reason = payload.get("reason") if isinstance(payload, dict) else None
        raise ArchiveStopped(f"unexpected answer from the archive: {reason or 'not a JSON object'}")
    hourly, units = payload.get("hourly"), payload.get("hourly_units") or {}
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise ArchiveStopped("unexpected answer from the archive: no hourly.time array")
    try:
        local = pd.to_datetime(pd.Series(hourly["time"], dtype="object"), format="%Y-%m-%dT%H:%M")
        offset = pd.Timedelta(seconds=float(payload.get("utc_offset_seconds") or 0))
        frame = pd.DataFrame({"time": (local - offset).dt.tz_localize("UTC")})
        for variable, column in HOURLY_VARIABLES.items():
            frame[column] = _values(variable, hourly.get(variable), units.get(variable), len(frame))
        cell = (float(payload["latitude"]), float(payload["longitude"]))
        elevation = payload.get("elevation")
        elevation = float(elevation) if elevation is not None else math.nan
    except (KeyError, TypeError, ValueError) as e:
        raise ArchiveStopped(f"unexpected answer from the archive: {type(e).__name__}: {e}") from e
    return HourlySeries(cell[0], cell[1], elevation, frame)


def _values(variable: str, raw: object, unit: str | None, n: int) -> np.ndarray:
    """One hourly array in our unit; all NaN when the answer lacks the variable (an archive without it)."""
    if raw is None:
        return np.full(n, np.nan)
    if not isinstance(raw, list) or len(raw) != n:
        raise ValueError(f"hourly.{variable} does not have one value per hourly.time")
    convert = _UNITS[variable].get(unit or next(iter(_UNITS[variable])))
    if convert is None:
        raise ValueError(f"hourly_units.{variable} is {unit!r}, not one of {', '.join(_UNITS[variable])}")
    return convert(np.array([np.nan if v is None else float(v) for v in raw], dtype=float))


class ArchiveClient:
    """Fetches :class:`HourlySeries` with pacing, retries with exponential backoff and rate-limit waits.

    ``sleep`` and ``clock`` are the real ``time.sleep``/``time.monotonic``; they are parameters so the
    pacing can be measured. One ``requests.Session`` keeps the connection open between requests.
    """

    def __init__(self, settings: WeatherSettings, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.host = urlsplit(settings.base_url).netloc
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._sleep, self._clock = sleep, clock
        self._last_request: float | None = None
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def fetch(self, lat_deg: float, lon_deg: float, start: date, end: date) -> HourlySeries:
        """The hourly series of one grid position and date range (UTC); raises an :class:`ArchiveError`."""
        query = urlencode(archive_query(lat_deg, lon_deg, start, end), safe=",")
        problem = "no answer"
        for attempt in range(self.settings.max_retries + 1):
            outcome = self._try_once(query)
            if isinstance(outcome, HourlySeries):
                return outcome
            problem, seconds = outcome
            if attempt == self.settings.max_retries:
                break
            self._sleep(seconds if seconds is not None else self.settings.backoff_s * 2 ** attempt)
        raise ArchiveStopped(f"{problem} after {self.settings.max_retries + 1} tries")

    def _try_once(self, query: str) -> HourlySeries | tuple[str, float | None]:
        """One request: the series, or (what went wrong, seconds to wait or None for the backoff)."""
        self._pace()
        connect_s = min(CONNECT_TIMEOUT_S, self.settings.timeout_s)
        try:
            response = self.session.get(self.settings.base_url, params=query,
                                        timeout=(connect_s, self.settings.timeout_s))
        except requests.exceptions.ConnectTimeout as e:   # a network that drops packets: offline, not slow
            raise ArchiveOffline(f"no connection to {self.host} within {connect_s:g} s") from e
        except requests.exceptions.Timeout:
            return f"{self.host} did not answer within {self.settings.timeout_s:g} s", None
        except requests.exceptions.ConnectionError as e:
            if _cannot_connect(e):
                raise ArchiveOffline(f"cannot reach {self.host}: {_root_cause(e)}") from e
            return f"connection to {self.host} broken: {_root_cause(e)}", None
        finally:
            self.requests_sent += 1
        return self._answer(response)

    def _answer(self, response: requests.Response) -> HourlySeries | tuple[str, float | None]:
        status, reason = response.status_code, _reason(response)
        if status == 200:
            try:
                payload = response.json()
            except ValueError as e:
                raise ArchiveStopped("unexpected answer from the archive: not JSON") from e
            return parse_archive_json(payload)
        if status == 400:
            raise ArchiveRefused(f"the archive refused the request: {reason or 'HTTP 400'}")
        if status == 429:
            return self._rate_limited(response, reason)
        if status >= 500:
            return f"server error (HTTP {status}{': ' + reason if reason else ''})", _retry_after(response)
        raise ArchiveStopped(f"{self.host} answered HTTP {status}{': ' + reason if reason else ''} "
                             "(is [weather] base_url right?)")

    def _rate_limited(self, response: requests.Response, reason: str) -> tuple[str, float | None]:
        """How long a 429 asks us to wait: Retry-After if sent, else read from Open-Meteo's reason."""
        wait = _retry_after(response)
        text = reason.lower()
        if wait is None and "minutely" in text:
            wait = MINUTELY_LIMIT_WAIT_S
        if wait is None and ("hourly" in text or "daily" in text):
            raise ArchiveStopped(f"rate limited by {self.host} ({reason})")
        if wait is not None and wait > self.settings.max_wait_s:
            raise ArchiveStopped(f"rate limited by {self.host}: it asks to wait {wait:.0f} s (more than "
                                 f"[weather] max_wait_s = {self.settings.max_wait_s:g})")
        return f"rate limited ({reason or 'HTTP 429'})", wait

    def _pace(self) -> None:
        """Leave at least ``request_interval_s`` between the starts of two requests."""
        now = self._clock()
        if self._last_request is not None:
            gap = self._last_request + self.settings.request_interval_s - now
            if gap > 0:
                self._sleep(gap)
        self._last_request = self._clock()


def _reason(response: requests.Response) -> str:
    """The archive's ``reason`` (its JSON error object), else the start of the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:120]
    if isinstance(payload, dict) and payload.get("reason"):
        return str(payload["reason"])
    return ""


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date, RFC 9110 10.2.3); None when absent/unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _cannot_connect(error: requests.exceptions.ConnectionError) -> bool:
    """True when no connection was made at all (DNS failure, refused, unreachable, proxy refusal), as
    opposed to a connection that broke mid-answer (worth a retry)."""
    if isinstance(error, requests.exceptions.ProxyError):
        return True
    return isinstance(_inner(error), urllib3.exceptions.NewConnectionError)  # NameResolutionError too


def _inner(error: BaseException) -> BaseException:
    """The urllib3 error inside a requests error (MaxRetryError.reason), else the error itself."""
    inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
    return getattr(inner, "reason", None) or inner


def _root_cause(error: BaseException) -> str:
    """The innermost reason, without urllib3's connection repr: e.g. "Failed to resolve 'host' ([Errno -2]
    Name or service not known)" or "Failed to establish a new connection: [Errno 111] Connection refused"."""
    text = str(_inner(error))
    head, sep, tail = text.partition("): ")
    return (tail if sep and head.startswith(("HTTPConnection(", "HTTPSConnection(")) else text)[:160]
