//! The hot path: a zero-copy walk over an `ExportTraceServiceRequest` protobuf that reads
//! only the fields analysis needs and builds [`SpanRecord`]s directly (no intermediate
//! prost structs, no per-attribute allocation). Field numbers are those of
//! `proto/opentelemetry/proto/trace/v1/trace.proto` (see `proto/README.md`).

use super::attrs::{ResourceAttrs, ResourceKey, SpanAttrs, SpanKey, Val};
use super::normalize::{self, NormalResource};
use super::resource_cache::{self, ResourceCache};
use super::wire::{expect, Reader, WireError, FIXED64, LEN, VARINT};
use super::{DecodeError, NormalizeStats, TraceDecode};
use crate::model::{SpanKind, SpanRecord, UnixNanos};

/// Field numbers the decoder reads (`proto/README.md`); `proto_fields_match` checks each
/// against the vendored `.proto` descriptors.
pub(crate) mod field {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_STATUS: u32 = 15;
    pub const STATUS_CODE: u32 = 3;
    pub const KEY_VALUE_KEY: u32 = 1;
    pub const KEY_VALUE_VALUE: u32 = 2;
    pub const ANY_STRING: u32 = 1;
    pub const ANY_BOOL: u32 = 2;
    pub const ANY_INT: u32 = 3;
    pub const ANY_BYTES: u32 = 7;

    /// (message, field, number) for the test against `proto/`.
    #[cfg(test)]
    pub const ALL: &[(&str, &str, u32)] = &[
        (
            "collector.trace.v1.ExportTraceServiceRequest",
            "resource_spans",
            REQUEST_RESOURCE_SPANS,
        ),
        (
            "trace.v1.ResourceSpans",
            "resource",
            RESOURCE_SPANS_RESOURCE,
        ),
        (
            "trace.v1.ResourceSpans",
            "scope_spans",
            RESOURCE_SPANS_SCOPE_SPANS,
        ),
        ("resource.v1.Resource", "attributes", RESOURCE_ATTRIBUTES),
        ("trace.v1.ScopeSpans", "spans", SCOPE_SPANS_SPANS),
        ("trace.v1.Span", "trace_id", SPAN_TRACE_ID),
        ("trace.v1.Span", "span_id", SPAN_SPAN_ID),
        ("trace.v1.Span", "parent_span_id", SPAN_PARENT_SPAN_ID),
        ("trace.v1.Span", "name", SPAN_NAME),
        ("trace.v1.Span", "kind", SPAN_KIND),
        ("trace.v1.Span", "start_time_unix_nano", SPAN_START),
        ("trace.v1.Span", "end_time_unix_nano", SPAN_END),
        ("trace.v1.Span", "attributes", SPAN_ATTRIBUTES),
        ("trace.v1.Span", "status", SPAN_STATUS),
        ("trace.v1.Status", "code", STATUS_CODE),
        ("common.v1.KeyValue", "key", KEY_VALUE_KEY),
        ("common.v1.KeyValue", "value", KEY_VALUE_VALUE),
        ("common.v1.AnyValue", "string_value", ANY_STRING),
        ("common.v1.AnyValue", "bool_value", ANY_BOOL),
        ("common.v1.AnyValue", "int_value", ANY_INT),
        ("common.v1.AnyValue", "bytes_value", ANY_BYTES),
    ];
}

/// Per-request decoding context.
struct Ctx {
    now: UnixNanos,
    out: TraceDecode,
    bad_trace_id: u64,
    bad_span_id: u64,
    bad_parent_id: u64,
    scratch: String,
}

/// Decodes and normalizes an OTLP/protobuf `ExportTraceServiceRequest`.
pub fn decode_traces_proto(body: &[u8], now: UnixNanos) -> Result<TraceDecode, DecodeError> {
    resource_cache::with(|cache| decode_with(body, now, cache))
}

fn decode_with(
    body: &[u8],
    now: UnixNanos,
    cache: &mut ResourceCache,
) -> Result<TraceDecode, DecodeError> {
    let mut ctx = Ctx {
        now,
        out: TraceDecode::default(),
        bad_trace_id: 0,
        bad_span_id: 0,
        bad_parent_id: 0,
        scratch: String::new(),
    };
    // Realistic exports carry 400-600 bytes per span; reserving for the dense end avoids
    // most regrowth without over-allocating much.
    ctx.out.spans.reserve(body.len() / 640);
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at("ExportTraceServiceRequest"))?;
        if field == field::REQUEST_RESOURCE_SPANS {
            expect(wt, LEN, &r).map_err(at("ExportTraceServiceRequest"))?;
            let rs = r.bytes().map_err(at("ExportTraceServiceRequest"))?;
            resource_spans(rs, &mut ctx, cache)?;
        } else {
            r.skip(wt, field).map_err(at("ExportTraceServiceRequest"))?;
        }
    }
    ctx.finish_rejections();
    Ok(ctx.out)
}

/// Maps a wire error to a decode error naming the message being read.
fn at(message: &'static str) -> impl Fn(WireError) -> DecodeError {
    move |e| DecodeError::InvalidProtobuf {
        message,
        reason: e.what,
        offset: e.offset,
    }
}

impl Ctx {
    fn finish_rejections(&mut self) {
        let rejected = self.bad_trace_id + self.bad_span_id + self.bad_parent_id;
        self.out.rejected_spans = rejected;
        self.out.stats.invalid_trace_id += self.bad_trace_id;
        self.out.stats.invalid_span_id += self.bad_span_id + self.bad_parent_id;
        if rejected == 0 {
            return;
        }
        let mut parts = Vec::new();
        if self.bad_trace_id > 0 {
            parts.push(format!(
                "{} with a trace id that is not 16 bytes or is all zero",
                self.bad_trace_id
            ));
        }
        if self.bad_span_id > 0 {
            parts.push(format!(
                "{} with a span id that is not 8 bytes or is all zero",
                self.bad_span_id
            ));
        }
        if self.bad_parent_id > 0 {
            parts.push(format!(
                "{} with a parent span id that is neither empty nor 8 bytes",
                self.bad_parent_id
            ));
        }
        self.out.rejection_message = format!("rejected {rejected} spans: {}", parts.join(", "));
    }

    /// The normalized resource for these encoded `Resource` bytes (parsed once per thread
    /// while it stays in `cache`).
    fn resource(
        &mut self,
        encoded: &[&[u8]],
        cache: &mut ResourceCache,
    ) -> Result<NormalResource, DecodeError> {
        let joined;
        let key: &[u8] = match encoded {
            [one] => one,
            _ => {
                joined = encoded.concat();
                &joined
            }
        };
        cache.get_or_build(key, &mut self.out.stats, |stats| {
            let mut attrs = ResourceAttrs::default();
            for part in encoded {
                resource_attrs(part, &mut attrs)?;
            }
            normalize::resource(&attrs, stats)
        })
    }
}

/// `ResourceSpans`: resource = 1, scope_spans = 2. The resource is read first even when it
/// follows the spans on the wire.
fn resource_spans(buf: &[u8], ctx: &mut Ctx, cache: &mut ResourceCache) -> Result<(), DecodeError> {
    const M: &str = "ResourceSpans";
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        if field == field::RESOURCE_SPANS_RESOURCE {
            expect(wt, LEN, &r).map_err(at(M))?;
            parts.push(r.bytes().map_err(at(M))?);
        } else {
            r.skip(wt, field).map_err(at(M))?;
        }
    }
    let resource = ctx.resource(&parts, cache)?;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        if field == field::RESOURCE_SPANS_SCOPE_SPANS {
            expect(wt, LEN, &r).map_err(at(M))?;
            scope_spans(r.bytes().map_err(at(M))?, &resource, ctx)?;
        } else {
            r.skip(wt, field).map_err(at(M))?;
        }
    }
    Ok(())
}

/// `Resource`: attributes = 1 (KeyValue).
fn resource_attrs<'a>(buf: &'a [u8], attrs: &mut ResourceAttrs<'a>) -> Result<(), DecodeError> {
    const M: &str = "Resource";
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        if field == field::RESOURCE_ATTRIBUTES {
            expect(wt, LEN, &r).map_err(at(M))?;
            let kv = r.bytes().map_err(at(M))?;
            if let Some((key, val)) = key_value(kv, ResourceKey::parse)? {
                attrs.set(key, val);
            }
        } else {
            r.skip(wt, field).map_err(at(M))?;
        }
    }
    Ok(())
}

/// `ScopeSpans`: spans = 2; the scope itself is not needed.
fn scope_spans(buf: &[u8], resource: &NormalResource, ctx: &mut Ctx) -> Result<(), DecodeError> {
    const M: &str = "ScopeSpans";
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        if field == field::SCOPE_SPANS_SPANS {
            expect(wt, LEN, &r).map_err(at(M))?;
            span(r.bytes().map_err(at(M))?, resource, ctx)?;
        } else {
            r.skip(wt, field).map_err(at(M))?;
        }
    }
    Ok(())
}

/// The raw fields of one span that normalization needs.
#[derive(Default)]
struct RawSpan<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    name: &'a [u8],
    kind: i32,
    start: u64,
    end: u64,
    status_code: i32,
    attrs: SpanAttrs<'a>,
}

/// `Span`: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6,
/// start_time_unix_nano = 7, end_time_unix_nano = 8, attributes = 9, status = 15.
/// Events (11), links (13), trace state (3), flags (16) and counters are skipped.
fn span(buf: &[u8], resource: &NormalResource, ctx: &mut Ctx) -> Result<(), DecodeError> {
    const M: &str = "Span";
    let mut s = RawSpan::default();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        use field::*;
        let want = match field {
            SPAN_TRACE_ID | SPAN_SPAN_ID | SPAN_PARENT_SPAN_ID | SPAN_NAME | SPAN_ATTRIBUTES
            | SPAN_STATUS => LEN,
            SPAN_KIND => VARINT,
            SPAN_START | SPAN_END => FIXED64,
            _ => {
                r.skip(wt, field).map_err(at(M))?;
                continue;
            }
        };
        expect(wt, want, &r).map_err(at(M))?;
        match field {
            SPAN_TRACE_ID => s.trace_id = r.bytes().map_err(at(M))?,
            SPAN_SPAN_ID => s.span_id = r.bytes().map_err(at(M))?,
            SPAN_PARENT_SPAN_ID => s.parent_span_id = r.bytes().map_err(at(M))?,
            SPAN_NAME => s.name = r.bytes().map_err(at(M))?,
            SPAN_KIND => s.kind = r.varint().map_err(at(M))? as i32,
            SPAN_START => s.start = r.fixed64().map_err(at(M))?,
            SPAN_END => s.end = r.fixed64().map_err(at(M))?,
            SPAN_ATTRIBUTES => {
                let kv = r.bytes().map_err(at(M))?;
                if let Some((key, val)) = key_value(kv, SpanKey::parse)? {
                    s.attrs.set(key, val);
                }
            }
            _ => s.status_code = status(r.bytes().map_err(at(M))?)?,
        }
    }
    push_span(&s, resource, ctx)
}

/// Validates ids and pushes the normalized record, or counts the rejection.
fn push_span(s: &RawSpan<'_>, resource: &NormalResource, ctx: &mut Ctx) -> Result<(), DecodeError> {
    let (Ok(trace_id), true) = (
        <[u8; 16]>::try_from(s.trace_id),
        s.trace_id.iter().any(|&b| b != 0),
    ) else {
        ctx.bad_trace_id += 1;
        return Ok(());
    };
    let (Ok(span_id), true) = (
        <[u8; 8]>::try_from(s.span_id),
        s.span_id.iter().any(|&b| b != 0),
    ) else {
        ctx.bad_span_id += 1;
        return Ok(());
    };
    let parent_span_id = match s.parent_span_id.len() {
        0 => [0u8; 8],
        _ => match <[u8; 8]>::try_from(s.parent_span_id) {
            Ok(p) => p,
            Err(_) => {
                ctx.bad_parent_id += 1;
                return Ok(());
            }
        },
    };
    let record = build_record(s, resource, trace_id, span_id, parent_span_id, ctx)?;
    ctx.out.spans.push(record);
    Ok(())
}

fn build_record(
    s: &RawSpan<'_>,
    resource: &NormalResource,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: [u8; 8],
    ctx: &mut Ctx,
) -> Result<SpanRecord, DecodeError> {
    let stats: &mut NormalizeStats = &mut ctx.out.stats;
    let kind = SpanKind::from_i32(s.kind);
    let operation = normalize::operation(&s.attrs, s.name, &mut ctx.scratch, stats)?;
    let peer = normalize::peer(kind, &s.attrs, &mut ctx.scratch, stats)?;
    let timing_valid = normalize::timing_valid(s.start, s.end, ctx.now);
    stats.invalid_timing += u64::from(!timing_valid);
    stats.missing_service += u64::from(resource.missing_service);
    Ok(SpanRecord {
        resource: resource.resource.clone(),
        trace_id,
        span_id,
        parent_span_id,
        operation,
        kind,
        start_unix_nano: s.start,
        end_unix_nano: s.end,
        error: normalize::is_error(kind, s.status_code, &s.attrs),
        timing_valid,
        peer,
    })
}

/// `Status`: code = 3.
fn status(buf: &[u8]) -> Result<i32, DecodeError> {
    const M: &str = "Status";
    let mut code = 0;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        if field == field::STATUS_CODE {
            expect(wt, VARINT, &r).map_err(at(M))?;
            code = r.varint().map_err(at(M))? as i32;
        } else {
            r.skip(wt, field).map_err(at(M))?;
        }
    }
    Ok(code)
}

/// `KeyValue`: key = 1, value = 2 (AnyValue). Returns the parsed key and value when the
/// key is one `parse` recognises; other values are skipped unread.
#[inline]
fn key_value<'a, K>(
    buf: &'a [u8],
    parse: impl Fn(&[u8]) -> Option<K>,
) -> Result<Option<(K, Val<'a>)>, DecodeError> {
    const M: &str = "KeyValue";
    let mut r = Reader::new(buf);
    let mut key: Option<K> = None;
    let mut value: Option<&'a [u8]> = None;
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        match field {
            field::KEY_VALUE_KEY => {
                expect(wt, LEN, &r).map_err(at(M))?;
                key = parse(r.bytes().map_err(at(M))?);
            }
            field::KEY_VALUE_VALUE => {
                expect(wt, LEN, &r).map_err(at(M))?;
                value = Some(r.bytes().map_err(at(M))?);
            }
            _ => r.skip(wt, field).map_err(at(M))?,
        }
    }
    match (key, value) {
        (Some(k), Some(v)) => Ok(Some((k, any_value(v)?))),
        _ => Ok(None),
    }
}

/// `AnyValue`: string_value = 1, int_value = 3; every other member (bool 2, double 4,
/// array 5, kvlist 6, bytes 7) yields [`Val::Other`]. Last member on the wire wins.
fn any_value(buf: &[u8]) -> Result<Val<'_>, DecodeError> {
    const M: &str = "AnyValue";
    let mut val = Val::Other;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(at(M))?;
        match field {
            field::ANY_STRING => {
                expect(wt, LEN, &r).map_err(at(M))?;
                val = Val::Str(r.bytes().map_err(at(M))?);
            }
            field::ANY_INT => {
                expect(wt, VARINT, &r).map_err(at(M))?;
                val = Val::Int(r.varint().map_err(at(M))? as i64);
            }
            field::ANY_BOOL..=field::ANY_BYTES => {
                r.skip(wt, field).map_err(at(M))?;
                val = Val::Other;
            }
            _ => r.skip(wt, field).map_err(at(M))?,
        }
    }
    Ok(val)
}

#[cfg(test)]
mod tests {
    use super::field;

    /// The decoder's field numbers are those of the vendored definitions in `proto/`.
    #[test]
    fn proto_fields_match() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
        let fds = protox::compile(
            ["opentelemetry/proto/collector/trace/v1/trace_service.proto"],
            [root],
        )
        .expect("vendored protos compile");
        for (message, name, number) in field::ALL {
            let full = format!("opentelemetry.proto.{message}");
            let found = fds
                .file
                .iter()
                .flat_map(|f| f.message_type.iter().map(move |m| (f.package(), m)))
                .find(|(pkg, m)| format!("{pkg}.{}", m.name()) == full)
                .unwrap_or_else(|| panic!("{full} not in proto/"));
            let f = found.1.field.iter().find(|f| f.name() == *name);
            assert_eq!(f.map(|f| f.number() as u32), Some(*number), "{full}.{name}");
        }
    }
}
