//! The `junction` binary: parses the command line and hands each subcommand to its module.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod eval;
mod serve;
mod settings;

// mimalloc rather than the system allocator: ingestion allocates and frees many small values
// per event (parsed JSON, routed payloads, request bodies) across threads, and glibc's malloc
// took about a quarter of the server's CPU time under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Junction: a self-hosted, Segment-compatible event router.
#[derive(Debug, Parser)]
#[command(name = "junction", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a destination configuration would do to events, without sending anything.
    ///
    /// Reads JSON Lines on stdin (`{"id", "settings", "subscriptions", "event",
    /// "webhook_response"?}`) and writes one JSON line per input line on stdout, in order.
    Eval,
    /// Run the server: the Segment Tracking API, durable storage and routing.
    ///
    /// Works with no flag at all (data in ./junction-data, Tracking API on 127.0.0.1:8080, the
    /// sample workspace on first start); see junction.toml for every setting.
    Serve(Box<settings::ServeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval => run_eval(),
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("junction: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_eval() -> anyhow::Result<()> {
    let registry = junction_actions::registry()?;
    let stdin = io::stdin().lock();
    let stdout = BufWriter::new(io::stdout().lock());
    eval::run(registry, stdin, stdout)?;
    Ok(())
}
