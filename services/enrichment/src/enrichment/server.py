"""A small JSON API over enrichment's view of the battles database."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg


def build_server(conninfo: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/healthz":
                self._send(200, {"status": "ok"})
            elif self.path == "/battles/value":
                with psycopg.connect(conninfo) as conn:
                    rows = conn.execute(
                        "SELECT battle_id::text, killmails, isk_destroyed::text FROM enrichment.battle_value "
                        "ORDER BY isk_destroyed DESC LIMIT 50"
                    ).fetchall()
                self._send(200, [dict(zip(("battle_id", "killmails", "isk_destroyed"), r)) for r in rows])
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer(("0.0.0.0", port), Handler)
