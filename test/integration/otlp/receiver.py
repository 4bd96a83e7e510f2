"""A minimal OTLP/HTTP JSON trace receiver for integration tests (Python standard library only).

  POST /v1/traces   JSON body (Content-Type application/json, optionally gzip-encoded) -> 200 {}
                    other content types -> 415, invalid JSON -> 400, no Content-Length -> 411
  GET  /received    200 {"requests": [<every accepted body, in arrival order>]}
  DELETE /received  forgets what was received -> 200 {}
  GET  /healthz     200 {"status": "ok"}

Listens on RECEIVER_HOST:RECEIVER_PORT (default 0.0.0.0:4318) and prints one line per request.
"""

import gzip
import json
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = os.environ.get("RECEIVER_HOST", "0.0.0.0")
PORT = int(os.environ.get("RECEIVER_PORT", "4318"))
MAX_BODY_BYTES = 32 << 20

_lock = threading.Lock()
_received = []


def log(msg):
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    print(f"{ts} otlp-receiver {msg}", flush=True)


def span_count(body):
    try:
        return sum(
            len(ss.get("spans") or [])
            for rs in body.get("resourceSpans") or []
            for ss in rs.get("scopeSpans") or []
        )
    except (AttributeError, TypeError):
        return 0


class Handler(BaseHTTPRequestHandler):
    server_version = "otlp-receiver/1.0"
    sys_version = ""

    def log_message(self, format, *args):  # one line per request is written by _reply
        pass

    def _reply(self, status, payload, note=""):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        log(f'{self.client_address[0]} "{self.command} {self.path}" {status}{" " + note if note else ""}')

    def _path(self):
        return self.path.split("?", 1)[0]

    def do_GET(self):
        path = self._path()
        if path == "/healthz":
            return self._reply(200, {"status": "ok"})
        if path == "/received":
            with _lock:
                requests = list(_received)
            return self._reply(200, {"requests": requests}, f"({len(requests)} requests)")
        return self._reply(404, {"error": "not found"})

    def do_DELETE(self):
        if self._path() == "/received":
            with _lock:
                _received.clear()
            return self._reply(200, {})
        return self._reply(404, {"error": "not found"})

    def do_POST(self):
        if self._path() != "/v1/traces":
            return self._reply(404, {"error": "not found"})
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return self._reply(411, {"error": "Content-Length required"})
        try:
            length = int(length_header)
        except ValueError:
            return self._reply(400, {"error": "invalid Content-Length"})
        if length < 0 or length > MAX_BODY_BYTES:
            return self._reply(413, {"error": "body too large"})
        raw = self.rfile.read(length) if length else b""
        if ctype != "application/json":
            return self._reply(415, {"error": f"unsupported content type {ctype or '(none)'}; send application/json"})
        try:
            if (self.headers.get("Content-Encoding") or "").strip().lower() == "gzip":
                raw = gzip.decompress(raw)
            body = json.loads(raw.decode("utf-8"))
        except (OSError, EOFError, UnicodeDecodeError, ValueError) as e:
            return self._reply(400, {"error": f"invalid JSON: {e}"})
        with _lock:
            _received.append(body)
        return self._reply(200, {}, f"spans={span_count(body) if isinstance(body, dict) else 0}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


def main():
    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = Server((HOST, PORT), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    log(f"listening on http://{HOST}:{server.server_address[1]}")
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
