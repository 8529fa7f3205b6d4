//! The `verdict` command line: serve, validate and the tools around them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's built-in options (`_RJEM_MALLOC_CONF` still overrides them): only blocks of up
/// to 128 bytes, the short-lived per-span ones, go through the per-thread caches. Larger
/// ones (histories, histograms, maps: long-lived, resized now and then) go to the shared
/// bins, which reuse the free room of partly used pages first; handed out from the caches
/// in the order they were freed, they left about 40 MiB of pages partly empty under a
/// 1,000-service load, against about 22 MiB now, at no measurable cost in throughput
/// (docs/benchmarks.md section 3). Freed pages go back to the system after about a quarter
/// of a second rather than jemalloc's default ten (its muzzy decay is already 0):
/// histories and histograms move and are freed all the time, and dirty pages held ten
/// seconds cost 4 to 12 MiB of RSS under the 1,000-service load, at no measurable cost in
/// throughput (section 3, "Open slots give their buffers back"; 250 ms against 1 s in
/// "Closed slots as Rice codes"). Returning them at once (0) cost 70 % more CPU per span.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 34] = b"tcache_max:128,dirty_decay_ms:250\0";

#[derive(Parser)]
#[command(
    name = "verdict",
    version,
    about = "Judges every deployment by version within seconds, from OpenTelemetry traces and metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the analyzer (OTLP receivers, judge, alerting, API).
    Serve(verdict::app::ServeArgs),
    /// Send pre-encoded OTLP trace batches over gRPC and report accepted spans/s.
    Loadgen(verdict::receiver::loadgen::LoadgenArgs),
    /// Emit simulated traces and metrics for a topology (and scenario) to an OTLP endpoint.
    Simulate(verdict::sim::simulate::SimulateArgs),
    /// Run the scenario suite (and the real-trace replay) against an analyzer and report.
    Scenarios(verdict::sim::runner::ScenariosArgs),
    /// See it work: analyzer + simulated shop with a canary that goes bad.
    Demo(verdict::sim::demo::DemoArgs),
    /// Replay recorded OTLP/JSON lines through the analyzer and print the verdicts.
    Replay(verdict::judge::replay::ReplayArgs),
    /// Check a configuration file and report every problem.
    Validate {
        /// The configuration file to check.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(&cli.command, Command::Demo(a) if !a.verbose);
    verdict::telemetry::init_logs_at(if quiet { "warn" } else { "info" });
    match cli.command {
        Command::Serve(args) => {
            disable_transparent_huge_pages();
            run(verdict::app::serve(args))
        }
        Command::Loadgen(args) => run(verdict::receiver::loadgen::run(args)),
        Command::Simulate(args) => run(verdict::sim::simulate::run(args)),
        Command::Scenarios(args) => run(verdict::sim::runner::run(args)),
        Command::Demo(args) => run(verdict::sim::demo::run(args)),
        Command::Replay(args) => run(verdict::judge::replay::run(args)),
        Command::Validate { config } => validate(&config),
    }
}

/// Turns transparent huge pages off for the analyzer: the allocator's partly used 2 MiB
/// pages held about 20 MB more RSS under the e2e load, with no measurable throughput
/// difference (docs/benchmarks.md, section 3).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn run(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    match verdict::config::Config::load(Some(path)) {
        Ok(_) => {
            println!("{}: configuration is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}
