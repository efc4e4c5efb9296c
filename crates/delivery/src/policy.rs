//! Where webhook requests may go. A webhook URL is configured by whoever can use the admin API,
//! and Junction sends to it from inside the operator's network: without rules, the URL could aim
//! at the cloud's metadata service, an internal admin port, or Junction's own admin API (server-
//! side request forgery). So by default a request goes only to `https` URLs whose addresses are
//! public; hosts and networks the server's configuration allows (never the API) may also use
//! `http` and private addresses (local webhooks, tests); Junction's own listeners are refused
//! except for the sandbox webhook of its admin listener.
//!
//! The rules are checked on the URL before a request is made ([`WebhookPolicy::check_url`]) and
//! again on every address a host name resolves to, when the connection is made
//! ([`PolicyResolver`]), so that a name that later resolves elsewhere (DNS rebinding) gains
//! nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The sandbox webhook's path prefix on the admin listener (see the server's `admin/sandbox.rs`).
pub const SANDBOX_PATH: &str = "/sandbox/chartmogul/";

/// One entry of the allow list: a host name (exact, case-insensitive), or an address or network
/// (`127.0.0.1`, `10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// A host name, lower-case, without a trailing dot.
    Host(String),
    /// An address or network.
    Net(IpNet),
}

impl AllowEntry {
    /// Reads an entry of `[delivery] allow`.
    pub fn parse(text: &str) -> Result<AllowEntry, PolicyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PolicyError::Empty);
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(AllowEntry::Net(net));
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(AllowEntry::Net(IpNet::from(address)));
        }
        let host = text.trim_end_matches('.').to_ascii_lowercase();
        let valid = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !valid {
            return Err(PolicyError::Invalid(text.to_owned()));
        }
        Ok(AllowEntry::Host(host))
    }
}

/// Why an allow-list entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An empty entry.
    #[error("an empty entry in [delivery] allow")]
    Empty,
    /// Neither a host name, an address nor a network.
    #[error("{0:?} in [delivery] allow is not a host name, an address or a network (a.b.c.d/n)")]
    Invalid(String),
}

/// Why a request may not go where its URL says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

/// The rules of [the module](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    allow: Vec<AllowEntry>,
    /// This process's listeners: requests to them are refused, but for the sandbox path on the
    /// admin listener.
    own: Vec<SocketAddr>,
    /// The admin listener, whose sandbox path is allowed.
    sandbox: Option<SocketAddr>,
}

impl WebhookPolicy {
    /// The rules with `allow` as the allow list, refusing the listeners `own`, allowing the
    /// sandbox of the admin listener at `sandbox`.
    pub fn new(allow: Vec<AllowEntry>, own: Vec<SocketAddr>, sandbox: Option<SocketAddr>) -> Self {
        WebhookPolicy {
            allow,
            own,
            sandbox,
        }
    }

    /// Rules that allow every host, for tests that send to local servers.
    pub fn allow_local() -> Self {
        let allow = ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|net| net.parse().ok())
            .map(AllowEntry::Net)
            .chain([AllowEntry::Host("localhost".to_owned())])
            .collect();
        WebhookPolicy {
            allow,
            ..WebhookPolicy::default()
        }
    }

    /// The allow list.
    pub fn allowed(&self) -> &[AllowEntry] {
        &self.allow
    }

    /// Checks what the URL alone tells: its scheme, and its host when it is an address. Names
    /// are checked again on their addresses when the connection is made.
    pub fn check_url(&self, url: &str) -> Result<(), Blocked> {
        let parsed = Url::parse(url).map_err(|_| Blocked("the URL does not parse".to_owned()))?;
        self.check_parsed(&parsed)
    }

    /// [`WebhookPolicy::check_url`] of a URL already parsed (an attempt's request holds one:
    /// parsing it again cost ≈ 1% of the server's CPU at full rate).
    pub fn check_parsed(&self, parsed: &Url) -> Result<(), Blocked> {
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Blocked(format!(
                "{}: URLs are refused: use https://",
                parsed.scheme()
            )));
        }
        let Some(host) = parsed.host_str() else {
            return Err(Blocked("the URL has no host".to_owned()));
        };
        let port = parsed.port_or_known_default().unwrap_or(0);
        let address = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if self.is_sandbox(parsed, address, port) {
            return Ok(());
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let allowed_host = match address {
            Some(address) => self.allows_address(address),
            None => self.allows_name(&name),
        };
        match parsed.scheme() {
            "https" => {}
            "http" if allowed_host => {}
            "http" => {
                return Err(Blocked(format!(
                    "http:// is refused for {host}: webhooks use https://, unless the server's \
                     configuration allows the host ([delivery] allow)"
                )));
            }
            _ => {}
        }
        if self.is_own(address, &name, port) {
            return Err(Blocked(format!(
                "{host}:{port} is one of Junction's own listeners; only the sandbox webhook may \
                 be sent to there"
            )));
        }
        if let Some(address) = address {
            self.check_address(&name, address)?;
        }
        Ok(())
    }

    /// Whether `address` may be connected to for a URL whose host is `name` (an allowed name
    /// may resolve anywhere).
    pub fn check_address(&self, name: &str, address: IpAddr) -> Result<(), Blocked> {
        if self.allows_name(name) || self.allows_address(address) {
            return Ok(());
        }
        match restricted(address) {
            None => Ok(()),
            Some(kind) => Err(Blocked(format!(
                "{name} is {address}, a {kind} address: refused unless the server's \
                 configuration allows it ([delivery] allow)"
            ))),
        }
    }

    fn allows_name(&self, name: &str) -> bool {
        self.allow
            .iter()
            .any(|entry| matches!(entry, AllowEntry::Host(host) if host == name))
    }

    fn allows_address(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.allow
            .iter()
            .any(|entry| matches!(entry, AllowEntry::Net(net) if net.contains(&address)))
    }

    fn is_sandbox(&self, url: &Url, address: Option<IpAddr>, port: u16) -> bool {
        let Some(sandbox) = self.sandbox else {
            return false;
        };
        let here = match address {
            Some(address) => {
                canonical(address) == canonical(sandbox.ip())
                    || (address.is_loopback() && sandbox.ip().is_loopback())
            }
            None => url.host_str() == Some("localhost") && sandbox.ip().is_loopback(),
        };
        url.scheme() == "http"
            && here
            && port == sandbox.port()
            && url.path().starts_with(SANDBOX_PATH)
    }

    fn is_own(&self, address: Option<IpAddr>, name: &str, port: u16) -> bool {
        let local = match address {
            Some(address) => {
                let address = canonical(address);
                address.is_loopback()
                    || address.is_unspecified()
                    || self.own.iter().any(|own| canonical(own.ip()) == address)
            }
            None => name == "localhost" || name.ends_with(".localhost"),
        };
        local && self.own.iter().any(|own| own.port() == port)
    }
}

/// An IPv4 address carried in IPv6 (mapped, compatible, NAT64) as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// What kind of non-public address this is, if it is one: loopback, private, link-local (the
/// cloud metadata service lives there), unique-local, shared (carrier-grade NAT), unspecified,
/// multicast or broadcast.
pub fn restricted(address: IpAddr) -> Option<&'static str> {
    match canonical(address) {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() {
        Some("private")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if a == 0 {
        Some("unspecified")
    } else if v4.is_multicast() {
        Some("multicast")
    } else if v4.is_broadcast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn restricted_v6(v6: Ipv6Addr) -> Option<&'static str> {
    let first = v6.segments()[0];
    if v6.is_loopback() {
        Some("loopback")
    } else if v6.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if v6.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The client's DNS resolver: resolves as the system does, then keeps only the addresses the
/// policy allows for that name; when none is left the connection fails with [`Blocked`].
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: Arc<WebhookPolicy>,
}

impl PolicyResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: Arc<WebhookPolicy>) -> Self {
        PolicyResolver { policy }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| match policy.check_address(&host, address.ip()) {
                    Ok(()) => true,
                    Err(blocked) => {
                        refusal.get_or_insert(blocked);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let blocked =
                    refusal.unwrap_or_else(|| Blocked(format!("{host} resolves to no address")));
                return Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> WebhookPolicy {
        WebhookPolicy::new(
            allow
                .iter()
                .map(|entry| AllowEntry::parse(entry).unwrap())
                .collect(),
            vec![
                "127.0.0.1:8080".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap(),
            ],
            Some("127.0.0.1:8081".parse().unwrap()),
        )
    }

    #[test]
    fn by_default_only_public_https_and_the_sandbox_pass() {
        let rules = policy(&[]);
        assert_eq!(
            rules.check_url("https://app.chartmogul.com/api/webhooks/x"),
            Ok(())
        );
        assert_eq!(rules.check_url("https://93.184.216.34/hook"), Ok(()));
        assert_eq!(
            rules.check_url("http://127.0.0.1:8081/sandbox/chartmogul/sample-workspace"),
            Ok(())
        );
        assert_eq!(
            rules.check_url("http://localhost:8081/sandbox/chartmogul/t"),
            Ok(())
        );
        for (url, why) in [
            (
                "http://app.chartmogul.com/api/webhooks/x",
                "http:// is refused",
            ),
            ("http://127.0.0.1:8081/api/v1/sources", "http:// is refused"),
            ("https://127.0.0.1:9000/hook", "a loopback address"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "a link-local address",
            ),
            ("https://10.1.2.3/hook", "a private address"),
            ("https://[fd00:ec2::254]/", "a unique-local address"),
            ("https://[::ffff:127.0.0.1]/", "a loopback address"),
            ("https://[64:ff9b::a9fe:a9fe]/", "a link-local address"),
            ("https://100.64.0.1/", "shared (carrier-grade NAT)"),
            ("https://0.0.0.0/", "unspecified"),
            ("file:///etc/passwd", "file: URLs are refused"),
            ("gopher://127.0.0.1:70/", "gopher: URLs are refused"),
        ] {
            let refused = rules.check_url(url).unwrap_err().0;
            assert!(refused.contains(why), "{url}: {refused}");
        }
    }

    #[test]
    fn the_allow_list_opens_http_and_private_addresses_but_not_our_listeners() {
        let rules = policy(&["127.0.0.1", "10.0.0.0/8", "hooks.internal.example"]);
        assert_eq!(rules.check_url("http://127.0.0.1:9000/hook"), Ok(()));
        assert_eq!(rules.check_url("http://10.2.3.4/hook"), Ok(()));
        assert_eq!(rules.check_url("http://hooks.internal.example/x"), Ok(()));
        assert_eq!(
            rules.check_address("hooks.internal.example", "10.9.9.9".parse().unwrap()),
            Ok(())
        );
        assert!(rules.check_url("http://192.168.1.1/x").is_err());
        let own = rules
            .check_url("http://127.0.0.1:8081/api/v1/sources")
            .unwrap_err()
            .0;
        assert!(own.contains("one of Junction's own listeners"), "{own}");
        let named = policy(&["localhost"]);
        let own = named
            .check_url("http://localhost:8080/v1/batch")
            .unwrap_err()
            .0;
        assert!(own.contains("one of Junction's own listeners"), "{own}");
        assert_eq!(
            rules.check_url("http://127.0.0.1:8081/sandbox/chartmogul/t"),
            Ok(())
        );
    }

    #[test]
    fn entries_parse_or_say_why_not() {
        assert_eq!(
            AllowEntry::parse("Hooks.Example.").unwrap(),
            AllowEntry::Host("hooks.example".to_owned())
        );
        assert!(matches!(
            AllowEntry::parse("10.0.0.0/8"),
            Ok(AllowEntry::Net(_))
        ));
        assert!(matches!(AllowEntry::parse("::1"), Ok(AllowEntry::Net(_))));
        assert_eq!(AllowEntry::parse(" "), Err(PolicyError::Empty));
        assert!(AllowEntry::parse("http://x").is_err());
        assert!(AllowEntry::parse("10.0.0.0/99").is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let refusing = PolicyResolver::new(Arc::new(policy(&[])));
        let name: Name = "localhost".parse().unwrap();
        let err = refusing.resolve(name).await.err().unwrap();
        assert!(err.to_string().contains("a loopback address"), "{err}");
        let allowing = PolicyResolver::new(Arc::new(WebhookPolicy::allow_local()));
        let name: Name = "localhost".parse().unwrap();
        let found: Vec<SocketAddr> = allowing.resolve(name).await.unwrap().collect();
        assert!(!found.is_empty());
    }
}
