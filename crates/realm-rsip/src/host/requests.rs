//! The library API: what the host is asked for (bindings, listens, queries,
//! extensions, frees, shutdown), checked and queued, and the wire requests
//! each acquisition becomes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use realm_wire::rsip::{
    Address, BindId, ClientId, DecodeError, Flow, Message, Ports, QueryTuple, RequestOptions, Spi,
    Spis,
};

use super::config::ip_address;
use super::timer::Timer;
use super::{
    BindingRequest, Held, Host, HostError, HostEvent, Lifecycle, ListenRequest, Op, Origin,
    RequestError, RequestId, Resources, SlotState, Spec,
};

impl Host {
    /// Asks for a binding. The answer is a [`HostEvent::BindingGranted`] whose
    /// binding carries the returned `RequestId`, or a
    /// [`HostEvent::RequestFailed`].
    pub fn request(&mut self, now: Instant, req: BindingRequest) -> Result<RequestId, HostError> {
        self.acquire(now, Spec::Assign(req))
    }

    /// Queues an application's ASSIGN or LISTEN, checked against the grammar
    /// first so a bad request fails here, not at the gateway.
    fn acquire(&mut self, now: Instant, spec: Spec) -> Result<RequestId, HostError> {
        let spec = Box::new(spec);
        check(&build_acquire(&spec, ClientId(0), Some(1)))?;
        let request = self.admit()?;
        self.queue.push_back(Op::Acquire {
            request,
            origin: Origin::App,
            spec,
            fallback: None,
        });
        self.pump(now);
        Ok(request)
    }

    /// RSAP-IP: `count` ports, any (the gateway picks a block).
    pub fn request_ports(&mut self, now: Instant, count: u8) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::ports(count))
    }

    /// RSAP-IP: these ports (`Ports::Range` or `Ports::List`).
    pub fn request_specific_ports(
        &mut self,
        now: Instant,
        ports: Ports,
    ) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::specific_ports(ports))
    }

    /// RSIPSEC: SPIs, "don't care" (`Spis::DontCare { count }`) or suggested,
    /// no ports (RFC 3104 6.2).
    pub fn request_spis(&mut self, now: Instant, spis: Spis) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::spis(spis))
    }

    /// LISTEN_REQUEST (RFC 3103 9.16): the answer is a `BindingGranted` with
    /// `listen: true`, or `RequestFailed`.
    pub fn listen(&mut self, now: Instant, req: ListenRequest) -> Result<RequestId, HostError> {
        self.acquire(now, Spec::Listen(req))
    }

    /// Is `ip` local (reach it directly) or remote (through RSIP)? The answer
    /// is a [`HostEvent::QueryAnswered`] (see [`QueryAnswer::is_local`]).
    pub fn query(&mut self, now: Instant, ip: IpAddr) -> Result<RequestId, HostError> {
        self.query_tuples(now, vec![QueryTuple::address(ip_address(ip))])
    }

    /// Is this network local? `netmask` is an IPv4 netmask, or for an IPv6
    /// network an IPv6 address used as mask.
    pub fn query_network(
        &mut self,
        now: Instant,
        network: IpAddr,
        netmask: IpAddr,
    ) -> Result<RequestId, HostError> {
        let mask = match netmask {
            IpAddr::V4(m) => Address::Ipv4Netmask(m),
            IpAddr::V6(m) => Address::Ipv6(m),
        };
        self.query_tuples(now, vec![QueryTuple::network(ip_address(network), mask)])
    }

    /// A QUERY_REQUEST with these tuples (none: "everything the gateway is
    /// willing to tell", RFC 3103 9.14.3).
    pub fn query_tuples(
        &mut self,
        now: Instant,
        tuples: Vec<QueryTuple>,
    ) -> Result<RequestId, HostError> {
        check(&Message::query_request(ClientId(0), Some(1), &tuples))?;
        let request = self.admit()?;
        self.queue.push_back(Op::Query { request, tuples });
        self.pump(now);
        Ok(request)
    }

    /// Asks the gateway now to extend a binding's lease (RFC 3103 9.10), as
    /// the engine does by itself at `extend_at` of each lease. `lease_time`,
    /// if given, becomes the lease suggested for this binding from now on
    /// (this and every later EXTEND_REQUEST). The answer is a
    /// [`HostEvent::BindingExtended`]; or, when the gateway refuses, a
    /// [`HostEvent::GatewayError`] naming the binding (it is kept until its
    /// lease ends, RFC 3103 9.10.3) or a [`HostEvent::BindingRevoked`]
    /// (BAD_BIND_ID, or an answering FREE_RESPONSE). An extension already
    /// waiting is not queued twice.
    pub fn extend(
        &mut self,
        now: Instant,
        bind_id: BindId,
        lease_time: Option<u32>,
    ) -> Result<(), HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let held = match self.bindings.get_mut(&bind_id) {
            Some(h) if !h.freeing => h,
            _ => return Err(HostError::UnknownBinding(bind_id)),
        };
        if let Some(lease) = lease_time {
            held.spec.set_lease_time(lease);
        }
        let queued = self
            .queue
            .iter()
            .any(|op| matches!(op, Op::Extend { bind_id: b } if *b == bind_id));
        if !queued {
            // Extensions jump the queue (module doc).
            self.queue.push_front(Op::Extend { bind_id });
        }
        self.pump(now);
        Ok(())
    }

    /// Frees a binding: stop using it now. `BindingRevoked { reason: Freed }`
    /// follows once the gateway answered (whatever it answered: an error
    /// means it did not hold the binding either).
    pub fn free(&mut self, now: Instant, bind_id: BindId) -> Result<(), HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let held = match self.bindings.get_mut(&bind_id) {
            Some(h) if !h.freeing => h,
            _ => return Err(HostError::UnknownBinding(bind_id)),
        };
        held.freeing = true;
        if let Origin::Config(i) = held.origin
            && let Some(slot) = self.slots.get_mut(i)
        {
            slot.state = SlotState::Retired;
        }
        self.timers.stop(Timer::Extend(bind_id));
        self.queue.push_back(Op::Free {
            bind_id,
            sync: false,
        });
        self.pump(now);
        Ok(())
    }

    /// De-registers and closes: [`HostEvent::Closed`] follows once the gateway
    /// answered, or after `shutdown_timeout_ms`. Queued requests fail with
    /// [`RequestError::Shutdown`].
    pub fn shutdown(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        self.lifecycle = Lifecycle::ShuttingDown;
        self.timers.set(
            Timer::ShutdownDeadline,
            now + Duration::from_millis(self.config.shutdown_timeout_ms),
        );
        for op in std::mem::take(&mut self.queue) {
            if let Some(request) = op.app_request() {
                self.events.push_back(HostEvent::RequestFailed {
                    request,
                    error: RequestError::Shutdown,
                });
            }
        }
        self.timers
            .retain(|t| !matches!(t, Timer::Extend(_) | Timer::Reacquire(_)));
        self.stale_client = None;
        if !self.connected {
            self.close(now);
            return;
        }
        self.pump(now);
    }
}

pub(super) fn check(msg: &Result<Message, DecodeError>) -> Result<(), HostError> {
    match msg {
        Ok(_) => Ok(()),
        Err(e) => Err(HostError::InvalidRequest(e.clone())),
    }
}

pub(super) fn build_acquire(
    spec: &Spec,
    client: ClientId,
    counter: Option<u32>,
) -> Result<Message, DecodeError> {
    match spec {
        Spec::Assign(r) => {
            let options = RequestOptions {
                message_counter: counter,
                lease_time: r.lease_time,
                tunnel_type: r.tunnel_type,
            };
            match &r.resources {
                Resources::Address => Message::assign_request_rsa_ip(
                    client,
                    r.local_address.clone(),
                    r.remote_address.clone(),
                    r.remote_ports.clone(),
                    options,
                ),
                Resources::Ports(ports) => Message::assign_request_rsap_ip(
                    client,
                    Flow {
                        local_address: r.local_address.clone(),
                        local_ports: ports.clone(),
                        remote_address: r.remote_address.clone(),
                        remote_ports: r.remote_ports.clone(),
                    },
                    options,
                ),
                Resources::Ipsec { ports, spis } => Message::assign_request_rsipsec(
                    client,
                    Flow {
                        local_address: r.local_address.clone(),
                        local_ports: ports.clone(),
                        remote_address: r.remote_address.clone(),
                        remote_ports: r.remote_ports.clone(),
                    },
                    spis.clone(),
                    options,
                ),
            }
        }
        Spec::Listen(l) => Message::listen_request(
            client,
            Flow {
                local_address: l.local_address.clone(),
                local_ports: l.local_ports.clone(),
                remote_address: l.remote_address.clone(),
                remote_ports: l.remote_ports.clone(),
            },
            counter,
            l.lease_time,
            &l.tunnel_types,
        ),
    }
}

/// A request for exactly what `held` holds (address, ports, SPIs), for a
/// resync to keep the data plane's sessions; `None` if it cannot be expressed.
pub(super) fn same_resources(held: &Held) -> Option<Spec> {
    let b = &held.binding;
    let spec = match &held.spec {
        Spec::Listen(_) => return None,
        Spec::Assign(r) => {
            let resources = match &r.resources {
                Resources::Address => Resources::Address,
                Resources::Ports(_) => Resources::Ports(exact_ports(&b.local_ports)?),
                Resources::Ipsec { .. } => Resources::Ipsec {
                    ports: match &b.local_ports {
                        Ports::DontNeed => Ports::DontNeed,
                        p => exact_ports(p)?,
                    },
                    spis: exact_spis(&b.spis)?,
                },
            };
            Spec::Assign(BindingRequest {
                resources,
                local_address: b.local_address.clone(),
                ..r.clone()
            })
        }
    };
    build_acquire(&spec, ClientId(0), Some(1)).ok()?;
    Some(spec)
}

fn exact_ports(ports: &Ports) -> Option<Ports> {
    match ports {
        Ports::Range { .. } | Ports::List(_) if !ports.is_dont_care() => Some(ports.clone()),
        _ => None,
    }
}

fn exact_spis(spis: &[Spi]) -> Option<Spis> {
    match spis {
        [] => None,
        [one] => Some(Spis::single(*one)),
        [first, ..] => {
            let contiguous = spis
                .iter()
                .zip(spis.iter().skip(1))
                .all(|(a, b)| a.0.checked_add(1) == Some(b.0));
            if contiguous {
                Some(Spis::Range {
                    first: *first,
                    count: u16::try_from(spis.len()).ok()?,
                })
            } else {
                Some(Spis::List(spis.to_vec()))
            }
        }
    }
}
