"""A real HTTP server on localhost serving a folder as Python's http.server does (directory pages with links,
Content-Length and Last-Modified on files), with failures a test can plant per path.

``failing``: paths answered with 500 Internal Server Error (files, or a folder's listing page);
``cut``: files whose body stops half-way although Content-Length promised all of it (a connection lost
mid-transfer). Every request is recorded as (method, decoded path).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class RawServer:
    """What a test sees of the server: its URL, the requests so far, and the failures to plant."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)

    def gets(self) -> list[str]:
        """Paths fetched with GET (listing pages end with '/')."""
        return [p for m, p in self.requests if m == "GET"]


class _Handler(SimpleHTTPRequestHandler):
    state: RawServer

    def log_message(self, format, *args):  # noqa: A002 - the base class's name; quiet test output
        pass

    def _path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def send_head(self):
        path = self._path()
        self.state.requests.append((self.command, path))
        if path in self.state.failing:
            self.send_error(500, "Internal Server Error")
            return None
        return super().send_head()

    def do_GET(self):
        path = self._path()
        if path not in self.state.cut:
            return super().do_GET()
        self.state.requests.append(("GET", path))
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        return None


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[RawServer]:
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration of the block."""
    state = RawServer(url="")
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=os.fspath(folder)))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
