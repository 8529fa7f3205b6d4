//! Test helpers: a real headless Chromium driven over the DevTools protocol, and a fixture
//! API serving the dashboard next to scripted deployments, services, graph and alerts.
#![allow(dead_code)]

pub mod cdp;
pub mod fixture;
