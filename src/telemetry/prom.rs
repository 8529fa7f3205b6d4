//! Prometheus text exposition format (0.0.4): a writer that renders into memory, compresses
//! with gzip as it goes, or streams the page to the scraper in chunks, so a scrape of a
//! large graph never holds the whole text (10,000 edges render about 150 MB of text, which
//! compresses to about 5 MB).

use bytes::Bytes;
use std::fmt::Write;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc::Sender;

/// Text staged before it is compressed, and the size of a streamed chunk.
const CHUNK: usize = 64 << 10;
/// How long a streaming writer waits for a scraper that reads nothing before giving the
/// page up (Prometheus's default scrape timeout).
const SEND_WAIT: Duration = Duration::from_secs(10);

/// Writes Prometheus text exposition format; see the module documentation for the modes.
#[derive(Debug, Default)]
pub struct PromWriter {
    out: String,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    /// Streaming writers send finished chunks here (the response body); `None` once the
    /// scraper has gone, after which output is discarded.
    stream: Option<Sender<Bytes>>,
    send_wait: Duration,
    /// The runtime whose timer bounds the wait for the reader: set exactly for streaming
    /// writers.
    runtime: Option<Handle>,
}

/// Metric types of the text format.
#[derive(Debug, Clone, Copy)]
pub enum PromType {
    Counter,
    Gauge,
    Histogram,
}

impl PromWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer whose output is gzip-compressed as it is written (for `Accept-Encoding:
    /// gzip`); [`PromWriter::finish_bytes`] returns the compressed body.
    pub fn gzip() -> Self {
        Self {
            out: String::with_capacity(CHUNK + 4096),
            gzip: Some(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            )),
            ..Self::default()
        }
    }

    /// A writer that sends its output, gzip-compressed or not, to `tx` in chunks of about
    /// 64 KiB at each [`PromWriter::boundary`], and the rest at
    /// [`PromWriter::finish_stream`], which then sends an empty chunk: the end marker, whose
    /// absence tells the reader the page was cut short. Sending waits while `tx` is full (up
    /// to 10 s a chunk, then the page is given up), so it must run on one of the runtime's
    /// blocking threads (`spawn_blocking`); it panics outside a runtime.
    pub fn streaming(gzip: bool, tx: Sender<Bytes>) -> Self {
        let base = if gzip { Self::gzip() } else { Self::new() };
        Self {
            stream: Some(tx),
            send_wait: SEND_WAIT,
            runtime: Some(Handle::current()),
            ..base
        }
    }

    /// Moves staged text into the compressor once a chunk is full.
    fn spill(&mut self, force: bool) {
        if let Some(z) = self.gzip.as_mut() {
            if force || self.out.len() >= CHUNK {
                use std::io::Write as _;
                // Writing into a Vec cannot fail.
                let _ = z.write_all(self.out.as_bytes());
                self.out.clear();
            }
        }
    }

    /// A point where the caller holds no lock: a streaming writer sends a full chunk here
    /// (waiting for the scraper if its queue is full). Other writers do nothing.
    pub fn boundary(&mut self) {
        if self.runtime.is_none() {
            return;
        }
        let chunk = match self.gzip.as_mut() {
            // The encoder only appends to its Vec, so the bytes so far can be taken out.
            Some(z) if z.get_ref().len() >= CHUNK => std::mem::take(z.get_mut()),
            Some(_) => return,
            None if self.out.len() >= CHUNK => std::mem::take(&mut self.out).into_bytes(),
            None => return,
        };
        self.send(chunk);
    }

    fn send(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.send_bytes(Bytes::from(chunk));
        }
    }

    /// Sends one chunk, waiting at most `send_wait` for room; a reader that is gone or
    /// reads nothing that long ends the stream (later output is discarded).
    fn send_bytes(&mut self, chunk: Bytes) {
        let (Some(tx), Some(rt)) = (&self.stream, &self.runtime) else {
            return;
        };
        let sent = rt.block_on(tokio::time::timeout(self.send_wait, tx.send(chunk)));
        if !matches!(sent, Ok(Ok(()))) {
            self.stream = None;
        }
    }

    /// Sends what is left of a streaming writer's output, then the end marker.
    pub fn finish_stream(mut self) {
        self.spill(true);
        let rest = match self.gzip.take() {
            Some(z) => z.finish().unwrap_or_default(),
            None => std::mem::take(&mut self.out).into_bytes(),
        };
        self.send(rest);
        self.send_bytes(Bytes::new());
    }

    /// Writes the HELP and TYPE lines of a metric family.
    pub fn family(&mut self, name: &str, kind: PromType, help: &str) {
        let t = match kind {
            PromType::Counter => "counter",
            PromType::Gauge => "gauge",
            PromType::Histogram => "histogram",
        };
        let _ = writeln!(
            self.out,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.out, "# TYPE {name} {t}");
        self.spill(false);
    }

    /// Writes one sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_with(name, "", labels, value);
    }

    /// Writes one sample line whose labels are `set` (rendered once by [`label_set`] for
    /// samples that share it) followed by `extra`.
    pub fn sample_with(&mut self, name: &str, set: &str, extra: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !set.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(set);
            push_labels(&mut self.out, extra, set.is_empty());
            self.out.push('}');
        }
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.out, " {}", value as i64);
        } else {
            let _ = writeln!(self.out, " {value}");
        }
        self.spill(false);
    }

    /// The text (of a writer made with [`PromWriter::new`]).
    pub fn finish(self) -> String {
        debug_assert!(
            self.gzip.is_none(),
            "a gzip writer finishes with finish_bytes"
        );
        self.out
    }

    /// The body: compressed for a [`PromWriter::gzip`] writer, else the text.
    pub fn finish_bytes(mut self) -> Vec<u8> {
        self.spill(true);
        match self.gzip.take() {
            Some(z) => z.finish().unwrap_or_default(),
            None => self.out.into_bytes(),
        }
    }
}

/// Renders a label set once (`a="x",b="y"`, escaped), for [`PromWriter::sample_with`].
pub fn label_set(labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    push_labels(&mut s, labels, true);
    s
}

fn push_labels(out: &mut String, labels: &[(&str, &str)], first: bool) {
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 || !first {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
}

/// Appends a label value escaped per the text format (backslash, quote, newline).
fn push_escaped(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(w: &mut PromWriter) {
        w.family("y", PromType::Gauge, "many lines");
        let set = label_set(&[("shared", "s\"1")]);
        for i in 0..20_000 {
            w.sample("y", &[("edge", &format!("e{i}"))], i as f64);
            w.sample_with("y", &set, &[("le", "0.5")], 0.25);
            w.boundary();
        }
    }

    fn gunzip(body: &[u8]) -> String {
        let mut back = String::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn gzip_output_decompresses_to_the_same_text() {
        let (mut plain, mut z) = (PromWriter::new(), PromWriter::gzip());
        render(&mut plain);
        render(&mut z);
        let text = plain.finish();
        let body = z.finish_bytes();
        assert!(
            body.len() * 4 < text.len(),
            "{} vs {}",
            body.len(),
            text.len()
        );
        assert_eq!(gunzip(&body), text);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Runs a streaming writer on a blocking thread and collects the chunks it sends.
    fn streamed(gzip: bool) -> Vec<Bytes> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let rt = runtime();
        let writer = rt.spawn_blocking(move || {
            let mut w = PromWriter::streaming(gzip, tx);
            render(&mut w);
            w.finish_stream();
        });
        let mut chunks = Vec::new();
        while let Some(c) = rx.blocking_recv() {
            chunks.push(c);
        }
        rt.block_on(writer).unwrap();
        assert_eq!(
            chunks.pop(),
            Some(Bytes::new()),
            "the stream ends with the marker"
        );
        chunks
    }

    #[test]
    fn streaming_sends_bounded_chunks_of_the_same_text() {
        let mut plain = PromWriter::new();
        render(&mut plain);
        let text = plain.finish();
        for gzip in [false, true] {
            let chunks = streamed(gzip);
            // At least one chunk before the end: `finish_stream` sends only one.
            assert!(chunks.len() >= 2, "gzip {gzip}: {} chunks", chunks.len());
            assert!(
                chunks.iter().all(|c| !c.is_empty()),
                "only the marker is empty"
            );
            // A chunk is sent at the first boundary past 64 KiB: plain text at most one
            // boundary's worth (two short lines here) more; compressed output at most what
            // one 64 KiB spill of text compresses to more.
            let bound = if gzip { 2 * CHUNK } else { CHUNK + 1024 };
            for c in &chunks {
                assert!(c.len() < bound, "gzip {gzip}: chunk of {}", c.len());
            }
            let body: Vec<u8> = chunks.concat();
            let back = if gzip {
                gunzip(&body)
            } else {
                String::from_utf8(body).unwrap()
            };
            assert_eq!(back, text, "gzip {gzip}");
        }
    }

    #[test]
    fn streaming_stops_sending_when_the_scraper_is_gone() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let rt = runtime();
        let left = rt.spawn_blocking(move || {
            let mut w = PromWriter::streaming(false, tx);
            render(&mut w);
            let left = (w.stream.is_none(), w.out.len());
            w.finish_stream();
            left
        });
        let (gone, staged) = rt.block_on(left).unwrap();
        assert!(gone, "the closed channel is noticed");
        assert!(staged < CHUNK + 1024, "output is discarded, not kept");
    }

    #[test]
    fn a_scraper_that_reads_nothing_is_given_up_without_the_end_marker() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let rt = runtime();
        let writer = rt.spawn_blocking(move || {
            let mut w = PromWriter::streaming(false, tx);
            w.send_wait = Duration::from_millis(50);
            render(&mut w);
            w.finish_stream();
        });
        // One chunk fits in the channel; the next send waits 50 ms and gives the page up
        // (without the wait's bound this would never return).
        rt.block_on(writer).unwrap();
        let first = rx.blocking_recv().expect("the first chunk");
        assert!(!first.is_empty());
        assert_eq!(
            rx.blocking_recv(),
            None,
            "no marker: the page was cut short"
        );
    }

    #[test]
    fn writes_escaped_labels() {
        let mut w = PromWriter::new();
        w.family("x_total", PromType::Counter, "things");
        w.sample("x_total", &[("a", "q\"\\\n")], 3.0);
        w.sample_with("x_total", &label_set(&[("a", "b")]), &[("c", "d")], 1.5);
        w.sample_with("x_total", &label_set(&[("a", "b")]), &[], 2.0);
        w.sample("x_total", &[], 4.0);
        let s = w.finish();
        assert!(s.contains("x_total{a=\"q\\\"\\\\\\n\"} 3\n"), "{s}");
        assert!(s.contains("x_total{a=\"b\",c=\"d\"} 1.5\n"), "{s}");
        assert!(s.contains("x_total{a=\"b\"} 2\n"), "{s}");
        assert!(s.contains("x_total 4\n"), "{s}");
    }
}
