//! Shared harness of the alerting tests: a real Alertmanager and scriptable local HTTP
//! receivers (webhook, Slack, PagerDuty Events API v2). Each test file uses a part.
#![allow(dead_code)]

pub mod alertmanager;
pub mod receiver;
pub mod verdicts;
