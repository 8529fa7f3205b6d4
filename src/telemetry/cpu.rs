//! The process's own CPU use as a fraction of the cores it may use (affinity and cgroup
//! quota, as `std::thread::available_parallelism` reads them): the signal that tells a
//! closed-loop overload (clients waiting on a saturated CPU, queue short) from idle.

use std::time::{Duration, Instant};

/// Samples the process's CPU time once per call.
#[derive(Debug)]
pub struct CpuMeter {
    cores: f64,
    last: Option<(Instant, Duration)>,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            cores: cores as f64,
            last: None,
        }
    }

    /// Fraction of the available cores the process used since the previous call; None on
    /// the first call and where the process's CPU time cannot be read (not Linux).
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = process_cpu_time()?;
        let previous = self.last.replace((now, cpu));
        let (then, cpu_then) = previous?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| cpu.saturating_sub(cpu_then).as_secs_f64() / wall / self.cores)
    }
}

/// CPU time the calling thread has used, in nanoseconds, from `/proc/thread-self/schedstat`
/// (its first field): what a piece of synchronous work costs, unlike wall time, which
/// counts the other threads it waited on. None where the file is missing (not Linux).
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// User plus system CPU time of this process, from `/proc/self/stat`.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/PID/stat` line, in clock ticks of 1/100 s
/// (`USER_HZ`, fixed at 100 in the kernel's user ABI). The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_the_command_name() {
        let line =
            "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 8 0 1 2 3";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3_250)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_cpu_time_grows_with_work_and_not_with_sleep() {
        let t0 = thread_cpu_time().expect("readable");
        std::thread::sleep(Duration::from_millis(50));
        let t1 = thread_cpu_time().expect("readable");
        // Spin until the thread's CPU time has grown by 10 ms (a loaded machine may take
        // longer than 10 ms of wall time to give it that); it must within 5 s.
        let start = Instant::now();
        let mut x = 0u64;
        let mut t2 = t1;
        while t2 - t1 < Duration::from_millis(10) && start.elapsed() < Duration::from_secs(5) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            t2 = thread_cpu_time().expect("readable");
        }
        assert!(
            t1 - t0 < Duration::from_millis(25),
            "sleeping used {:?}",
            t1 - t0
        );
        assert!(
            t2 - t1 >= Duration::from_millis(10),
            "spinning used {:?}",
            t2 - t1
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_busy_thread_shows_as_cpu_use() {
        let mut m = CpuMeter::new();
        assert_eq!(
            m.sample(),
            None,
            "the first call has nothing to compare with"
        );
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used = m.sample().expect("linux has /proc/self/stat");
        // One spinning thread: at most everything, at least a little (ticks are 10 ms and
        // other tests share the machine).
        assert!(used > 0.0 && used <= 1.5, "{used}");
    }
}
