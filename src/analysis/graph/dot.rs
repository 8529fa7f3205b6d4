//! Renders a [`GraphSnapshot`] as Graphviz DOT for humans (`dot -Tsvg`). Every name comes
//! from telemetry, so every identifier and label is a quoted, escaped DOT string.

use super::snapshot::{EdgeView, GraphSnapshot, NodeView, Quantiles};
use crate::model::NodeKind;
use std::fmt::Write;

/// The snapshot as a DOT digraph: one node per (environment, name), one arrow per
/// versioned edge labelled with versions, requests, errors and p99 latencies.
pub fn render(s: &GraphSnapshot) -> String {
    let mut out =
        String::from("digraph verdict {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    for n in &s.nodes {
        node(&mut out, n);
    }
    for e in &s.edges {
        edge(&mut out, e);
    }
    out.push_str("}\n");
    out
}

fn node(out: &mut String, n: &NodeView) {
    let shape = match n.kind {
        NodeKind::Service => "box",
        NodeKind::Database => "cylinder",
        NodeKind::Messaging => "cds",
        NodeKind::External => "ellipse",
    };
    let mut label = n.name.to_string();
    if !n.versions.is_empty() {
        let versions: Vec<&str> = n.versions.iter().map(|v| v.as_str()).collect();
        let _ = write!(label, "\n{}", versions.join(", "));
    }
    let _ = writeln!(
        out,
        "  {} [shape={shape}, label={}];",
        quote(&node_id(&n.environment, &n.name)),
        quote(&label)
    );
}

fn edge(out: &mut String, e: &EdgeView) {
    let label_end = |name: &str, version: &str| {
        if version.is_empty() {
            name.to_string()
        } else {
            format!("{name}@{version}")
        }
    };
    let mut label = format!(
        "{} -> {}",
        label_end(&e.caller, &e.caller_version),
        label_end(&e.callee, &e.callee_version)
    );
    let _ = write!(label, "\n{} req, {} err", e.requests, e.errors);
    latency(&mut label, "client p99", &e.client_latency_ms);
    latency(&mut label, "server p99", &e.server_latency_ms);
    if !e.connection_type.is_empty() {
        let _ = write!(label, "\n{}", e.connection_type);
    }
    let color = if e.errors > 0 { "red" } else { "black" };
    let _ = writeln!(
        out,
        "  {} -> {} [label={}, color={color}];",
        quote(&node_id(&e.environment, &e.caller)),
        quote(&node_id(&e.environment, &e.callee)),
        quote(&label)
    );
}

fn latency(label: &mut String, what: &str, q: &Quantiles) {
    if let Some(p99) = q.p99 {
        let _ = write!(label, "\n{what} {p99} ms");
    }
}

fn node_id(env: &str, name: &str) -> String {
    format!("{env}/{name}")
}

/// A DOT double-quoted string: backslash and quote escaped, newlines as `\n` line breaks,
/// other control characters dropped.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_everything_dot_interprets() {
        assert_eq!(quote("a\"b\\c\nd\re"), "\"a\\\"b\\\\c\\nde\"");
        // A trailing backslash must not escape the closing quote.
        assert_eq!(quote("x\\"), "\"x\\\\\"");
    }
}
