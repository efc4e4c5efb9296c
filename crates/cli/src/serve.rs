//! `junction serve`: opens the store, loads the workspace (from `--workspace`, else the stored
//! one, else the built-in sample), serves the Tracking API and the admin API, runs the delivery
//! engine and retention, and shuts down gracefully on SIGTERM or SIGINT: stop accepting, answer
//! the requests in flight, let deliveries in flight finish and record them, close the store.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use junction_delivery::{
    Backoff, ClientOptions, Engine, EngineOptions, LaneLimits, LanePolicy, PolicySource,
    run_retention,
};
use junction_server::{AdminState, AppState};
use junction_store::{ConfigVersion, Store};
use junction_store_postgres::{PostgresOptions, PostgresStore};
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Format, Snapshot, WorkspaceConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::settings::{LogFormat, ServeArgs, Settings};

/// The sample workspace served when none was given or stored: one source, a ChartMogul
/// destination with both default mappings.
const SAMPLE_WORKSPACE: &str = include_str!("../../../examples/workspace.json");

/// Where the workspace being served came from.
enum Origin {
    File(String),
    Stored,
    Sample,
}

/// Runs `junction serve` to completion (until a shutdown signal).
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    init_logging(settings.log_format);
    // Files are read before the runtime starts: start-up IO never blocks an async worker.
    let workspace_file = match &args.workspace {
        Some(path) => Some(read_workspace(path)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(settings, workspace_file))
}

/// Reads and validates a workspace file as a whole, naming the file in any error.
fn read_workspace(path: &Path) -> anyhow::Result<(String, WorkspaceConfig, Snapshot)> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read workspace file {shown}"))?;
    let extension = path.extension().and_then(|ext| ext.to_str()).unwrap_or("");
    let format = Format::from_extension(extension).with_context(|| {
        format!("cannot tell the format of workspace file {shown}: name it *.json or *.toml")
    })?;
    let config = WorkspaceConfig::parse(&text, format).with_context(|| shown.clone())?;
    let snapshot = Snapshot::compile(config.clone()).with_context(|| shown.clone())?;
    Ok((shown, config, snapshot))
}

async fn serve(
    settings: Settings,
    workspace_file: Option<(String, WorkspaceConfig, Snapshot)>,
) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;

    let (origin, version, config, snapshot) = match load_workspace(&*store, workspace_file).await {
        Ok(loaded) => loaded,
        Err(err) => {
            // Release the file cleanly before reporting.
            let _ = store.close().await;
            return Err(err);
        }
    };

    let listeners = match bind_listeners(&settings).await {
        Ok(listeners) => listeners,
        Err(err) => {
            let _ = store.close().await;
            return Err(err);
        }
    };
    let (tracking_listener, admin_listener) = listeners;
    let address = tracking_listener
        .local_addr()
        .context("cannot read the Tracking API's address")?;
    let admin_address = admin_listener
        .local_addr()
        .context("cannot read the admin API's address")?;

    let state = AppState::new(Arc::clone(&store), snapshot, settings.tracking.clone());
    let engine_options = EngineOptions {
        lease: settings.delivery.lease,
        backoff: Backoff {
            base: settings.delivery.backoff_base,
            cap: settings.delivery.backoff_cap,
        },
        client: ClientOptions {
            timeout: settings.delivery.timeout,
            ..ClientOptions::default()
        },
        metrics: Some(state.metrics().delivery_hook()),
        ..EngineOptions::default()
    };
    let policies = Arc::new(SnapshotPolicies(state.clone()));
    let engine = match Engine::start(Arc::clone(&store), policies, engine_options) {
        Ok(engine) => engine,
        Err(err) => {
            let _ = store.close().await;
            return Err(err).context("cannot start the delivery engine");
        }
    };
    state.metrics().attach_lanes(engine.lane_stats_handle());
    let admin = AdminState::new(
        state.clone(),
        Arc::new(engine.sender().clone()),
        settings.admin_token.clone(),
    );
    print_banner(&settings, address, admin_address, &origin, version, &config);

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let retention = tokio::spawn(run_retention(
        Arc::clone(&store),
        settings.delivery.retention,
        RETENTION_EVERY,
        stopped.clone(),
    ));
    // Nodes of a cluster share the stored workspace: a change saved through any node's admin API
    // must reach this node's snapshot. The embedded store has one node, which swaps its own.
    if settings.store_url.is_some() {
        tokio::spawn(follow_config(
            Arc::clone(&store),
            state.clone(),
            version,
            stopped.clone(),
        ));
    }
    let admin_served = tokio::spawn(junction_server::serve_admin(
        admin_listener,
        admin,
        wait_for(stopped.clone()),
    ));
    let live = state.clone();
    let served = junction_server::serve(tracking_listener, state, wait_for(stopped)).await;
    tracing::info!("stopped accepting; requests in flight answered");
    // Open debugger streams never end by themselves; the admin listener waits for them.
    live.live().close();
    // Attempts in flight get the request timeout to finish; what does not is delivered again
    // after its lease.
    engine
        .shutdown(settings.delivery.timeout + Duration::from_secs(1))
        .await;
    let _ = retention.await;
    let admin_served = admin_served.await;
    tracing::info!("delivery stopped, closing the store");
    let closed = store.close().await;
    served.context("the Tracking API failed")?;
    if let Ok(Err(err)) = admin_served {
        tracing::error!(error = %err, "the admin API failed");
    }
    closed.context("cannot close the store cleanly")?;
    tracing::info!("stopped");
    Ok(())
}

/// The embedded SQLite store under the data directory, or the PostgreSQL database of
/// `[store] url` (clustered mode).
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &settings.store_url {
        let options = PostgresOptions {
            store: settings.store.clone(),
            ..PostgresOptions::default()
        };
        // The error names the database with its password removed; the URL itself never is shown.
        let store = PostgresStore::open(url, options)
            .await
            .context("cannot open the PostgreSQL store ([store] url)")?;
        return Ok(Arc::new(store));
    }
    let database = settings.database_path();
    let options = SqliteOptions {
        store: settings.store.clone(),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&database, options)
        .await
        .with_context(|| format!("cannot open the store at {}", database.display()))?;
    Ok(Arc::new(store))
}

/// How often a cluster node looks for a workspace saved by another node: well within the second
/// a change may take to reach every node.
const CONFIG_POLL: Duration = Duration::from_millis(250);

/// Puts in force every workspace version saved after `seen` (by any node), until `stopped`. A
/// version that no longer compiles (saved by a newer build, say) is reported and skipped: the
/// snapshot in force stays.
async fn follow_config(
    store: Arc<dyn Store>,
    state: AppState,
    mut seen: ConfigVersion,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(CONFIG_POLL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let stored = match store.load_config().await {
            Ok(Some(stored)) if stored.version > seen => stored,
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the stored workspace");
                continue;
            }
        };
        seen = stored.version;
        let compiled = WorkspaceConfig::from_document(stored.document)
            .map_err(anyhow::Error::from)
            .and_then(|config| Snapshot::compile(config).map_err(anyhow::Error::from));
        match compiled {
            Ok(snapshot) => {
                state.replace_snapshot(snapshot);
                tracing::info!(version = %seen, "workspace changed by another node: in force");
            }
            Err(err) => tracing::error!(
                version = %seen,
                error = %format!("{err:#}"),
                "a stored workspace version does not compile; keeping the one in force"
            ),
        }
    }
}

/// How often retention looks for old events.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Completes once `stopped` turns true (or its sender is gone).
async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The Tracking API's and the admin API's listeners. Without an admin token the admin API only
/// listens on loopback, whatever address was configured.
async fn bind_listeners(settings: &Settings) -> anyhow::Result<(TcpListener, TcpListener)> {
    let tracking = TcpListener::bind(settings.tracking_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the Tracking API",
                settings.tracking_addr
            )
        })?;
    let mut admin_addr = settings.admin_addr;
    if settings.admin_token.is_none() && !admin_addr.ip().is_loopback() {
        tracing::warn!(
            configured = %admin_addr,
            "no admin token is set: the admin API listens on loopback only"
        );
        admin_addr.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    let admin = TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on {admin_addr} for the admin API"))?;
    Ok((tracking, admin))
}

/// Each destination's delivery settings, read from the snapshot in force.
struct SnapshotPolicies(AppState);

impl PolicySource for SnapshotPolicies {
    fn policy(&self, destination_id: &str) -> LanePolicy {
        let snapshot = self.0.snapshot();
        let Some(destination) = snapshot.destination(destination_id) else {
            return LanePolicy::default();
        };
        let delivery = destination.delivery();
        LanePolicy {
            limits: LaneLimits {
                max_concurrency: delivery.max_concurrency,
                rate_limit: delivery.rate_limit,
            },
            retry_window: Duration::from_secs(delivery.retry_window_secs),
        }
    }
}

/// The workspace to serve: the file's (stored unless it is what is stored already), else the
/// stored one, else the sample (which is then stored, so that the database always holds what
/// runs).
async fn load_workspace(
    store: &dyn Store,
    file: Option<(String, WorkspaceConfig, Snapshot)>,
) -> anyhow::Result<(Origin, ConfigVersion, WorkspaceConfig, Snapshot)> {
    let stored = store
        .load_config()
        .await
        .context("cannot read the stored workspace")?;
    if let Some((path, config, snapshot)) = file {
        let document = config.to_document();
        let version = match stored {
            Some(stored) if stored.document == document => stored.version,
            _ => store
                .save_config(document)
                .await
                .context("cannot store the workspace")?,
        };
        return Ok((Origin::File(path), version, config, snapshot));
    }
    if let Some(stored) = stored {
        let config = WorkspaceConfig::from_document(stored.document)
            .context("the stored workspace cannot be read")?;
        let snapshot = Snapshot::compile(config.clone()).context(
            "the stored workspace is no longer valid; give a corrected one with --workspace",
        )?;
        return Ok((Origin::Stored, stored.version, config, snapshot));
    }
    let config = WorkspaceConfig::from_json(SAMPLE_WORKSPACE).context("the sample workspace")?;
    let snapshot = Snapshot::compile(config.clone()).context("the sample workspace")?;
    let version = store
        .save_config(config.to_document())
        .await
        .context("cannot store the workspace")?;
    Ok((Origin::Sample, version, config, snapshot))
}

/// Tells the operator, on stdout, where to send events. Write keys are shown in full only for
/// the sample workspace, whose key is public anyway; others are masked.
fn print_banner(
    settings: &Settings,
    address: std::net::SocketAddr,
    admin_address: std::net::SocketAddr,
    origin: &Origin,
    version: ConfigVersion,
    config: &WorkspaceConfig,
) {
    let url = format!("http://{address}");
    let show_keys = matches!(origin, Origin::Sample);
    let origin = match origin {
        Origin::File(path) => format!("{path} (stored as version {version})"),
        Origin::Stored => format!("stored, version {version}"),
        Origin::Sample => format!("built-in sample (examples/workspace.json), version {version}"),
    };
    println!("Junction is ready.");
    println!("  Tracking API: {url}   (POST /v1/batch, /v1/identify, /v1/track, /v1/group, ...)");
    let admin_auth = if settings.admin_token.is_some() {
        "bearer token required"
    } else {
        "no token set: loopback only"
    };
    println!("  Admin API:    http://{admin_address}/api/v1   ({admin_auth})");
    match &settings.store_url {
        Some(_) => println!("  Database:     PostgreSQL ([store] url)"),
        None => println!("  Database:     {}", settings.database_path().display()),
    }
    println!("  Workspace:    {origin}");
    for source in &config.sources {
        let keys: Vec<String> = source
            .write_keys
            .iter()
            .map(|key| if show_keys { key.clone() } else { mask(key) })
            .collect();
        println!(
            "  Source \"{}\" ({}): write key {}",
            source.name,
            source.id,
            keys.join(", ")
        );
    }
    if show_keys && let Some(key) = config.sources.first().and_then(|s| s.write_keys.first()) {
        println!("Send an event:");
        println!(
            "  curl -u '{key}:' {url}/v1/identify -H 'content-type: application/json' \\\n    \
             -d '{{\"userId\": \"user-1\", \"traits\": {{\"email\": \"jane@example.com\"}}}}'"
        );
    }
}

/// The first four characters of a secret, then an ellipsis.
fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}

/// Logs go to stderr, as readable lines or JSON objects; the filter comes from `JUNCTION_LOG`
/// (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JUNCTION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // Colours only for a person at a terminal, never in log files.
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_workspace_compiles() {
        let config = WorkspaceConfig::from_json(SAMPLE_WORKSPACE).unwrap();
        let snapshot = Snapshot::compile(config).unwrap();
        assert_eq!(snapshot.sources().len(), 1);
        let mappings = snapshot.destinations()[0].mappings();
        assert_eq!(mappings.len(), 2);
    }

    #[test]
    fn masks_keep_four_characters() {
        assert_eq!(mask("wk_1234567"), "wk_1…");
        assert_eq!(mask("ab"), "ab…");
    }
}
