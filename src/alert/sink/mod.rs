//! Sinks: each turns a [`Notification`] into one HTTP request in its receiver's format
//! (pure functions, tested without a network), and classifies the receiver's answer.

pub mod alertmanager;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use super::config::{SinkConfig, SinkType};
use super::outbox::Notification;
use crate::model::UnixNanos;
use std::time::Duration;

/// A configured sink with its resolved name.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    pub kind: SinkType,
    pub config: SinkConfig,
}

/// A request to send: POST `url` with a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRequest {
    pub url: String,
    pub body: serde_json::Value,
}

/// What to render with besides the notification.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub external_url: &'a str,
    pub now: UnixNanos,
}

impl SinkSpec {
    /// The request that delivers `n` to this sink.
    pub fn render(&self, n: &Notification, cx: RenderContext<'_>) -> OutRequest {
        let url = self.config.url.clone().unwrap_or_default();
        match self.kind {
            SinkType::Webhook => OutRequest {
                url,
                body: webhook::payload(&self.name, n, cx),
            },
            SinkType::Alertmanager => OutRequest {
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                body: alertmanager::payload(n, self.config.repeat(), cx),
            },
            SinkType::Pagerduty => pagerduty::request(&self.config, n, cx),
            SinkType::Slack => OutRequest {
                url,
                body: slack::payload(n, cx),
            },
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted (2xx).
    Delivered,
    /// Worth retrying (transport error, 408, 429, 5xx), after at least `retry_after` if
    /// the receiver said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Rejected for good (other 4xx, or a body that could not be built).
    Reject { error: String },
}

/// Classifies an HTTP status (and its `Retry-After` header, in seconds).
pub fn classify(status: u16, retry_after: Option<&str>) -> Outcome {
    let error = format!("HTTP {status}");
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            error,
            retry_after: retry_after.and_then(parse_retry_after),
        },
        _ => Outcome::Reject { error },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110), capped at one hour.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs(
        wait.whole_seconds().clamp(0, 3600) as u64
    ))
}

/// `labels` and `annotations` present with the same value in every alert.
pub fn common(
    alerts: &[super::lifecycle::AlertRecord],
    pick: impl Fn(&super::lifecycle::AlertRecord) -> &super::rules::Labels,
) -> super::rules::Labels {
    let mut out = alerts.first().map(&pick).cloned().unwrap_or_default();
    for a in alerts.iter().skip(1) {
        let other = pick(a);
        out.retain(|k, v| other.get(k) == Some(v));
    }
    out
}

/// Truncates to at most `max` bytes on a char boundary, marking the cut with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses_like_the_receivers_document() {
        assert_eq!(classify(202, None), Outcome::Delivered);
        assert!(
            matches!(classify(429, Some("7")), Outcome::Retry { retry_after: Some(d), .. } if d.as_secs() == 7)
        );
        assert!(matches!(classify(408, None), Outcome::Retry { .. }));
        assert!(matches!(
            classify(503, Some("junk")),
            Outcome::Retry {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(classify(400, None), Outcome::Reject { .. }));
        assert!(matches!(classify(404, None), Outcome::Reject { .. }));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        let t = truncate(&"é".repeat(600), 1024);
        assert!(t.len() <= 1024 && t.ends_with("..."));
    }
}
