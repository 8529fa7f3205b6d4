//! The receivers' own counters (received, accepted, refused and rejected items; refused
//! requests by reason; accepted-but-adjusted input), updated lock-free on the hot path and
//! rendered into `/metrics` at scrape time.

use crate::receiver::decode::{MetricStats, NormalizeStats};
use crate::telemetry::{ExportMetrics, PromType, PromWriter};
use std::sync::atomic::{AtomicU64, Ordering};

/// The wire protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc = 0,
    Http = 1,
}

impl Transport {
    const ALL: [Transport; 2] = [Self::Grpc, Self::Http];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// The OTLP signal of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Traces = 0,
    Metrics = 1,
    Logs = 2,
}

impl SignalKind {
    const ALL: [SignalKind; 3] = [Self::Traces, Self::Metrics, Self::Logs];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }
}

/// Why a whole request was refused (bad-input classes 1-10, overload, timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    InvalidProtobuf = 0,
    InvalidJson,
    InvalidUtf8,
    UnsupportedMediaType,
    MethodNotAllowed,
    NotFound,
    UnsupportedEncoding,
    CorruptCompression,
    TooLarge,
    BadFraming,
    QueueFull,
    Overloaded,
    BodyTimeout,
    ShuttingDown,
}

impl RefusalReason {
    const ALL: [RefusalReason; 14] = [
        Self::InvalidProtobuf,
        Self::InvalidJson,
        Self::InvalidUtf8,
        Self::UnsupportedMediaType,
        Self::MethodNotAllowed,
        Self::NotFound,
        Self::UnsupportedEncoding,
        Self::CorruptCompression,
        Self::TooLarge,
        Self::BadFraming,
        Self::QueueFull,
        Self::Overloaded,
        Self::BodyTimeout,
        Self::ShuttingDown,
    ];

    /// Label value of `verdict_receiver_refused_requests_total{reason}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidProtobuf => "invalid_protobuf",
            Self::InvalidJson => "invalid_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotFound => "not_found",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::CorruptCompression => "corrupt_compression",
            Self::TooLarge => "too_large",
            Self::BadFraming => "bad_framing",
            Self::QueueFull => "queue_full",
            Self::Overloaded => "overloaded",
            Self::BodyTimeout => "body_timeout",
            Self::ShuttingDown => "shutting_down",
        }
    }

    /// Whether the client is told to retry.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::QueueFull | Self::Overloaded | Self::BodyTimeout | Self::ShuttingDown
        )
    }
}

/// What happened to items (spans, metric points, log records) of accepted requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Received = 0,
    Accepted,
    Refused,
    Rejected,
    NotAnalysed,
}

const OUTCOMES: [(Outcome, &str, &str); 5] = [
    (
        Outcome::Received,
        "verdict_receiver_received_items_total",
        "Items (spans, metric data points, log records) in requests that were decoded.",
    ),
    (
        Outcome::Accepted,
        "verdict_receiver_accepted_items_total",
        "Items accepted into the ingest queue (logs: acknowledged).",
    ),
    (
        Outcome::Refused,
        "verdict_receiver_refused_items_total",
        "Items refused with a retryable answer (queue full); clients resend them.",
    ),
    (
        Outcome::Rejected,
        "verdict_receiver_rejected_items_total",
        "Items rejected as malformed in a partial-success answer (trace/span ids, bad points).",
    ),
    (
        Outcome::NotAnalysed,
        "verdict_receiver_not_analysed_items_total",
        "Items accepted but not analysed (log records; metrics that are not request durations).",
    ),
];

/// Accepted input that was adjusted (classes 12-14) or metric points handled specially.
const ADJUSTMENTS: [&str; 10] = [
    "missing_service",
    "invalid_timing",
    "truncated_key",
    "invalid_trace_id",
    "invalid_span_id",
    "unsupported_unit",
    "first_point",
    "reset",
    "duplicate",
    "stream_overflow",
];

const NT: usize = 2;
const NS: usize = 3;
const NR: usize = RefusalReason::ALL.len();

/// Counters of both receivers. `Send + Sync`; shared by every connection.
#[derive(Debug)]
pub struct ReceiverMetrics {
    items: [[[AtomicU64; 5]; NS]; NT],
    /// Refusals by transport, signal (the last row: requests for no known signal) and reason.
    refused: [[[AtomicU64; NR]; NS + 1]; NT],
    adjusted: [[AtomicU64; ADJUSTMENTS.len()]; NS],
    out_of_order: AtomicU64,
}

impl Default for ReceiverMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl ReceiverMetrics {
    pub fn new() -> Self {
        Self {
            items: std::array::from_fn(|_| std::array::from_fn(|_| zeros())),
            refused: std::array::from_fn(|_| std::array::from_fn(|_| zeros())),
            adjusted: std::array::from_fn(|_| zeros()),
            out_of_order: AtomicU64::new(0),
        }
    }

    fn add_items(&self, t: Transport, s: SignalKind, o: Outcome, n: u64) {
        if n > 0 {
            self.items[t as usize][s as usize][o as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A decoded request's items: `received` in total, `rejected` of them malformed.
    pub fn record_decoded(&self, t: Transport, s: SignalKind, received: u64, rejected: u64) {
        self.add_items(t, s, Outcome::Received, received);
        self.add_items(t, s, Outcome::Rejected, rejected);
    }

    /// Items queued for analysis (or acknowledged, for logs).
    pub fn record_accepted(&self, t: Transport, s: SignalKind, n: u64) {
        self.add_items(t, s, Outcome::Accepted, n);
    }

    /// Items refused with a retryable answer.
    pub fn record_refused_items(&self, t: Transport, s: SignalKind, n: u64) {
        self.add_items(t, s, Outcome::Refused, n);
    }

    /// Items accepted but not analysed.
    pub fn record_not_analysed(&self, t: Transport, s: SignalKind, n: u64) {
        self.add_items(t, s, Outcome::NotAnalysed, n);
    }

    /// A request refused as a whole; `s` is None when the path named no known signal.
    pub fn record_refusal(&self, t: Transport, s: Option<SignalKind>, r: RefusalReason) {
        let row = s.map_or(NS, |s| s as usize);
        self.refused[t as usize][row][r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adjustments made while normalizing accepted input.
    pub fn record_normalize(&self, s: SignalKind, st: &NormalizeStats) {
        let row = &self.adjusted[s as usize];
        let vals = [
            st.missing_service,
            st.invalid_timing,
            st.truncated_keys,
            st.invalid_trace_id,
            st.invalid_span_id,
        ];
        crate::telemetry::add_counts(row.iter().zip(vals));
    }

    /// Metric-specific handling of one request.
    pub fn record_metric_stats(&self, t: Transport, m: &MetricStats) {
        let row = &self.adjusted[SignalKind::Metrics as usize];
        let vals = [
            m.unsupported_unit,
            m.first_points,
            m.resets,
            m.duplicates,
            m.stream_overflow,
        ];
        crate::telemetry::add_counts(row[5..].iter().zip(vals));
        self.out_of_order
            .fetch_add(m.out_of_order, Ordering::Relaxed);
        self.add_items(
            t,
            SignalKind::Metrics,
            Outcome::NotAnalysed,
            m.ignored_metrics,
        );
    }

    /// Items of `outcome` so far (tests, diagnostics). `outcome` is one of `received`,
    /// `accepted`, `refused`, `rejected`, `not_analysed`.
    pub fn items(&self, t: Transport, s: SignalKind, outcome: &str) -> u64 {
        OUTCOMES
            .iter()
            .find(|(_, name, _)| name.contains(&format!("_{outcome}_items")))
            .map(|(o, _, _)| {
                self.items[t as usize][s as usize][*o as usize].load(Ordering::Relaxed)
            })
            .unwrap_or(0)
    }

    /// Requests refused for `r` so far, over every signal.
    pub fn refusals(&self, t: Transport, r: RefusalReason) -> u64 {
        self.refused[t as usize]
            .iter()
            .map(|row| row[r as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Adjusted items of `reason` (one of the `verdict_receiver_adjusted_items_total`
    /// reasons) for a signal.
    pub fn adjusted(&self, s: SignalKind, reason: &str) -> u64 {
        ADJUSTMENTS
            .iter()
            .position(|a| *a == reason)
            .map(|i| self.adjusted[s as usize][i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn export_items(&self, w: &mut PromWriter) {
        for (o, name, help) in OUTCOMES {
            w.family(name, PromType::Counter, help);
            for t in Transport::ALL {
                for s in SignalKind::ALL {
                    let v = self.items[t as usize][s as usize][o as usize].load(Ordering::Relaxed);
                    w.sample(
                        name,
                        &[("transport", t.as_str()), ("signal", s.as_str())],
                        v as f64,
                    );
                }
            }
        }
    }

    fn export_refusals(&self, w: &mut PromWriter) {
        let name = "verdict_receiver_refused_requests_total";
        w.family(name, PromType::Counter, "Requests refused as a whole, by reason (bad input: non-retryable; queue_full, overloaded, body_timeout, shutting_down: retryable).");
        for t in Transport::ALL {
            for (row, counts) in self.refused[t as usize].iter().enumerate() {
                let signal = SignalKind::ALL.get(row).map_or("unknown", |s| s.as_str());
                for r in RefusalReason::ALL {
                    let v = counts[r as usize].load(Ordering::Relaxed);
                    if v > 0 {
                        let labels = [
                            ("transport", t.as_str()),
                            ("signal", signal),
                            ("reason", r.as_str()),
                        ];
                        w.sample(name, &labels, v as f64);
                    }
                }
            }
        }
    }

    fn export_adjustments(&self, w: &mut PromWriter) {
        let name = "verdict_receiver_adjusted_items_total";
        w.family(name, PromType::Counter, "Accepted items adjusted while normalizing: missing service.name, unusable timestamps, truncated keys, rejected ids, metric stream handling.");
        for s in SignalKind::ALL {
            for (i, reason) in ADJUSTMENTS.iter().enumerate() {
                let v = self.adjusted[s as usize][i].load(Ordering::Relaxed);
                w.sample(
                    name,
                    &[("signal", s.as_str()), ("reason", reason)],
                    v as f64,
                );
            }
        }
        let name = "verdict_receiver_metric_points_out_of_order_total";
        w.family(
            name,
            PromType::Counter,
            "Metric points older than their stream's last point, dropped.",
        );
        w.sample(name, &[], self.out_of_order.load(Ordering::Relaxed) as f64);
    }
}

impl ExportMetrics for ReceiverMetrics {
    fn export_metrics(&self, w: &mut PromWriter) {
        self.export_items(w);
        self.export_refusals(w);
        self.export_adjustments(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_labels() {
        let m = ReceiverMetrics::new();
        m.record_decoded(Transport::Grpc, SignalKind::Traces, 10, 2);
        m.record_accepted(Transport::Grpc, SignalKind::Traces, 8);
        m.record_refusal(
            Transport::Http,
            Some(SignalKind::Metrics),
            RefusalReason::TooLarge,
        );
        m.record_normalize(
            SignalKind::Traces,
            &NormalizeStats {
                missing_service: 3,
                ..Default::default()
            },
        );
        assert_eq!(m.items(Transport::Grpc, SignalKind::Traces, "rejected"), 2);
        assert_eq!(m.refusals(Transport::Http, RefusalReason::TooLarge), 1);
        assert_eq!(m.adjusted(SignalKind::Traces, "missing_service"), 3);
        let mut w = PromWriter::new();
        m.export_metrics(&mut w);
        let text = w.finish();
        assert!(
            text.contains(
                "verdict_receiver_accepted_items_total{transport=\"grpc\",signal=\"traces\"} 8"
            ),
            "{text}"
        );
        assert!(text.contains("verdict_receiver_refused_requests_total{transport=\"http\",signal=\"metrics\",reason=\"too_large\"} 1"), "{text}");
    }
}
