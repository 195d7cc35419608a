"""A tiny HTTP server on 127.0.0.1 for media tests and benchmarks (a thread, stdlib only).

Serves a dict of path -> bytes, plus ``/redirect?to=<url>`` (302) and ``/status/<code>``.
Counts requests per path, so tests can assert how many times a URL was fetched.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class MediaServer:
    def __init__(self, files: dict[str, bytes] | None = None, *, delay: float = 0.0):
        self.files: dict[str, bytes] = dict(files or {})
        self.hits: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.host_headers: list[str] = []
        self.delay = delay  # seconds before answering: widens concurrency windows
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.hits[parts.path] += 1
                server.user_agents.append(self.headers.get("User-Agent", ""))
                server.host_headers.append(self.headers.get("Host", ""))
                if server.delay:
                    time.sleep(server.delay)
                if parts.path == "/redirect":
                    target = parse_qs(parts.query).get("to", ["/"])[0]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if parts.path.startswith("/status/"):
                    self.send_response(int(parts.path.rsplit("/", 1)[1]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if parts.path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    time.sleep(2)
                    return
                body = server.files.get(parts.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if "nolength" not in parts.query:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
