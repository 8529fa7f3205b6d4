//! The judge: detects deployments and decides, every second, whether each is healthy
//! (`promote`), harmful (`rollback`) or not yet known (`inconclusive`).

pub mod config;
