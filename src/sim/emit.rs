//! The emitter: hands generated spans to the real OpenTelemetry Rust SDK, one
//! TracerProvider and MeterProvider per (service, version, instance) resource, exported
//! through `opentelemetry-otlp` (gRPC or HTTP/protobuf). Span ids come from the plan
//! (a seeded IdGenerator), timings are set explicitly, so no sleeping is needed.

use super::span::{AttrValue, SimResource, SimSpan};
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracerProvider,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// OTLP transport of the exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportProtocol {
    /// OTLP/gRPC (endpoint like `http://127.0.0.1:4317`).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (endpoint like `http://127.0.0.1:4318`).
    Http,
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    pub endpoint: String,
    pub protocol: ExportProtocol,
    /// Batch span processor delay (how soon spans leave the process).
    pub batch_delay: Duration,
    /// Export request-duration histograms every this often; None disables metrics.
    pub metrics_interval: Option<Duration>,
}

/// Why exporting could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("building the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

thread_local! {
    /// The ids the next span built on this thread takes (set right before building it).
    static PLANNED: Cell<([u8; 16], [u8; 8])> = const { Cell::new(([0; 16], [0; 8])) };
}

/// An IdGenerator that returns the ids the traffic generator planned (seeded), so a
/// seed reproduces the exact ids on the wire; falls back to random ids when none is set.
#[derive(Debug, Default)]
struct PlannedIds(RandomIdGenerator);

impl IdGenerator for PlannedIds {
    fn new_trace_id(&self) -> TraceId {
        let id = PLANNED.get().0;
        if id == [0; 16] {
            self.0.new_trace_id()
        } else {
            TraceId::from_bytes(id)
        }
    }

    fn new_span_id(&self) -> SpanId {
        let id = PLANNED.get().1;
        if id == [0; 8] {
            self.0.new_span_id()
        } else {
            SpanId::from_bytes(id)
        }
    }
}

/// The SDK objects of one resource.
struct Sink {
    traces: SdkTracerProvider,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    meters: Option<SdkMeterProvider>,
    histograms: HashMap<&'static str, Histogram<f64>>,
}

/// Emits generated spans through one SDK pipeline per resource.
pub struct Emitter {
    settings: ExportSettings,
    sinks: HashMap<SimResource, Sink>,
    /// Spans handed to the SDK.
    pub spans_emitted: u64,
}

impl Emitter {
    /// Builds providers for every resource. Must run inside a Tokio runtime (the gRPC
    /// channel's worker lives there).
    pub fn new(settings: ExportSettings, resources: &[SimResource]) -> Result<Self, EmitError> {
        let mut sinks = HashMap::new();
        for r in resources {
            sinks.insert(r.clone(), build_sink(&settings, r)?);
        }
        Ok(Self {
            settings,
            sinks,
            spans_emitted: 0,
        })
    }

    /// Hands every span of a trace to its resource's SDK pipeline.
    pub fn emit(&mut self, spans: &[SimSpan]) -> Result<(), EmitError> {
        for span in spans {
            if !self.sinks.contains_key(&span.resource) {
                let sink = build_sink(&self.settings, &span.resource)?;
                self.sinks.insert(span.resource.clone(), sink);
            }
            if let Some(sink) = self.sinks.get(&span.resource) {
                emit_span(sink, span);
                self.spans_emitted += 1;
            }
        }
        Ok(())
    }

    /// Flushes and shuts every pipeline down (blocking: call from a blocking thread).
    pub fn shutdown(self) {
        for (r, sink) in self.sinks {
            if let Err(e) = sink.traces.shutdown() {
                tracing::warn!(service = %r.service, instance = %r.instance, error = %e, "trace provider shutdown");
            }
            if let Some(m) = sink.meters {
                if let Err(e) = m.shutdown() {
                    tracing::warn!(service = %r.service, instance = %r.instance, error = %e, "meter provider shutdown");
                }
            }
        }
    }
}

fn resource_of(r: &SimResource) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", r.service.clone()),
            KeyValue::new("service.version", r.version.clone()),
            KeyValue::new("deployment.environment.name", r.environment.clone()),
            KeyValue::new("service.instance.id", r.instance.clone()),
            KeyValue::new("k8s.deployment.name", r.service.clone()),
            KeyValue::new("k8s.pod.name", r.instance.clone()),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.language", "rust"),
        ])
        .build()
}

fn build_sink(settings: &ExportSettings, r: &SimResource) -> Result<Sink, EmitError> {
    let err = |source| EmitError::Exporter {
        endpoint: settings.endpoint.clone(),
        source,
    };
    let exporter = match settings.protocol {
        ExportProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .build(),
        ExportProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!(
                "{}/v1/traces",
                settings.endpoint.trim_end_matches('/')
            ))
            .build(),
    }
    .map_err(err)?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(settings.batch_delay)
        .with_max_queue_size(65_536)
        .with_max_export_batch_size(1_024)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let traces = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_id_generator(PlannedIds::default())
        .with_resource(resource_of(r))
        .build();
    let tracer = traces.tracer("verdict-sim");
    let (meters, histograms) = match settings.metrics_interval {
        Some(interval) => {
            let (m, h) = build_meters(settings, r, interval).map_err(err)?;
            (Some(m), h)
        }
        None => (None, HashMap::new()),
    };
    Ok(Sink {
        traces,
        tracer,
        meters,
        histograms,
    })
}

fn build_meters(
    settings: &ExportSettings,
    r: &SimResource,
    interval: Duration,
) -> Result<
    (SdkMeterProvider, HashMap<&'static str, Histogram<f64>>),
    opentelemetry_otlp::ExporterBuildError,
> {
    let exporter = match settings.protocol {
        ExportProtocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .build()?,
        ExportProtocol::Http => opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_endpoint(format!(
                "{}/v1/metrics",
                settings.endpoint.trim_end_matches('/')
            ))
            .build()?,
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(interval)
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource_of(r))
        .build();
    let meter = provider.meter("verdict-sim");
    let seconds = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0,
    ];
    let millis: Vec<f64> = seconds.iter().map(|s| s * 1000.0).collect();
    let mut h = HashMap::new();
    for (name, unit, bounds) in [
        ("http.server.request.duration", "s", seconds.clone()),
        ("messaging.process.duration", "s", seconds),
        ("rpc.server.duration", "ms", millis),
    ] {
        h.insert(
            name,
            meter
                .f64_histogram(name)
                .with_unit(unit)
                .with_boundaries(bounds)
                .build(),
        );
    }
    Ok((provider, h))
}

fn key_values(attrs: &[(&'static str, AttrValue)]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| match v {
            AttrValue::Str(s) => KeyValue::new(*k, s.clone()),
            AttrValue::Int(i) => KeyValue::new(*k, *i),
        })
        .collect()
}

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn emit_span(sink: &Sink, s: &SimSpan) {
    let kind = match s.kind {
        crate::model::SpanKind::Server => opentelemetry::trace::SpanKind::Server,
        crate::model::SpanKind::Client => opentelemetry::trace::SpanKind::Client,
        crate::model::SpanKind::Producer => opentelemetry::trace::SpanKind::Producer,
        crate::model::SpanKind::Consumer => opentelemetry::trace::SpanKind::Consumer,
        _ => opentelemetry::trace::SpanKind::Internal,
    };
    let builder = sink
        .tracer
        .span_builder(s.name.clone())
        .with_kind(kind)
        .with_start_time(at(s.start_unix_nano))
        .with_attributes(key_values(&s.attributes));
    let cx = if s.parent_span_id == [0; 8] {
        Context::new()
    } else {
        let parent = SpanContext::new(
            TraceId::from_bytes(s.trace_id),
            SpanId::from_bytes(s.parent_span_id),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(parent)
    };
    PLANNED.set((s.trace_id, s.span_id));
    let mut span = sink.tracer.build_with_context(builder, &cx);
    PLANNED.set(([0; 16], [0; 8]));
    if s.error {
        span.set_status(Status::error("simulated failure"));
    }
    span.end_with_timestamp(at(s.end_unix_nano));
    if let Some(m) = &s.metric {
        if let Some(h) = sink.histograms.get(m.instrument) {
            h.record(m.value, &key_values(&m.attributes));
        }
    }
}
