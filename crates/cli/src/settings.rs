//! `junction serve`'s settings: built-in defaults, overridden by the config file
//! (`--config junction.toml`), overridden by environment variables and flags (clap reads both).
//! Every key is documented, with its default, in the repository's `junction.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use junction_delivery::AllowEntry;
use junction_event::Limits;
use junction_server::{ListenerLimits, TrackingConfig};
use junction_store::StoreOptions;
use serde::Deserialize;

/// Flags of `junction serve`. Each setting flag can also be given by its environment variable;
/// both override the config file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML config file (see junction.toml for every key and its default).
    #[arg(long, env = "JUNCTION_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A declarative workspace (JSON or TOML) to validate as a whole, store and serve; without
    /// it, the stored workspace is served (the sample one on first start).
    #[arg(long, env = "JUNCTION_WORKSPACE", value_name = "FILE")]
    pub workspace: Option<PathBuf>,
    /// Directory of the database (one SQLite file, junction.db) [default: ./junction-data].
    #[arg(long, env = "JUNCTION_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the Tracking API listener [default: 127.0.0.1:8080].
    #[arg(long, env = "JUNCTION_TRACKING_ADDR", value_name = "ADDR")]
    pub tracking_addr: Option<SocketAddr>,
    /// Address of the admin API listener; loopback only without a token [default: 127.0.0.1:8081].
    #[arg(long, env = "JUNCTION_ADMIN_ADDR", value_name = "ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Bearer token the admin API requires.
    #[arg(
        long,
        env = "JUNCTION_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// Largest event in bytes, decompressed [default: 32768].
    #[arg(long, env = "JUNCTION_MAX_EVENT_BYTES", value_name = "BYTES")]
    pub max_event_bytes: Option<usize>,
    /// Largest request body in bytes, decompressed [default: 512000].
    #[arg(long, env = "JUNCTION_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Most events in one batch [default: 2500].
    #[arg(long, env = "JUNCTION_MAX_BATCH_EVENTS", value_name = "COUNT")]
    pub max_batch_events: Option<usize>,
    /// Seconds a messageId stays a duplicate for its source; 0 turns dedupe off [default: 86400].
    #[arg(long, env = "JUNCTION_DEDUPE_WINDOW_SECS", value_name = "SECONDS")]
    pub dedupe_window_secs: Option<u64>,
    /// Events that may wait for the store's writer before requests get 503 [default: 25000].
    #[arg(long, env = "JUNCTION_STORE_QUEUE_CAPACITY", value_name = "EVENTS")]
    pub store_queue_capacity: Option<usize>,
    /// A PostgreSQL URL (`postgres://user@host/db`) to store in instead of the embedded SQLite
    /// file: the clustered mode's shared database.
    #[arg(
        long,
        env = "JUNCTION_STORE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store_url: Option<String>,
    /// Log format on stderr: human (default) or json (one object per line).
    #[arg(long, env = "JUNCTION_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Hosts, addresses or networks webhooks may reach over http or at private addresses
    /// (comma-separated; replaces [delivery] allow) [default: none, but the sandbox].
    #[arg(
        long,
        env = "JUNCTION_DELIVERY_ALLOW",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub delivery_allow: Option<Vec<String>>,
    /// Take stored events into profiles, audiences and computed traits (true or false; replaces
    /// [profiles] enabled) [default: true]. Off, the ingest path does no profile work.
    #[arg(long, env = "JUNCTION_PROFILES", value_name = "BOOL")]
    pub profiles: Option<bool>,
}

/// How logs are written on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event, coloured at a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The config file: every key optional, unknown keys refused (a typo must not go unnoticed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    tracking: TrackingSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    admin: AdminSection,
    #[serde(default)]
    delivery: DeliverySection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    profiles: ProfilesSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesSection {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliverySection {
    allow: Option<Vec<String>>,
    timeout_secs: Option<u64>,
    lease_secs: Option<u64>,
    retention_days: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_cap_secs: Option<u64>,
}

/// How `junction serve` delivers and how long it keeps what it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// One webhook request at most (connect, send, read the answer's start).
    pub timeout: Duration,
    /// How long a claimed job stays leased (see the engine).
    pub lease: Duration,
    /// How long events and everything about them are kept.
    pub retention: Duration,
    /// The first retry delay's ceiling (doubling per attempt, with full jitter).
    pub backoff_base: Duration,
    /// The largest retry delay.
    pub backoff_cap: Duration,
    /// Hosts and networks webhooks may reach over http or at private addresses.
    pub allow: Vec<AllowEntry>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(5 * 60),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(10 * 60),
            allow: Vec::new(),
        }
    }
}

/// A listener's connection limits (`[tracking.connections]`, `[admin.connections]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionSection {
    max: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    min_body_rate: Option<u64>,
}

impl ConnectionSection {
    fn resolve(&self, name: &str, defaults: ListenerLimits) -> anyhow::Result<ListenerLimits> {
        let limits = ListenerLimits {
            max_connections: self.max.unwrap_or(defaults.max_connections),
            header_timeout: self
                .header_timeout_secs
                .map_or(defaults.header_timeout, Duration::from_secs),
            body_timeout: self
                .body_timeout_secs
                .map_or(defaults.body_timeout, Duration::from_secs),
            min_body_rate: self.min_body_rate.unwrap_or(defaults.min_body_rate),
        };
        if limits.max_connections == 0
            || limits.header_timeout.is_zero()
            || limits.body_timeout.is_zero()
        {
            anyhow::bail!(
                "{name}.connections: max, header_timeout_secs and body_timeout_secs must be \
                 positive"
            );
        }
        Ok(limits)
    }
}

/// The admin listener's defaults: fewer connections than the Tracking API's (its clients are
/// operators, the CLI and the app), so that its share of the file descriptors stays small.
fn admin_listener_defaults() -> ListenerLimits {
    ListenerLimits {
        max_connections: 256,
        ..ListenerLimits::default()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackingSection {
    listen: Option<SocketAddr>,
    #[serde(default)]
    connections: ConnectionSection,
    max_event_bytes: Option<usize>,
    max_request_bytes: Option<usize>,
    max_batch_events: Option<usize>,
    retry_after_secs: Option<u64>,
    rejection_log_size: Option<usize>,
    debugger_recent: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<String>,
    dedupe_window_secs: Option<u64>,
    queue_capacity: Option<usize>,
    max_group_events: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    listen: Option<SocketAddr>,
    token: Option<String>,
    #[serde(default)]
    connections: ConnectionSection,
}

/// Everything `junction serve` runs with, resolved.
#[derive(Debug)]
pub struct Settings {
    /// Directory of the database.
    pub data_dir: PathBuf,
    /// Tracking API listener.
    pub tracking_addr: SocketAddr,
    /// Admin API listener.
    pub admin_addr: SocketAddr,
    /// The admin API's bearer token; never printed or logged.
    pub admin_token: Option<String>,
    /// The Tracking API listener's connection limits.
    pub tracking_listener: ListenerLimits,
    /// The admin listener's connection limits.
    pub admin_listener: ListenerLimits,
    /// Delivery and retention settings.
    pub delivery: DeliverySettings,
    /// Tracking API settings.
    pub tracking: TrackingConfig,
    /// Store settings.
    pub store: StoreOptions,
    /// The PostgreSQL database to store in, if not the embedded SQLite file. May carry a
    /// password: never printed or logged.
    pub store_url: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
}

impl Settings {
    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("junction.db")
    }

    /// Resolves the settings: defaults < config file < environment and flags.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let tracking_defaults = TrackingConfig::default();
        let store_defaults = StoreOptions::default();
        let limit_defaults = tracking_defaults.limits;

        let limits = Limits {
            max_event_bytes: args
                .max_event_bytes
                .or(file.tracking.max_event_bytes)
                .unwrap_or(limit_defaults.max_event_bytes),
            max_request_bytes: args
                .max_request_bytes
                .or(file.tracking.max_request_bytes)
                .unwrap_or(limit_defaults.max_request_bytes),
            max_batch_events: args
                .max_batch_events
                .or(file.tracking.max_batch_events)
                .unwrap_or(limit_defaults.max_batch_events),
        };
        if limits.max_event_bytes == 0 || limits.max_request_bytes == 0 {
            anyhow::bail!("max_event_bytes and max_request_bytes must be positive");
        }
        let tracking = TrackingConfig {
            limits,
            retry_after: file
                .tracking
                .retry_after_secs
                .map_or(tracking_defaults.retry_after, Duration::from_secs),
            rejection_log_capacity: file
                .tracking
                .rejection_log_size
                .unwrap_or(tracking_defaults.rejection_log_capacity),
            profiles: args.profiles.or(file.profiles.enabled).unwrap_or(true),
            debugger_recent: file
                .tracking
                .debugger_recent
                .unwrap_or(tracking_defaults.debugger_recent),
        };
        let store = StoreOptions {
            dedupe_window: args
                .dedupe_window_secs
                .or(file.store.dedupe_window_secs)
                .map_or(store_defaults.dedupe_window, Duration::from_secs),
            queue_capacity: args
                .store_queue_capacity
                .or(file.store.queue_capacity)
                .unwrap_or(store_defaults.queue_capacity),
            max_group_events: file
                .store
                .max_group_events
                .unwrap_or(store_defaults.max_group_events),
        };
        Ok(Self {
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./junction-data")),
            tracking_addr: args
                .tracking_addr
                .or(file.tracking.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_addr: args
                .admin_addr
                .or(file.admin.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081))),
            admin_token: admin_token(args.admin_token.clone().or(file.admin.token))?,
            tracking_listener: file
                .tracking
                .connections
                .resolve("tracking", ListenerLimits::default())?,
            admin_listener: file
                .admin
                .connections
                .resolve("admin", admin_listener_defaults())?,
            tracking,
            store,
            store_url: args
                .store_url
                .clone()
                .or(file.store.url)
                .filter(|url| !url.is_empty()),
            delivery: resolve_delivery(&file.delivery, args.delivery_allow.as_deref())?,
            log_format: args.log_format.or(file.log.format).unwrap_or_default(),
        })
    }
}

/// The shortest admin token accepted: a token guards every change of the workspace and every
/// webhook secret, so it must not be guessable in a few tries.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The admin token, if one is set (empty means none), refused when shorter than
/// [`MIN_ADMIN_TOKEN_CHARS`].
fn admin_token(token: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Ok(None);
    };
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        anyhow::bail!(
            "the admin token (admin.token, JUNCTION_ADMIN_TOKEN) has {chars} characters; use at \
             least {MIN_ADMIN_TOKEN_CHARS} (e.g. openssl rand -hex 24)"
        );
    }
    Ok(Some(token))
}

fn resolve_delivery(
    section: &DeliverySection,
    allow: Option<&[String]>,
) -> anyhow::Result<DeliverySettings> {
    let defaults = DeliverySettings::default();
    let allow = allow
        .or(section.allow.as_deref())
        .unwrap_or_default()
        .iter()
        // `JUNCTION_DELIVERY_ALLOW=` (empty) means none.
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| AllowEntry::parse(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = DeliverySettings {
        timeout: section
            .timeout_secs
            .map_or(defaults.timeout, Duration::from_secs),
        lease: section
            .lease_secs
            .map_or(defaults.lease, Duration::from_secs),
        retention: section.retention_days.map_or(defaults.retention, |days| {
            Duration::from_secs(days * 86_400)
        }),
        backoff_base: section
            .backoff_base_ms
            .map_or(defaults.backoff_base, Duration::from_millis),
        backoff_cap: section
            .backoff_cap_secs
            .map_or(defaults.backoff_cap, Duration::from_secs),
        allow,
    };
    if settings.timeout.is_zero() || settings.backoff_base.is_zero() {
        anyhow::bail!("delivery.timeout_secs and delivery.backoff_base_ms must be positive");
    }
    if settings.lease <= settings.timeout {
        anyhow::bail!(
            "delivery.lease_secs ({} s) must exceed delivery.timeout_secs ({} s): a lease that \
             ends during its request would deliver the job twice",
            settings.lease.as_secs(),
            settings.timeout.as_secs()
        );
    }
    Ok(settings)
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_holds_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../junction.toml");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let from_file = Settings::resolve(&args).unwrap();
        let defaults = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
        assert_eq!(defaults.tracking_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.store.dedupe_window, Duration::from_secs(86_400));
    }

    #[test]
    fn admin_tokens_are_long_enough_or_refused() {
        let args = |token: &str| ServeArgs {
            admin_token: Some(token.to_owned()),
            ..ServeArgs::default()
        };
        let err = Settings::resolve(&args("short")).unwrap_err();
        assert!(
            format!("{err:#}").contains("has 5 characters; use at least 16"),
            "{err:#}"
        );
        assert!(Settings::resolve(&args("")).unwrap().admin_token.is_none());
        let ok = Settings::resolve(&args("0123456789abcdef")).unwrap();
        assert_eq!(ok.admin_token.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn flags_and_environment_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junction.toml");
        std::fs::write(
            &path,
            "data_dir = \"/from/file\"\n[tracking]\nlisten = \"127.0.0.1:9000\"\n\
             max_batch_events = 10\n[store]\nqueue_capacity = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            tracking_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            max_batch_events: Some(20),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(&args).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/from/file"));
        assert_eq!(settings.tracking_addr.port(), 0);
        assert_eq!(settings.tracking.limits.max_batch_events, 20);
        assert_eq!(settings.store.queue_capacity, 5);

        std::fs::write(&path, "[tracking]\nlisten_addr = \"127.0.0.1:9000\"\n").unwrap();
        let err = Settings::resolve(&args).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `listen_addr`"),
            "{err:#}"
        );
    }
}
