//! `realm gateway`'s configuration file: the engine's [`GatewayConfig`] under
//! `[gateway]` plus the daemon's own sections. Every key has a default except
//! the pool; unknown keys are refused, naming the key. The reference is
//! `docs/gateway-config.md`; a test checks that every key of
//! [`DaemonConfig::default`] is documented there.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use realm_rsip::gateway::{Gateway, GatewayConfig, OnTcpClose};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DaemonConfig {
    /// What happens to a TCP host's registration when its connection closes
    /// (the engine decides: [`Gateway::handle_connection_closed`]).
    pub(crate) on_tcp_close: OnTcpClose,
    /// Where RSIP is served.
    pub(crate) listen: ListenSettings,
    /// The lease store.
    pub(crate) store: StoreSettings,
    /// Prometheus metrics.
    pub(crate) metrics: MetricsSettings,
    /// The control socket (`realm ctl`).
    pub(crate) control: ControlSettings,
    /// Logging.
    pub(crate) log: LogSettings,
    /// Bounds on what one peer may cost.
    pub(crate) limits: Limits,
    /// The packet path (off unless `public_interface` is set).
    pub(crate) data_plane: super::dataplane::DataPlaneSettings,
    /// The RSIP engine: pool, policies, leases, quotas, authentication.
    pub(crate) gateway: GatewayConfig,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            on_tcp_close: OnTcpClose::Keep,
            listen: ListenSettings::default(),
            store: StoreSettings::default(),
            metrics: MetricsSettings::default(),
            control: ControlSettings::default(),
            log: LogSettings::default(),
            limits: Limits::default(),
            data_plane: super::dataplane::DataPlaneSettings::default(),
            gateway: GatewayConfig::default(),
        }
    }
}

/// Where RSIP is served (RFC 3103 5: TCP MUST, UDP SHOULD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListenSettings {
    /// Private addresses to listen on (TCP and UDP on each).
    pub(crate) addresses: Vec<Ipv4Addr>,
    /// The RSIP port.
    pub(crate) port: u16,
    /// Whether to serve RSIP over UDP too.
    pub(crate) udp: bool,
}

impl Default for ListenSettings {
    fn default() -> ListenSettings {
        ListenSettings {
            addresses: vec![Ipv4Addr::UNSPECIFIED],
            port: realm_wire::rsip::PORT,
            udp: true,
        }
    }
}

/// The crash-safe lease store (`realm-store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreSettings {
    /// The SQLite file (its directory must exist).
    pub(crate) path: PathBuf,
    /// `"normal"` (survives a crash or `kill -9`) or `"full"` (also an OS
    /// crash or power loss: one fsync per group commit).
    pub(crate) durability: DurabilitySetting,
    /// The allocation log file (one line per grant, extend, free, expiry);
    /// none when absent.
    pub(crate) alloc_log: Option<PathBuf>,
    /// How long after being written allocation log lines are fsynced at the
    /// latest, milliseconds (0: before each acknowledgement).
    pub(crate) alloc_log_sync_ms: u64,
    /// Batches waiting for the writer before the daemon slows down.
    pub(crate) queue_capacity: usize,
    /// The most batches one transaction commits.
    pub(crate) max_group: usize,
}

impl Default for StoreSettings {
    fn default() -> StoreSettings {
        StoreSettings {
            path: PathBuf::from("/var/lib/realm/gateway.db"),
            durability: DurabilitySetting::Normal,
            alloc_log: None,
            alloc_log_sync_ms: 1000,
            queue_capacity: 4096,
            max_group: 1024,
        }
    }
}

/// [`realm_store::Durability`] in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DurabilitySetting {
    /// `Durability::Normal`.
    Normal,
    /// `Durability::Full`.
    Full,
}

impl From<DurabilitySetting> for realm_store::Durability {
    fn from(d: DurabilitySetting) -> realm_store::Durability {
        match d {
            DurabilitySetting::Normal => realm_store::Durability::Normal,
            DurabilitySetting::Full => realm_store::Durability::Full,
        }
    }
}

/// Prometheus metrics over HTTP (`GET /metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsSettings {
    /// The address to serve on, e.g. `"127.0.0.1:9555"`; none: no metrics.
    pub(crate) listen: Option<SocketAddr>,
}

/// The control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ControlSettings {
    /// The Unix socket `realm ctl` talks to (mode 0600).
    pub(crate) socket: PathBuf,
}

impl Default for ControlSettings {
    fn default() -> ControlSettings {
        ControlSettings {
            socket: PathBuf::from(crate::ctl::default_socket(crate::ctl::Role::Gateway)),
        }
    }
}

/// Logging (to stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSettings {
    /// A `tracing` filter: `"info"`, `"debug"`, `"realm=debug,info"`.
    /// `RUST_LOG`, when set, wins.
    pub(crate) level: String,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            level: "info".to_owned(),
        }
    }
}

/// Bounds on what one peer may cost (STYLE 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    /// The longest RSIP message accepted, bytes (4..=65535). Over TCP a
    /// longer overall length closes the connection after an ERROR_RESPONSE
    /// BAD_MESSAGE; over UDP longer datagrams are dropped.
    pub(crate) max_message_size: usize,
    /// TCP connections open at once; more are closed on accept.
    pub(crate) max_connections: usize,
    /// TCP connections open at once from one source address.
    pub(crate) max_connections_per_address: usize,
    /// Messages queued for one TCP connection; a peer that reads so slowly
    /// that more pile up is disconnected (the engine never waits for it).
    pub(crate) send_queue: usize,
    /// A TCP message must complete within this many seconds of its first
    /// byte, or the connection is closed.
    pub(crate) message_timeout_secs: u64,
    /// A TCP connection must send its first byte within this many seconds
    /// of being accepted, or it is closed.
    pub(crate) first_message_timeout_secs: u64,
    /// A TCP connection silent for this many seconds after its last complete
    /// message is closed; 0: never.
    pub(crate) idle_timeout_secs: u64,
    /// Messages per second accepted from one TCP connection (its reads pause
    /// beyond that) or from one UDP source address, whatever its ports (the
    /// excess is dropped).
    pub(crate) messages_per_sec: u32,
    /// Messages accepted in a burst above `messages_per_sec`.
    pub(crate) burst: u32,
    /// What one UDP source port may take of its address's rate and burst,
    /// percent (1..=100).
    pub(crate) udp_port_share_percent: u8,
    /// UDP source ports tracked per address (more share one bucket).
    pub(crate) udp_ports_per_source: usize,
    /// UDP source addresses the rate limiter tracks at once.
    pub(crate) udp_max_sources: usize,
    /// The UDP signalling socket's receive buffer, bytes.
    pub(crate) udp_recv_buffer: usize,
    /// Inputs the engine handles per wake-up before it persists their events
    /// and looks at its other inputs again.
    pub(crate) batch: usize,
}

impl Limits {
    /// The UDP rate limit (kept by the engine crate's `SourceLimiter`).
    pub(crate) fn udp_rate(&self) -> realm_rsip::gateway::RateLimit {
        realm_rsip::gateway::RateLimit {
            per_sec: self.messages_per_sec,
            burst: self.burst,
            port_share_percent: self.udp_port_share_percent,
            ports_per_source: self.udp_ports_per_source,
            max_sources: self.udp_max_sources,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_size: 4096,
            max_connections: 4096,
            max_connections_per_address: 4,
            send_queue: 256,
            message_timeout_secs: 10,
            first_message_timeout_secs: 10,
            idle_timeout_secs: 0,
            messages_per_sec: 200,
            burst: 400,
            udp_port_share_percent: 50,
            udp_ports_per_source: 16,
            udp_max_sources: 65536,
            udp_recv_buffer: 4 * 1024 * 1024,
            batch: 64,
        }
    }
}

impl DaemonConfig {
    /// Parses and checks a configuration file's text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<DaemonConfig> {
        let config: DaemonConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.check()?;
        Ok(config)
    }

    /// Reads, parses and checks the file at `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<DaemonConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        DaemonConfig::parse(&text).with_context(|| format!("configuration {}", path.display()))
    }

    /// What serde cannot check.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.gateway.pool.is_empty() {
            bail!(
                "gateway.pool is empty: configure at least one public address, e.g.\n\
                 [[gateway.pool]]\naddresses = \"192.0.2.1\""
            );
        }
        Gateway::new(self.gateway.clone(), [0; 32]).context("[gateway]")?;
        if self.listen.addresses.is_empty() {
            bail!("listen.addresses is empty: RSIP over TCP must be served (RFC 3103 5)");
        }
        let l = &self.limits;
        if !(4..=65535).contains(&l.max_message_size) {
            bail!("limits.max_message_size must be 4..=65535");
        }
        for (name, v) in [
            ("limits.max_connections", l.max_connections),
            (
                "limits.max_connections_per_address",
                l.max_connections_per_address,
            ),
            ("limits.send_queue", l.send_queue),
            ("limits.batch", l.batch),
            ("limits.udp_ports_per_source", l.udp_ports_per_source),
            ("limits.udp_max_sources", l.udp_max_sources),
            ("limits.udp_recv_buffer", l.udp_recv_buffer),
            ("store.queue_capacity", self.store.queue_capacity),
            ("store.max_group", self.store.max_group),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if l.messages_per_sec == 0
            || l.burst == 0
            || l.message_timeout_secs == 0
            || l.first_message_timeout_secs == 0
        {
            bail!(
                "limits.messages_per_sec, limits.burst, limits.message_timeout_secs and \
                 limits.first_message_timeout_secs must be at least 1"
            );
        }
        if !(1..=100).contains(&l.udp_port_share_percent) {
            bail!("limits.udp_port_share_percent must be 1..=100");
        }
        self.data_plane.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../../../docs/gateway-config.md");

    /// Every key path of `v` but tables (`a.b`, arrays of tables as `a[].b`).
    fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if !x.is_table() {
                        out.push(path.clone());
                    }
                    keys(&path, x, out);
                }
            }
            toml::Value::Array(a) => {
                for x in a.iter().filter(|x| x.is_table()) {
                    keys(&format!("{prefix}[]"), x, out);
                }
            }
            _ => {}
        }
    }

    /// The defaults with every optional key and list entry filled in, so
    /// that serialization shows every key.
    fn everything() -> DaemonConfig {
        let text = r#"
            [store]
            alloc_log = "/x"
            [metrics]
            listen = "127.0.0.1:9555"
            [gateway]
            tunnel_endpoint = "192.0.2.9"
            [[gateway.pool]]
            addresses = "192.0.2.1"
            [[gateway.remote_rules]]
            action = "deny"
            prefix = "192.0.2.0/24"
            name = "x.example"
            ports = ["80"]
            [[gateway.auth.keys]]
            host = "10.0.0.2"
            key_id = 1
            secret_hex = "000102030405060708090a0b0c0d0e0f"
        "#;
        DaemonConfig::parse(text).unwrap()
    }

    #[test]
    fn every_key_is_documented() {
        let v = toml::Value::try_from(everything()).unwrap();
        let mut all = Vec::new();
        keys("", &v, &mut all);
        assert!(all.len() > 60, "{all:?}");
        let missing: Vec<_> = all
            .iter()
            .filter(|k| !DOC.contains(&format!("`{k}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "keys missing from docs/gateway-config.md: {missing:?}"
        );
    }

    #[test]
    fn documented_defaults_match_the_code() {
        // Each scalar default in a doc table row equals the code's.
        let v = toml::Value::try_from(DaemonConfig::default()).unwrap();
        let mut all = Vec::new();
        keys("", &v, &mut all);
        for k in all.iter().filter(|k| !k.starts_with("gateway.")) {
            let mut x = &v;
            for part in k.split('.') {
                x = &x[part];
            }
            if x.is_table() {
                continue;
            }
            let row = DOC
                .lines()
                .find(|l| l.starts_with(&format!("| `{k}` |")))
                .unwrap_or_else(|| panic!("no row for {k}"));
            let shown = row.split('|').nth(2).unwrap().trim();
            assert_eq!(shown, format!("`{x}`"), "default of {k}");
        }
    }

    #[test]
    fn complete_doc_examples_parse() {
        let mut n = 0;
        for block in DOC.split("```toml").skip(1) {
            let text = block.split("```").next().unwrap();
            DaemonConfig::parse(text).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
            n += 1;
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn examples_load() {
        for name in ["gateway-soho.toml", "gateway-block.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(name);
            let c = DaemonConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!c.gateway.pool.is_empty());
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let pool = "[[gateway.pool]]\naddresses = \"192.0.2.1\"\n";
        for (text, key) in [
            (format!("colour = 1\n{pool}"), "colour"),
            (format!("[store]\npth = \"/x\"\n{pool}"), "pth"),
            (format!("[gateway]\nlease_sec = 1\n{pool}"), "lease_sec"),
            (
                "[[gateway.pool]]\naddresses = \"192.0.2.1\"\nshard = true\n".to_owned(),
                "shard",
            ),
            (format!("[limits]\nmax_msg = 1\n{pool}"), "max_msg"),
        ] {
            let e = DaemonConfig::parse(&text).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn a_missing_pool_is_a_clear_error() {
        let e = DaemonConfig::parse("[listen]\nport = 4555\n").unwrap_err();
        assert!(e.to_string().contains("gateway.pool is empty"), "{e:#}");
        let e = DaemonConfig::parse("[[gateway.pool]]\nshared = true\n").unwrap_err();
        assert!(e.to_string().contains("missing field `addresses`"), "{e:#}");
    }

    #[test]
    fn bad_values_are_refused() {
        let pool = "[[gateway.pool]]\naddresses = \"192.0.2.1\"\n";
        for bad in [
            "[limits]\nmax_message_size = 2\n",
            "[limits]\nsend_queue = 0\n",
            "[store]\ndurability = \"sometimes\"\n",
            "on_tcp_close = \"maybe\"\n",
            "[gateway]\nregistration_lease_secs = 0\n",
        ] {
            assert!(
                DaemonConfig::parse(&format!("{bad}{pool}")).is_err(),
                "{bad}"
            );
        }
    }
}
