//! Slack sink: an incoming-webhook message per culprit deployment with the verdict, the
//! evidence of each alert and a link to the deployment in the dashboard.

use super::{truncate, RenderContext};
use crate::alert::outbox::Notification;
use serde_json::{json, Value};

/// Slack's limit for a message's text is 40,000 characters; stay well under it.
const MAX_TEXT: usize = 30_000;

/// The message body.
pub fn payload(n: &Notification, _cx: RenderContext<'_>) -> Value {
    let mut lines = Vec::new();
    for a in &n.alerts {
        let (icon, word) = if a.firing() {
            (":red_circle:", "FIRING")
        } else {
            (":large_green_circle:", "RESOLVED")
        };
        let l = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or("");
        let summary = a
            .annotations
            .get("summary")
            .map(String::as_str)
            .unwrap_or("");
        let mut line = format!(
            "{icon} *{word}* `{}` [{}] {summary}",
            l("alertname"),
            l("severity")
        );
        if let Some(ev) = a.annotations.get("evidence") {
            line.push_str(&format!("\n    {ev}"));
        }
        if let Some(link) = a.annotations.get("link") {
            line.push_str(&format!("\n    <{link}|open in verdict>"));
        }
        lines.push(line);
    }
    json!({ "text": truncate(&lines.join("\n"), MAX_TEXT) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::{AlertRecord, AlertStatus};

    #[test]
    fn message_names_status_and_links() {
        let a = AlertRecord {
            fingerprint: "f".into(),
            labels: [("alertname".to_string(), "DeploymentRegression".to_string())]
                .into_iter()
                .collect(),
            annotations: [(
                "link".to_string(),
                "http://v/#/deployments/p/s/v".to_string(),
            )]
            .into_iter()
            .collect(),
            group: "g".into(),
            status: AlertStatus::Resolved,
            starts_at: 0,
            ends_at: Some(1),
        };
        let n = Notification {
            id: 1,
            sink: "s".into(),
            group: "g".into(),
            alerts: vec![a],
            created_at: 0,
            durable: true,
        };
        let t = payload(
            &n,
            RenderContext {
                external_url: "",
                now: 0,
            },
        )["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            t.contains("*RESOLVED* `DeploymentRegression`")
                && t.contains("<http://v/#/deployments/p/s/v|open in verdict>"),
            "{t}"
        );
    }
}
