//! `junction serve`: opens the store, loads the workspace (from `--workspace`, else the stored
//! one, else the built-in sample), serves the Tracking API and the admin API, runs the delivery
//! engine and retention, and shuts down gracefully on SIGTERM or SIGINT: stop accepting, answer
//! the requests in flight, let deliveries in flight finish and record them, close the store.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use junction_delivery::{
    Backoff, ClientOptions, Engine, EngineOptions, LaneLimits, LanePolicy, PolicySource,
    WebhookPolicy, run_retention,
};
use junction_profiles::{ProfileWorker, Snapshots, Suppressions, SystemClock, WorkerSettings};
use junction_server::{AdminState, AppState, ListenerLimits};
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
pub(crate) fn read_workspace(path: &Path) -> anyhow::Result<(String, WorkspaceConfig, Snapshot)> {
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

    // Listening first: the sample workspace's sandbox URL names the admin listener's address.
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

    let loaded = load_workspace(&*store, workspace_file, admin_address).await;
    let (origin, version, config, snapshot) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            // Release the file cleanly before reporting.
            let _ = store.close().await;
            return Err(err);
        }
    };

    // Webhooks go to public https addresses, hosts the configuration allows, and this process's
    // sandbox; never to its own listeners.
    let policy = Arc::new(WebhookPolicy::new(
        settings.delivery.allow.clone(),
        vec![address, admin_address],
        Some(admin_address),
    ));
    if let Err(err) = check_webhook_urls(&policy, &origin, &snapshot) {
        let _ = store.close().await;
        return Err(err);
    }
    let state = AppState::new(Arc::clone(&store), snapshot, settings.tracking.clone());
    // Regulations: the Tracking API drops events of suppressed people, the worker keeps the
    // list current.
    let suppressions = match Suppressions::load(&*store).await {
        Ok(suppressions) => Arc::new(suppressions),
        Err(err) => {
            let _ = store.close().await;
            return Err(err).context("cannot read the suppression list");
        }
    };
    state.attach_suppressions(Arc::clone(&suppressions));
    let engine_options = EngineOptions {
        lease: settings.delivery.lease,
        backoff: Backoff {
            base: settings.delivery.backoff_base,
            cap: settings.delivery.backoff_cap,
        },
        client: ClientOptions {
            timeout: settings.delivery.timeout,
            // Webhooks go to public https addresses, hosts the configuration allows, and this
            // process's sandbox; never to its own listeners.
            policy: Arc::clone(&policy),
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
    // One profile worker per process; in a cluster the store's lease lets one lead at a time.
    // It runs even with `[profiles] enabled = false` (no event is then taken in): it also
    // carries out privacy regulations.
    let snapshots_of = state.clone();
    let snapshots: Snapshots = Arc::new(move || snapshots_of.snapshot());
    let profile_worker = ProfileWorker::new(
        Arc::clone(&store),
        snapshots,
        Arc::new(SystemClock),
        format!(
            "{}-{}",
            std::process::id(),
            junction_event::random_message_id()
        ),
        WorkerSettings::default(),
    )
    .with_suppressions(suppressions);
    let admin = admin.with_profiles(profile_worker.handle());
    print_banner(&settings, address, admin_address, &origin, version, &config);

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let profiles = tokio::spawn(profile_worker.run(wait_for(stopped.clone())));
    // Another node's worker may carry regulations out: its suppressions reach this node here.
    tokio::spawn(junction_server::follow_regulations(
        admin.clone(),
        REGULATIONS_EVERY,
        wait_for(stopped.clone()),
    ));
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
    let (tracking_limits, admin_limits) = connection_caps(&settings);
    let admin_served = tokio::spawn(junction_server::serve_admin(
        admin_listener,
        admin,
        admin_limits,
        wait_for(stopped.clone()),
    ));
    let live = state.clone();
    let served =
        junction_server::serve(tracking_listener, state, tracking_limits, wait_for(stopped)).await;
    tracing::info!("stopped accepting; requests in flight answered");
    // Open debugger streams never end by themselves; the admin listener waits for them.
    live.live().close();
    // Attempts in flight get the request timeout to finish; what does not is delivered again
    // after its lease.
    engine
        .shutdown(settings.delivery.timeout + Duration::from_secs(1))
        .await;
    let _ = retention.await;
    let _ = profiles.await;
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

/// Checks the workspace's webhook URLs against the delivery policy: a workspace file given at
/// start is refused for any URL the policy refuses (as the admin API refuses it), a stored one is
/// served with a warning per such URL (its deliveries are refused with the reason until the URL
/// or the server's `[delivery] allow` is corrected).
fn check_webhook_urls(
    policy: &WebhookPolicy,
    origin: &Origin,
    snapshot: &Snapshot,
) -> anyhow::Result<()> {
    let mut refused = Vec::new();
    for destination in snapshot.destinations() {
        for (key, url) in destination.settings().url_settings() {
            if let Err(blocked) = policy.check_url(url) {
                refused.push(format!(
                    "destination \"{}\" ({key}): {blocked}",
                    destination.id()
                ));
            }
        }
    }
    match origin {
        Origin::File(path) if !refused.is_empty() => {
            anyhow::bail!("{path}: {}", refused.join("; "))
        }
        _ => {
            for problem in refused {
                tracing::warn!("webhook URL refused by the delivery policy: {problem}");
            }
            Ok(())
        }
    }
}

/// The listeners' limits, with their connection caps fitted into the open-file limit (raised
/// to its hard limit first): each connection is a file, so the caps together must leave room for
/// the store's files, database connections and webhook connections, and the admin listener
/// keeps its own room, so that a flood on the Tracking API never makes it unreachable.
fn connection_caps(settings: &Settings) -> (ListenerLimits, ListenerLimits) {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => files,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the open-file limit");
            return (settings.tracking_listener, settings.admin_listener);
        }
    };
    let (tracking, admin) = fit_caps(
        files,
        settings.tracking_listener.max_connections,
        settings.admin_listener.max_connections,
    );
    if tracking < settings.tracking_listener.max_connections
        || admin < settings.admin_listener.max_connections
    {
        tracing::warn!(
            open_file_limit = files,
            tracking_max_connections = tracking,
            admin_max_connections = admin,
            "connection caps lowered to fit the open-file limit (raise it with ulimit -n)"
        );
    }
    (
        ListenerLimits {
            max_connections: tracking,
            ..settings.tracking_listener
        },
        ListenerLimits {
            max_connections: admin,
            ..settings.admin_listener
        },
    )
}

/// The connection caps that fit `files` open files: a quarter of them (at most 512) kept for
/// everything that is not a client connection, the admin listener's cap within a quarter of the
/// rest, the Tracking API's within what remains.
fn fit_caps(files: u64, tracking: usize, admin: usize) -> (usize, usize) {
    let files = usize::try_from(files).unwrap_or(usize::MAX);
    let reserved = (files / 4).min(512);
    let available = files.saturating_sub(reserved);
    let admin = admin.min((available / 4).max(1));
    let tracking = tracking.min(available.saturating_sub(admin).max(1));
    (tracking, admin)
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

/// How often a node reloads the suppression list and drops deleted people's events from its
/// source debugger: a regulation carried out by another node's worker takes effect here within
/// this time (the leading worker's own node sees it at once).
const REGULATIONS_EVERY: Duration = Duration::from_secs(5);

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

    fn setting_url(&self, destination_id: &str, key: &str) -> Result<String, String> {
        self.0
            .snapshot()
            .setting_url(destination_id, key)
            .map(str::to_owned)
    }
}

/// The workspace to serve: the file's (stored unless it is what is stored already), else the
/// stored one, else the sample (which is then stored, so that the database always holds what
/// runs), its destination pointed at the sandbox webhook of the admin listener at
/// `admin_address`.
async fn load_workspace(
    store: &dyn Store,
    file: Option<(String, WorkspaceConfig, Snapshot)>,
    admin_address: SocketAddr,
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
    let config = sample_workspace(admin_address)?;
    let snapshot = Snapshot::compile(config.clone()).context("the sample workspace")?;
    let version = store
        .save_config(config.to_document())
        .await
        .context("cannot store the workspace")?;
    Ok((Origin::Sample, version, config, snapshot))
}

/// The token of the sample workspace's sandbox URL (`examples/workspace.json`).
const SAMPLE_SANDBOX_TOKEN: &str = "sample-workspace";

/// The sample workspace, its destinations delivering to the sandbox webhook of the admin
/// listener at `admin_address` (the file names the default address).
fn sample_workspace(admin_address: SocketAddr) -> anyhow::Result<WorkspaceConfig> {
    let mut config =
        WorkspaceConfig::from_json(SAMPLE_WORKSPACE).context("the sample workspace")?;
    let sandbox = junction_server::sandbox_url(&admin_address.to_string(), SAMPLE_SANDBOX_TOKEN);
    for destination in &mut config.destinations {
        if let Some(url) = destination.settings.get_mut(WEBHOOK_URL_SETTING) {
            *url = serde_json::Value::String(sandbox.clone());
        }
    }
    Ok(config)
}

/// The ChartMogul destination's webhook URL setting.
const WEBHOOK_URL_SETTING: &str = "chartmogul_webhook_url";

/// Tells the operator, on stdout, where to send events and what to do next: send the printed
/// curl, see it delivered (the exact commands), and, while a destination delivers to the sandbox,
/// how to point it at ChartMogul. Write keys are shown in full only while they are the sample
/// workspace's, which is public anyway; others are masked.
fn print_banner(
    settings: &Settings,
    address: SocketAddr,
    admin_address: SocketAddr,
    origin: &Origin,
    version: ConfigVersion,
    config: &WorkspaceConfig,
) {
    print!(
        "{}",
        banner(&Banner {
            settings,
            address,
            admin_address,
            origin,
            version,
            config,
            junction: &junction_command(),
        })
    );
}

/// What the banner is made of.
struct Banner<'a> {
    settings: &'a Settings,
    address: SocketAddr,
    admin_address: SocketAddr,
    origin: &'a Origin,
    version: ConfigVersion,
    config: &'a WorkspaceConfig,
    /// How to run this binary from the operator's shell (`junction`, or its path).
    junction: &'a str,
}

/// The sample workspace's write key: public, so it is shown whole.
const SAMPLE_WRITE_KEY: &str = "junction-sample-write-key";

fn banner(b: &Banner<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let url = format!("http://{}", b.address);
    let origin = match b.origin {
        Origin::File(path) => format!("{path} (stored as version {})", b.version),
        Origin::Stored => format!("stored, version {}", b.version),
        Origin::Sample => format!(
            "built-in sample (examples/workspace.json), version {}",
            b.version
        ),
    };
    let _ = writeln!(out, "Junction is ready.");
    let _ = writeln!(
        out,
        "  Tracking API: {url}   (POST /v1/batch, /v1/identify, /v1/track, /v1/group, ...)"
    );
    let admin_auth = if b.settings.admin_token.is_some() {
        "bearer token required"
    } else {
        "no token set: loopback only"
    };
    let _ = writeln!(
        out,
        "  Admin API:    http://{}/api/v1   ({admin_auth})",
        b.admin_address
    );
    let _ = writeln!(
        out,
        "  The app:      http://{}/   (in a browser{})",
        b.admin_address,
        if b.settings.admin_token.is_some() {
            ": sign in with the admin token"
        } else {
            ""
        }
    );
    match &b.settings.store_url {
        Some(_) => {
            let _ = writeln!(out, "  Database:     PostgreSQL ([store] url)");
        }
        None => {
            let _ = writeln!(
                out,
                "  Database:     {}",
                b.settings.database_path().display()
            );
        }
    }
    let _ = writeln!(out, "  Workspace:    {origin}");
    for source in &b.config.sources {
        let keys: Vec<String> = source
            .write_keys
            .iter()
            .map(|key| {
                if key == SAMPLE_WRITE_KEY {
                    key.clone()
                } else {
                    mask(key)
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "  Source \"{}\" ({}): write key {}",
            source.name,
            source.id,
            keys.join(", ")
        );
    }
    let mut sandboxed = Vec::new();
    for destination in &b.config.destinations {
        let webhook = destination
            .settings
            .get(WEBHOOK_URL_SETTING)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let state = if destination.enabled {
            ""
        } else {
            ", disabled"
        };
        if junction_server::is_sandbox_url(webhook) {
            let elsewhere = url::Url::parse(webhook)
                .ok()
                .and_then(|parsed| {
                    let host = parsed.host_str()?.trim_matches(['[', ']']).to_owned();
                    let port = parsed.port_or_known_default()?;
                    let here =
                        host == b.admin_address.ip().to_string() && port == b.admin_address.port();
                    (!here).then(|| format!(" (at {host}:{port}, not this admin listener)"))
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  Destination \"{}\" ({}{state}): delivers to Junction's sandbox webhook, not to \
                 ChartMogul{elsewhere}",
                destination.name, destination.id
            );
            sandboxed.push(destination.id.clone());
        } else {
            let _ = writeln!(
                out,
                "  Destination \"{}\" ({}{state}): delivers to {}",
                destination.name,
                destination.id,
                mask_url(webhook)
            );
        }
    }

    // Admin flags go after the subcommand, which is where the CLI takes them.
    let admin_flag = match b.admin_address.to_string().as_str() {
        "127.0.0.1:8081" => String::new(),
        other => format!(" --admin-url http://{other}"),
    };
    let command = |subcommand: &str| format!("{} {subcommand}{admin_flag}", b.junction);
    let Some(source) = b.config.sources.first() else {
        let _ = writeln!(
            out,
            "Next: create a source and a destination (see `{} sources --help`).",
            b.junction
        );
        return out;
    };
    let key = source
        .write_keys
        .iter()
        .find(|key| *key == SAMPLE_WRITE_KEY)
        .map_or("YOUR_WRITE_KEY", String::as_str);
    let _ = writeln!(out, "Next:");
    let _ = writeln!(out, "  1. Send an event to source \"{}\":", source.id);
    let _ = writeln!(
        out,
        "       curl -u '{key}:' {url}/v1/identify -H 'content-type: application/json' \\\n         \
         -d '{{\"userId\": \"user-1\", \"traits\": {{\"email\": \"jane@example.com\", \"name\": \"Jane Doe\"}}}}'"
    );
    if b.settings.admin_token.is_some() {
        let _ = writeln!(
            out,
            "     (the commands below need the admin token: export JUNCTION_ADMIN_TOKEN=…)"
        );
    }
    let destination = b
        .config
        .destinations
        .iter()
        .find(|destination| destination.sources.contains(&source.id));
    match (sandboxed.first(), destination) {
        (Some(_), _) => {
            let _ = writeln!(
                out,
                "  2. See it delivered to the sandbox, and its whole story:"
            );
            let _ = writeln!(out, "       {}", command("sandbox"));
            let _ = writeln!(out, "       {}", command("lookup MESSAGE_ID"));
        }
        (None, Some(destination)) => {
            let _ = writeln!(out, "  2. See it delivered:");
            let _ = writeln!(
                out,
                "       {}",
                command(&format!("overview {}", destination.id))
            );
        }
        (None, None) => {
            let _ = writeln!(
                out,
                "  2. Watch it arrive (no destination is connected yet):"
            );
            let _ = writeln!(
                out,
                "       {}",
                command(&format!("tail {} --recent", source.id))
            );
        }
    }
    for id in &sandboxed {
        let _ = writeln!(
            out,
            "  3. Deliver to ChartMogul instead: paste the webhook URL ChartMogul gives you:"
        );
        let _ = writeln!(
            out,
            "       {}",
            command(&format!(
                "destinations update {id} --webhook-url 'https://…'"
            ))
        );
    }
    out
}

/// How the operator runs this binary: `junction` when that is what their `PATH` finds, else its
/// path (relative to the working directory when inside it, as `target/release/junction`).
fn junction_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "junction".to_owned();
    };
    let exe = exe.canonicalize().unwrap_or(exe);
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("junction")
                .canonicalize()
                .is_ok_and(|found| found == exe)
        })
    });
    if on_path {
        return "junction".to_owned();
    }
    let relative = std::env::current_dir().ok().and_then(|cwd| {
        exe.strip_prefix(cwd.canonicalize().unwrap_or(cwd))
            .ok()
            .map(Path::to_path_buf)
    });
    relative.unwrap_or(exe).display().to_string()
}

/// `scheme://host/…`: what a webhook URL shows of itself (its path carries a secret).
fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match parsed.host_str() {
            Some(host) => {
                let port = parsed
                    .port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default();
                format!("{}://{host}{port}/…", parsed.scheme())
            }
            None => "…".to_owned(),
        },
        Err(_) => "…".to_owned(),
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
    fn the_sample_delivers_to_the_sandbox_of_this_admin_listener() {
        let config = sample_workspace("127.0.0.1:9123".parse().unwrap()).unwrap();
        assert_eq!(
            config.destinations[0].settings[WEBHOOK_URL_SETTING],
            "http://127.0.0.1:9123/sandbox/chartmogul/sample-workspace"
        );
        // The file itself names the default admin address.
        let file = WorkspaceConfig::from_json(SAMPLE_WORKSPACE).unwrap();
        assert_eq!(
            file.destinations[0].settings[WEBHOOK_URL_SETTING],
            "http://127.0.0.1:8081/sandbox/chartmogul/sample-workspace"
        );
    }

    fn banner_of(config: &WorkspaceConfig, admin: &str) -> String {
        let args = crate::settings::ServeArgs::default();
        let settings = Settings::resolve(&args).unwrap();
        banner(&Banner {
            settings: &settings,
            address: "127.0.0.1:8080".parse().unwrap(),
            admin_address: admin.parse().unwrap(),
            origin: &Origin::Stored,
            version: ConfigVersion(3),
            config,
            junction: "target/release/junction",
        })
    }

    #[test]
    fn the_banner_says_what_to_do_next_with_the_sandbox() {
        let config = sample_workspace("127.0.0.1:8081".parse().unwrap()).unwrap();
        let text = banner_of(&config, "127.0.0.1:8081");
        for line in [
            "  Source \"Sample app\" (sample-app): write key junction-sample-write-key\n",
            "  Destination \"ChartMogul\" (chartmogul): delivers to Junction's sandbox webhook, not to ChartMogul\n",
            "       curl -u 'junction-sample-write-key:' http://127.0.0.1:8080/v1/identify -H 'content-type: application/json' \\\n",
            "       target/release/junction sandbox\n",
            "       target/release/junction destinations update chartmogul --webhook-url 'https://…'\n",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        assert!(
            !text.contains("sample-workspace"),
            "the sandbox token is not shown"
        );
    }

    #[test]
    fn the_banner_names_the_admin_url_and_a_stale_sandbox() {
        let config = sample_workspace("127.0.0.1:8081".parse().unwrap()).unwrap();
        let text = banner_of(&config, "127.0.0.1:9999");
        assert!(
            text.contains("not to ChartMogul (at 127.0.0.1:8081, not this admin listener)"),
            "{text}"
        );
        assert!(
            text.contains("target/release/junction sandbox --admin-url http://127.0.0.1:9999\n"),
            "{text}"
        );
    }

    #[test]
    fn the_banner_masks_other_keys_and_urls() {
        let mut config = sample_workspace("127.0.0.1:8081".parse().unwrap()).unwrap();
        config.sources[0].write_keys = vec!["wk_live_0123456789".to_owned()];
        config.destinations[0].settings[WEBHOOK_URL_SETTING] =
            serde_json::json!("https://app.chartmogul.com/api/webhooks/secret-token");
        let text = banner_of(&config, "127.0.0.1:8081");
        assert!(text.contains("write key wk_l…\n"), "{text}");
        assert!(
            text.contains("delivers to https://app.chartmogul.com/…\n"),
            "{text}"
        );
        assert!(text.contains("curl -u 'YOUR_WRITE_KEY:'"), "{text}");
        assert!(
            text.contains("target/release/junction overview chartmogul\n"),
            "{text}"
        );
        assert!(
            !text.contains("secret-token") && !text.contains("0123456789"),
            "{text}"
        );
    }

    #[test]
    fn connection_caps_fit_the_open_file_limit() {
        // Plenty of files: the configured caps stand.
        assert_eq!(fit_caps(1_048_576, 10_000, 256), (10_000, 256));
        // A small limit: room is kept for the store and webhooks, and the admin listener keeps
        // its share, so that the Tracking API alone can never take every file.
        assert_eq!(fit_caps(256, 10_000, 256), (144, 48));
        assert_eq!(fit_caps(1024, 10_000, 256), (576, 192));
        let (tracking, admin) = fit_caps(4, 10_000, 256);
        assert!(tracking >= 1 && admin >= 1);
    }

    #[test]
    fn masks_keep_four_characters() {
        assert_eq!(mask("wk_1234567"), "wk_1…");
        assert_eq!(mask("ab"), "ab…");
    }
}
