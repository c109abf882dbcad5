//! The gateway's configuration, as the daemon reads it from TOML (every field
//! has a default; unknown fields are refused). The config reference is
//! generated from these doc comments: each states its default.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use realm_lease::{AddressConfig, Config as LeaseConfig, Quota, RSIP_PORT};
use realm_wire::rsip::{Method, TunnelKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::policy::{PortRange, Prefix, RemoteRule, RuleAction};
use crate::auth::SharedKey;

/// Local flow policy (RFC 3103 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalPolicy {
    /// Addresses and any number of ports per binding.
    Macro,
    /// Exactly one port per binding (no RSA-IP).
    Micro,
}

/// Remote flow policy (RFC 3103 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemotePolicy {
    /// Hosts name the remote address of each binding.
    Macro,
    /// Hosts name the remote address and ports of each binding.
    Micro,
    /// No remote policy: any remote peer.
    None,
}

/// One entry of the public pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    /// The public address, or a block as `"192.0.2.16/28"` (every address of
    /// the block, network and broadcast included; at most 65536). Required.
    pub addresses: Prefix,
    /// Whether the gateway itself uses the address (the SOHO case): then it
    /// is never leased whole (no RSA-IP), and RSIP's port 4555 and the
    /// gateway's `ephemeral_ports` are never leased on it. Default true.
    #[serde(default = "yes")]
    pub shared: bool,
    /// Leasable ports, before `exclude`. Default `["1024-65535"]`.
    #[serde(default = "default_ports")]
    pub ports: Vec<PortRange>,
    /// Ports never leased on these addresses, besides those `shared` takes
    /// out. Default none.
    #[serde(default)]
    pub exclude: Vec<PortRange>,
}

/// Per-host quotas (STYLE 9): a host asking for more gets the
/// `..._UNAVAILABLE` error of the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Ports held at once over all the host's bindings. Default 256.
    pub ports: u32,
    /// Whole addresses (RSA-IP bindings) held at once. Default 1.
    pub addresses: u32,
    /// SPIs held at once; 0 forbids RSIPSEC (IPSEC_UNALLOWED). Default 64.
    pub spis: u32,
    /// Bindings of any kind held at once. Default 64.
    pub bindings: u32,
}

impl Default for QuotaConfig {
    fn default() -> QuotaConfig {
        let q = Quota::default();
        QuotaConfig {
            ports: q.ports,
            addresses: q.addresses,
            spis: q.spis,
            bindings: q.bindings,
        }
    }
}

/// Who may LISTEN (RFC 3103 9.16, 10.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Whether LISTEN_REQUEST is supported at all (UNSUPPORTED_MESSAGE
    /// otherwise). Default true.
    pub enabled: bool,
    /// RFC 3103 10.6: under remote micro-flow policy, only these private
    /// host addresses may LISTEN ("administrative override"); others get
    /// LOCAL_ADDRPORT_UNALLOWED. Under other remote policies any registered
    /// host may. Default none.
    pub admin_override: Vec<Ipv4Addr>,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            enabled: true,
            admin_override: Vec::new(),
        }
    }
}

/// One host's signalling key (`docs/signalling-auth.md`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostKey {
    /// The host's private address. Required.
    pub host: Ipv4Addr,
    /// The key ID carried in the Authentication parameter. Required.
    pub key_id: u32,
    /// The shared secret, hex, at least 16 bytes. Required.
    pub secret_hex: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("host", &self.host)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Signalling authentication (RFC 3102 3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Per-host shared keys. A host with a key must sign every message (and
    /// gets signed answers); unsigned or badly signed messages from it are
    /// refused and change nothing. Default none.
    pub keys: Vec<HostKey>,
    /// Refuse every host without a key (REGISTRATION_DENIED). Default false.
    pub require: bool,
}

/// UDP signalling (RFC 3103 5, 10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpConfig {
    /// Whether UDP signalling is served; when false, UDP messages get
    /// USE_TCP. Default true.
    pub enabled: bool,
    /// How long an endpoint's "last message" buffer (answers to duplicates)
    /// is kept after its last message, seconds. Default 60.
    pub session_idle_secs: u32,
    /// Most "last message" buffers kept at once (the oldest is dropped).
    /// Only endpoints of registered hosts get one. Default 8192.
    pub max_sessions: u32,
    /// Return routability under pressure: while at least this many
    /// registrations were granted in the last second, a UDP REGISTER_REQUEST
    /// from an address with no registration (and no key) is answered
    /// USE_TCP. 0: never. Default 100.
    pub use_tcp_above_registrations_per_sec: u32,
    /// The same while the host table is at least this full, percent of
    /// `max_hosts`. 0 or over 100: never. Default 50.
    pub use_tcp_above_hosts_percent: u8,
}

impl Default for UdpConfig {
    fn default() -> UdpConfig {
        UdpConfig {
            enabled: true,
            session_idle_secs: 60,
            max_sessions: 8192,
            use_tcp_above_registrations_per_sec: 100,
            use_tcp_above_hosts_percent: 50,
        }
    }
}

/// The gateway engine's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The public pool: one shared address (SOHO) or several entries or
    /// blocks. Default none (the configuration is then refused).
    pub pool: Vec<PoolEntry>,
    /// The gateway's own ephemeral port range, never leased on `shared`
    /// addresses. Default `"49152-65535"`.
    pub ephemeral_ports: PortRange,
    /// The RSIP methods offered, in the order REGISTER_RESPONSE lists them.
    /// Default `["rsap-ip", "rsa-ip", "rsipsec"]`.
    pub methods: Vec<Method>,
    /// The tunnel types offered, in the order REGISTER_RESPONSE lists them;
    /// a request naming none gets IP-IP if offered, else the first.
    /// Default `["ip-ip"]`.
    pub tunnel_types: Vec<TunnelKind>,
    /// Local flow policy (RFC 3103 7.1). Default `"macro"`.
    pub local_flow_policy: LocalPolicy,
    /// Remote flow policy (RFC 3103 7.2). Default `"none"`.
    pub remote_flow_policy: RemotePolicy,
    /// A registration's lease, seconds (R, RFC 3103 6). Default 3600.
    pub registration_lease_secs: u32,
    /// A binding's lease when the host suggests none, seconds. Default 600.
    pub default_binding_lease_secs: u32,
    /// The longest binding lease granted or extended, seconds. Default 3600.
    pub max_binding_lease_secs: u32,
    /// Per-host quotas.
    pub quota: QuotaConfig,
    /// Most registrations at once (REGISTRATION_DENIED past it). Default 4096.
    pub max_hosts: u32,
    /// Most registrations from one private address at once. With 1, a
    /// REGISTER from a registered address gets ALREADY_REGISTERED with its
    /// client ID (RFC 3103 10.2.1); above 1, the extra ones get
    /// REGISTRATION_DENIED. Default 1.
    pub max_registrations_per_address: u32,
    /// Private addresses allowed to register; empty means any.
    /// Default empty.
    pub clients: Vec<Prefix>,
    /// How long freed (address, port), addresses and SPIs are held before
    /// reuse, seconds (RFC 3102 6.1: at least TCP TIME_WAIT). Default 120.
    pub time_wait_secs: u32,
    /// The SPIs that may be leased: `[first, last]`, first >= 256.
    /// Default `[256, 4294967295]`.
    pub spi_range: [u32; 2],
    /// Private addresses QUERY_REQUEST answers as local (indicator 1).
    /// Default none.
    pub local_addresses: Vec<IpAddr>,
    /// Private networks QUERY_REQUEST answers as local (indicator 2).
    /// Default none.
    pub local_networks: Vec<Prefix>,
    /// Remote flow rules, first match wins, checked under macro (address
    /// only) and micro (address and ports) remote policy. Default none.
    pub remote_rules: Vec<RemoteRule>,
    /// What a remote peer no rule matches gets. Default `"allow"`.
    pub remote_default: RuleAction,
    /// Private addresses allowed RSIPSEC; empty means any. Default empty.
    pub ipsec_clients: Vec<Prefix>,
    /// Who may LISTEN.
    pub listen: ListenConfig,
    /// Signalling authentication.
    pub auth: AuthConfig,
    /// UDP signalling.
    pub udp: UdpConfig,
    /// A tunnel endpoint other than the gateway, named in every assignment
    /// (RFC 3103 9.7.3). Default none (the gateway itself).
    pub tunnel_endpoint: Option<Ipv4Addr>,
}

fn yes() -> bool {
    true
}

fn default_ports() -> Vec<PortRange> {
    vec![PortRange::new(1024, u16::MAX)]
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            pool: Vec::new(),
            ephemeral_ports: PortRange::new(49152, u16::MAX),
            methods: vec![Method::RsapIp, Method::RsaIp, Method::Rsipsec],
            tunnel_types: vec![TunnelKind::IpIp],
            local_flow_policy: LocalPolicy::Macro,
            remote_flow_policy: RemotePolicy::None,
            registration_lease_secs: 3600,
            default_binding_lease_secs: 600,
            max_binding_lease_secs: 3600,
            quota: QuotaConfig::default(),
            max_hosts: 4096,
            max_registrations_per_address: 1,
            clients: Vec::new(),
            time_wait_secs: 120,
            spi_range: [256, u32::MAX],
            local_addresses: Vec::new(),
            local_networks: Vec::new(),
            remote_rules: Vec::new(),
            remote_default: RuleAction::Allow,
            ipsec_clients: Vec::new(),
            listen: ListenConfig::default(),
            auth: AuthConfig::default(),
            udp: UdpConfig::default(),
            tunnel_endpoint: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The lease manager refused the pool, lease times or SPI range.
    #[error("lease configuration: {0}")]
    Lease(#[from] realm_lease::ConfigError),
    /// A pool entry is an IPv6 prefix, or a block larger than 65536 addresses.
    #[error("pool entry {0}: must be an IPv4 address or block of at most 65536")]
    BadPoolEntry(String),
    /// No method or no tunnel type is offered.
    #[error("at least one RSIP method and one tunnel type must be offered")]
    NothingOffered,
    /// A lease time of 0 s.
    #[error("lease times must be at least 1 s")]
    BadLeaseTimes,
    /// `max_registrations_per_address` is 0.
    #[error("max_registrations_per_address must be at least 1")]
    BadRegistrationCap,
    /// A host key is not hex, shorter than 16 bytes, or listed twice.
    #[error("auth key for {0}: secret must be hex of at least 16 bytes, one key per host")]
    BadKey(Ipv4Addr),
    /// A UDP limit is 0.
    #[error("udp.session_idle_secs and udp.max_sessions must be at least 1")]
    BadUdpLimits,
}

/// The checked configuration, with what the engine derives from it.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) lease: LeaseConfig,
    pub(crate) keys: BTreeMap<Ipv4Addr, SharedKey>,
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl GatewayConfig {
    /// Checks the configuration and derives the lease manager's.
    pub(crate) fn check(&self) -> Result<Checked, ConfigError> {
        if self.methods.is_empty() || self.tunnel_types.is_empty() {
            return Err(ConfigError::NothingOffered);
        }
        if self.registration_lease_secs == 0
            || self.default_binding_lease_secs == 0
            || self.max_binding_lease_secs == 0
        {
            return Err(ConfigError::BadLeaseTimes);
        }
        if self.max_registrations_per_address == 0 {
            return Err(ConfigError::BadRegistrationCap);
        }
        if self.udp.session_idle_secs == 0 || self.udp.max_sessions == 0 {
            return Err(ConfigError::BadUdpLimits);
        }
        let mut pool = Vec::new();
        for entry in &self.pool {
            let bad = || ConfigError::BadPoolEntry(entry.addresses.to_string());
            let IpAddr::V4(base) = entry.addresses.addr else {
                return Err(bad());
            };
            if entry.addresses.len < 16 {
                return Err(bad());
            }
            let count = 1u32 << (32 - u32::from(entry.addresses.len));
            let base = u32::from(base) & !(count.wrapping_sub(1));
            for i in 0..count {
                let address = Ipv4Addr::from(base.wrapping_add(i));
                let mut excluded: Vec<_> = entry.exclude.iter().map(|r| r.first..=r.last).collect();
                if entry.shared {
                    excluded.push(RSIP_PORT..=RSIP_PORT);
                    excluded.push(self.ephemeral_ports.first..=self.ephemeral_ports.last);
                }
                pool.push(AddressConfig {
                    address,
                    whole_lease: !entry.shared,
                    ports: entry.ports.iter().map(|r| r.first..=r.last).collect(),
                    excluded,
                });
            }
        }
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        let mut lease = LeaseConfig::new(pool);
        lease.spis = self.spi_range[0]..=self.spi_range[1];
        lease.quota = Quota {
            ports: self.quota.ports,
            addresses: self.quota.addresses,
            spis: self.quota.spis,
            bindings: self.quota.bindings,
        };
        lease.max_hosts = self.max_hosts;
        lease.registration_lease = secs(self.registration_lease_secs);
        lease.default_lease = secs(self.default_binding_lease_secs);
        lease.max_lease = secs(self.max_binding_lease_secs);
        lease.time_wait = secs(self.time_wait_secs);
        lease.validate()?;
        let mut keys = BTreeMap::new();
        for k in &self.auth.keys {
            let secret = decode_hex(&k.secret_hex)
                .filter(|s| s.len() >= 16)
                .ok_or(ConfigError::BadKey(k.host))?;
            if keys
                .insert(k.host, SharedKey::new(k.key_id, &secret))
                .is_some()
            {
                return Err(ConfigError::BadKey(k.host));
            }
        }
        Ok(Checked { lease, keys })
    }

    /// The lease manager's configuration derived from this one.
    pub fn lease_config(&self) -> Result<LeaseConfig, ConfigError> {
        self.check().map(|c| c.lease)
    }
}
