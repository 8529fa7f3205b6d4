//! verdict: an OpenTelemetry-native streaming analyzer that judges every deployment by
//! version within seconds. Data flows receiver -> analysis -> judge -> alert / api.
#![forbid(unsafe_code)]

pub mod alert;
pub mod analysis;
pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod judge;
pub mod model;
pub mod receiver;
pub mod sim;
pub mod telemetry;
