//! What the gateway hands the daemon: transmissions, events, and the records
//! a crash-safe store keeps to rebuild the engine ([`PersistedState`]).

use std::net::{Ipv4Addr, SocketAddrV4};

use realm_lease::{BindId, ClientId, Method, QuarantineRecord, Timestamp};
use realm_wire::rsip::{BindingKind, ErrorCode, Transport, TunnelKind};
use serde::{Deserialize, Serialize};

use super::policy::RemoteSpec;

/// The daemon's name for one accepted TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

/// Where a transmission goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Destination {
    /// A UDP datagram to this address (from the gateway's port 4555).
    Udp(SocketAddrV4),
    /// One message on this TCP connection.
    Tcp(ConnectionId),
}

/// One RSIP message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: Destination,
    /// The whole message.
    pub bytes: Vec<u8>,
}

/// A registered host, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostRecord {
    /// Its client ID.
    pub client: ClientId,
    /// Its private address (requests naming the client must come from it).
    pub private_address: Ipv4Addr,
    /// TCP or UDP.
    pub transport: Transport,
    /// For UDP, the port its answers and asynchronous messages go to.
    pub udp_port: Option<u16>,
    /// When it registered.
    pub registered_at: Timestamp,
    /// When the registration lapses (R, RFC 3103 6).
    pub expires_at: Timestamp,
    /// The last signalling-authentication replay counter accepted from it
    /// (0 when it signs nothing).
    pub auth_counter: u64,
}

/// A live binding with everything the data plane and the store need.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BindingRecord {
    /// Its bind ID.
    pub bind: BindId,
    /// Its host.
    pub client: ClientId,
    /// The host's private address.
    pub private_address: Ipv4Addr,
    /// RSA-IP, RSAP-IP or RSIPSEC.
    pub method: Method,
    /// Assign or listen.
    pub kind: BindingKind,
    /// The public address.
    pub public_address: Ipv4Addr,
    /// The public ports ([`realm_lease::PortSet::None`]: RSA-IP, or
    /// RSIPSEC "don't need").
    pub ports: realm_lease::PortSet,
    /// The SPIs (RSIPSEC).
    pub spis: realm_lease::SpiSet,
    /// The remote side allowed (flow policy state, RFC 3103 7.3.3).
    pub remote: RemoteSpec,
    /// The tunnel between host and gateway.
    pub tunnel: TunnelKind,
    /// The lease granted, seconds (the answer's Lease Time).
    pub lease_secs: u32,
    /// When the lease ends (Bi).
    pub expires_at: Timestamp,
}

impl BindingRecord {
    pub(crate) fn lease_record(&self) -> realm_lease::BindingRecord {
        realm_lease::BindingRecord {
            bind: self.bind,
            client: self.client,
            method: self.method,
            address: self.public_address,
            ports: self.ports.clone(),
            spis: self.spis.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// Why a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeregisterReason {
    /// The host sent DE-REGISTER_REQUEST.
    Requested,
    /// Its lease lapsed (DE-REGISTER_RESPONSE sent, RFC 3103 9.5.3).
    Expired,
    /// `realm ctl` ([`super::Gateway::admin_deregister`]).
    Admin,
    /// Dropped on restore: the record did not fit the state or configuration.
    Resync,
}

/// Why a binding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeReason {
    /// The host sent FREE_REQUEST.
    Requested,
    /// Its lease ended (FREE_RESPONSE sent, RFC 3103 9.13.1).
    Expired,
    /// `realm ctl` ([`super::Gateway::admin_free`]).
    Admin,
    /// Its host de-registered or lapsed.
    Deregistered,
    /// Dropped on restore: the record did not fit the state or configuration.
    Resync,
}

/// Everything the daemon must persist, log or count, in order.
///
/// **Durability contract:** the events a `handle_*` or `admin_*` call
/// produces describe state the host is about to be told about; persist them
/// all (drain [`super::Gateway::poll_event`]) before sending that call's
/// transmissions. [`super::Gateway::poll_transmit`] returns nothing while an
/// event is pending, so the natural loop (events, then transmits) keeps it.
/// Folding every event into a [`PersistedState`] with
/// [`PersistedState::apply`] yields what [`super::Gateway::restore`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A host registered.
    Registered {
        /// Its record.
        host: HostRecord,
    },
    /// A host's record changed (UDP reply port, replay counter, or its
    /// registration lease pushed later by a binding).
    HostUpdated {
        /// The new record.
        host: HostRecord,
    },
    /// A registration ended (its bindings' [`Event::BindingFreed`] come first).
    Deregistered {
        /// The host as it was.
        host: HostRecord,
        /// Why.
        reason: DeregisterReason,
    },
    /// A binding was granted (ASSIGN_RESPONSE_* or LISTEN_RESPONSE).
    BindingGranted {
        /// The binding.
        binding: BindingRecord,
        /// Its host's registration lapse after R = max(R, Bi).
        registration_expires_at: Timestamp,
    },
    /// A binding's lease was extended (EXTEND_RESPONSE).
    BindingExtended {
        /// The binding with its new lease.
        binding: BindingRecord,
        /// Its host's registration lapse after R = max(R, Bi).
        registration_expires_at: Timestamp,
    },
    /// A binding ended; its resources are held until `held_until`.
    BindingFreed {
        /// The binding as it was.
        binding: BindingRecord,
        /// Why.
        reason: FreeReason,
        /// End of its TIME_WAIT quarantine.
        held_until: Timestamp,
    },
    /// An ERROR_RESPONSE was sent (or would have been, had the host a
    /// connection).
    ErrorSent {
        /// To whom.
        to: Destination,
        /// The code.
        code: ErrorCode,
        /// The client ID it carried.
        client: Option<ClientId>,
    },
}

/// The state a store keeps: fold every [`Event`] in with
/// [`PersistedState::apply`], hand it to [`super::Gateway::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    /// Registered hosts.
    pub hosts: Vec<HostRecord>,
    /// Live bindings.
    pub bindings: Vec<BindingRecord>,
    /// Resources in TIME_WAIT quarantine.
    pub quarantine: Vec<QuarantineRecord>,
}

impl PersistedState {
    fn upsert_host(&mut self, host: &HostRecord) {
        match self.hosts.iter_mut().find(|h| h.client == host.client) {
            Some(h) => *h = host.clone(),
            None => self.hosts.push(host.clone()),
        }
    }

    fn upsert_binding(&mut self, b: &BindingRecord, registration_expires_at: Timestamp) {
        match self.bindings.iter_mut().find(|x| x.bind == b.bind) {
            Some(x) => *x = b.clone(),
            None => self.bindings.push(b.clone()),
        }
        if let Some(h) = self.hosts.iter_mut().find(|h| h.client == b.client) {
            h.expires_at = registration_expires_at;
        }
    }

    /// Applies one event (the reference fold; a store may keep the same
    /// records in its own tables).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Registered { host } | Event::HostUpdated { host } => self.upsert_host(host),
            Event::Deregistered { host, .. } => {
                self.hosts.retain(|h| h.client != host.client);
                self.bindings.retain(|b| b.client != host.client);
            }
            Event::BindingGranted {
                binding,
                registration_expires_at,
            }
            | Event::BindingExtended {
                binding,
                registration_expires_at,
            } => self.upsert_binding(binding, *registration_expires_at),
            Event::BindingFreed {
                binding,
                held_until,
                ..
            } => {
                self.bindings.retain(|b| b.bind != binding.bind);
                self.quarantine.retain(|q| q.bind != binding.bind);
                self.quarantine.push(QuarantineRecord {
                    bind: binding.bind,
                    method: binding.method,
                    address: binding.public_address,
                    ports: binding.ports.clone(),
                    spis: binding.spis.clone(),
                    until: *held_until,
                });
            }
            Event::ErrorSent { .. } => {}
        }
    }

    /// Drops quarantine records that ended at or before `now` (the store may
    /// call it now and then; [`super::Gateway::restore`] does it anyway).
    pub fn prune(&mut self, now: Timestamp) {
        self.quarantine.retain(|q| q.until > now);
    }
}

/// What [`super::Gateway::restore`] could not take back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// Hosts restored.
    pub hosts: usize,
    /// Bindings restored.
    pub bindings: usize,
    /// Quarantine records restored.
    pub quarantine: usize,
    /// Quarantine records dropped because their hold had ended.
    pub quarantine_ended: usize,
    /// Registrations that lapsed while the gateway was down (ended, with
    /// [`DeregisterReason::Expired`] events).
    pub expired_hosts: Vec<ClientId>,
    /// Bindings whose lease ended while the gateway was down (ended, with
    /// [`FreeReason::Expired`] events).
    pub expired_bindings: Vec<BindId>,
    /// Records refused (duplicate, conflicting, or not allowed by the
    /// current configuration), with the reason; ended with `Resync` events.
    pub dropped: Vec<String>,
}

/// Why a [`BindingRecord`] has no data plane form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataPlaneMappingError {
    /// The remote side is a name or an IPv6 address: the IPv4 data plane
    /// cannot check packets against it, so the binding carries no traffic
    /// (refusing is the safe side of a flow policy, RFC 3103 s7.2).
    #[error("remote {0:?} cannot be enforced by the IPv4 data plane")]
    UnenforceableRemote(super::RemoteAddress),
    /// L2TP tunnels are not carried.
    #[error("tunnel type {0:?} is not carried by the data plane")]
    Tunnel(TunnelKind),
}

impl BindingRecord {
    /// The binding as the data plane's table holds it
    /// ([`crate::dataplane::DataPlane::insert`]): what is leased on which
    /// public address, through which tunnel (the host's private address is
    /// its tunnel endpoint, RFC 3103 s8.6), under which remote policy.
    pub fn to_data_plane(&self) -> Result<crate::dataplane::Binding, DataPlaneMappingError> {
        use crate::dataplane::{Binding, RemoteFlow, Resources, Tunnel};
        use realm_lease::PortSet;
        use realm_wire::rsip::TunnelType;

        use super::{RemoteAddress, RemotePorts};

        let kind = match self.tunnel {
            TunnelKind::IpIp => TunnelType::IpIp,
            TunnelKind::Gre => TunnelType::Gre,
            TunnelKind::L2tp => return Err(DataPlaneMappingError::Tunnel(self.tunnel)),
        };
        let resources = match (self.method, self.kind) {
            (Method::RsaIp, _) => Resources::WholeAddress,
            (_, BindingKind::Listen) => Resources::Listen(self.ports.clone()),
            (Method::RsapIp, BindingKind::Assign) => Resources::Ports(self.ports.clone()),
            (Method::Rsipsec, BindingKind::Assign) => Resources::Ipsec {
                spis: self.spis.clone(),
                ports: self.ports.clone(),
            },
        };
        let remote = match &self.remote.address {
            RemoteAddress::Any => RemoteFlow::Any,
            RemoteAddress::Ipv4(a) => match &self.remote.ports {
                RemotePorts::Any { .. } | RemotePorts::DontNeed => RemoteFlow::Address(*a),
                RemotePorts::Range { first, count } => RemoteFlow::AddressPorts {
                    address: *a,
                    ports: PortSet::Range {
                        first: *first,
                        count: u16::from(*count),
                    },
                },
                RemotePorts::List(ports) => RemoteFlow::AddressPorts {
                    address: *a,
                    ports: PortSet::List(ports.clone()),
                },
            },
            other => return Err(DataPlaneMappingError::UnenforceableRemote(other.clone())),
        };
        Ok(Binding {
            bind: self.bind,
            host: self.client,
            tunnel: Tunnel {
                endpoint: self.private_address,
                kind,
            },
            address: self.public_address,
            resources,
            remote,
        })
    }
}
