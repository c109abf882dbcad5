//! The daemon's configuration: the engine's `HostConfig` (`[host]`) plus the
//! daemon's own settings (`[daemon]`), from a TOML file and/or flags. Every
//! key and default is listed in `docs/host-config.md`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use realm_rsip::host::{BindingConfig, HostConfig, Method, Transport};
use serde::Deserialize;

use super::HostArgs;

/// The RSIP signalling port (RFC 3103 5).
pub(crate) const RSIP_PORT: u16 = 4555;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonConfig {
    /// The engine's configuration.
    pub(crate) host: HostConfig,
    /// The daemon's own settings.
    #[serde(default)]
    pub(crate) daemon: DaemonSettings,
}

/// `[daemon]`: what the engine does not see.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonSettings {
    /// Log level or `tracing` filter. Default `"info"`.
    #[serde(default = "default_log_level")]
    pub(crate) log_level: String,
    /// Largest RSIP message accepted over TCP, bytes (the framing buffer
    /// bound), 4 to 65535. Default 65535.
    #[serde(default = "default_max_message_len")]
    pub(crate) max_message_len: usize,
    /// First pause before reconnecting a lost or refused TCP connection, ms;
    /// doubled after each failure. Default 100.
    #[serde(default = "default_reconnect_min_ms")]
    pub(crate) reconnect_min_ms: u64,
    /// Longest pause between reconnection attempts, ms. Default 30000.
    #[serde(default = "default_reconnect_max_ms")]
    pub(crate) reconnect_max_ms: u64,
    /// How long one TCP connection attempt may take, ms. Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub(crate) connect_timeout_ms: u64,
    /// Extra wait after the engine's `shutdown_timeout_ms` before the daemon
    /// exits regardless, ms. Default 1000.
    #[serde(default = "default_shutdown_grace_ms")]
    pub(crate) shutdown_grace_ms: u64,
    /// Run the data plane (TUN, routes, port range, IP-in-IP). Default true.
    #[serde(default = "default_true")]
    pub(crate) data_plane: bool,
    /// TUN device name. Default `"realm0"`.
    #[serde(default = "default_tun_name")]
    pub(crate) tun_name: String,
    /// TUN MTU. Default 1480 (1500 less the 20-byte IP-in-IP header).
    #[serde(default = "default_tun_mtu")]
    pub(crate) tun_mtu: u16,
    /// Send a full-sized TCP superpacket from the TUN as ONE IP-in-IP packet
    /// (fragmented by the kernel; the gateway reassembles it and cuts it into
    /// the same segments) instead of one tunnel packet per segment. Needs a
    /// gateway that does that (`realm gateway` does). Default true.
    #[serde(default = "default_true")]
    pub(crate) whole_superpackets: bool,
    /// Let the kernel encapsulate whole TCP superpackets (a tcx eBPF program
    /// on the TUN, `realm_io::offload`): they cross the private link as ONE
    /// GSO packet instead of ~45 fragments. Falls back to
    /// `whole_superpackets` (with a warning) where the kernel refuses it.
    /// Default true.
    #[serde(default = "default_true")]
    pub(crate) kernel_offload: bool,
    /// Outer source address of the tunnel. Default: the address the kernel
    /// picks towards the gateway.
    #[serde(default)]
    pub(crate) underlay_source: Option<std::net::Ipv4Addr>,
    /// Route 0.0.0.0/1 and 128.0.0.0/1 via the TUN while a binding is held.
    /// Default true.
    #[serde(default = "default_true")]
    pub(crate) manage_routes: bool,
    /// Set `net.ipv4.ip_local_port_range` to the leased ports. Default true.
    #[serde(default = "default_true")]
    pub(crate) manage_port_range: bool,
    /// The control socket (`realm ctl`, docs/ctl.md), mode 0600. Default
    /// `/run/realm/host.sock`.
    #[serde(default = "default_control_socket")]
    pub(crate) control_socket: PathBuf,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            log_level: default_log_level(),
            max_message_len: default_max_message_len(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            data_plane: true,
            tun_name: default_tun_name(),
            tun_mtu: default_tun_mtu(),
            whole_superpackets: true,
            kernel_offload: true,
            underlay_source: None,
            manage_routes: true,
            manage_port_range: true,
            control_socket: default_control_socket(),
        }
    }
}

fn default_control_socket() -> PathBuf {
    PathBuf::from(crate::ctl::default_socket(crate::ctl::Role::Host))
}
fn default_true() -> bool {
    true
}
fn default_tun_name() -> String {
    "realm0".to_owned()
}
fn default_tun_mtu() -> u16 {
    1480
}
fn default_log_level() -> String {
    "info".to_owned()
}
fn default_max_message_len() -> usize {
    65535
}
fn default_reconnect_min_ms() -> u64 {
    100
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}
fn default_connect_timeout_ms() -> u64 {
    5000
}
fn default_shutdown_grace_ms() -> u64 {
    1000
}

impl DaemonConfig {
    /// Parses a config file's text and checks it.
    pub(crate) fn from_toml(text: &str) -> anyhow::Result<DaemonConfig> {
        let config: DaemonConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The config file (if any) with the flags applied over it.
    pub(crate) fn from_args(args: &HostArgs) -> anyhow::Result<DaemonConfig> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                DaemonConfig::from_toml(&text)
                    .with_context(|| format!("config {}", path.display()))?
            }
            None => {
                let Some(gateway) = &args.gateway else {
                    bail!("give --config FILE or --gateway ADDRESS");
                };
                let mut config = DaemonConfig {
                    host: HostConfig::new(parse_gateway(gateway)?),
                    daemon: DaemonSettings::default(),
                };
                if args.ports.is_none() && args.spis.is_none() && args.listen.is_empty() {
                    config.host.bindings.push(BindingConfig::rsap_ip(8));
                }
                config
            }
        };
        if let Some(gateway) = &args.gateway {
            config.host.gateway = parse_gateway(gateway)?;
        }
        if args.udp {
            config.host.transport = Transport::Udp;
        }
        if let Some(ports) = args.ports {
            config.host.bindings.push(BindingConfig::rsap_ip(ports));
        }
        if let Some(spis) = args.spis {
            let mut b = BindingConfig::rsap_ip(0);
            b.method = Method::Rsipsec;
            b.ports = None;
            b.spis = Some(spis);
            config.host.bindings.push(b);
        }
        for port in &args.listen {
            config.host.bindings.push(BindingConfig::listen(*port));
        }
        if let Some(lease) = args.lease {
            for b in &mut config.host.bindings {
                b.lease_time = Some(lease);
            }
        }
        if let Some(tun) = &args.tun {
            config.daemon.tun_name.clone_from(tun);
        }
        if let Some(socket) = &args.control_socket {
            config.daemon.control_socket.clone_from(socket);
        }
        if args.no_data_plane {
            config.daemon.data_plane = false;
        }
        if args.no_kernel_offload {
            config.daemon.kernel_offload = false;
        }
        if let Some(level) = &args.log_level {
            config.daemon.log_level.clone_from(level);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.host.validate().context("[host]")?;
        let d = &self.daemon;
        if !(4..=65535).contains(&d.max_message_len) {
            bail!("[daemon] max_message_len must be 4..=65535");
        }
        if d.reconnect_min_ms == 0 || d.reconnect_min_ms > d.reconnect_max_ms {
            bail!("[daemon] reconnect_min_ms must be >= 1 and <= reconnect_max_ms");
        }
        if d.reconnect_max_ms > 86_400_000 || d.shutdown_grace_ms > 86_400_000 {
            bail!("[daemon] durations must be at most 86400000 (one day)");
        }
        if d.connect_timeout_ms == 0 || d.connect_timeout_ms > 86_400_000 {
            bail!("[daemon] connect_timeout_ms must be 1..=86400000");
        }
        if d.tun_name.is_empty() || d.tun_name.len() > 15 {
            bail!("[daemon] tun_name must be 1 to 15 bytes");
        }
        if d.tun_mtu < 576 {
            bail!("[daemon] tun_mtu must be at least 576");
        }
        if d.control_socket.as_os_str().is_empty() {
            bail!("[daemon] control_socket must not be empty");
        }
        Ok(())
    }
}

/// `IP` (port 4555) or `IP:PORT`.
fn parse_gateway(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = s
        .parse()
        .with_context(|| format!("--gateway {s}: expected IP or IP:PORT"))?;
    Ok(SocketAddr::new(ip, RSIP_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_loads() -> anyhow::Result<()> {
        let text = include_str!("../../../../examples/host.toml");
        let config = DaemonConfig::from_toml(text)?;
        assert_eq!(config.host.gateway, "10.0.0.1:4555".parse()?);
        assert_eq!(config.host.bindings.len(), 1);
        assert_eq!(config.daemon.log_level, "info");
        Ok(())
    }

    #[test]
    fn minimal_config_takes_defaults() -> anyhow::Result<()> {
        let config = DaemonConfig::from_toml("[host]\ngateway = \"10.0.0.1:4555\"\n")?;
        assert_eq!(config.host, HostConfig::new("10.0.0.1:4555".parse()?));
        assert_eq!(config.daemon.max_message_len, 65535);
        assert_eq!(config.daemon.reconnect_min_ms, 100);
        Ok(())
    }

    #[test]
    fn listen_bindings_and_control_socket() -> anyhow::Result<()> {
        let config = DaemonConfig::from_toml(
            "[host]\ngateway = \"10.0.0.1:4555\"\n\
             [[host.bindings]]\nkind = \"listen\"\nlocal_port = 8080\n\
             [daemon]\ncontrol_socket = \"/tmp/h.sock\"\n",
        )?;
        assert_eq!(config.host.bindings, vec![BindingConfig::listen(8080)]);
        assert_eq!(config.daemon.control_socket, PathBuf::from("/tmp/h.sock"));
        let defaults = DaemonConfig::from_toml("[host]\ngateway = \"10.0.0.1:4555\"\n")?;
        assert_eq!(
            defaults.daemon.control_socket,
            PathBuf::from("/run/realm/host.sock")
        );
        // A listen binding is RSAP-IP: no method.
        assert!(
            DaemonConfig::from_toml(
                "[host]\ngateway = \"10.0.0.1:4555\"\n\
                 [[host.bindings]]\nkind = \"listen\"\nmethod = \"rsa-ip\"\n",
            )
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(DaemonConfig::from_toml("[host]\ngateway = \"10.0.0.1:4555\"\nfoo = 1\n").is_err());
        assert!(
            DaemonConfig::from_toml("[host]\ngateway = \"10.0.0.1:4555\"\n[daemon]\nfoo = 1\n")
                .is_err()
        );
    }

    #[test]
    fn gateway_flag_defaults_the_port() -> anyhow::Result<()> {
        assert_eq!(parse_gateway("10.0.0.1")?, "10.0.0.1:4555".parse()?);
        assert_eq!(parse_gateway("10.0.0.1:9")?, "10.0.0.1:9".parse()?);
        assert!(parse_gateway("gw.example").is_err());
        Ok(())
    }
}
