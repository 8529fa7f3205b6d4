"""Sends spans for two versions of a service through the OpenTelemetry Python SDK's OTLP
exporter (gRPC or HTTP/protobuf), as a real instrumented application would.

usage: send_spans.py {grpc|http} ENDPOINT SERVICE PER_VERSION
Each version sends PER_VERSION server spans (every 4th an error) and PER_VERSION client spans.
"""
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")


def main():
    protocol, endpoint, service, per_version = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    for version in ("1.0.0", "2.0.0"):
        resource = Resource.create({"service.name": service, "service.version": version,
                                    "deployment.environment.name": "test"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter(protocol, endpoint)))
        tracer = provider.get_tracer("verdict-test")
        for i in range(per_version):
            with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as span:
                span.set_attribute("http.route", "/cart")
                if i % 4 == 0:
                    span.set_status(Status(StatusCode.ERROR, "boom"))
                with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as db:
                    db.set_attribute("db.system.name", "postgresql")
        if not provider.force_flush(10_000):
            sys.exit("flush failed")
        provider.shutdown()


if __name__ == "__main__":
    main()
