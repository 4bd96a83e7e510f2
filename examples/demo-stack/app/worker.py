"""Demo worker: registers itself with the backend and re-registers every few seconds.

Environment: WORKER_NAME, WORKER_KIND, BACKEND_URL (default http://backend:8000),
HEARTBEAT_SECONDS (default 5), HEARTBEAT_FILE (default /tmp/worker-heartbeat; touched after
every successful registration, used by the container healthcheck), METRICS_PORT (default 9464:
Prometheus metrics on GET /metrics).

Telemetry (telemetry.py): one CLIENT span per registration, exported as OTLP/HTTP JSON when
OTEL_EXPORTER_OTLP_ENDPOINT is set (service.name defaults to worker-<kind>); its `traceparent`
header makes the backend's span part of the same trace.
"""

import json
import os
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from urllib.parse import urlsplit

import telemetry

NAME = os.environ.get("WORKER_NAME") or socket.gethostname()
KIND = os.environ.get("WORKER_KIND", "generic")
BACKEND_URL = os.environ.get("BACKEND_URL", "http://backend:8000").rstrip("/")
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "5"))
RETRY_SECONDS = 0.5
HEARTBEAT_FILE = os.environ.get("HEARTBEAT_FILE", "/tmp/worker-heartbeat")
METRICS_PORT = int(os.environ.get("METRICS_PORT", "9464"))
REGISTER_PATH = "/api/v1/workers/register"


def log(msg):
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    print(f"{ts} worker[{NAME}] {msg}", flush=True)


METRICS = telemetry.Registry()
JOBS = METRICS.counter("worker_jobs_total", "Jobs done: successful registrations and heartbeats.", ("kind",))
HEARTBEAT_FAILURES = METRICS.counter(
    "worker_heartbeat_failures_total", "Registrations and heartbeats the backend did not accept.", ("kind",)
)
UP = METRICS.gauge("worker_up", "1 while the worker process runs.")
TRACER = telemetry.Tracer(f"worker-{KIND}", log=log)


def register(headers=None):
    body = json.dumps({"name": NAME, "kind": KIND}).encode()
    req = urllib.request.Request(
        f"{BACKEND_URL}{REGISTER_PATH}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return resp.status, json.loads(resp.read() or b"{}")


def traced_register():
    """register() inside a CLIENT span whose traceparent goes to the backend."""
    url = urlsplit(f"{BACKEND_URL}{REGISTER_PATH}")
    attributes = {
        "http.request.method": "POST",
        "url.full": url.geturl(),
        "server.address": url.hostname,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }
    with TRACER.span(f"POST {REGISTER_PATH}", kind=telemetry.SpanKind.CLIENT, attributes=attributes) as span:
        try:
            status, payload = register(TRACER.inject({}, span))
        except urllib.error.HTTPError as e:
            span.set_attribute("http.response.status_code", e.code)
            raise
        span.set_attribute("http.response.status_code", status)
        return status, payload


def start_metrics():
    try:
        telemetry.start_metrics_server(METRICS_PORT, METRICS)
    except OSError as e:
        log(f"metrics: cannot listen on port {METRICS_PORT} ({e}); running without metrics")
        return
    log(f"metrics: http://0.0.0.0:{METRICS_PORT}/metrics")


def touch(path):
    with open(path, "a"):
        os.utime(path, None)


def main():
    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}, exiting")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log(f"starting: kind={KIND} backend={BACKEND_URL}")
    log(TRACER.describe())
    JOBS.labels(KIND)  # both series exist (at 0) from the first scrape
    HEARTBEAT_FAILURES.labels(KIND)
    UP.set(1)
    start_metrics()
    registered = False
    while not stop.is_set():
        try:
            status, payload = traced_register()
            touch(HEARTBEAT_FILE)
            JOBS.labels(KIND).inc()
            if not registered:
                log(f"registered with backend (HTTP {status}, last_seen {payload.get('last_seen')})")
                registered = True
            delay = HEARTBEAT_SECONDS
        except (urllib.error.URLError, OSError, ValueError) as e:
            HEARTBEAT_FAILURES.labels(KIND).inc()
            reason = getattr(e, "reason", None) or e
            log(f"backend not answering ({reason}); retrying in {RETRY_SECONDS}s")
            delay = RETRY_SECONDS
        stop.wait(delay)
    try:
        os.unlink(HEARTBEAT_FILE)
    except FileNotFoundError:
        pass
    TRACER.shutdown(timeout=1.0)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
