"""A real HTTP server on localhost that speaks the Open-Meteo archive's documented JSON format.

Every request is recorded (path, query, arrival time). Unless a scripted reply is queued, it answers like the
archive: the grid cell near the asked position (shifted by :data:`GRID_SHIFT_DEG`, as the archive answers with
its grid cell's centre), hourly UTC times for the asked dates and values from planted functions of position
and time, so a test knows the true value of any hour. Planted air temperature is linear in time, so a run's
mean is the planted value at the run's midpoint.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RESPONSES = Path(__file__).resolve().parent / "responses"
EXAMPLE = json.loads((RESPONSES / "archive_example_berlin_2022-07-01.json").read_text(encoding="utf-8"))
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
GRID_SHIFT_DEG = (0.02, -0.03)
RATE_LIMIT_REASON = {"minutely": "Minutely API request limit exceeded. Please try again in one minute.",
                     "hourly": "Hourly API request limit exceeded. Please try again in the next hour.",
                     "daily": "Daily API request limit exceeded. Please try again tomorrow."}


def planted_air_c(lat: float, lon: float, when: datetime) -> float:
    """The server's air temperature: depends on the cell and rises 0.0002 C per hour since 2020 (linear)."""
    hours = (when - EPOCH).total_seconds() / 3600.0
    return 5.0 + lat / 10.0 + lon / 100.0 + 0.0002 * hours


def planted_dew_c(lat: float, lon: float, when: datetime) -> float:
    return planted_air_c(lat, lon, when) - 4.0


def planted_wind_m_s(lat: float, lon: float, when: datetime) -> float:
    return 3.0 + 0.0001 * (when - EPOCH).total_seconds() / 3600.0


PLANTED_RH_PCT = 62.0


@dataclass
class Reply:
    """A scripted answer: status, headers, JSON body (or text), and a delay before answering."""

    status: int = 200
    body: object = None          # dict -> JSON; str -> text; None with 200 -> the generated archive answer
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    raw_query: str
    at: float
    user_agent: str

    def param(self, key: str) -> str:
        return self.query[key][0]


class ArchiveServer:
    """``with ArchiveServer() as server: ... server.url ...``; ``server.script`` queues :class:`Reply`."""

    def __init__(self, null_from: date | None = None) -> None:
        self.seen: list[Seen] = []
        self.script: deque[Reply] = deque()
        self.null_from = null_from          # hours on/after this day are null (the archive's lag)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/archive"

    def __enter__(self) -> ArchiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self.script.popleft() if self.script else None

    def archive_answer(self, query: dict[str, list[str]]) -> dict:
        """The generated answer for a query, in the format of the documented example."""
        lat, lon = float(query["latitude"][0]), float(query["longitude"][0])
        start, end = date.fromisoformat(query["start_date"][0]), date.fromisoformat(query["end_date"][0])
        cell = (round(lat + GRID_SHIFT_DEG[0], 4), round(lon + GRID_SHIFT_DEG[1], 4))
        hours = [datetime(start.year, start.month, start.day, tzinfo=timezone.utc) + timedelta(hours=h)
                 for h in range(((end - start).days + 1) * 24)]

        def series(f):
            return [None if self.null_from and t.date() >= self.null_from else f(*cell, t) for t in hours]

        answer = {k: EXAMPLE[k] for k in ("generationtime_ms", "utc_offset_seconds", "timezone",
                                          "timezone_abbreviation", "hourly_units")}
        answer |= {"latitude": cell[0], "longitude": cell[1], "elevation": 42.0}
        answer["hourly"] = {
            "time": [t.strftime("%Y-%m-%dT%H:%M") for t in hours],
            "temperature_2m": series(planted_air_c),
            "dew_point_2m": series(planted_dew_c),
            "relative_humidity_2m": series(lambda *_: PLANTED_RH_PCT),
            "wind_speed_10m": series(planted_wind_m_s),
        }
        return answer

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with server._lock:
                    server.seen.append(Seen(parts.path, query, parts.query, time.monotonic(),
                                            self.headers.get("User-Agent", "")))
                reply = server._next_reply() or Reply()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body
                if body is None and reply.status == 200:
                    body = server.archive_answer(query)
                data = (json.dumps(body) if not isinstance(body, str) else body).encode("utf-8")
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json" if not isinstance(body, str)
                                     else "text/plain")
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass                     # the client gave up (time-out test)

            def log_message(self, *args):
                pass

        return Handler


def closed_port_url() -> str:
    """A localhost URL nothing listens on: connection refused, as without network."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1/archive"
