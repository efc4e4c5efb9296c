//! The `junction` binary: parses the command line and hands each subcommand to its module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audiences;
mod client;
mod commands;
mod eval;
mod serve;
mod settings;
mod table;

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

/// An admin subcommand's arguments: its own, and where the admin API is.
#[derive(Debug, clap::Args)]
struct Client<T: clap::Args> {
    #[command(flatten)]
    admin: client::AdminArgs,
    #[command(flatten)]
    args: T,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a destination configuration would do to events, without sending anything.
    ///
    /// Reads JSON Lines on stdin or FILE (`{"id", "destination"?, "settings", "subscriptions",
    /// "event", "webhook_response"?}`) and writes one JSON line per input line on stdout, in
    /// order: `{"id", "results": [{"matched", "outcome", "request", "error"}]}`, one result per
    /// subscription, or `{"id", "error"}` for a line that cannot be read. Each distinct
    /// configuration is compiled once.
    ///
    /// With --workspace FILE, each input line is a plain Segment event instead, and each output
    /// line says what every destination and mapping of the workspace would do with it:
    /// `{"line", "message_id", "destinations": [{"id", "status", "mappings": [{"id", "matched",
    /// "outcome", "request", "error"}]}]}`. A destination's `status` is `routed`, `disabled`,
    /// `not_connected` (--source) or `filtered_by_integrations`; a mapping's `outcome` is
    /// `ready` (its `request` is what would be sent, the URL masked after the host),
    /// `not_subscribed`, `disabled`, `mapping_error`, `schema_error`, `payload_error` or
    /// `fetch_error` (`error` says why). A line that is not a JSON object gives `{"line",
    /// "error"}`. Events are routed as given: nothing is added to them.
    Eval(eval::EvalArgs),
    /// Audiences and computed traits: create (after a preview), list with sizes, connect to
    /// destinations; `eval` computes definitions over events locally.
    Audiences(audiences::AudiencesArgs),
    /// Delete and suppress a person (regulations, as Segment's): create, list the audit log,
    /// show one.
    Regulations(commands::regulations::RegulationsArgs),
    /// Show a profile by any of its identifiers.
    Profiles(Client<commands::audiences::ProfilesArgs>),
    /// Run the server: the Segment Tracking API, durable storage and routing.
    ///
    /// Works with no flag at all (data in ./junction-data, Tracking API on 127.0.0.1:8080, the
    /// sample workspace on first start); see junction.toml for every setting.
    Serve(Box<settings::ServeArgs>),
    /// Show the whole story of an event: routing, jobs, every transition and attempt.
    Lookup(Client<commands::lookup::LookupArgs>),
    /// List the dead letter: discarded and expired jobs, filtered.
    DeadLetter(Client<commands::dead_letter::ListArgs>),
    /// Replay dead-letter jobs, as they were or re-mapped through the mappings as they are now.
    Replay(Client<commands::dead_letter::ReplayArgs>),
    /// Check a destination's settings with the destination type's authentication test.
    TestAuth(Client<commands::test_auth::TestAuthArgs>),
    /// Send sample or given events to a Tracking API, to try Junction out.
    Send(commands::send::SendArgs),
    /// Manage sources and their write keys.
    Sources(Client<commands::sources::SourcesArgs>),
    /// Manage destinations, their settings and connected sources; browse the catalog.
    Destinations(Client<commands::destinations::DestinationsArgs>),
    /// Manage a destination's mappings.
    Mappings(Client<commands::mappings::MappingsArgs>),
    /// Send an event through every enabled mapping of a destination, for real, and show each
    /// mapping's result.
    TestEvent(Client<commands::test_event::TestEventArgs>),
    /// Show a destination's delivery overview over a window.
    Overview(Client<commands::overview::OverviewArgs>),
    /// Show what the sandbox webhook received: the deliveries of destinations pointed at it.
    Sandbox(Client<commands::sandbox::SandboxArgs>),
    /// Follow the events a source accepts, with their routing (Ctrl-C ends it).
    Tail(Client<commands::tail::TailArgs>),
    /// Make the running workspace match a workspace file: print the plan, then apply it.
    Apply(Client<commands::apply::ApplyArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Eval(args) => eval::run_command(args),
        Command::Audiences(args) => match &args.command {
            audiences::AudiencesCommand::Eval => audiences::run_eval(),
            audiences::AudiencesCommand::Admin(command) => {
                block_on(commands::audiences::run(command))
            }
        },
        Command::Profiles(Client { admin, args }) => {
            block_on(commands::audiences::run_profiles(admin, args))
        }
        Command::Regulations(args) => block_on(commands::regulations::run(args)),
        Command::Serve(args) => serve::run(args),
        Command::Lookup(Client { admin, args }) => block_on(commands::lookup::run(admin, args)),
        Command::DeadLetter(Client { admin, args }) => {
            block_on(commands::dead_letter::list(admin, args))
        }
        Command::Replay(Client { admin, args }) => {
            block_on(commands::dead_letter::replay(admin, args))
        }
        Command::TestAuth(Client { admin, args }) => {
            block_on(commands::test_auth::run(admin, args))
        }
        Command::Send(args) => block_on(commands::send::run(args)),
        Command::Sources(Client { admin, args }) => block_on(commands::sources::run(admin, args)),
        Command::Destinations(Client { admin, args }) => {
            block_on(commands::destinations::run(admin, args))
        }
        Command::Mappings(Client { admin, args }) => block_on(commands::mappings::run(admin, args)),
        Command::TestEvent(Client { admin, args }) => {
            block_on(commands::test_event::run(admin, args))
        }
        Command::Overview(Client { admin, args }) => block_on(commands::overview::run(admin, args)),
        Command::Sandbox(Client { admin, args }) => block_on(commands::sandbox::run(admin, args)),
        Command::Tail(Client { admin, args }) => block_on(commands::tail::run(admin, args)),
        Command::Apply(Client { admin, args }) => block_on(commands::apply::run(admin, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("junction: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an admin subcommand on a small runtime of its own.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| anyhow::anyhow!("cannot start the async runtime: {err}"))?;
    runtime.block_on(command)
}
