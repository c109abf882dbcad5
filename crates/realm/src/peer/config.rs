//! `realm peer` configuration: a TOML file, every key documented in
//! `docs/peer-config.md` (kept in step by the test that parses
//! `examples/peer-*.toml`). Unknown keys are errors.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use realm_ike::config::IkeConfig;
use realm_io::Ipv4Prefix;
use realm_ipsec::config::{ManualKeying, PolicyConfig};
use realm_ipsec::{Direction, IpsecProtocol, SaConfig};
use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerConfig {
    /// tracing filter directives (`info`, `realm=debug`); `RUST_LOG` wins.
    #[serde(default = "default_log_level")]
    pub(crate) log_level: String,
    /// Where `realm ctl` finds the daemon.
    #[serde(default = "default_control_socket")]
    pub(crate) control_socket: PathBuf,
    /// Write every ESP SA's keys here at start-up, in Wireshark's `esp_sa`
    /// format (mode 0600). Off by default: the file holds secrets.
    #[serde(default)]
    pub(crate) esp_sa_export: Option<PathBuf>,
    /// The TUN device applications' packets come from.
    pub(crate) tun: TunSection,
    /// The network the protected packets travel on.
    pub(crate) underlay: UnderlaySection,
    /// UDP encapsulation (RFC 3948).
    #[serde(default)]
    pub(crate) nat_t: NatTSection,
    /// Manually keyed SAs (RFC 2401 s4.6.1), `realm_ipsec::SaConfig`.
    #[serde(default)]
    pub(crate) sa: Vec<SaConfig>,
    /// SPD entries in priority order per direction.
    #[serde(default)]
    pub(crate) policy: Vec<PolicyConfig>,
    /// The IKE runtime's own settings (`[ike]`).
    #[serde(default)]
    pub(crate) ike: crate::ike::IkeSection,
    /// IKE connections (swanctl.conf's `connections`), read by `realm_ike::config` into
    /// [`PeerConfig::connections`]; here only so the file's other sections stay checked.
    #[serde(default, rename = "connections")]
    _connections: Option<toml::Table>,
    /// IKE secrets (swanctl.conf's `secrets`), as `connections`.
    #[serde(default, rename = "secrets")]
    _secrets: Option<toml::Table>,
    /// The IKE connections and secrets, when the file has any.
    #[serde(skip)]
    pub(crate) connections: Option<IkeConfig>,
    /// The file's directory: relative certificate and key file names start there.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
}

/// `[tun]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TunSection {
    /// Interface name (at most 15 bytes).
    #[serde(default = "default_tun_name")]
    pub(crate) name: String,
    /// MTU: the underlay MTU minus the largest SA overhead.
    #[serde(default = "default_tun_mtu")]
    pub(crate) mtu: u16,
    /// Addresses on the TUN (`a.b.c.d/len`).
    #[serde(default, deserialize_with = "prefixes")]
    pub(crate) addresses: Vec<Ipv4Prefix>,
    /// Destinations routed into the TUN (`a.b.c.d/len`).
    #[serde(default, deserialize_with = "prefixes")]
    pub(crate) routes: Vec<Ipv4Prefix>,
    /// TSO/GRO offloads on the TUN (`IFF_VNET_HDR`): one read or write per
    /// 64 KiB of a TCP flow instead of per packet.
    #[serde(default = "default_true")]
    pub(crate) offload: bool,
}

/// `[underlay]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnderlaySection {
    /// The local underlay address: ESP/AH/NAT-T is received on it.
    pub(crate) address: Ipv4Addr,
    /// Send and receive only through this device (`SO_BINDTODEVICE`).
    /// Needed when `tun.routes` cover a peer's underlay address (transport
    /// mode), so protected packets do not loop back into the TUN.
    #[serde(default)]
    pub(crate) device: Option<String>,
    /// Socket receive buffer in bytes.
    #[serde(default = "default_buffer")]
    pub(crate) recv_buffer: usize,
    /// Socket send buffer in bytes.
    #[serde(default = "default_buffer")]
    pub(crate) send_buffer: usize,
    /// Plain ESP through AF_PACKET sockets on an Ethernet underlay (see
    /// the daemon's module doc); `false`: through raw IP sockets only.
    #[serde(default = "default_true")]
    pub(crate) af_packet: bool,
}

/// `[nat_t]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NatTSection {
    /// UDP ports to receive ESP-in-UDP on, besides each UDP-encapsulated
    /// inbound SA's `udp_encap.dst_port` (always listened on).
    #[serde(default)]
    pub(crate) ports: Vec<u16>,
    /// RFC 3948 s4: NAT keepalive after this many idle seconds on a
    /// UDP-encapsulated outbound SA; 0 disables.
    #[serde(default = "default_keepalive")]
    pub(crate) keepalive_seconds: u64,
}

impl Default for NatTSection {
    fn default() -> Self {
        NatTSection {
            ports: Vec::new(),
            keepalive_seconds: default_keepalive(),
        }
    }
}

fn default_log_level() -> String {
    "info".to_string()
}
fn default_control_socket() -> PathBuf {
    PathBuf::from(crate::ctl::default_socket(crate::ctl::Role::Peer))
}
fn default_tun_name() -> String {
    "realm0".to_string()
}
fn default_tun_mtu() -> u16 {
    1400
}
fn default_true() -> bool {
    true
}
fn default_buffer() -> usize {
    4 << 20
}
fn default_keepalive() -> u64 {
    20
}

fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Prefix>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// Smallest TUN MTU accepted (RFC 791: every host takes 576-byte datagrams).
pub(crate) const MIN_TUN_MTU: u16 = 576;

impl PeerConfig {
    /// Reads and checks a file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<PeerConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read config {}", path.display()))?;
        let mut c = Self::parse_named(&text, &path.display().to_string())
            .with_context(|| format!("config {}", path.display()))?;
        c.dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok(c)
    }

    /// Parses and checks TOML text.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> anyhow::Result<PeerConfig> {
        Self::parse_named(text, "peer.toml")
    }

    /// Parses and checks TOML text read from `file` (named in errors).
    pub(crate) fn parse_named(text: &str, file: &str) -> anyhow::Result<PeerConfig> {
        let mut c: PeerConfig = toml::from_str(text)?;
        if c._connections.is_some() || c._secrets.is_some() {
            // Errors name the file, line, column and key (docs/ike-config.md).
            c.connections =
                Some(IkeConfig::parse_sections(text, file).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> anyhow::Result<()> {
        let name = &self.tun.name;
        if name.is_empty() || name.len() > realm_io::tun::MAX_IFNAME {
            bail!(
                "tun.name {name:?}: 1 to {} bytes",
                realm_io::tun::MAX_IFNAME
            );
        }
        if self.tun.mtu < MIN_TUN_MTU {
            bail!("tun.mtu {} is below {MIN_TUN_MTU}", self.tun.mtu);
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .with_context(|| format!("log_level {:?}", self.log_level))?;
        if self.nat_t.ports.contains(&0) {
            bail!("nat_t.ports: port 0");
        }
        self.ike.check()?;
        Ok(())
    }

    /// The SAs and policies, as the engine installs them.
    pub(crate) fn manual_keying(&self) -> ManualKeying {
        ManualKeying {
            sa: self.sa.clone(),
            policy: self.policy.clone(),
        }
    }

    /// Whether any SA is of `protocol` without UDP encapsulation (so a raw
    /// socket for that protocol is needed).
    /// With IKE connections, ESP may be negotiated without encapsulation: a raw ESP socket.
    pub(crate) fn needs_raw(&self, protocol: IpsecProtocol) -> bool {
        (protocol == IpsecProtocol::Esp && self.connections.is_some())
            || self
                .sa
                .iter()
                .any(|s| s.protocol == protocol && s.udp_encap.is_none())
    }

    /// UDP ports to listen on: `nat_t.ports`, every UDP-encapsulated
    /// inbound SA's destination port and, with IKE connections, `ike.nat_t_port`
    /// (IKE floats there, RFC 3947 section 4), sorted, no duplicates.
    pub(crate) fn udp_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.nat_t.ports.clone();
        if self.connections.is_some() {
            ports.push(self.ike.nat_t_port);
        }
        ports.extend(
            self.sa
                .iter()
                .filter(|s| s.direction == Direction::Inbound)
                .filter_map(|s| s.udp_encap.map(|u| u.dst_port)),
        );
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: [(&str, &str); 3] = [
        (
            "peer-tunnel.toml",
            include_str!("../../../../examples/peer-tunnel.toml"),
        ),
        (
            "peer-transport.toml",
            include_str!("../../../../examples/peer-transport.toml"),
        ),
        (
            "peer-nat-t.toml",
            include_str!("../../../../examples/peer-nat-t.toml"),
        ),
    ];

    #[test]
    fn examples_parse_and_install() {
        for (name, text) in EXAMPLES {
            let c = PeerConfig::parse(text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let mut engine = realm_ipsec::Ipsec::default();
            let ids = c
                .manual_keying()
                .install(&mut engine, realm_io::now())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!ids.is_empty(), "{name}");
        }
    }

    #[test]
    fn the_ike_example_parses_with_its_connections() {
        let c = PeerConfig::parse(include_str!("../../../../examples/peer-ike.toml"))
            .unwrap_or_else(|e| panic!("peer-ike.toml: {e:#}"));
        let ike = c.connections.as_ref().expect("connections");
        let (conn, child) = ike.child("net").expect("child net");
        assert_eq!(conn.name, "site");
        assert!(conn.encap);
        assert_eq!(child.esp_proposals.to_string(), "aes128gcm16");
        assert_eq!(c.udp_ports(), vec![4500], "IKE floats to the NAT-T port");
        assert!(c.needs_raw(IpsecProtocol::Esp));
        assert!(c.sa.is_empty() && c.policy.is_empty());
        assert_eq!(c.ike.nat_t_port, 4500);
        // An IKE mistake names the file, line and key.
        let bad = include_str!("../../../../examples/peer-ike.toml")
            .replace("aes128-sha256-modp2048", "aes129-sha256-modp2048");
        let e = format!("{:#}", PeerConfig::parse(&bad).unwrap_err());
        assert!(
            e.contains("peer.toml:") && e.contains("connections.site.proposals"),
            "{e}"
        );
    }

    #[test]
    fn defaults() {
        let c = PeerConfig::parse("[tun]\n[underlay]\naddress = \"192.0.2.1\"\n").unwrap();
        assert_eq!(c.log_level, "info");
        assert_eq!(c.control_socket, Path::new("/run/realm/peer.sock"));
        assert_eq!(c.esp_sa_export, None);
        assert_eq!((c.tun.name.as_str(), c.tun.mtu), ("realm0", 1400));
        assert!(c.tun.addresses.is_empty() && c.tun.routes.is_empty());
        assert!(c.tun.offload);
        assert_eq!(c.underlay.device, None);
        assert_eq!(
            (c.underlay.recv_buffer, c.underlay.send_buffer),
            (4 << 20, 4 << 20)
        );
        assert_eq!(c.nat_t.keepalive_seconds, 20);
        assert!(c.udp_ports().is_empty());
        assert!(c.sa.is_empty() && c.policy.is_empty());
    }

    #[test]
    fn mistakes_are_refused() {
        let base = "[underlay]\naddress = \"192.0.2.1\"\n";
        for bad in [
            format!("[tun]\nnmae = \"x\"\n{base}"),
            format!("[tun]\nmtu = 500\n{base}"),
            format!("[tun]\nname = \"a-very-long-interface\"\n{base}"),
            format!("[tun]\naddresses = [\"10.0.0.1/33\"]\n{base}"),
            format!("[tun]\n{base}bogus = 1\n"),
            format!("log_level = \"[\"\n[tun]\n{base}"),
            "[tun]\n".to_string(),
            format!("[tun]\n{base}[nat_t]\nports = [0]\n"),
        ] {
            assert!(PeerConfig::parse(&bad).is_err(), "accepted:\n{bad}");
        }
    }

    #[test]
    fn nat_t_ports_include_inbound_encapsulated_sas() {
        let c = PeerConfig::parse(EXAMPLES[2].1).unwrap();
        assert_eq!(c.udp_ports(), vec![4500]);
        assert!(!c.needs_raw(IpsecProtocol::Esp));
        let t = PeerConfig::parse(EXAMPLES[0].1).unwrap();
        assert!(t.needs_raw(IpsecProtocol::Esp) && !t.needs_raw(IpsecProtocol::Ah));
    }
}
