"""Demo worker: registers itself with the backend and re-registers every few seconds.

Environment: WORKER_NAME, WORKER_KIND, BACKEND_URL (default http://backend:8000),
HEARTBEAT_SECONDS (default 5), HEARTBEAT_FILE (default /tmp/worker-heartbeat; touched after
every successful registration, used by the container healthcheck).
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

NAME = os.environ.get("WORKER_NAME") or socket.gethostname()
KIND = os.environ.get("WORKER_KIND", "generic")
BACKEND_URL = os.environ.get("BACKEND_URL", "http://backend:8000").rstrip("/")
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "5"))
RETRY_SECONDS = 0.5
HEARTBEAT_FILE = os.environ.get("HEARTBEAT_FILE", "/tmp/worker-heartbeat")


def log(msg):
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    print(f"{ts} worker[{NAME}] {msg}", flush=True)


def register():
    body = json.dumps({"name": NAME, "kind": KIND}).encode()
    req = urllib.request.Request(
        f"{BACKEND_URL}/api/v1/workers/register",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return resp.status, json.loads(resp.read() or b"{}")


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
    registered = False
    while not stop.is_set():
        try:
            status, payload = register()
            touch(HEARTBEAT_FILE)
            if not registered:
                log(f"registered with backend (HTTP {status}, last_seen {payload.get('last_seen')})")
                registered = True
            delay = HEARTBEAT_SECONDS
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            log(f"backend not answering ({reason}); retrying in {RETRY_SECONDS}s")
            delay = RETRY_SECONDS
        stop.wait(delay)
    try:
        os.unlink(HEARTBEAT_FILE)
    except FileNotFoundError:
        pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
