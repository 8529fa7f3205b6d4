//! Graceful overload for the graph: when the analysis cannot keep up with its input (the
//! ingest queue more than half full or refusing data, or the process using nearly all the
//! CPU it may use, which is how a saturated server looks to clients that wait for their
//! answers), the graph keeps the calls of only a fraction of traces, chosen by trace id, and
//! counts each kept call for the traces it stands for; after a calm while it keeps more again.
//!
//! Choosing by trace id keeps both halves of a call together (they share it), so thinning
//! never leaves a span unpaired, and it thins every version alike, as head sampling does:
//! rates and latency distributions stay unbiased, counts become estimates (`sample_rate` in
//! the API, `verdict_graph_sample_rate` in `/metrics`). The series and the judge's own
//! signals are never thinned; the judge's edge signals see the kept calls as they are
//! (fewer samples, same-window comparisons unchanged).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Seconds the queue must stay nearly empty before the graph keeps twice as many traces.
pub const CALM_TICKS: u32 = 30;

/// The graph's current sampling level: it keeps one trace in `2^level`.
#[derive(Debug)]
pub struct Thinning {
    level: AtomicU32,
    max_level: u32,
    calm: AtomicU32,
    /// Spans left out of the graph by thinning, since start.
    pub thinned: AtomicU64,
}

/// Share of the available CPU above which the analyzer counts as saturated.
pub const BUSY_CPU: f64 = 0.9;
/// Share of the available CPU below which a second counts as calm.
pub const CALM_CPU: f64 = 0.6;

/// What the analysis' input looked like over the last second.
#[derive(Debug, Clone, Copy)]
pub struct Pressure {
    pub queued: usize,
    pub capacity: usize,
    pub refused: u64,
    /// The process's CPU use as a share of the cores it may use, when known.
    pub cpu: Option<f64>,
}

impl Thinning {
    /// `min_rate` is the smallest fraction of traces kept (a power of two's inverse, at
    /// most 1); 1 disables thinning.
    pub fn new(min_rate: f64) -> Self {
        let max_level = (1.0 / min_rate.clamp(1e-9, 1.0)).log2().round() as u32;
        Self {
            level: AtomicU32::new(0),
            max_level: max_level.min(30),
            calm: AtomicU32::new(0),
            thinned: AtomicU64::new(0),
        }
    }

    /// The level now: one trace in `2^level` is kept.
    pub fn level(&self) -> u32 {
        self.level.load(Ordering::Relaxed)
    }

    /// Fraction of traces kept now.
    pub fn rate(&self) -> f64 {
        1.0 / f64::from(1u32 << self.level())
    }

    /// Whether a trace is kept at `level` (the same traces at every level are kept at the
    /// levels below it, so raising the level only drops traces).
    pub fn keeps(trace: &[u8; 16], level: u32) -> bool {
        if level == 0 {
            return true;
        }
        let mut high = [0u8; 8];
        high.copy_from_slice(&trace[..8]);
        let mixed = u64::from_le_bytes(high).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        (mixed >> (64 - level)) == 0
    }

    /// Adjusts the level once a second: up one step when the queue is more than half full,
    /// refused data or the CPU use is above [`BUSY_CPU`]; down one step after
    /// [`CALM_TICKS`] seconds with the queue below a sixteenth of its capacity and the CPU
    /// use below [`CALM_CPU`]. Returns the new level when it changed.
    pub fn adapt(&self, p: Pressure) -> Option<u32> {
        let level = self.level();
        let cpu = p.cpu.unwrap_or(0.0);
        let busy = p.refused > 0 || p.queued.saturating_mul(2) > p.capacity || cpu > BUSY_CPU;
        let idle = p.queued.saturating_mul(16) < p.capacity && cpu < CALM_CPU;
        let next = if busy {
            self.calm.store(0, Ordering::Relaxed);
            (level < self.max_level).then_some(level + 1)
        } else if idle && level > 0 {
            let calm = self.calm.fetch_add(1, Ordering::Relaxed) + 1;
            (calm >= CALM_TICKS).then(|| {
                self.calm.store(0, Ordering::Relaxed);
                level - 1
            })
        } else {
            self.calm.store(0, Ordering::Relaxed);
            None
        };
        if let Some(l) = next {
            self.level.store(l, Ordering::Relaxed);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pressure(queued: usize, refused: u64) -> Pressure {
        Pressure {
            queued,
            capacity: 1_000,
            refused,
            cpu: Some(0.3),
        }
    }

    #[test]
    fn a_saturated_cpu_counts_as_pressure_and_a_busy_one_is_not_calm() {
        let t = Thinning::new(1.0 / 4.0);
        let cpu = |c| Pressure {
            cpu: Some(c),
            ..pressure(0, 0)
        };
        assert_eq!(t.adapt(cpu(0.95)), Some(1));
        for _ in 0..2 * CALM_TICKS {
            assert_eq!(t.adapt(cpu(0.7)), None, "between calm and busy: hold");
        }
        for _ in 1..CALM_TICKS {
            assert_eq!(t.adapt(cpu(0.5)), None);
        }
        assert_eq!(t.adapt(cpu(0.5)), Some(0));
    }

    #[test]
    fn thins_step_by_step_under_pressure_and_recovers_after_calm() {
        let t = Thinning::new(1.0 / 8.0);
        assert_eq!(t.adapt(pressure(100, 0)), None, "a light queue keeps all");
        assert_eq!(t.adapt(pressure(501, 0)), Some(1));
        assert_eq!(
            t.adapt(pressure(0, 7)),
            Some(2),
            "refusals count as pressure"
        );
        assert_eq!(t.adapt(pressure(900, 0)), Some(3));
        assert_eq!(t.adapt(pressure(900, 0)), None, "never below min_rate");
        assert_eq!(t.rate(), 0.125);
        for _ in 1..CALM_TICKS {
            assert_eq!(t.adapt(pressure(10, 0)), None);
        }
        assert_eq!(t.adapt(pressure(10, 0)), Some(2));
        // A second that is neither calm nor busy restarts the count.
        for _ in 1..CALM_TICKS {
            t.adapt(pressure(10, 0));
        }
        assert_eq!(t.adapt(pressure(200, 0)), None);
        assert_eq!(t.adapt(pressure(10, 0)), None);
        assert_eq!(t.level(), 2);
    }

    #[test]
    fn a_rate_of_one_never_thins() {
        let t = Thinning::new(1.0);
        assert_eq!(t.adapt(pressure(1_000, 50)), None);
        assert_eq!(t.rate(), 1.0);
    }

    #[test]
    fn kept_traces_are_nested_and_about_the_rate() {
        let traces: Vec<[u8; 16]> = (0u64..40_000)
            .map(|i| {
                let mut t = [0u8; 16];
                t[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
                t[8..].copy_from_slice(&i.to_le_bytes());
                t
            })
            .collect();
        for level in 1..=4u32 {
            let kept = traces.iter().filter(|t| Thinning::keeps(t, level)).count();
            let expect = 40_000.0 / f64::from(1u32 << level);
            // Within five binomial standard deviations.
            let sd = (expect * (1.0 - 1.0 / f64::from(1u32 << level))).sqrt();
            assert!(
                (kept as f64 - expect).abs() < 5.0 * sd,
                "level {level}: {kept}"
            );
            assert!(traces
                .iter()
                .filter(|t| Thinning::keeps(t, level))
                .all(|t| Thinning::keeps(t, level - 1)));
        }
    }
}
