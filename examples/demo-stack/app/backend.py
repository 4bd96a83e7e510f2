"""Demo trading-research backend: a small JSON API over PostgreSQL (stdlib + psycopg2 only).

Endpoints:
  GET  /api/v1/health            200 when the database answers SELECT 1 right now, else 503
  GET  /api/v1/items             list items
  POST /api/v1/items             {"name": "..."} -> 201 with the created row
  GET  /api/v1/items/<id>        one item or 404
  POST /api/v1/workers/register  {"name": "...", "kind": "..."} -> upsert, last_seen = now()
  GET  /api/v1/workers           workers seen in the last 60 s
  GET  /metrics                  Prometheus metrics (text format 0.0.4)

Telemetry (telemetry.py): one SERVER span per API request except the health check, exported as
OTLP/HTTP JSON when OTEL_EXPORTER_OTLP_ENDPOINT is set; an incoming `traceparent` is continued.
"""

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

import telemetry

LISTEN_HOST = os.environ.get("LISTEN_HOST", "0.0.0.0")
LISTEN_PORT = int(os.environ.get("LISTEN_PORT", "8000"))
INSTANCE_ID = os.environ.get("SANDSTACK_INSTANCE_ID") or "unknown"
WORKER_TTL_SECONDS = 60
MIGRATION_TIMEOUT_SECONDS = float(os.environ.get("MIGRATION_TIMEOUT_SECONDS", "30"))
MAX_BODY_BYTES = 1 << 20
# Fault injection for sandstack's own tests of its gate: "items-500" makes GET /api/v1/items fail.
DEMO_FAULT = os.environ.get("DEMO_FAULT", "")

SCHEMA_VERSION = 1
MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS items (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS workers (
    name      text PRIMARY KEY,
    kind      text NOT NULL,
    last_seen timestamptz NOT NULL DEFAULT now()
);
"""


def log(msg):
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    print(f"{ts} backend {msg}", flush=True)


# --- telemetry -------------------------------------------------------------------------------

METRICS = telemetry.Registry()
HTTP_REQUESTS = METRICS.counter(
    "http_requests_total", "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
)
HTTP_DURATION = METRICS.histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request, by method and route template.",
    ("method", "route"),
)
WORKERS_REGISTERED = METRICS.gauge(
    "workers_registered", "Workers that registered with this backend in the last 60 s."
)
ITEMS_CREATED = METRICS.counter("items_created_total", "Items created through POST /api/v1/items.")
TRACER = telemetry.Tracer("backend", log=log)

HEALTH_ROUTE = "/api/v1/health"
UNMATCHED_ROUTE = "unmatched"  # metrics label for paths that match no route (never the raw path)
_ROUTES = (HEALTH_ROUTE, "/api/v1/items", "/api/v1/workers/register", "/api/v1/workers")
_ITEM_PATH = re.compile(r"/api/v1/items/(\d{1,18})")


def route_of(path):
    """The route template of a normalised request path, e.g. /api/v1/items/{id}, or None."""
    if path in _ROUTES:
        return path
    if _ITEM_PATH.fullmatch(path):
        return "/api/v1/items/{id}"
    return None


_workers_lock = threading.Lock()
_workers_seen = {}  # worker name -> time.monotonic() of its last registration


def note_worker(name):
    with _workers_lock:
        _workers_seen[name] = time.monotonic()


def active_workers():
    cutoff = time.monotonic() - WORKER_TTL_SECONDS
    with _workers_lock:
        for name in [n for n, t in _workers_seen.items() if t < cutoff]:
            del _workers_seen[name]
        return len(_workers_seen)


WORKERS_REGISTERED.set_function(active_workers)


def connect():
    """A fresh connection per request: nothing is held open between requests."""
    return psycopg2.connect(
        host=os.environ.get("DATABASE_HOST", "db"),
        port=int(os.environ.get("DATABASE_PORT", "5432")),
        dbname=os.environ.get("DATABASE_NAME", "ktrdr"),
        user=os.environ.get("DATABASE_USER", "ktrdr"),
        password=os.environ.get("DATABASE_PASSWORD", ""),
        connect_timeout=2,
        application_name="ktrdr-backend",
    )


class Db:
    """Context manager: connection + cursor, commit on success, always closed."""

    def __enter__(self):
        self.conn = connect()
        self.cur = self.conn.cursor()
        return self.cur

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()
        return False


def migrate(stop):
    deadline = time.monotonic() + MIGRATION_TIMEOUT_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            with Db() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(727001)")
                cur.execute(MIGRATION_SQL)
                cur.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s) ON CONFLICT DO NOTHING",
                    (SCHEMA_VERSION,),
                )
            log(f"migration: schema at version {SCHEMA_VERSION} (attempt {attempt})")
            return True
        except psycopg2.Error as e:
            if time.monotonic() >= deadline or stop.is_set():
                log(f"migration: giving up after {attempt} attempts: {str(e).strip()}")
                return False
            log(f"migration: database not ready ({str(e).strip().splitlines()[0]}), retrying")
            stop.wait(0.5)


def iso(ts):
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def item_json(row):
    return {"id": row[0], "name": row[1], "created_at": iso(row[2])}


class BadRequest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    server_version = "ktrdr-backend/1.0"
    sys_version = ""

    # One log line per request is written by us (see _send); silence the default stderr log.
    def log_message(self, format, *args):
        pass

    def _send(self, status, payload):
        self._status = status
        if status >= 500 and isinstance(payload, dict):
            self._error = " - ".join(str(payload[k]) for k in ("error", "detail") if payload.get(k))
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        elapsed_ms = (time.monotonic() - self._t0) * 1000
        log(f'{self.client_address[0]} "{self.command} {self.path}" {status} {elapsed_ms:.1f}ms')

    def _json_body(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise BadRequest("body too large")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"invalid JSON: {e}")
        if not isinstance(data, dict):
            raise BadRequest("JSON body must be an object")
        return data

    @staticmethod
    def _required_str(data, key):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f'"{key}" must be a non-empty string')
        return value.strip()

    def _dispatch(self, method):
        self._t0 = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if method == "GET" and path == "/api/v1/health":
                return self.health()
            if path == "/api/v1/items":
                if method == "GET":
                    return self.list_items()
                if method == "POST":
                    return self.create_item()
                return self._send(405, {"error": "method not allowed"})
            m = re.fullmatch(r"/api/v1/items/(\d{1,18})", path)
            if m:
                if method == "GET":
                    return self.get_item(int(m.group(1)))
                return self._send(405, {"error": "method not allowed"})
            if path == "/api/v1/workers/register":
                if method == "POST":
                    return self.register_worker()
                return self._send(405, {"error": "method not allowed"})
            if path == "/api/v1/workers":
                if method == "GET":
                    return self.list_workers()
                return self._send(405, {"error": "method not allowed"})
            return self._send(404, {"error": "not found", "path": path})
        except BadRequest as e:
            return self._send(400, {"error": str(e)})
        except psycopg2.Error as e:
            return self._send(503, {"error": "database unavailable", "detail": str(e).strip()})
        except Exception as e:  # noqa: BLE001 - last-resort JSON 500
            return self._send(500, {"error": "internal error", "detail": repr(e)})

    def _handle(self, method):
        """_dispatch plus telemetry: /metrics, request metrics and a SERVER span per request."""
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if method == "GET" and path == "/metrics":
            return self._metrics()
        route = route_of(path)
        self._status = None
        self._error = None
        t0 = time.monotonic()
        span_cm = contextlib.nullcontext()
        if route != HEALTH_ROUTE:  # the healthcheck runs every second: not traced
            span_cm = TRACER.span(
                f"{method} {route}" if route else method,
                kind=telemetry.SpanKind.SERVER,
                parent=telemetry.parse_traceparent(self.headers.get("traceparent")),
                attributes={
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": self.path.split("?", 1)[0],
                    "client.address": self.client_address[0],
                },
            )
        try:
            with span_cm as span:
                try:
                    self._dispatch(method)
                finally:
                    if span is not None and self._status is not None:
                        span.set_attribute("http.response.status_code", self._status)
                        if self._status >= 500:
                            span.set_error(self._error or f"HTTP {self._status}")
        finally:
            route_label = route or UNMATCHED_ROUTE
            HTTP_DURATION.labels(method, route_label).observe(time.monotonic() - t0)
            if self._status is not None:
                HTTP_REQUESTS.labels(method, route_label, str(self._status)).inc()

    def _metrics(self):
        body = METRICS.render().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", telemetry.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # --- endpoints -------------------------------------------------------------------------

    def health(self):
        try:
            with Db() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        except psycopg2.Error as e:
            return self._send(
                503,
                {
                    "status": "degraded",
                    "instance": INSTANCE_ID,
                    "database": "unavailable",
                    "detail": str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__,
                },
            )
        return self._send(200, {"status": "ok", "instance": INSTANCE_ID, "database": "ok"})

    def list_items(self):
        if DEMO_FAULT == "items-500":
            return self._send(500, {"error": "injected fault: items-500"})
        with Db() as cur:
            cur.execute("SELECT id, name, created_at FROM items ORDER BY id")
            rows = cur.fetchall()
        return self._send(200, {"items": [item_json(r) for r in rows]})

    def create_item(self):
        name = self._required_str(self._json_body(), "name")
        with Db() as cur:
            cur.execute(
                "INSERT INTO items (name) VALUES (%s) RETURNING id, name, created_at", (name,)
            )
            row = cur.fetchone()
        ITEMS_CREATED.inc()
        return self._send(201, item_json(row))

    def get_item(self, item_id):
        with Db() as cur:
            cur.execute("SELECT id, name, created_at FROM items WHERE id = %s", (item_id,))
            row = cur.fetchone()
        if row is None:
            return self._send(404, {"error": "item not found", "id": item_id})
        return self._send(200, item_json(row))

    def register_worker(self):
        data = self._json_body()
        name = self._required_str(data, "name")
        kind = self._required_str(data, "kind")
        with Db() as cur:
            cur.execute(
                """INSERT INTO workers (name, kind, last_seen) VALUES (%s, %s, now())
                   ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, last_seen = now()
                   RETURNING name, kind, last_seen""",
                (name, kind),
            )
            row = cur.fetchone()
        note_worker(row[0])
        return self._send(200, {"name": row[0], "kind": row[1], "last_seen": iso(row[2])})

    def list_workers(self):
        with Db() as cur:
            cur.execute(
                """SELECT name, kind, last_seen FROM workers
                   WHERE last_seen > now() - make_interval(secs => %s)
                   ORDER BY name""",
                (WORKER_TTL_SECONDS,),
            )
            rows = cur.fetchall()
        workers = [{"name": r[0], "kind": r[1], "last_seen": iso(r[2])} for r in rows]
        return self._send(200, {"workers": workers, "count": len(workers)})


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

    log(f"starting (instance {INSTANCE_ID})")
    log(TRACER.describe())
    if not migrate(stop):
        return 0 if stop.is_set() else 1
    if stop.is_set():
        return 0

    server = Server((LISTEN_HOST, LISTEN_PORT), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    log(f"listening on http://{LISTEN_HOST}:{LISTEN_PORT}")
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    TRACER.shutdown(timeout=1.0)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
