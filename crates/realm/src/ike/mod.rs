//! The IKE runtime both IPsec daemons share (`realm peer` now, `realm host` next): the IKE
//! sockets, the `realm-ike` engine driven by them and by time, and the application of its
//! events to the `realm-ipsec` engine's SAD and SPD ([`install`]). Written once, used by both.
//!
//! The daemon owns the IPsec engine and the NAT-T sockets (ESP-in-UDP and IKE share UDP 4500,
//! RFC 3948 section 2.2): it hands the runtime the IKE messages the IPsec engine found behind
//! a non-ESP marker ([`IkeRuntime::handle_nat_t`]) and lends it the NAT-T sockets to send on
//! ([`IkeRuntime::drive`]). The runtime owns the IKE port sockets (UDP 500) and reads them
//! itself ([`IkeRuntime::readable`], [`IkeRuntime::recv`]).
//!
//! Configuration: the `[connections]` and `[secrets]` sections (swanctl.conf's shape,
//! `docs/ike-config.md`) and the daemon's `[ike]` section ([`IkeSection`]).

mod install;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context;
use realm_ike::AwsLcCrypto;
use realm_ike::auth::{Certificate, PrivateKey, TrustAnchors};
use realm_ike::config::IkeConfig;
use realm_ike::config::{Action, AuthClass};
use realm_ike::engine::TrafficRange;
use realm_ike::engine::{
    ChildSaDown, ChildSaUp, EngineConfig, Event, Ike, IkeSaView, LogLevel, RetransmitConfig,
};
use realm_ike::ikev1::main_mode::RsaCredentials;
use realm_io::socket::SocketOptions;
use realm_ipsec::{IkeDatagram, Ipsec, PolicyId};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::UdpSocket;

use crate::ctl::{CommandInfo, CtlError};
use install::Installed;

/// The `[ike]` section: the runtime's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IkeSection {
    /// The NAT-T port (RFC 3947 section 4) IKE floats to and ESP-in-UDP uses.
    #[serde(default = "default_nat_t_port")]
    pub(crate) nat_t_port: u16,
    /// Seconds before the first retransmission (strongSwan's `retransmit_timeout`).
    #[serde(default = "default_retransmit_timeout")]
    pub(crate) retransmit_timeout: f64,
    /// Each following wait is the previous one times this (`retransmit_base`).
    #[serde(default = "default_retransmit_base")]
    pub(crate) retransmit_base: f64,
    /// Retransmissions before an exchange is given up (`retransmit_tries`).
    #[serde(default = "default_retransmit_tries")]
    pub(crate) retransmit_tries: u32,
    /// Write each ISAKMP SA's Wireshark `ikev1_decryption_table` line here (mode 0600).
    /// Off by default: the file holds secrets.
    #[serde(default)]
    pub(crate) ikev1_decryption_table: Option<PathBuf>,
}

impl Default for IkeSection {
    fn default() -> Self {
        IkeSection {
            nat_t_port: default_nat_t_port(),
            retransmit_timeout: default_retransmit_timeout(),
            retransmit_base: default_retransmit_base(),
            retransmit_tries: default_retransmit_tries(),
            ikev1_decryption_table: None,
        }
    }
}

fn default_nat_t_port() -> u16 {
    4500
}
fn default_retransmit_timeout() -> f64 {
    4.0
}
fn default_retransmit_base() -> f64 {
    1.8
}
fn default_retransmit_tries() -> u32 {
    5
}

impl IkeSection {
    /// Checks the values.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.nat_t_port == 0 {
            anyhow::bail!("ike.nat_t_port: port 0");
        }
        if !(self.retransmit_timeout.is_finite()
            && (0.05..=3600.0).contains(&self.retransmit_timeout))
        {
            anyhow::bail!("ike.retransmit_timeout: 0.05 to 3600 seconds");
        }
        if !(self.retransmit_base.is_finite() && (1.0..=10.0).contains(&self.retransmit_base)) {
            anyhow::bail!("ike.retransmit_base: 1 to 10");
        }
        Ok(())
    }
}

/// `realm ctl ike`.
pub(crate) const IKE: CommandInfo = CommandInfo {
    name: "ike",
    args: "",
    summary: "IKE SAs: state, peer, cookies, algorithms, child SAs (as swanctl --list-sas)",
};
/// `realm ctl initiate CHILD`.
pub(crate) const INITIATE: CommandInfo = CommandInfo {
    name: "initiate",
    args: "CHILD",
    summary: "negotiate a child SA (and its IKE SA if needed), as swanctl --initiate --child",
};
/// `realm ctl terminate CONNECTION`.
pub(crate) const TERMINATE: CommandInfo = CommandInfo {
    name: "terminate",
    args: "CONNECTION",
    summary: "close a connection's IKE SAs and child SAs, as swanctl --terminate --ike",
};
/// The `realm ctl` commands the runtime answers (each daemon lists them with its own).
pub(crate) const COMMANDS: [CommandInfo; 3] = [IKE, INITIATE, TERMINATE];

/// The runtime.
#[derive(Debug)]
pub(crate) struct IkeRuntime {
    ike: Ike<AwsLcCrypto>,
    sockets: Vec<(SocketAddr, UdpSocket)>,
    installed: HashMap<u32, Installed>,
    decryption_table: Option<PathBuf>,
    decryption_lines: Vec<String>,
    esp_sa_export: Option<PathBuf>,
    buf: Vec<u8>,
    /// `start_action = "trap"`: the trap policy of each such child, and when it last asked.
    traps: HashMap<PolicyId, (String, Option<Instant>)>,
    /// The IKE address (the underlay's).
    local: Ipv4Addr,
}

impl IkeRuntime {
    /// Binds the IKE ports of `connections` on `local` and starts the engine; children with
    /// `start_action = "start"` are initiated at once.
    /// `config_dir`: where relative certificate and key file names are found (the
    /// configuration file's directory).
    pub(crate) fn start(
        connections: IkeConfig,
        section: &IkeSection,
        local: Ipv4Addr,
        device: Option<String>,
        esp_sa_export: Option<PathBuf>,
        config_dir: &Path,
    ) -> anyhow::Result<IkeRuntime> {
        let now = realm_io::now();
        let mut ports: Vec<u16> = connections
            .connections
            .iter()
            .map(|c| c.local_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let mut sockets = Vec::new();
        for port in ports {
            let addr = SocketAddr::V4(SocketAddrV4::new(local, port));
            let s = realm_io::socket::udp_bind(
                addr,
                &SocketOptions {
                    device: device.clone(),
                    ..SocketOptions::default()
                },
            )
            .with_context(|| format!("IKE socket {addr}"))?;
            sockets.push((addr, s));
        }
        let mut config = EngineConfig::new(local);
        config.credentials = load_credentials(&connections, config_dir)?;
        config.nat_t_port = section.nat_t_port;
        config.retransmit = RetransmitConfig {
            timeout: Duration::from_secs_f64(section.retransmit_timeout),
            base: section.retransmit_base,
            tries: section.retransmit_tries,
        };
        let ike = Ike::new(
            AwsLcCrypto::new(),
            config,
            connections,
            now,
            realm_io::clock::wall(),
        )
        .map_err(|e| anyhow::anyhow!("IKE engine: {e}"))?;
        let mut runtime = IkeRuntime {
            ike,
            sockets,
            installed: HashMap::new(),
            decryption_table: section.ikev1_decryption_table.clone(),
            decryption_lines: Vec::new(),
            esp_sa_export,
            buf: vec![0; 65_535],
            traps: HashMap::new(),
            local,
        };
        if let Some(path) = &runtime.decryption_table {
            write_secret(path, "")
                .with_context(|| format!("ike.ikev1_decryption_table {}", path.display()))?;
            tracing::warn!(file = %path.display(), "IKE keys exported for debugging (ike.ikev1_decryption_table)");
        }
        for (child, e) in runtime.ike.start(now) {
            tracing::warn!(child, error = %e, "start_action = start: not started");
        }
        Ok(runtime)
    }

    /// Installs a trap policy for every child with `start_action = "trap"` (swanctl's "route"):
    /// an outbound APPLY entry for its selectors with no SA bound, at the end of the SPD, so
    /// that a packet it matches makes the IPsec engine ask for one ([`realm_ipsec::Event::Acquire`],
    /// RFC 2401 s5.1.1), which [`IkeRuntime::acquire`] turns into a negotiation. The child SAs
    /// negotiated later are inserted ahead of it.
    pub(crate) fn install_traps(&mut self, engine: &mut Ipsec) {
        let local = self.local;
        for c in &self.ike.ike_config().connections {
            let Some(remote) = c.remote_host() else {
                continue;
            };
            let local = c.local_host().unwrap_or(local);
            for child in c
                .children
                .iter()
                .filter(|ch| ch.start_action == Action::Trap)
            {
                let ours = TrafficRange::from_config(&child.local_ts, local);
                let theirs = TrafficRange::from_config(&child.remote_ts, remote);
                match install::trap(engine, child, &ours, &theirs, local, remote) {
                    Ok(id) => {
                        tracing::info!(connection = c.name, child = child.name, local_ts = %ours, remote_ts = %theirs, "trap policy installed");
                        self.traps.insert(id, (child.name.clone(), None));
                    }
                    Err(e) => {
                        tracing::warn!(connection = c.name, child = child.name, error = %e, "trap policy not installed");
                    }
                }
            }
        }
    }

    /// The IPsec engine found no SA for trap policy `policy`: negotiate its child, at most once
    /// per retransmission cycle while one is under way.
    pub(crate) fn acquire(&mut self, now: Instant, policy: PolicyId) -> bool {
        let Some((child, last)) = self.traps.get_mut(&policy) else {
            return false;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < ACQUIRE_HOLD) {
            return true;
        }
        *last = Some(now);
        let child = child.clone();
        tracing::info!(child, "traffic for a trap policy: negotiating");
        if let Err(e) = self.ike.initiate(now, &child) {
            tracing::warn!(child, error = %e, "trap: not initiated");
        }
        true
    }

    /// Index of an IKE socket with something to read.
    pub(crate) async fn readable(&self) -> usize {
        if self.sockets.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            for (i, (_, s)) in self.sockets.iter().enumerate() {
                if s.poll_recv_ready(cx).is_ready() {
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Reads what socket `idx` holds into the engine.
    pub(crate) fn recv(&mut self, idx: usize, now: Instant) {
        let Some((local, socket)) = self.sockets.get(idx) else {
            return;
        };
        let local = *local;
        for _ in 0..64 {
            match socket.try_recv_from(&mut self.buf) {
                Ok((n, from)) => self.ike.handle_datagram(now, local, from, &self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "IKE socket receive");
                    break;
                }
            }
        }
    }

    /// An IKE message the IPsec engine found behind a non-ESP marker on a NAT-T port.
    pub(crate) fn handle_nat_t(&mut self, now: Instant, d: &IkeDatagram) {
        let local = SocketAddr::new(IpAddr::V4(d.dst), d.dst_port);
        let remote = SocketAddr::new(IpAddr::V4(d.src), d.src_port);
        self.ike.handle_message(now, local, remote, &d.payload);
    }

    /// When [`IkeRuntime::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.ike.poll_timeout()
    }

    /// Runs the engine's timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.ike.handle_timeout(now);
    }

    /// Applies the engine's events to `engine` and sends its datagrams: on the IKE sockets, or
    /// on `nat_t` (the daemon's NAT-T sockets, by port) with the marker already in place.
    pub(crate) fn drive(&mut self, engine: &mut Ipsec, now: Instant, nat_t: &[(u16, UdpSocket)]) {
        let mut esp_changed = false;
        while let Some(event) = self.ike.poll_event() {
            match event {
                Event::ChildSaUp(up) => esp_changed |= self.child_up(engine, now, &up),
                Event::ChildSaDown(down) => esp_changed |= self.child_down(engine, &down),
                Event::IkeSaUp {
                    id,
                    connection,
                    local,
                    remote,
                    peer_id,
                } => {
                    tracing::info!(ike = %id, connection, %local, %remote, peer_id = ?peer_id.value(), "IKE SA established");
                    self.export_ike_keys(id);
                }
                Event::IkeSaDown {
                    id,
                    connection,
                    reason,
                } => tracing::info!(ike = %id, connection, reason, "IKE SA down"),
                Event::PeerDead {
                    id,
                    connection,
                    remote,
                } => tracing::warn!(ike = %id, connection, %remote, "peer dead (DPD)"),
                Event::ChildFailed {
                    connection,
                    child,
                    reason,
                } => tracing::warn!(connection, child, reason, "child SA not established"),
                Event::Log { level, message } => match level {
                    LogLevel::Info => tracing::info!("{message}"),
                    LogLevel::Warn => tracing::warn!("{message}"),
                },
            }
        }
        if esp_changed
            && let Some(path) = &self.esp_sa_export
            && let Err(e) = write_secret(path, &realm_ipsec::wireshark::esp_sa_file(engine))
        {
            tracing::warn!(file = %path.display(), error = %e, "esp_sa_export");
        }
        while let Some(t) = self.ike.poll_transmit() {
            let socket = self
                .sockets
                .iter()
                .find(|(a, _)| *a == t.local)
                .map(|(_, s)| s)
                .or_else(|| {
                    nat_t
                        .iter()
                        .find(|(p, _)| *p == t.local.port())
                        .map(|(_, s)| s)
                });
            let Some(socket) = socket else {
                tracing::warn!(local = %t.local, "no socket to send IKE from");
                continue;
            };
            // IKE is rare and retransmitted: a full socket buffer loses the datagram, which
            // the exchange's retransmission makes good.
            if let Err(e) = socket.try_send_to(&t.bytes, t.remote) {
                tracing::debug!(remote = %t.remote, error = %e, "IKE send");
            }
        }
    }

    fn child_up(&mut self, engine: &mut Ipsec, now: Instant, up: &ChildSaUp) -> bool {
        match install::install(engine, now, up) {
            Ok(installed) => {
                tracing::info!(
                    ike = %up.ike,
                    connection = up.connection,
                    child = up.child,
                    spi_in = format_args!("{:08x}", up.pair.inbound.spi),
                    spi_out = format_args!("{:08x}", up.pair.outbound.spi),
                    proposal = %up.pair.proposal,
                    mode = %up.pair.encapsulation.mode,
                    local_ts = %up.local_ts,
                    remote_ts = %up.remote_ts,
                    "child SA installed"
                );
                self.installed.insert(up.pair.inbound.spi, installed);
                true
            }
            Err(e) => {
                tracing::warn!(connection = up.connection, child = up.child, error = %e, "child SA negotiated but not installed");
                false
            }
        }
    }

    fn child_down(&mut self, engine: &mut Ipsec, down: &ChildSaDown) -> bool {
        let Some(installed) = self.installed.remove(&down.inbound_spi) else {
            return false;
        };
        install::uninstall(engine, &installed);
        tracing::info!(
            connection = down.connection,
            child = down.child,
            spi_in = format_args!("{:08x}", down.inbound_spi),
            spi_out = format_args!("{:08x}", down.outbound_spi),
            reason = ?down.reason,
            "child SA removed"
        );
        true
    }

    fn export_ike_keys(&mut self, id: realm_ike::engine::IkeSaId) {
        let Some(path) = &self.decryption_table else {
            return;
        };
        let Some(line) = self.ike.ikev1_decryption_table_line(id) else {
            return;
        };
        self.decryption_lines.push(line);
        let mut text = self.decryption_lines.join("\n");
        text.push('\n');
        if let Err(e) = write_secret(path, &text) {
            tracing::warn!(file = %path.display(), error = %e, "ike.ikev1_decryption_table");
        }
    }

    /// Closes every SA (a Delete to each peer) and removes the children from `engine`.
    pub(crate) fn shutdown(
        &mut self,
        engine: &mut Ipsec,
        now: Instant,
        nat_t: &[(u16, UdpSocket)],
    ) {
        self.ike.shutdown(now);
        self.drive(engine, now, nat_t);
    }

    /// Answers `ike`, `initiate` and `terminate`; `None` for other commands.
    pub(crate) fn handle_ctl(
        &mut self,
        command: &str,
        args: &Map<String, Value>,
    ) -> Option<Result<Value, CtlError>> {
        let now = realm_io::now();
        Some(match command {
            "ike" => crate::ctl::expect_args(args, &[]).map(|()| ike_json(&self.ike.ike_sas(now))),
            "initiate" => main_arg(args, "CHILD").and_then(|child| {
                self.ike
                    .initiate(now, &child)
                    .map(|()| json!({"initiating": child}))
                    .map_err(|e| CtlError::BadArgs(e.to_string()))
            }),
            "terminate" => main_arg(args, "CONNECTION").and_then(|name| {
                self.ike
                    .terminate(now, &name)
                    .map(|n| json!({"terminated": name, "ike_sas": n}))
                    .map_err(|e| CtlError::BadArgs(e.to_string()))
            }),
            _ => return None,
        })
    }
}

fn main_arg(args: &Map<String, Value>, what: &str) -> Result<String, CtlError> {
    crate::ctl::expect_args(args, &[crate::ctl::ARG])?;
    match args.get(crate::ctl::ARG) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Ok(v.to_string()),
        None => Err(CtlError::BadArgs(format!("name the {what}"))),
    }
}

fn ike_json(sas: &[IkeSaView]) -> Value {
    Value::Array(
        sas.iter()
            .map(|sa| {
                json!({
                    "id": sa.id.0,
                    "connection": sa.connection,
                    "state": sa.state,
                    "initiator": sa.initiator,
                    "local": sa.local.to_string(),
                    "remote": sa.remote.to_string(),
                    "initiator_cookie": sa.initiator_cookie,
                    "responder_cookie": sa.responder_cookie,
                    "proposal": sa.proposal,
                    "peer_id": sa.peer_id,
                    "age_seconds": sa.age_secs,
                    "expires_in_seconds": sa.expires_in_secs,
                    "children": sa.children.iter().map(|c| json!({
                        "name": c.name,
                        "spi_in": format!("{:08x}", c.inbound_spi),
                        "spi_out": format!("{:08x}", c.outbound_spi),
                        "description": c.description,
                        "local_ts": c.local_ts,
                        "remote_ts": c.remote_ts,
                        "age_seconds": c.age_secs,
                        "rekey_in_seconds": c.rekey_in_secs,
                        "expires_in_seconds": c.expires_in_secs,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// How long a trap waits before asking again while its negotiation is under way.
const ACQUIRE_HOLD: Duration = Duration::from_secs(10);

/// Writes a file only root can read (it holds keys).
pub(crate) fn write_secret(path: &std::path::Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The RSA credentials of every `local.auth = "pubkey"` connection: its `local.certs` (leaf
/// first), the `[secrets.private*]` key that belongs to the leaf, its `remote.cacerts`. File
/// names are relative to `dir` unless absolute. An error names the connection and the file.
fn load_credentials(
    ike: &IkeConfig,
    dir: &Path,
) -> anyhow::Result<HashMap<String, Arc<RsaCredentials>>> {
    let path = |name: &str| {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    let read = |name: &str| {
        let p = path(name);
        std::fs::read(&p).with_context(|| format!("read {}", p.display()))
    };
    let mut keys = Vec::new();
    for k in &ike.private_keys {
        let bytes = read(&k.file).with_context(|| format!("secrets.{}", k.name))?;
        keys.push(
            PrivateKey::parse(&bytes)
                .map_err(|e| anyhow::anyhow!("secrets.{}: {}: {e}", k.name, k.file))?,
        );
    }
    let mut out = HashMap::new();
    for c in &ike.connections {
        if c.local.auth != AuthClass::Pubkey {
            continue;
        }
        let mut certs = Vec::new();
        for name in &c.local.certs {
            let bytes =
                read(name).with_context(|| format!("connections.{}.local.certs", c.name))?;
            certs.push(
                Certificate::parse(&bytes).map_err(|e| {
                    anyhow::anyhow!("connections.{}.local.certs: {name}: {e}", c.name)
                })?,
            );
        }
        let leaf = certs.first().with_context(|| {
            format!(
                "connections.{}: auth = \"pubkey\" needs local.certs",
                c.name
            )
        })?;
        let key = keys
            .iter()
            .find(|k| k.is_for(leaf))
            .with_context(|| {
                format!(
                    "connections.{}: no [secrets.private*] key file holds the key of {}",
                    c.name, c.local.certs[0]
                )
            })?
            .clone();
        let mut trust = TrustAnchors::new();
        for name in &c.remote.cacerts {
            trust
                .add_file(
                    &read(name)
                        .with_context(|| format!("connections.{}.remote.cacerts", c.name))?,
                )
                .map_err(|e| {
                    anyhow::anyhow!("connections.{}.remote.cacerts: {name}: {e}", c.name)
                })?;
        }
        let creds = RsaCredentials::new(key, certs, trust, None)
            .map_err(|e| anyhow::anyhow!("connections.{}: {e}", c.name))?;
        out.insert(c.name.clone(), Arc::new(creds));
    }
    Ok(out)
}
