"""Telemetry for the demo apps, Python standard library only: Prometheus metrics and OTLP traces.

Metrics: a small thread-safe Registry of Counter, Gauge and Histogram metrics (optionally
labelled), rendered in the Prometheus text exposition format 0.0.4 by Registry.render() and
served on GET /metrics by start_metrics_server().

Traces: a Tracer creates spans and a daemon thread exports them in batches as OTLP/HTTP JSON.
The environment is read once, when the Tracer is created:

  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  URL of the traces endpoint, used as is
  OTEL_EXPORTER_OTLP_ENDPOINT         base URL (e.g. http://sandstack-otlp:4318): spans go to <base>/v1/traces
  OTEL_SERVICE_NAME                   service.name; else service.name from OTEL_RESOURCE_ATTRIBUTES;
                                      else the default name the app passes to Tracer()
  OTEL_RESOURCE_ATTRIBUTES            key=value,key=value (values percent-decoded)
  OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none   turn exporting off

Without an endpoint nothing is exported and no thread is started; spans still work in-process.
Exporting never raises into the app: a failing endpoint is logged once when it starts failing and
once when it recovers, and the spans of failed batches are dropped.

W3C trace context: parse_traceparent() turns an incoming `traceparent` header into a parent
SpanContext, format_traceparent() / Tracer.inject() build the header for an outgoing request.
"""

import base64
import bisect
import collections
import contextlib
import contextvars
import json
import math
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- metrics ---------------------------------------------------------------------------------

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def format_value(value):
    """A sample value (or `le` bound) as the text format expects: Go float syntax, +Inf/-Inf/NaN."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = repr(v)
    return s[:-2] if s.endswith(".0") else s


def escape_label_value(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n")


def _label_block(pairs):
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs) + "}"


class _CounterChild:
    __slots__ = ("_lock", "_value")

    def __init__(self, lock):
        self._lock = lock
        self._value = 0.0

    def inc(self, amount=1):
        if amount < 0:
            raise ValueError("a counter can only go up")
        with self._lock:
            self._value += amount

    def get(self):
        with self._lock:
            return self._value

    def _samples(self):  # called with the lock held
        return [("", (), self._value)]


class _GaugeChild:
    __slots__ = ("_lock", "_value", "_function")

    def __init__(self, lock):
        self._lock = lock
        self._value = 0.0
        self._function = None

    def set(self, value):
        with self._lock:
            self._value = float(value)

    def inc(self, amount=1):
        with self._lock:
            self._value += amount

    def dec(self, amount=1):
        with self._lock:
            self._value -= amount

    def set_function(self, function):
        """The value is function() at render time (it must not touch this metric)."""
        with self._lock:
            self._function = function

    def get(self):
        with self._lock:
            return self._current()

    def _current(self):
        if self._function is None:
            return self._value
        try:
            return float(self._function())
        except Exception:  # noqa: BLE001 - a broken callback must not break the scrape
            return math.nan

    def _samples(self):
        return [("", (), self._current())]


class _HistogramChild:
    __slots__ = ("_lock", "_bounds", "_counts", "_sum", "_count")

    def __init__(self, lock, bounds):
        self._lock = lock
        self._bounds = bounds  # sorted, ends with +Inf
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self._count = 0

    def observe(self, value):
        value = float(value)
        i = bisect.bisect_left(self._bounds, value)  # first bucket with value <= le
        with self._lock:
            if i < len(self._counts):
                self._counts[i] += 1
            self._sum += value
            self._count += 1

    def _samples(self):
        out = []
        cumulative = 0
        for bound, n in zip(self._bounds, self._counts):
            cumulative += n
            out.append(("_bucket", (("le", format_value(bound)),), cumulative))
        out.append(("_sum", (), self._sum))
        out.append(("_count", (), self._count))
        return out


class _Metric:
    type = "untyped"

    def __init__(self, name, documentation, labelnames=()):
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        labelnames = tuple(labelnames)
        for label in labelnames:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")
        if len(set(labelnames)) != len(labelnames):
            raise ValueError(f"duplicate label names in {labelnames!r}")
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._lock = threading.Lock()
        self._children = {}
        if not labelnames:
            self._children[()] = self._new_child()

    def _new_child(self):
        raise NotImplementedError

    def labels(self, *values, **named):
        """The child for one combination of label values (created at zero on first use)."""
        if not self.labelnames:
            raise ValueError(f"{self.name} has no labels")
        if values and named:
            raise ValueError("pass label values either by position or by name")
        if named:
            if set(named) != set(self.labelnames):
                raise ValueError(f"{self.name} expects labels {list(self.labelnames)}, got {sorted(named)}")
            values = tuple(str(named[n]) for n in self.labelnames)
        else:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} expects {len(self.labelnames)} label values")
            values = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(values)
            if child is None:
                child = self._children[values] = self._new_child()
            return child

    def _default(self):
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")
        return self._children[()]

    def render_lines(self):
        lines = [f"# HELP {self.name} {escape_help(self.documentation)}", f"# TYPE {self.name} {self.type}"]
        with self._lock:
            snapshot = [(values, child._samples()) for values, child in sorted(self._children.items())]
        for values, samples in snapshot:
            base = tuple(zip(self.labelnames, values))
            for suffix, extra, value in samples:
                lines.append(f"{self.name}{suffix}{_label_block(base + extra)} {format_value(value)}")
        return lines


class Counter(_Metric):
    type = "counter"

    def _new_child(self):
        return _CounterChild(self._lock)

    def inc(self, amount=1):
        self._default().inc(amount)

    def get(self):
        return self._default().get()


class Gauge(_Metric):
    type = "gauge"

    def _new_child(self):
        return _GaugeChild(self._lock)

    def set(self, value):
        self._default().set(value)

    def inc(self, amount=1):
        self._default().inc(amount)

    def dec(self, amount=1):
        self._default().dec(amount)

    def set_function(self, function):
        self._default().set_function(function)

    def get(self):
        return self._default().get()


class Histogram(_Metric):
    type = "histogram"

    def __init__(self, name, documentation, labelnames=(), buckets=DEFAULT_BUCKETS):
        if "le" in tuple(labelnames):
            raise ValueError("a histogram cannot have a label named le")
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        if len(set(bounds)) != len(bounds):
            raise ValueError("duplicate histogram buckets")
        self.buckets = tuple(bounds)
        super().__init__(name, documentation, labelnames)

    def _new_child(self):
        return _HistogramChild(self._lock, self.buckets)

    def observe(self, value):
        self._default().observe(value)


class Registry:
    """Metrics in registration order; render() is the /metrics body."""

    def __init__(self):
        self._lock = threading.Lock()
        self._metrics = {}

    def register(self, metric):
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name, documentation, labelnames=()):
        return self.register(Counter(name, documentation, labelnames))

    def gauge(self, name, documentation, labelnames=()):
        return self.register(Gauge(name, documentation, labelnames))

    def histogram(self, name, documentation, labelnames=(), buckets=DEFAULT_BUCKETS):
        return self.register(Histogram(name, documentation, labelnames, buckets))

    def render(self):
        with self._lock:
            metrics = list(self._metrics.values())
        lines = []
        for metric in metrics:
            lines.extend(metric.render_lines())
        return "\n".join(lines) + "\n"


class _MetricsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


def _metrics_handler(registry):
    class MetricsHandler(BaseHTTPRequestHandler):
        server_version = "telemetry/1.0"
        sys_version = ""

        def log_message(self, format, *args):  # no access log: scrapes are noise
            pass

        def _reply(self, with_body):
            if self.path.split("?", 1)[0] == "/metrics":
                status, body, ctype = 200, registry.render().encode("utf-8"), CONTENT_TYPE
            else:
                status, body, ctype = 404, b"not found\n", "text/plain; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self):
            self._reply(True)

        def do_HEAD(self):
            self._reply(False)

    return MetricsHandler


def start_metrics_server(port, registry, host="0.0.0.0"):
    """Serves GET /metrics on host:port from a daemon thread; returns the server (port 0 = any)."""
    server = _MetricsHTTPServer((host, int(port)), _metrics_handler(registry))
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True, name="metrics-server"
    ).start()
    return server


# --- traces ----------------------------------------------------------------------------------


class SpanKind:
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")


def new_trace_id():
    while True:
        value = secrets.token_hex(16)
        if value != _INVALID_TRACE_ID:
            return value


def new_span_id():
    while True:
        value = secrets.token_hex(8)
        if value != _INVALID_SPAN_ID:
            return value


class SpanContext:
    """What crosses process boundaries: trace id, span id and the sampled flag."""

    __slots__ = ("trace_id", "span_id", "sampled", "remote")

    def __init__(self, trace_id, span_id, sampled=True, remote=False):
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.remote = remote

    def __repr__(self):
        return f"SpanContext({self.trace_id}, {self.span_id}, sampled={self.sampled}, remote={self.remote})"


def parse_traceparent(value):
    """A W3C `traceparent` header -> SpanContext (remote), or None when absent or invalid."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip())
    if not m:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _INVALID_TRACE_ID or span_id == _INVALID_SPAN_ID:
        return None
    return SpanContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1), remote=True)


def format_traceparent(span_or_context):
    """The `traceparent` header value naming a span (or SpanContext) as the parent."""
    ctx = getattr(span_or_context, "context", span_or_context)
    return f"00-{ctx.trace_id}-{ctx.span_id}-{'01' if ctx.sampled else '00'}"


class Span:
    def __init__(self, tracer, name, kind, context, parent_span_id, attributes):
        self._tracer = tracer
        self.name = name
        self.kind = kind
        self.context = context
        self.parent_span_id = parent_span_id
        self.attributes = {}
        self.events = []
        self.status_code = STATUS_UNSET
        self.status_message = ""
        self.start_time_ns = time.time_ns()
        self.end_time_ns = None
        if attributes:
            self.set_attributes(attributes)

    @property
    def trace_id(self):
        return self.context.trace_id

    @property
    def span_id(self):
        return self.context.span_id

    def set_attribute(self, key, value):
        if value is not None:
            self.attributes[str(key)] = value

    def set_attributes(self, attributes):
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name, attributes=None):
        self.events.append((time.time_ns(), name, dict(attributes or {})))

    def set_error(self, message=""):
        self.status_code = STATUS_ERROR
        self.status_message = str(message)

    def set_ok(self):
        self.status_code = STATUS_OK
        self.status_message = ""

    def record_exception(self, exc):
        message = f"{type(exc).__name__}: {exc}"
        self.add_event("exception", {"exception.type": type(exc).__name__, "exception.message": str(exc)})
        if self.status_code != STATUS_ERROR:
            self.set_error(message)

    def end(self):
        if self.end_time_ns is None:
            self.end_time_ns = time.time_ns()
            self._tracer._on_end(self)

    def __repr__(self):
        return f"Span({self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"


_CURRENT_SPAN = contextvars.ContextVar("telemetry_current_span", default=None)


def current_span():
    return _CURRENT_SPAN.get()


def parse_resource_attributes(value):
    """OTEL_RESOURCE_ATTRIBUTES (`k=v,k=v`, values percent-encoded) -> dict; bad entries skipped."""
    attrs = {}
    for item in (value or "").split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        attrs[key] = urllib.parse.unquote(raw.strip())
    return attrs


def resource_attributes(env, default_service_name):
    attrs = parse_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES"))
    attrs["service.name"] = (
        (env.get("OTEL_SERVICE_NAME") or "").strip() or attrs.get("service.name") or default_service_name
    )
    return attrs


def traces_endpoint(env):
    """The URL spans are POSTed to, or None when no endpoint is configured."""
    url = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if not url:
        base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
        if not base:
            return None
        url = base.rstrip("/") + "/v1/traces"
    if "://" not in url:
        url = "http://" + url
    return url


def tracing_disabled(env):
    return (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true" or (
        env.get("OTEL_TRACES_EXPORTER") or ""
    ).strip().lower() == "none"


# OTLP JSON encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
# ids are hex strings, 64-bit integers and timestamps are decimal strings, enums are integers.


def encode_any_value(value):
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    return {"stringValue": str(value)}


def encode_attributes(attributes):
    return [{"key": str(k), "value": encode_any_value(v)} for k, v in attributes.items() if v is not None]


def encode_span(span):
    out = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    out.update(
        name=span.name,
        kind=int(span.kind),
        startTimeUnixNano=str(span.start_time_ns),
        endTimeUnixNano=str(span.end_time_ns if span.end_time_ns is not None else time.time_ns()),
        attributes=encode_attributes(span.attributes),
    )
    if span.events:
        out["events"] = [
            {"timeUnixNano": str(t), "name": name, "attributes": encode_attributes(attrs)}
            for t, name, attrs in span.events
        ]
    if span.status_code != STATUS_UNSET:
        status = {"code": span.status_code}
        if span.status_message:
            status["message"] = span.status_message
        out["status"] = status
    return out


def encode_traces_request(resource, spans, scope_name, scope_version=None):
    """An ExportTraceServiceRequest in the OTLP JSON mapping, as a dict."""
    scope = {"name": scope_name}
    if scope_version:
        scope["version"] = scope_version
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": encode_attributes(resource)},
                "scopeSpans": [{"scope": scope, "spans": [encode_span(s) for s in spans]}],
            }
        ]
    }


def _stderr_log(message):
    print(message, file=sys.stderr, flush=True)


class OtlpJsonExporter:
    """POSTs batches of spans to an OTLP/HTTP endpoint as JSON. export() never raises."""

    def __init__(self, url, resource, scope_name, scope_version=None, timeout=2.0, log=None):
        self.url = url
        self.resource = dict(resource)
        self.scope_name = scope_name
        self.scope_version = scope_version
        self.timeout = timeout
        self._log = log or _stderr_log
        # Straight to the collector: a proxy from the environment is not meant for it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.failing = False
        self.failed_batches = 0

    def export(self, spans):
        try:
            body = json.dumps(
                encode_traces_request(self.resource, spans, self.scope_name, self.scope_version),
                separators=(",", ":"),
            ).encode("utf-8")
            req = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with self._opener.open(req, timeout=self.timeout) as resp:
                resp.read()
            error = None
        except urllib.error.HTTPError as e:
            error = f"HTTP {e.code}"
            e.close()
        except urllib.error.URLError as e:
            error = str(e.reason)
        except Exception as e:  # noqa: BLE001 - telemetry must never break the app
            error = f"{type(e).__name__}: {e}"
        if error is None:
            if self.failing:
                self._log(f"telemetry: span export to {self.url} recovered ({self.failed_batches} batches dropped)")
                self.failing = False
                self.failed_batches = 0
            return True
        self.failed_batches += 1
        if not self.failing:
            self.failing = True
            self._log(f"telemetry: span export to {self.url} failing ({error}); dropping spans until it recovers")
        return False


class BatchSpanProcessor:
    """A bounded queue (oldest dropped when full) drained by a daemon thread every schedule_delay
    seconds, or as soon as batch_trigger spans wait."""

    def __init__(self, exporter, max_queue=2048, batch_trigger=64, max_export_batch=512, schedule_delay=1.0):
        self.exporter = exporter
        self.max_queue = max_queue
        self.batch_trigger = batch_trigger
        self.max_export_batch = max_export_batch
        self.schedule_delay = schedule_delay
        self.dropped = 0
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._thread = None
        self._busy = False
        self._flush_pending = False
        self._shutdown = False

    def enqueue(self, span):
        with self._cond:
            if self._shutdown:
                return
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(span)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="otlp-span-exporter")
                self._thread.start()
            if len(self._queue) >= self.batch_trigger:
                self._cond.notify_all()

    def _run(self):
        while True:
            with self._cond:
                deadline = time.monotonic() + self.schedule_delay
                while not (self._shutdown or self._flush_pending or len(self._queue) >= self.batch_trigger):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                n = min(len(self._queue), self.max_export_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                if not self._queue:
                    self._flush_pending = False
                self._busy = bool(batch)
                stop = self._shutdown and not self._queue
            if batch:
                try:
                    self.exporter.export(batch)
                except Exception:  # noqa: BLE001 - the exporter thread must survive anything
                    pass
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            if stop:
                return

    def flush(self, timeout=1.0):
        """Exports what is queued now; True when done within timeout seconds."""
        end = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if self._thread is None:
                return not self._queue
            self._flush_pending = True
            self._cond.notify_all()
            while self._queue or self._busy or self._flush_pending:
                remaining = end - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def shutdown(self, timeout=1.0):
        done = self.flush(timeout)
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()
        return done


class Tracer:
    """Creates spans; exports them when an OTLP endpoint is configured (see the module docstring).

        tracer = Tracer("worker-ingest")
        with tracer.span("POST /x", kind=SpanKind.CLIENT, attributes={"k": "v"}) as span:
            span.set_attribute("http.response.status_code", 200)

    An exception leaving the with-block marks the span as an error and is re-raised. Without an
    explicit parent, a span is the child of the current span of this thread/context, if any.
    """

    def __init__(self, default_service_name, env=None, log=None, scope_name="sandstack-demo", scope_version="1.0"):
        env = os.environ if env is None else env
        self.resource = resource_attributes(env, default_service_name)
        self.service_name = self.resource["service.name"]
        endpoint = traces_endpoint(env)
        self.endpoint = None if tracing_disabled(env) else endpoint
        self.enabled = self.endpoint is not None
        self._processor = None
        if self.enabled:
            exporter = OtlpJsonExporter(self.endpoint, self.resource, scope_name, scope_version, log=log)
            self._processor = BatchSpanProcessor(exporter)

    def describe(self):
        """One line for the app's startup log."""
        if not self.enabled:
            return f"telemetry: span export off (no OTLP endpoint, or disabled), service.name={self.service_name}"
        return f"telemetry: exporting spans to {self.endpoint} as service.name={self.service_name}"

    def start_span(self, name, kind=SpanKind.INTERNAL, attributes=None, parent=None):
        """A started span; the caller ends it with span.end(). Prefer the span() context manager."""
        if parent is None:
            parent = _CURRENT_SPAN.get()
        if parent is not None:
            ctx = getattr(parent, "context", parent)
            context = SpanContext(ctx.trace_id, new_span_id(), sampled=ctx.sampled)
            parent_span_id = ctx.span_id
        else:
            context = SpanContext(new_trace_id(), new_span_id(), sampled=True)
            parent_span_id = None
        return Span(self, name, kind, context, parent_span_id, attributes)

    @contextlib.contextmanager
    def span(self, name, kind=SpanKind.INTERNAL, attributes=None, parent=None):
        span = self.start_span(name, kind, attributes, parent)
        token = _CURRENT_SPAN.set(span)
        try:
            yield span
        except Exception as e:
            span.record_exception(e)
            raise
        finally:
            _CURRENT_SPAN.reset(token)
            span.end()

    def inject(self, headers, span=None):
        """Adds `traceparent` for span (default: the current span) when spans are exported."""
        span = span or _CURRENT_SPAN.get()
        if self.enabled and span is not None:
            headers["traceparent"] = format_traceparent(span)
        return headers

    def _on_end(self, span):
        if self._processor is not None and span.context.sampled:
            self._processor.enqueue(span)

    def flush(self, timeout=1.0):
        return True if self._processor is None else self._processor.flush(timeout)

    def shutdown(self, timeout=1.0):
        return True if self._processor is None else self._processor.shutdown(timeout)
