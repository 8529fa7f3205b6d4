//! One step of a trace: a service serving an operation, and the calls it makes (to
//! services, databases, queues), each with its span kind, timing and semantic-convention
//! attributes. Part of the traffic generator.

use super::scenario::EffectKind;
use super::span::{AttrValue, MetricPoint, SimResource, SimSpan};
use super::topology::{Call, Protocol};
use super::traffic::TraceBuilder;
use crate::model::SpanKind;
use rand::Rng;

/// How a request reached the serving service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// From outside the system (root SERVER span).
    Entry,
    /// From a CLIENT span of another service.
    Call,
    /// From a queue (CONSUMER span).
    Queue,
}

/// What a served request came to.
pub(super) struct Served {
    pub end: u64,
    pub error: bool,
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_string())
}

/// `GET /api/cart` -> ("GET", "/api/cart"); a name without a method is a POST.
fn split_http(op: &str) -> (&str, &str) {
    match op.split_once(' ') {
        Some((m, r)) if m.chars().all(|c| c.is_ascii_uppercase()) => (m, r),
        _ => ("POST", op),
    }
}

impl TraceBuilder<'_> {
    /// `service` serves `op` from `start`; returns its end and whether it failed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve(
        &mut self,
        service: &str,
        op: &str,
        caller: Option<&SimResource>,
        parent: [u8; 8],
        start: u64,
        via: Via,
        depth: usize,
    ) -> Served {
        let offset = self.offset;
        let res = self.generator.pick(service, offset);
        let topo = self.generator.topo.clone();
        let svc = &topo.services[service];
        let operation = &svc.operations[op];
        let span_id = self.new_span_id();
        let base = operation
            .latency
            .as_ref()
            .unwrap_or(&svc.latency)
            .sample(&mut self.generator.rng);
        let (factor, extra) =
            self.generator
                .latency_effect(EffectKind::Latency, &res, (op, ""), offset);
        let self_time = (base as f64 * factor) as u64 + extra;
        let mut t = start + self_time / 2;
        let mut failed = false;
        if !Self::too_deep(depth) {
            for call in &operation.calls {
                for _ in 0..call.count {
                    if self.generator.rng.random::<f64>() < call.probability {
                        let (end, err) = self.call(call, &res, span_id, t, depth);
                        t = end;
                        failed |= err;
                    }
                }
            }
        }
        let end = t + self_time - self_time / 2;
        let mut p_err = operation.error_rate.unwrap_or(svc.error_rate);
        p_err = 1.0
            - (1.0 - p_err)
                * (1.0
                    - self
                        .generator
                        .error_effect(EffectKind::Errors, &res, (op, "", ""), offset));
        if let Some(c) = caller {
            let provoked =
                self.generator
                    .error_effect(EffectKind::CalleeErrors, c, (op, "", service), offset);
            p_err = 1.0 - (1.0 - p_err) * (1.0 - provoked);
        }
        let error = failed | (self.generator.rng.random::<f64>() < p_err);
        let kind = if via == Via::Queue {
            SpanKind::Consumer
        } else {
            SpanKind::Server
        };
        let (name, attributes, metric) = served_attributes(
            svc.protocol,
            svc.rpc_service.as_deref(),
            service,
            op,
            via,
            error,
            end - start,
        );
        self.spans.push(SimSpan {
            resource: res,
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            name,
            kind,
            start_unix_nano: start,
            end_unix_nano: end,
            error,
            attributes,
            metric: Some(metric),
        });
        Served { end, error }
    }

    /// One call made by `res` at `t`; returns the caller-side end and failure.
    fn call(
        &mut self,
        call: &Call,
        res: &SimResource,
        parent: [u8; 8],
        t: u64,
        depth: usize,
    ) -> (u64, bool) {
        if let (Some(callee), Some(op)) = (&call.service, &call.operation) {
            return self.call_service(callee, op, res, parent, t, depth);
        }
        if let Some(db) = &call.database {
            return self.call_database(db, call.statement.as_deref(), res, parent, t);
        }
        if let Some(q) = &call.queue {
            return self.publish(q, res, parent, t, depth);
        }
        (t, false)
    }

    fn call_service(
        &mut self,
        callee: &str,
        op: &str,
        res: &SimResource,
        parent: [u8; 8],
        t: u64,
        depth: usize,
    ) -> (u64, bool) {
        let span_id = self.new_span_id();
        let net = self.generator.topo.network.sample(&mut self.generator.rng);
        let served = self.serve(
            callee,
            op,
            Some(res),
            span_id,
            t + net / 2,
            Via::Call,
            depth + 1,
        );
        // The callee's server span was pushed last; its version decides client-side delay.
        let callee_res = self.spans.last().map(|sp| sp.resource.clone());
        let mut end = served.end + net - net / 2;
        if let Some(cr) = callee_res {
            let server_time = served.end.saturating_sub(t + net / 2);
            let (factor, extra) =
                self.generator
                    .latency_effect(EffectKind::ClientDelay, &cr, (op, ""), self.offset);
            end += ((factor - 1.0).max(0.0) * server_time as f64) as u64 + extra;
        }
        let topo = self.generator.topo.clone();
        let svc = &topo.services[callee];
        let (name, attributes) = client_attributes(
            svc.protocol,
            svc.rpc_service.as_deref(),
            callee,
            svc.port,
            op,
            served.error,
        );
        self.push_outgoing(
            res,
            span_id,
            parent,
            name,
            SpanKind::Client,
            (t, end),
            served.error,
            attributes,
        );
        (end, served.error)
    }

    fn call_database(
        &mut self,
        db_name: &str,
        statement: Option<&str>,
        res: &SimResource,
        parent: [u8; 8],
        t: u64,
    ) -> (u64, bool) {
        let topo = self.generator.topo.clone();
        let db = &topo.databases[db_name];
        let span_id = self.new_span_id();
        let base = db.latency.sample(&mut self.generator.rng);
        let (factor, extra) = self.generator.latency_effect(
            EffectKind::DatabaseLatency,
            res,
            ("", db_name),
            self.offset,
        );
        let end = t + (base as f64 * factor) as u64 + extra;
        let p = 1.0
            - (1.0 - db.error_rate)
                * (1.0
                    - self.generator.error_effect(
                        EffectKind::DatabaseErrors,
                        res,
                        ("", db_name, ""),
                        self.offset,
                    ));
        let error = self.generator.rng.random::<f64>() < p;
        let op = statement.unwrap_or(&db.operation);
        let host = db.host.clone().unwrap_or_else(|| db_name.to_string());
        let name = match &db.namespace {
            Some(ns) => format!("{op} {ns}"),
            None => op.to_string(),
        };
        let mut attributes = vec![
            ("db.system.name", s(&db.system)),
            ("db.system", s(&db.system)),
            ("db.operation.name", s(op)),
            ("server.address", s(&host)),
            ("server.port", AttrValue::Int(i64::from(db.port))),
        ];
        if let Some(ns) = &db.namespace {
            attributes.push(("db.namespace", s(ns)));
        }
        if error {
            attributes.push(("error.type", s("db_error")));
        }
        self.push_outgoing(
            res,
            span_id,
            parent,
            name,
            SpanKind::Client,
            (t, end),
            error,
            attributes,
        );
        (end, error)
    }

    fn publish(
        &mut self,
        queue: &str,
        res: &SimResource,
        parent: [u8; 8],
        t: u64,
        depth: usize,
    ) -> (u64, bool) {
        let topo = self.generator.topo.clone();
        let q = &topo.queues[queue];
        let span_id = self.new_span_id();
        let end = t + q.publish_latency.sample(&mut self.generator.rng);
        let attributes = vec![
            ("messaging.system", s(&q.system)),
            ("messaging.destination.name", s(&q.destination)),
            ("messaging.operation.type", s("send")),
            ("server.address", s(queue)),
        ];
        self.push_outgoing(
            res,
            span_id,
            parent,
            format!("send {}", q.destination),
            SpanKind::Producer,
            (t, end),
            false,
            attributes,
        );
        if !Self::too_deep(depth) {
            for c in &q.consumers {
                let lag = q.lag.sample(&mut self.generator.rng);
                self.serve(
                    &c.service,
                    &c.operation,
                    Some(res),
                    span_id,
                    end + lag,
                    Via::Queue,
                    depth + 1,
                );
            }
        }
        (end, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_outgoing(
        &mut self,
        res: &SimResource,
        span_id: [u8; 8],
        parent: [u8; 8],
        name: String,
        kind: SpanKind,
        (start, end): (u64, u64),
        error: bool,
        attributes: Vec<(&'static str, AttrValue)>,
    ) {
        self.spans.push(SimSpan {
            resource: res.clone(),
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            name,
            kind,
            start_unix_nano: start,
            end_unix_nano: end,
            error,
            attributes,
            metric: None,
        });
    }
}

/// Name, attributes and metric point of a SERVER/CONSUMER span.
fn served_attributes(
    protocol: Protocol,
    rpc_service: Option<&str>,
    service: &str,
    op: &str,
    via: Via,
    error: bool,
    nanos: u64,
) -> (String, Vec<(&'static str, AttrValue)>, MetricPoint) {
    if via == Via::Queue {
        let attrs = vec![
            ("messaging.operation.type", s("process")),
            ("messaging.operation.name", s(op)),
        ];
        let metric = MetricPoint {
            instrument: "messaging.process.duration",
            value: nanos as f64 / 1e9,
            attributes: attrs.clone(),
        };
        return (op.to_string(), attrs, metric);
    }
    match protocol {
        Protocol::Http => {
            let (method, route) = split_http(op);
            let code = if error { 500 } else { 200 };
            let attrs = vec![
                ("http.request.method", s(method)),
                ("http.route", s(route)),
                ("http.response.status_code", AttrValue::Int(code)),
                ("url.scheme", s("http")),
                ("server.address", s(service)),
            ];
            let metric = MetricPoint {
                instrument: "http.server.request.duration",
                value: nanos as f64 / 1e9,
                attributes: attrs[..3].to_vec(),
            };
            (format!("{method} {route}"), attrs, metric)
        }
        Protocol::Grpc => {
            let rs = rpc_service.unwrap_or(service);
            let attrs = grpc_attributes(rs, op, error);
            let metric = MetricPoint {
                instrument: "rpc.server.duration",
                value: nanos as f64 / 1e6,
                attributes: attrs.clone(),
            };
            (format!("{rs}/{op}"), attrs, metric)
        }
    }
}

fn grpc_attributes(rpc_service: &str, op: &str, error: bool) -> Vec<(&'static str, AttrValue)> {
    vec![
        ("rpc.system", s("grpc")),
        ("rpc.service", s(rpc_service)),
        ("rpc.method", s(op)),
        // 13 = INTERNAL: a server failure per the semantic conventions.
        (
            "rpc.grpc.status_code",
            AttrValue::Int(if error { 13 } else { 0 }),
        ),
    ]
}

/// Name and attributes of a CLIENT span calling a service.
fn client_attributes(
    protocol: Protocol,
    rpc_service: Option<&str>,
    callee: &str,
    port: u16,
    op: &str,
    error: bool,
) -> (String, Vec<(&'static str, AttrValue)>) {
    let mut attrs = match protocol {
        Protocol::Http => {
            let (method, route) = split_http(op);
            vec![
                ("http.request.method", s(method)),
                ("url.template", s(route)),
                ("url.full", s(&format!("http://{callee}:{port}{route}"))),
                (
                    "http.response.status_code",
                    AttrValue::Int(if error { 500 } else { 200 }),
                ),
            ]
        }
        Protocol::Grpc => grpc_attributes(rpc_service.unwrap_or(callee), op, error),
    };
    attrs.push(("server.address", s(callee)));
    attrs.push(("server.port", AttrValue::Int(i64::from(port))));
    attrs.push(("service.peer.name", s(callee)));
    attrs.push(("peer.service", s(callee)));
    let name = match protocol {
        Protocol::Http => {
            let (method, route) = split_http(op);
            format!("{method} {route}")
        }
        Protocol::Grpc => format!("{}/{op}", rpc_service.unwrap_or(callee)),
    };
    (name, attrs)
}
