"""STAND-IN for Grafana in the CI smoke stack (no registry here to pull grafana/grafana): one page saying so.
The dashboard's queries are checked with promtool by tests/test_deploy_grafana.py instead."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"Grafana stand-in of the CI smoke stack: the real image runs in docker-compose.yml.\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(PAGE)


ThreadingHTTPServer(("0.0.0.0", 3000), Handler).serve_forever()
