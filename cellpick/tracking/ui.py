"""`cellpick ui`: MLflow's UI over a store, opening experiments in the Model training layout.

`serve` runs `mlflow ui` on an internal port behind a small proxy on 127.0.0.1:PORT that adds
one line to the UI's HTML page: where the browser has no layout choice stored yet
(localStorage `mlflow.workflowType_v1`), it stores "Model training"; a user's own choice is
kept and nothing else changes. Why (MLflow 3.17 opens experiments as GenAI from its home
page): docs/mlflow.md, "Why not MLflow's home page".
"""
from __future__ import annotations

import http.client
import http.server
import subprocess
import sys

STORAGE_KEY = "mlflow.workflowType_v1"
# Runs before MLflow's scripts: a default for the switch, never over the user's choice.
DEFAULT_LAYOUT = (
    "<script>try{if(!localStorage.getItem(%r))localStorage.setItem(%r,"
    "JSON.stringify('machine_learning'))}catch(e){}</script>" % (STORAGE_KEY, STORAGE_KEY))
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade", "content-length", "content-encoding"}


def with_default_layout(page: bytes) -> bytes:
    """The UI's HTML page with DEFAULT_LAYOUT first in its <head> (unchanged without one)."""
    head = page.find(b"<head>")
    if head < 0:
        return page
    at = head + len(b"<head>")
    return page[:at] + DEFAULT_LAYOUT.encode() + page[at:]


def _handler(upstream_port: int):
    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in _HOP and k.lower() != "accept-encoding"}
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=600)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if "text/html" in (resp.getheader("Content-Type") or ""):
                    data = with_default_layout(data)
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:
                self.send_error(502, "MLflow UI not answering (yet)")
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

        def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
            pass

    return Proxy


def serve(uri: str, port: int) -> int:
    """Run MLflow's UI over `uri` on 127.0.0.1:`port` behind the proxy until Ctrl-C
    or until MLflow's server stops; returns its exit status (0 after Ctrl-C)."""
    import socket
    import threading

    with socket.socket() as s:  # a free port for MLflow's own server, behind the proxy
        s.bind(("127.0.0.1", 0))
        inner = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                             "--host", "127.0.0.1", "--port", str(inner)])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(inner))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="cellpick-ui", daemon=True)
    thread.start()
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        server.shutdown()
        server.server_close()
