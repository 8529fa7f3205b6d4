//! Shared harness of the integration tests: a real Alertmanager, scriptable local HTTP
//! receivers (webhook, Slack, PagerDuty Events API v2) and `verdict serve` as a child
//! process. Each test file uses a part.
#![allow(dead_code)]

pub mod alertmanager;
pub mod receiver;
pub mod serve;
pub mod verdicts;
