//! Alerting: turns verdicts into alerts with a stable identity and delivers them through
//! a durable outbox to Alertmanager, PagerDuty, webhooks and Slack.

pub mod config;
