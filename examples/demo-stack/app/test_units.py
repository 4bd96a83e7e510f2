"""Unit tests of the backend's pure helpers and of telemetry.py, run inside the backend container
by `sandstack test`.

Writes JUnit XML to the path given with --junit (stdlib only: unittest + xml.etree). Outside the
image, where psycopg2 may be missing, the backend tests are skipped and the telemetry tests still
run. The telemetry tests only talk to servers they start on 127.0.0.1.
"""
import datetime
import json
import re
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import backend
except ModuleNotFoundError as e:
    if e.name != "psycopg2":
        raise
    backend = None
import telemetry

needs_backend = unittest.skipIf(backend is None, "backend.py needs psycopg2 (installed in the image)")


@needs_backend
class ItemJson(unittest.TestCase):
    def test_item_row_becomes_json(self):
        ts = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        self.assertEqual(backend.item_json((7, "signal", ts)), {"id": 7, "name": "signal", "created_at": backend.iso(ts)})

    def test_iso_is_utc_with_z(self):
        ts = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        self.assertTrue(backend.iso(ts).endswith("Z"))


@needs_backend
class Config(unittest.TestCase):
    def test_migration_creates_the_three_tables(self):
        for table in ("schema_migrations", "items", "workers"):
            self.assertIn(f"CREATE TABLE IF NOT EXISTS {table}", backend.MIGRATION_SQL)


@needs_backend
class Routes(unittest.TestCase):
    def test_ids_become_a_route_template(self):
        self.assertEqual(backend.route_of("/api/v1/items/42"), "/api/v1/items/{id}")
        self.assertEqual(backend.route_of("/api/v1/items"), "/api/v1/items")
        self.assertEqual(backend.route_of("/api/v1/workers/register"), "/api/v1/workers/register")
        self.assertIsNone(backend.route_of("/api/v1/items/abc"))
        self.assertIsNone(backend.route_of("/nope/123"))

    def test_metrics_page_names_the_backend_metrics(self):
        text = backend.METRICS.render()
        check_exposition(self, text)
        for name in ("http_requests_total", "http_request_duration_seconds", "workers_registered", "items_created_total"):
            self.assertIn(f"# TYPE {name} ", text)


# --- telemetry.py ----------------------------------------------------------------------------

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{" + _LABEL + "(?:," + _LABEL + r")*,?\})? (\S+)( -?[0-9]+)?\Z")
_META_LINE = re.compile(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)\Z")


def check_exposition(test, text):
    """Every line of text is valid Prometheus text format 0.0.4; each sample's family has HELP and TYPE."""
    test.assertTrue(text.endswith("\n"))
    helps, types = set(), {}
    for line in text.rstrip("\n").split("\n"):
        meta = _META_LINE.match(line)
        if meta:
            kind, name, rest = meta.groups()
            if kind == "HELP":
                helps.add(name)
            else:
                test.assertIn(rest, ("counter", "gauge", "histogram", "summary", "untyped"), line)
                types[name] = rest
            continue
        test.assertFalse(line.startswith("#"), f"unexpected comment line: {line!r}")
        m = _SAMPLE_LINE.match(line)
        test.assertIsNotNone(m, f"not a valid sample line: {line!r}")
        name, value = m.group(1), m.group(3)
        float(value)  # Go float syntax, NaN, +Inf, -Inf are all accepted by float()
        family = name
        if family not in types:
            family = re.sub(r"_(bucket|sum|count)\Z", "", name)
            test.assertEqual(types.get(family), "histogram", f"no TYPE line for {name}")
        test.assertIn(family, helps, f"no HELP line for {name}")


class TelemetryMetrics(unittest.TestCase):
    def test_counter_and_gauge_exposition(self):
        reg = telemetry.Registry()
        c = reg.counter("jobs_total", "Jobs done.", ("kind",))
        c.labels(kind="ingest").inc()
        c.labels("ingest").inc(2)
        c.labels(kind="backtest")
        g = reg.gauge("up", "Up.")
        g.set(1)
        text = reg.render()
        check_exposition(self, text)
        self.assertEqual(
            text,
            "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n"
            'jobs_total{kind="backtest"} 0\njobs_total{kind="ingest"} 3\n'
            "# HELP up Up.\n# TYPE up gauge\nup 1\n",
        )

    def test_label_values_and_help_are_escaped(self):
        reg = telemetry.Registry()
        c = reg.counter("odd_total", 'Help with \\ and\nnewline "quoted".', ("path",))
        c.labels(path='a\\b"c\nd').inc()
        text = reg.render()
        check_exposition(self, text)
        self.assertIn('# HELP odd_total Help with \\\\ and\\nnewline "quoted".\n', text)
        self.assertIn('odd_total{path="a\\\\b\\"c\\nd"} 1\n', text)

    def test_histogram_buckets_sum_and_count(self):
        reg = telemetry.Registry()
        h = reg.histogram("latency_seconds", "Latency.", ("route",), buckets=(1, 0.1))
        child = h.labels(route="/x")
        for v in (0.05, 0.1, 0.5, 20):
            child.observe(v)
        text = reg.render()
        check_exposition(self, text)
        self.assertIn(
            'latency_seconds_bucket{route="/x",le="0.1"} 2\n'
            'latency_seconds_bucket{route="/x",le="1"} 3\n'
            'latency_seconds_bucket{route="/x",le="+Inf"} 4\n'
            'latency_seconds_sum{route="/x"} 20.65\n'
            'latency_seconds_count{route="/x"} 4\n',
            text,
        )

    def test_default_buckets_end_with_inf(self):
        reg = telemetry.Registry()
        reg.histogram("d_seconds", "D.").observe(0.2)
        lines = [l for l in reg.render().splitlines() if l.startswith("d_seconds_bucket")]
        self.assertEqual(len(lines), len(telemetry.DEFAULT_BUCKETS) + 1)
        self.assertEqual(lines[0], 'd_seconds_bucket{le="0.005"} 0')
        self.assertEqual(lines[-1], 'd_seconds_bucket{le="+Inf"} 1')
        self.assertIn('d_seconds_bucket{le="0.25"} 1', lines)

    def test_gauge_function_and_misuse(self):
        reg = telemetry.Registry()
        g = reg.gauge("n", "N.")
        g.set_function(lambda: 7)
        self.assertIn("\nn 7\n", reg.render())
        c = reg.counter("c_total", "C.", ("a",))
        with self.assertRaises(ValueError):
            c.inc()  # labelled: needs .labels()
        with self.assertRaises(ValueError):
            c.labels(b="x")
        with self.assertRaises(ValueError):
            c.labels(a="x").inc(-1)
        with self.assertRaises(ValueError):
            reg.counter("c_total", "again")
        with self.assertRaises(ValueError):
            reg.histogram("h", "H.", ("le",))

    def test_counter_is_thread_safe(self):
        reg = telemetry.Registry()
        c = reg.counter("t_total", "T.", ("k",))

        def work():
            for _ in range(2000):
                c.labels(k="x").inc()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(c.labels(k="x").get(), 16000)

    def test_metrics_server(self):
        reg = telemetry.Registry()
        reg.counter("served_total", "S.").inc()
        server = telemetry.start_metrics_server(0, reg, host="127.0.0.1")
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1
            with opener.open(base + "/metrics", timeout=5) as resp:
                self.assertEqual(resp.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
                self.assertIn("served_total 1\n", resp.read().decode())
            with self.assertRaises(urllib.error.HTTPError) as ctx:
                opener.open(base + "/other", timeout=5)
            self.assertEqual(ctx.exception.code, 404)
            ctx.exception.close()
        finally:
            server.shutdown()
            server.server_close()


class TelemetryConfig(unittest.TestCase):
    def test_resource_attributes_are_percent_decoded(self):
        attrs = telemetry.parse_resource_attributes(
            "sandstack.instance.id=demo-a, deployment.environment = sandbox ,team=a%2Cb%3Dc%20d,novalue,=x,empty="
        )
        self.assertEqual(
            attrs,
            {"sandstack.instance.id": "demo-a", "deployment.environment": "sandbox", "team": "a,b=c d", "empty": ""},
        )
        self.assertEqual(telemetry.parse_resource_attributes(None), {})

    def test_service_name_precedence(self):
        r = telemetry.resource_attributes
        self.assertEqual(r({}, "backend"), {"service.name": "backend"})
        self.assertEqual(r({"OTEL_RESOURCE_ATTRIBUTES": "service.name=api"}, "backend")["service.name"], "api")
        env = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=api,a=1", "OTEL_SERVICE_NAME": "svc"}
        self.assertEqual(r(env, "backend"), {"service.name": "svc", "a": "1"})

    def test_endpoints(self):
        ep = telemetry.traces_endpoint
        self.assertIsNone(ep({}))
        self.assertIsNone(ep({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}))
        self.assertEqual(ep({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otlp:4318"}), "http://otlp:4318/v1/traces")
        self.assertEqual(ep({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otlp:4318/"}), "http://otlp:4318/v1/traces")
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otlp:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom"}
        self.assertEqual(ep(env), "http://t:1/custom")

    def test_without_endpoint_tracing_is_a_no_op(self):
        tracer = telemetry.Tracer("svc", env={})
        self.assertFalse(tracer.enabled)
        with tracer.span("x") as span:
            self.assertEqual(tracer.inject({}, span), {})
        self.assertTrue(tracer.flush(0.1))
        disabled = telemetry.Tracer("svc", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"})
        self.assertFalse(disabled.enabled)


class TelemetryTraceContext(unittest.TestCase):
    def test_traceparent_round_trip(self):
        tracer = telemetry.Tracer("svc", env={})
        with tracer.span("client", kind=telemetry.SpanKind.CLIENT) as client:
            header = telemetry.format_traceparent(client)
        self.assertRegex(header, r"\A00-[0-9a-f]{32}-[0-9a-f]{16}-01\Z")
        parent = telemetry.parse_traceparent(header)
        self.assertEqual((parent.trace_id, parent.span_id, parent.sampled, parent.remote), (client.trace_id, client.span_id, True, True))
        with tracer.span("server", kind=telemetry.SpanKind.SERVER, parent=parent) as server:
            pass
        self.assertEqual(server.trace_id, client.trace_id)
        self.assertEqual(server.parent_span_id, client.span_id)
        self.assertNotEqual(server.span_id, client.span_id)

    def test_invalid_traceparents_are_ignored(self):
        tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        p = telemetry.parse_traceparent
        self.assertIsNotNone(p(f"00-{tid}-{sid}-01"))
        self.assertFalse(p(f"00-{tid}-{sid}-00").sampled)
        self.assertIsNotNone(p(f"01-{tid}-{sid}-01-future"))
        for bad in (None, "", "garbage", f"00-{tid.upper()}-{sid}-01", f"00-{'0' * 32}-{sid}-01",
                    f"00-{tid}-{'0' * 16}-01", f"ff-{tid}-{sid}-01", f"00-{tid}-{sid}-01-extra", f"00-{tid}-{sid}"):
            self.assertIsNone(p(bad), bad)

    def test_nested_spans_and_errors(self):
        tracer = telemetry.Tracer("svc", env={})
        with self.assertRaises(RuntimeError):
            with tracer.span("outer") as outer:
                with tracer.span("inner") as inner:
                    raise RuntimeError("boom")
        self.assertEqual(inner.parent_span_id, outer.span_id)
        self.assertEqual(inner.trace_id, outer.trace_id)
        self.assertIsNone(outer.parent_span_id)
        self.assertEqual((inner.status_code, inner.status_message), (2, "RuntimeError: boom"))
        self.assertIsNotNone(outer.end_time_ns)
        self.assertIsNone(telemetry.current_span())


class _Collector:
    """An OTLP/HTTP endpoint on 127.0.0.1 that records JSON bodies; the first `fail` requests get 500."""

    def __init__(self, fail=0):
        self.bodies, self.headers, self.fail = [], [], fail
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.headers.append(dict(self.headers))
                status = 500 if collector.fail > 0 else 200
                collector.fail -= 1
                if status == 200:
                    collector.bodies.append(json.loads(raw))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TelemetryExport(unittest.TestCase):
    def setUp(self):
        self.logs = []

    def tracer(self, collector, **env):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, **env}
        return telemetry.Tracer("default-svc", env=env, log=self.logs.append)

    def test_exported_batch_follows_the_otlp_json_mapping(self):
        collector = _Collector()
        self.addCleanup(collector.close)
        tracer = self.tracer(collector, OTEL_RESOURCE_ATTRIBUTES="sandstack.instance.id=demo-a,deployment.environment=sandbox")
        with tracer.span("GET /api/v1/items", kind=telemetry.SpanKind.SERVER,
                         attributes={"http.request.method": "GET", "http.response.status_code": 200,
                                     "ok": True, "ratio": 0.5}) as parent:
            with tracer.span("child") as child:
                child.set_error("bad thing")
        self.assertTrue(tracer.flush(5))
        self.assertEqual(len(collector.bodies), 1)
        self.assertEqual(collector.headers[0]["Content-Type"], "application/json")
        (rs,) = collector.bodies[0]["resourceSpans"]
        resource = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
        self.assertEqual(resource, {
            "sandstack.instance.id": {"stringValue": "demo-a"},
            "deployment.environment": {"stringValue": "sandbox"},
            "service.name": {"stringValue": "default-svc"},
        })
        (ss,) = rs["scopeSpans"]
        self.assertTrue(ss["scope"]["name"])
        spans = {s["name"]: s for s in ss["spans"]}
        p, c = spans["GET /api/v1/items"], spans["child"]
        self.assertRegex(p["traceId"], r"\A[0-9a-f]{32}\Z")
        self.assertRegex(p["spanId"], r"\A[0-9a-f]{16}\Z")
        self.assertEqual((p["traceId"], p["spanId"]), (parent.trace_id, parent.span_id))
        self.assertNotIn("parentSpanId", p)
        self.assertEqual((c["traceId"], c["parentSpanId"]), (p["traceId"], p["spanId"]))
        self.assertEqual((p["kind"], c["kind"]), (2, 1))
        self.assertIsInstance(p["startTimeUnixNano"], str)
        self.assertLessEqual(int(p["startTimeUnixNano"]), int(c["startTimeUnixNano"]))
        self.assertLessEqual(int(c["endTimeUnixNano"]), int(p["endTimeUnixNano"]))
        attrs = {a["key"]: a["value"] for a in p["attributes"]}
        self.assertEqual(attrs, {
            "http.request.method": {"stringValue": "GET"},
            "http.response.status_code": {"intValue": "200"},
            "ok": {"boolValue": True},
            "ratio": {"doubleValue": 0.5},
        })
        self.assertNotIn("status", p)
        self.assertEqual(c["status"], {"code": 2, "message": "bad thing"})
        self.assertEqual(self.logs, [])

    def test_failures_are_logged_once_and_recovery_once(self):
        collector = _Collector(fail=3)
        self.addCleanup(collector.close)
        tracer = self.tracer(collector)
        for i in range(4):
            with tracer.span(f"s{i}"):
                pass
            self.assertTrue(tracer.flush(5))
        self.assertEqual(len(self.logs), 2, self.logs)
        self.assertIn("failing (HTTP 500)", self.logs[0])
        self.assertIn("recovered", self.logs[1])
        self.assertEqual([s["name"] for s in collector.bodies[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]], ["s3"])

    def test_unreachable_endpoint_never_raises(self):
        tracer = telemetry.Tracer("svc", env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}, log=self.logs.append)
        with tracer.span("x"):
            pass
        self.assertTrue(tracer.flush(5))
        self.assertEqual(len(self.logs), 1)

    def test_queue_is_bounded_and_drops_the_oldest(self):
        exported = []

        class Exporter:
            def export(self, spans):
                exported.extend(spans)

        proc = telemetry.BatchSpanProcessor(Exporter(), max_queue=3, batch_trigger=100, schedule_delay=60)
        for i in range(5):
            proc.enqueue(i)
        self.assertEqual(proc.dropped, 2)
        self.assertTrue(proc.flush(5))
        self.assertEqual(exported, [2, 3, 4])


class JUnitResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
        self._t0 = 0.0

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _record(self, test, status, message=""):
        self.cases.append((test, status, message, time.monotonic() - self._t0))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", str(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", f"{err[0].__name__}: {err[1]}")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def write_junit(result, path):
    suite = ET.Element("testsuite", name="backend-unit", tests=str(len(result.cases)),
                       failures=str(sum(1 for c in result.cases if c[1] == "failure")),
                       errors=str(sum(1 for c in result.cases if c[1] == "error")),
                       skipped=str(sum(1 for c in result.cases if c[1] == "skipped")),
                       time=f"{sum(c[3] for c in result.cases):.3f}")
    for test, status, message, seconds in result.cases:
        case = ET.SubElement(suite, "testcase", classname=type(test).__name__, name=test._testMethodName, time=f"{seconds:.3f}")
        if status in ("failure", "error", "skipped"):
            ET.SubElement(case, status, message=message)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


if __name__ == "__main__":
    junit = sys.argv[sys.argv.index("--junit") + 1] if "--junit" in sys.argv else None
    runner = unittest.TextTestRunner(verbosity=2, resultclass=JUnitResult)
    result = runner.run(unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    if junit:
        write_junit(result, junit)
    sys.exit(0 if result.wasSuccessful() else 1)
