//! The host's configuration: which gateway, over which transport, which
//! bindings to hold, and the timing of retransmissions, extensions and retries.
//!
//! Every field has a default except [`HostConfig::gateway`]; unknown fields are
//! refused. Durations carry their unit in the field name.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use realm_wire::rsip::{
    Address, BindingKind, Method, Ports, RsipMethod, Spis, Transport, TunnelKind, TunnelType,
};
use serde::Deserialize;
use thiserror::Error;

use super::types::{BindingRequest, ListenRequest, Resources};
use crate::auth::SharedKey;

/// Upper bounds, so that no deadline can overflow an `Instant`.
const MAX_INITIAL_TIMEOUT_US: u64 = 60_000_000;
const MAX_ATTEMPTS: u32 = 16;
const MAX_DURATION_MS: u64 = 86_400_000;

/// The host engine's configuration (the `[host]` section of the daemon's
/// config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Signalling transport, `"tcp"` or `"udp"`. Default `"tcp"` (RFC 3103 5:
    /// hosts SHOULD support TCP). It cannot change during a registration.
    #[serde(default)]
    pub transport: Transport,
    /// The gateway's signalling address, e.g. `"10.0.0.1:4555"`. Required. The
    /// engine sends everything to this one gateway; the daemon opens the socket.
    pub gateway: SocketAddr,
    /// Bindings the host acquires after registering and holds (extends) for as
    /// long as it runs. Default: none (the host only registers and serves the
    /// library API).
    #[serde(default)]
    pub bindings: Vec<BindingConfig>,
    /// When to ask for an extension, as a fraction of each lease: 0.0 < x <
    /// 1.0. Default 0.667 (at two thirds of the lease, as DHCP renews at T1).
    #[serde(default = "default_extend_at")]
    pub extend_at: f64,
    /// UDP retransmission (RFC 3103 5). Ignored over TCP.
    #[serde(default)]
    pub retransmit: RetransmitConfig,
    /// Over TCP: how long to wait for an answer before raising
    /// `GatewayUnreachable` (the daemon should then reconnect). At most one
    /// day. Default 10000.
    #[serde(default = "default_response_timeout_ms")]
    pub tcp_response_timeout_ms: u64,
    /// The pause before trying again after the gateway was unreachable, after
    /// a refused registration, after the gateway de-registered the host, or
    /// before re-acquiring a configured binding that was refused, revoked or
    /// expired. At most one day. Default 5000.
    #[serde(default = "default_retry_pause_ms")]
    pub retry_pause_ms: u64,
    /// How long `shutdown` waits for the DE-REGISTER_RESPONSE (and for an
    /// outstanding request to finish first) before giving up. At most one
    /// day. Default 2000.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Most library requests that may wait in the queue (DoS bound on the
    /// caller; STYLE 9). Beyond it, requests are refused with
    /// `HostError::QueueFull`. Default 1024.
    #[serde(default = "default_max_queued")]
    pub max_queued_requests: usize,
    /// Signalling authentication (RFC 3102 3.3; `docs/signalling-auth.md`):
    /// with a key, the host signs every message and accepts only gateway
    /// messages signed with the same key and a fresh replay counter. Default
    /// none (nothing signed, nothing checked).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
}

/// The host's signalling key, as the gateway lists it for this host.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The key ID carried in the Authentication parameter. Required.
    pub key_id: u32,
    /// The shared secret, hex, at least 16 bytes. Required.
    pub secret_hex: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("AuthConfig")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// The key, if the secret is hex of at least 16 bytes.
    pub fn key(&self) -> Option<SharedKey> {
        let secret = decode_hex(&self.secret_hex)?;
        (secret.len() >= 16).then(|| SharedKey::new(self.key_id, &secret))
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// UDP retransmission parameters (RFC 3103 5: "binary exponential backoff
/// scheme with an initial duration of 12.5 ms, and a maximum of six retries
/// (seven total attempts before failure)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetransmitConfig {
    /// The first timeout, microseconds, 1 to 60000000. Default 12500 (12.5
    /// ms). Each further timeout doubles.
    #[serde(default = "default_initial_timeout_us")]
    pub initial_timeout_us: u64,
    /// Transmissions of one message before the gateway is declared
    /// unreachable, first included, 1 to 16. Default 7.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            initial_timeout_us: default_initial_timeout_us(),
            max_attempts: default_max_attempts(),
        }
    }
}

/// A binding the host acquires and holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// `"assign"` or `"listen"`. Default `"assign"`. A LISTEN binding is
    /// RSAP-IP (`method` must be left at its default) and usually names
    /// `local_port`.
    #[serde(default)]
    pub kind: BindingKind,
    /// `"rsap-ip"`, `"rsa-ip"` or `"rsipsec"`. Default `"rsap-ip"`.
    #[serde(default = "default_method")]
    pub method: Method,
    /// Ports wanted, 1-255 ("don't care" which ones). RSAP-IP: default 1.
    /// RSIPSEC: default 0, the "don't need" value (RFC 3104 6.2). Not allowed
    /// for RSA-IP.
    #[serde(default)]
    pub ports: Option<u8>,
    /// RSIPSEC only: SPIs wanted ("don't care" which), >= 1. Default 1.
    #[serde(default)]
    pub spis: Option<u16>,
    /// A specific public address to ask for. Default: "don't care".
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    /// RSAP-IP and LISTEN: one specific public port to ask for, instead of
    /// `ports` "don't care" ones (RFC 3103 9.8.3, 9.16.3). Default: none.
    #[serde(default)]
    pub local_port: Option<u16>,
    /// The remote address this binding will reach, required by a gateway with
    /// macro- or micro-flow remote policy (RFC 3103 9.8.3). Default: "don't care".
    #[serde(default)]
    pub remote_address: Option<IpAddr>,
    /// The remote port, required with micro-flow remote policy. Default:
    /// "don't care".
    #[serde(default)]
    pub remote_port: Option<u16>,
    /// The lease to suggest, seconds (in the ASSIGN and every EXTEND).
    /// Default: none (the gateway's choice).
    #[serde(default)]
    pub lease_time: Option<u32>,
    /// The tunnel type to ask for, `"ip-ip"`, `"gre"` or `"l2tp"`. Default:
    /// none (IP-IP is assumed, RFC 3103 9.3.3).
    #[serde(default)]
    pub tunnel_type: Option<TunnelKind>,
}

/// A configuration the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `extend_at` is not strictly between 0 and 1.
    #[error("extend_at must be strictly between 0 and 1")]
    ExtendAt,
    /// A retransmission parameter is out of range.
    #[error(
        "retransmit.initial_timeout_us must be 1..=60000000 and retransmit.max_attempts 1..=16"
    )]
    Retransmit,
    /// A duration is above one day.
    #[error("{0} must be at most 86400000 (one day)")]
    TooLong(&'static str),
    /// `max_queued_requests` is zero.
    #[error("max_queued_requests must be at least 1")]
    QueueBound,
    /// The auth secret is not hex of at least 16 bytes.
    #[error("auth.secret_hex must be hex of at least 16 bytes")]
    AuthKey,
    /// A configured binding is inconsistent.
    #[error("binding {index}: {reason}")]
    Binding {
        /// Its position in `bindings`.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl HostConfig {
    /// A configuration with every default, for the gateway at `gateway`.
    pub fn new(gateway: SocketAddr) -> HostConfig {
        HostConfig {
            transport: Transport::default(),
            gateway,
            bindings: Vec::new(),
            extend_at: default_extend_at(),
            retransmit: RetransmitConfig::default(),
            tcp_response_timeout_ms: default_response_timeout_ms(),
            retry_pause_ms: default_retry_pause_ms(),
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
            max_queued_requests: default_max_queued(),
            auth: None,
        }
    }

    /// Checks the values serde cannot check; [`super::Host::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.extend_at > 0.0 && self.extend_at < 1.0) {
            return Err(ConfigError::ExtendAt);
        }
        let r = &self.retransmit;
        if !(1..=MAX_INITIAL_TIMEOUT_US).contains(&r.initial_timeout_us)
            || !(1..=MAX_ATTEMPTS).contains(&r.max_attempts)
        {
            return Err(ConfigError::Retransmit);
        }
        for (name, ms) in [
            ("tcp_response_timeout_ms", self.tcp_response_timeout_ms),
            ("retry_pause_ms", self.retry_pause_ms),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms),
        ] {
            if ms > MAX_DURATION_MS {
                return Err(ConfigError::TooLong(name));
            }
        }
        if self.max_queued_requests == 0 {
            return Err(ConfigError::QueueBound);
        }
        if let Some(auth) = &self.auth
            && auth.key().is_none()
        {
            return Err(ConfigError::AuthKey);
        }
        for (index, b) in self.bindings.iter().enumerate() {
            b.check()
                .map_err(|reason| ConfigError::Binding { index, reason })?;
        }
        Ok(())
    }

    pub(crate) fn retry_pause(&self) -> Duration {
        Duration::from_millis(self.retry_pause_ms)
    }

    pub(crate) fn initial_timeout(&self) -> Duration {
        Duration::from_micros(self.retransmit.initial_timeout_us)
    }
}

impl BindingConfig {
    /// A configured RSAP-IP binding of `ports` "don't care" ports.
    pub fn rsap_ip(ports: u8) -> BindingConfig {
        BindingConfig {
            kind: BindingKind::Assign,
            method: Method::RsapIp,
            ports: Some(ports),
            spis: None,
            local_address: None,
            local_port: None,
            remote_address: None,
            remote_port: None,
            lease_time: None,
            tunnel_type: None,
        }
    }

    /// A configured LISTEN binding for public `port` (RFC 3103 9.16).
    pub fn listen(port: u16) -> BindingConfig {
        BindingConfig {
            kind: BindingKind::Listen,
            ports: None,
            local_port: Some(port),
            ..BindingConfig::rsap_ip(1)
        }
    }

    /// Checks the binding whatever its kind.
    pub fn check(&self) -> Result<(), &'static str> {
        match self.kind {
            BindingKind::Assign => self.to_request().map(drop),
            BindingKind::Listen => self.to_listen().map(drop),
        }
    }

    /// The local ports asked for: `local_port`, else `ports` "don't care" ones.
    fn local_ports(&self, default_count: u8) -> Result<Ports, &'static str> {
        match (self.local_port, self.ports) {
            (Some(_), Some(_)) => Err("give ports or local_port, not both"),
            (Some(0), None) => Err("local_port must not be 0"),
            (Some(port), None) => Ok(Ports::single(port)),
            (None, count) => match count.unwrap_or(default_count) {
                0 => Err("rsap-ip needs at least one port"),
                count => Ok(Ports::DontCare { count }),
            },
        }
    }

    fn remote(&self) -> Result<(Address, Ports), &'static str> {
        if self.remote_port.is_some() && self.remote_address.is_none() {
            return Err("remote_port needs remote_address");
        }
        let remote_ports = match self.remote_port {
            Some(p) => Ports::single(p),
            None => Ports::DONT_CARE_ONE,
        };
        let remote_address = self
            .remote_address
            .map_or(Address::DONT_CARE_V4, ip_address);
        Ok((remote_address, remote_ports))
    }

    /// The LISTEN_REQUEST a `kind = "listen"` binding stands for.
    pub fn to_listen(&self) -> Result<ListenRequest, &'static str> {
        if self.kind != BindingKind::Listen {
            return Err("not a listen binding");
        }
        if self.method != Method::RsapIp || self.spis.is_some() {
            return Err("a listen binding is rsap-ip: no method or spis");
        }
        let (remote_address, remote_ports) = self.remote()?;
        Ok(ListenRequest {
            local_address: self.local_address.map_or(Address::DONT_CARE_V4, ip_address),
            local_ports: self.local_ports(1)?,
            remote_address,
            remote_ports,
            lease_time: self.lease_time,
            tunnel_types: self.tunnel_type.map(TunnelType::from).into_iter().collect(),
        })
    }

    /// The ASSIGN request a `kind = "assign"` binding stands for.
    pub fn to_request(&self) -> Result<BindingRequest, &'static str> {
        if self.kind != BindingKind::Assign {
            return Err("not an assign binding");
        }
        let resources = match self.method {
            Method::RsapIp => {
                if self.spis.is_some() {
                    return Err("spis is for rsipsec only");
                }
                Resources::Ports(self.local_ports(1)?)
            }
            Method::RsaIp => {
                if self.spis.is_some() || self.ports.is_some() || self.local_port.is_some() {
                    return Err("rsa-ip leases a whole address: no ports or spis");
                }
                Resources::Address
            }
            Method::Rsipsec => {
                if self.local_port.is_some() {
                    return Err("local_port is for rsap-ip and listen bindings");
                }
                let ports = match self.ports.unwrap_or(0) {
                    0 => Ports::DontNeed,
                    count => Ports::DontCare { count },
                };
                match self.spis.unwrap_or(1) {
                    0 => return Err("rsipsec needs at least one SPI"),
                    count => Resources::Ipsec {
                        ports,
                        spis: Spis::DontCare { count },
                    },
                }
            }
        };
        let (remote_address, remote_ports) = self.remote()?;
        Ok(BindingRequest {
            resources,
            local_address: self.local_address.map_or(Address::DONT_CARE_V4, ip_address),
            remote_address,
            remote_ports,
            lease_time: self.lease_time,
            tunnel_type: self.tunnel_type.map(TunnelType::from),
        })
    }

    /// The RSIP method of this binding.
    pub fn rsip_method(&self) -> RsipMethod {
        RsipMethod::from(self.method)
    }
}

/// An IP address as an Address parameter.
pub(crate) fn ip_address(ip: IpAddr) -> Address {
    match ip {
        IpAddr::V4(a) => Address::Ipv4(a),
        IpAddr::V6(a) => Address::Ipv6(a),
    }
}

fn default_extend_at() -> f64 {
    0.667
}
fn default_response_timeout_ms() -> u64 {
    10_000
}
fn default_retry_pause_ms() -> u64 {
    5_000
}
fn default_shutdown_timeout_ms() -> u64 {
    2_000
}
fn default_max_queued() -> usize {
    1024
}
fn default_initial_timeout_us() -> u64 {
    12_500
}
fn default_max_attempts() -> u32 {
    7
}
fn default_method() -> Method {
    Method::RsapIp
}
