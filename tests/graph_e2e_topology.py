"""Sends a small topology through the real OpenTelemetry Python SDK (OTLP/HTTP protobuf)
for tests/graph_e2e.rs. Usage: python3 graph_e2e_topology.py ENDPOINT CALLS T0_NS

Per call i: checkout@v{1,2} (root SERVER, 50+i ms) calls payment@v{1,2} (CLIENT 10+i ms,
SERVER 5+i ms, server error when i%5==0), postgresql/shop (CLIENT 2 ms), and produces to
kafka/orders (PRODUCER 1 ms) consumed by shipping@v1 (CONSUMER 3+i ms, error when i%7==0).
The Rust test derives the expected edges from the same formulas."""
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

endpoint, calls, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MS = 1_000_000
providers = {}


def tracer(service, version):
    key = (service, version)
    if key not in providers:
        p = TracerProvider(resource=Resource.create({
            "service.name": service, "service.version": version,
            "deployment.environment.name": "e2e"}))
        p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        providers[key] = p
    return providers[key].get_tracer("graph-e2e")


def span(tr, name, kind, parent, start, dur, error=False, attrs=None):
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    s = tr.start_span(name, context=ctx, kind=kind, start_time=start, attributes=attrs or {})
    if error:
        s.set_status(Status(StatusCode.ERROR))
    return s, start + dur


for i in range(calls):
    start = t0 + i * 100 * MS
    co = tracer("checkout", "v1" if i % 2 == 0 else "v2")
    pay = tracer("payment", "v1" if i % 4 < 2 else "v2")
    ship = tracer("shipping", "v1")
    root, root_end = span(co, "POST /checkout", SpanKind.SERVER, None, start, (50 + i) * MS)
    cl, cl_end = span(co, "POST /pay", SpanKind.CLIENT, root, start + MS, (10 + i) * MS)
    sv, sv_end = span(pay, "POST /pay", SpanKind.SERVER, cl, start + 2 * MS, (5 + i) * MS, i % 5 == 0)
    sv.end(end_time=sv_end)
    cl.end(end_time=cl_end)
    db, db_end = span(co, "SELECT", SpanKind.CLIENT, root, start + 20 * MS, 2 * MS, False,
                      {"db.system.name": "postgresql", "db.namespace": "shop"})
    db.end(end_time=db_end)
    pr, pr_end = span(co, "orders publish", SpanKind.PRODUCER, root, start + 30 * MS, MS, False,
                      {"messaging.system": "kafka", "messaging.destination.name": "orders"})
    cons, cons_end = span(ship, "orders process", SpanKind.CONSUMER, pr, start + 40 * MS, (3 + i) * MS, i % 7 == 0)
    cons.end(end_time=cons_end)
    pr.end(end_time=pr_end)
    root.end(end_time=root_end)

for p in providers.values():
    p.shutdown()
