"""End-to-end smoke tests for the demo stack (stdlib only).

Runs against BASE_URL (default http://backend:8000), writes JUnit XML to
$ARTIFACTS_DIR/junit-e2e.xml (default /artifacts), prints a one-line summary and exits 0 when
every test passed, 1 otherwise.
"""

import json
import os
import socket
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

BASE_URL = os.environ.get("BASE_URL", "http://backend:8000").rstrip("/")
ARTIFACTS_DIR = os.environ.get("ARTIFACTS_DIR", "/artifacts")
READY_TIMEOUT = float(os.environ.get("E2E_READY_TIMEOUT", "30"))
WORKERS_TIMEOUT = float(os.environ.get("E2E_WORKERS_TIMEOUT", "15"))
MIN_WORKERS = int(os.environ.get("E2E_MIN_WORKERS", "2"))
SUITE = "demo-stack-e2e"


def request(method, path, payload=None, timeout=5):
    data = None
    headers = {"Accept": "application/json"}
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE_URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        body = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        raise AssertionError(f"{method} {path}: response is not JSON: {raw[:200]!r}")
    return status, body


def expect_status(method, path, status, body, expected):
    assert status == expected, f"{method} {path}: expected HTTP {expected}, got {status}: {body}"


# --- tests -------------------------------------------------------------------------------------

def test_health():
    status, body = request("GET", "/api/v1/health")
    expect_status("GET", "/api/v1/health", status, body, 200)
    assert body.get("status") == "ok", f"status is {body.get('status')!r}: {body}"
    assert body.get("database") == "ok", f"database is {body.get('database')!r}: {body}"
    instance = body.get("instance")
    assert isinstance(instance, str) and instance.strip(), f"empty instance id: {body}"


def test_create_item_and_read_back():
    name = f"e2e-item-{uuid.uuid4().hex[:12]}"
    status, created = request("POST", "/api/v1/items", {"name": name})
    expect_status("POST", "/api/v1/items", status, created, 201)
    assert created.get("name") == name, f"created item has name {created.get('name')!r}"
    assert isinstance(created.get("id"), int), f"created item has no integer id: {created}"
    assert created.get("created_at"), f"created item has no created_at: {created}"

    path = f"/api/v1/items/{created['id']}"
    status, fetched = request("GET", path)
    expect_status("GET", path, status, fetched, 200)
    assert fetched == created, f"read back {fetched}, created {created}"

    status, listing = request("GET", "/api/v1/items")
    expect_status("GET", "/api/v1/items", status, listing, 200)
    ids = [item.get("id") for item in listing.get("items", [])]
    assert created["id"] in ids, f"item {created['id']} not in list of {len(ids)} items"


def test_unknown_item_is_404():
    status, body = request("GET", "/api/v1/items/999999999")
    expect_status("GET", "/api/v1/items/999999999", status, body, 404)


def test_workers_registered():
    deadline = time.monotonic() + WORKERS_TIMEOUT
    while True:
        status, body = request("GET", "/api/v1/workers")
        expect_status("GET", "/api/v1/workers", status, body, 200)
        count = body.get("count", 0)
        if count >= MIN_WORKERS:
            names = [w.get("name") for w in body.get("workers", [])]
            assert len(names) == count, f"count {count} but {len(names)} workers listed"
            return
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"expected at least {MIN_WORKERS} workers within {WORKERS_TIMEOUT:.0f}s, got {count}: {body}"
            )
        time.sleep(0.5)


TESTS = [test_health, test_create_item_and_read_back, test_unknown_item_is_404,
         test_workers_registered]


# --- runner ------------------------------------------------------------------------------------

def wait_until_ready():
    """Give the backend up to READY_TIMEOUT seconds to answer its health endpoint."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            status, _ = request("GET", "/api/v1/health", timeout=2)
            if status == 200:
                return True
        except (urllib.error.URLError, OSError, AssertionError):
            pass
        time.sleep(0.5)
    return False


def run():
    suite_start = time.monotonic()
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if not wait_until_ready():
        print(f"e2e: backend at {BASE_URL} not healthy after {READY_TIMEOUT:.0f}s; running tests anyway",
              flush=True)

    results = []  # (name, seconds, kind or None, exception type, message, detail)
    for test in TESTS:
        start = time.monotonic()
        kind = exc_type = message = detail = None
        try:
            test()
        except AssertionError as e:
            kind, message = "failure", str(e) or "assertion failed"
            exc_type, detail = type(e).__name__, traceback.format_exc()
        except Exception as e:  # noqa: BLE001 - reported as a JUnit <error>
            kind, message = "error", f"{type(e).__name__}: {e}"
            exc_type, detail = type(e).__name__, traceback.format_exc()
        elapsed = time.monotonic() - start
        results.append((test.__name__, elapsed, kind, exc_type, message, detail))
        verdict = "PASS" if kind is None else kind.upper()
        print(f"{verdict:7} {test.__name__} ({elapsed:.2f}s)" + (f": {message}" if message else ""),
              flush=True)

    total = time.monotonic() - suite_start
    failures = sum(1 for r in results if r[2] == "failure")
    errors = sum(1 for r in results if r[2] == "error")

    suite = ET.Element("testsuite", {
        "name": SUITE, "tests": str(len(results)), "failures": str(failures),
        "errors": str(errors), "skipped": "0", "time": f"{total:.3f}",
        "timestamp": timestamp, "hostname": socket.gethostname(),
    })
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "base_url", "value": BASE_URL})
    for name, elapsed, kind, exc_type, message, detail in results:
        case = ET.SubElement(suite, "testcase", {"classname": SUITE, "name": name,
                                                 "time": f"{elapsed:.3f}"})
        if kind is not None:
            node = ET.SubElement(case, kind, {"message": message[:1000], "type": exc_type})
            node.text = detail
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    report = os.path.join(ARTIFACTS_DIR, "junit-e2e.xml")
    try:
        os.makedirs(ARTIFACTS_DIR, exist_ok=True)
        tree.write(report, encoding="utf-8", xml_declaration=True)
    except OSError as e:
        print(f"e2e: could not write {report}: {e}", flush=True)
        report = None

    passed = len(results) - failures - errors
    failed = failures + errors
    if report:
        print(f"e2e: junit report written to {report} ({total:.2f}s)", flush=True)
    print(f"e2e: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(run())
