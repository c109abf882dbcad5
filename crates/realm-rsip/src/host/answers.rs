//! Receiving: matching a gateway message to the outstanding request and
//! acting on answers, refusals and asynchronous messages (RFC 3103 9, 10.4).

use std::time::{Duration, Instant};

use realm_wire::rsip::{
    BindId, ErrorCode, Message, MessageType, Ports, RsipMethod, TunnelType, View,
};

use super::timer::Timer;
use super::{
    Binding, BindingRequest, Held, Host, HostEvent, Lifecycle, Op, Origin, Outstanding,
    QueryAnswer, RESYNC_STREAK_LIMIT, Registration, RequestError, RequestId, Resources,
    RevokeReason, SlotState, Spec, Transport, UnregisterReason,
};

impl Host {
    pub(super) fn on_message(&mut self, now: Instant, msg: &Message) {
        let udp = self.config.transport == Transport::Udp;
        let counter = msg.message_counter();
        if let Some(o) = &self.outstanding {
            let echoes = udp && o.counter.is_some() && counter == o.counter;
            let answers = self.answers(o, msg);
            if answers && (echoes || !udp) {
                if let Some(o) = self.finish_outstanding() {
                    self.on_answer(now, o, msg);
                }
                return;
            }
            if echoes {
                // The gateway echoed n with something that does not answer
                // the request: a replay of an older "last message" buffer, or
                // an asynchronous message given our counter. n has come back,
                // so the request goes again with n+1.
                if let Some(o) = self.finish_outstanding() {
                    self.requeue(o.op);
                }
                if is_async_type(msg.msg_type()) {
                    self.on_async(now, msg);
                } else {
                    self.stats.ignored += 1;
                }
                return;
            }
        }
        // RFC 3103 10.1: "When the RSIP gateway transmits an asynchronous RSIP
        // message ... a message counter value of 0 MUST be used."
        let async_counter = !udp || matches!(counter, None | Some(0));
        if is_async_type(msg.msg_type()) && async_counter {
            self.on_async(now, msg);
        } else {
            // A stale or duplicate answer, or one to nothing outstanding.
            self.stats.ignored += 1;
        }
    }

    /// Whether `msg` is an answer to the outstanding transaction by type and IDs.
    pub(super) fn answers(&self, o: &Outstanding, msg: &Message) -> bool {
        let client_ok = match (o.client_id, msg.client_id()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            (_, None) | (None, _) => true,
        };
        let bind_ok = match (o.op.bind_id(), msg.bind_id()) {
            (_, None) => true,
            (Some(ours), Some(theirs)) => ours == theirs,
            // An error about a binding while asking for something else.
            (None, Some(_)) => !matches!(msg.msg_type(), MessageType::ErrorResponse),
        };
        let type_ok = msg.msg_type() == MessageType::ErrorResponse
            || o.op.answer_types().contains(&msg.msg_type());
        client_ok && bind_ok && type_ok
    }

    fn on_answer(&mut self, now: Instant, o: Outstanding, msg: &Message) {
        let error = match msg.view() {
            View::ErrorResponse { error, .. } => Some(error),
            _ => None,
        };
        let lost_us = matches!(
            error,
            Some(ErrorCode::RegisterFirst | ErrorCode::BadClientId)
        );
        if error.is_none() && !matches!(o.op, Op::Register | Op::Deregister { .. }) {
            self.resync_streak = 0;
        }
        match o.op {
            Op::Register => self.on_register_answer(now, msg),
            Op::Deregister { shutdown, .. } => {
                // RFC 3103 10.2.2: the old ID's de-registration "will generate
                // another error, but this error SHOULD be ignored by the host".
                if shutdown {
                    self.close(now);
                }
            }
            op @ Op::Acquire { .. } if lost_us => {
                self.requeue(op);
                self.resync(now);
            }
            // The registration lapsed here while the request was out: ask
            // again under the next one (the gateway's grant, if any, lapses
            // with the old registration, or goes at the resync that
            // ALREADY_REGISTERED then triggers).
            op @ Op::Acquire { .. } if self.registration.is_none() => self.requeue(op),
            Op::Acquire {
                request,
                origin,
                spec,
                fallback,
            } => match error {
                Some(code) => self.on_acquire_refused(now, request, origin, code, fallback),
                None => self.on_granted(now, request, origin, *spec, msg),
            },
            Op::Extend { bind_id } => self.on_extend_answer(now, bind_id, msg, lost_us),
            Op::Free { bind_id, sync } => {
                if !sync && self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::Freed);
                }
                if lost_us {
                    self.resync(now);
                }
            }
            op @ Op::Query { .. } if lost_us => {
                self.requeue(op);
                self.resync(now);
            }
            // Only the connection was the point (`Op::Reattach`): its
            // QUERY_RESPONSE raises no event. Another error is reported as
            // asynchronous ones are: over TCP it may be one (a violation
            // report, RFC 3103 10.4) taken for the answer by type.
            Op::Reattach if lost_us => self.resync(now),
            Op::Reattach => {
                if let Some(code) = error {
                    self.events.push_back(HostEvent::GatewayError {
                        code,
                        bind_id: None,
                    });
                }
            }
            Op::Query { request, .. } => {
                let ev = match error {
                    Some(code) => HostEvent::RequestFailed {
                        request,
                        error: RequestError::Gateway(code),
                    },
                    None => HostEvent::QueryAnswered {
                        request,
                        answer: QueryAnswer {
                            tuples: msg.query_tuples(),
                        },
                    },
                };
                self.events.push_back(ev);
            }
        }
    }

    fn on_register_answer(&mut self, now: Instant, msg: &Message) {
        match msg.view() {
            View::RegisterResponse {
                client_id,
                lease_time,
                flow_policy,
            } => {
                // RFC 3103 9.3.3: "If an RSIP method is not specified, RSAP-IP
                // MUST be assumed. If a tunnel type is not specified, IP-IP
                // MUST be assumed."
                let mut methods: Vec<RsipMethod> = msg.methods().collect();
                if methods.is_empty() {
                    methods.push(RsipMethod::RsapIp);
                }
                let mut tunnel_types: Vec<TunnelType> = msg.tunnel_types().collect();
                if tunnel_types.is_empty() {
                    tunnel_types.push(TunnelType::IpIp);
                }
                let expires = now + Duration::from_secs(u64::from(lease_time));
                let reg = Registration {
                    client_id,
                    flow_policy,
                    methods,
                    tunnel_types,
                    expires,
                };
                self.timers.set(Timer::RegistrationExpiry, expires);
                self.registration = Some(reg.clone());
                self.events.push_back(HostEvent::Registered(reg));
                for index in 0..self.slots.len() {
                    if self.slots.get(index).map(|s| s.state) == Some(SlotState::Idle) {
                        self.queue_slot(index);
                    }
                }
            }
            View::ErrorResponse {
                error: ErrorCode::AlreadyRegistered,
                client_id: Some(old),
                ..
            } => {
                // RFC 3103 10.2.1: the host "will know the client ID of its old
                // registration, and SHOULD immediately transmit a
                // DE-REGISTER_REQUEST using this client ID".
                self.stats.resyncs += 1;
                self.resync_streak += 1;
                self.stale_client = Some(old);
                if self.resync_streak >= RESYNC_STREAK_LIMIT {
                    self.resync_streak = 0;
                    self.pause(now);
                }
            }
            View::ErrorResponse {
                error: ErrorCode::UseTcp,
                ..
            } if self.config.transport == Transport::Udp => {
                // RFC 3103 Appendix A, 102 USE_TCP: the gateway serves this
                // host over TCP only (Realm's gateway says so to UDP
                // registrations under pressure: TCP proves the address). The
                // host moves to TCP: its driver connects and calls
                // `handle_connected`, and the REGISTER goes over the stream.
                self.config.transport = Transport::Tcp;
                self.connected = false;
                self.events.push_back(HostEvent::UseTcp);
            }
            View::ErrorResponse { error, .. } => {
                self.events.push_back(HostEvent::RegistrationFailed(error));
                self.pause(now);
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_granted(
        &mut self,
        now: Instant,
        request: RequestId,
        origin: Origin,
        spec: Spec,
        msg: &Message,
    ) {
        let Some(binding) = self.binding_from(now, request, &spec, msg) else {
            // RFC 3103 9.9.3: "If the host detects an error or otherwise does
            // not "understand" the gateway's response, it SHOULD send a
            // FREE_REQUEST with the bind ID".
            if let Some(bind_id) = msg.bind_id()
                && !self.bindings.contains_key(&bind_id)
            {
                self.queue.push_front(Op::Free {
                    bind_id,
                    sync: true,
                });
            }
            self.fail_acquire(now, request, origin, RequestError::BadResponse);
            return;
        };
        let bind_id = binding.bind_id;
        let lease = binding.expires.saturating_duration_since(now);
        self.timers
            .set(Timer::BindingExpiry(bind_id), binding.expires);
        self.timers.set(
            Timer::Extend(bind_id),
            now + lease.mul_f64(self.config.extend_at),
        );
        self.hold_up_registration(binding.expires);
        if let Origin::Config(i) = origin
            && let Some(slot) = self.slots.get_mut(i)
        {
            slot.state = SlotState::Held(bind_id);
        }
        self.events
            .push_back(HostEvent::BindingGranted(binding.clone()));
        self.bindings.insert(
            bind_id,
            Held {
                binding,
                origin,
                spec,
                freeing: false,
            },
        );
    }

    /// The binding an ASSIGN/LISTEN response grants, or `None` if the host
    /// cannot use it.
    fn binding_from(
        &self,
        now: Instant,
        request: RequestId,
        spec: &Spec,
        msg: &Message,
    ) -> Option<Binding> {
        let (bind_id, method, local_address, local_ports, remote, spis, lease, tunnel, endpoint) =
            match (msg.view(), spec) {
                (
                    View::AssignResponseRsaIp {
                        bind_id,
                        local_address,
                        remote_address,
                        remote_ports,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    _,
                ) => (
                    bind_id,
                    RsipMethod::RsaIp,
                    local_address,
                    Ports::DontNeed,
                    (remote_address, remote_ports),
                    None,
                    lease_time,
                    tunnel_type,
                    tunnel_endpoint,
                ),
                (
                    View::AssignResponseRsapIp {
                        bind_id,
                        flow,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    }
                    | View::ListenResponse {
                        bind_id,
                        flow,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    _,
                ) => (
                    bind_id,
                    RsipMethod::RsapIp,
                    flow.local_address,
                    flow.local_ports.clone(),
                    (flow.remote_address, flow.remote_ports),
                    None,
                    lease_time,
                    tunnel_type,
                    tunnel_endpoint,
                ),
                (
                    View::AssignResponseRsipsec {
                        bind_id,
                        flow,
                        spis,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    Spec::Assign(BindingRequest {
                        resources: Resources::Ipsec { ports: asked, .. },
                        ..
                    }),
                ) => {
                    // RFC 3104 6.2: "If the port parameters were set to the
                    // "don't need" value in the request ..., the RSIP server
                    // must do the same in the response."
                    if (*asked == Ports::DontNeed) != (*flow.local_ports == Ports::DontNeed) {
                        return None;
                    }
                    (
                        bind_id,
                        RsipMethod::Rsipsec,
                        flow.local_address,
                        flow.local_ports.clone(),
                        (flow.remote_address, flow.remote_ports),
                        Some(spis),
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                    )
                }
                _ => return None,
            };
        if self.bindings.contains_key(&bind_id) || local_address.is_dont_care() {
            return None;
        }
        // RFC 3103 9.9.3: "a local address and port(s) MUST be assigned".
        let ports_needed = method == RsipMethod::RsapIp || local_ports != Ports::DontNeed;
        if ports_needed && (local_ports.is_dont_care() || local_ports == Ports::DontNeed) {
            return None;
        }
        let spis = match spis {
            Some(s) if s.is_dont_care() => return None,
            Some(s) => s.to_vec(),
            None => Vec::new(),
        };
        Some(Binding {
            bind_id,
            request,
            method,
            listen: msg.msg_type() == MessageType::ListenResponse,
            local_address: local_address.clone(),
            local_ports,
            remote_address: remote.0.clone(),
            remote_ports: remote.1.clone(),
            spis,
            tunnel_type: tunnel,
            tunnel_endpoint: endpoint.cloned(),
            expires: now + Duration::from_secs(u64::from(lease)),
        })
    }

    fn on_acquire_refused(
        &mut self,
        now: Instant,
        request: RequestId,
        origin: Origin,
        code: ErrorCode,
        fallback: Option<Box<Spec>>,
    ) {
        match fallback {
            Some(spec) => self.queue.push_front(Op::Acquire {
                request,
                origin,
                spec,
                fallback: None,
            }),
            None => self.fail_acquire(now, request, origin, RequestError::Gateway(code)),
        }
    }

    fn fail_acquire(&mut self, now: Instant, request: RequestId, origin: Origin, e: RequestError) {
        self.events
            .push_back(HostEvent::RequestFailed { request, error: e });
        if let Origin::Config(i) = origin {
            self.wait_slot(now, i);
        }
    }

    fn on_extend_answer(&mut self, now: Instant, bind_id: BindId, msg: &Message, lost_us: bool) {
        match msg.view() {
            View::ExtendResponse { lease_time, .. } => {
                let Some(held) = self.bindings.get_mut(&bind_id) else {
                    // It lapsed here while the gateway extended it: give it back.
                    if self.registration.is_some() {
                        self.queue.push_front(Op::Free {
                            bind_id,
                            sync: true,
                        });
                    }
                    return;
                };
                let lease = Duration::from_secs(u64::from(lease_time));
                let expires = now + lease;
                held.binding.expires = expires;
                let freeing = held.freeing;
                self.timers.set(Timer::BindingExpiry(bind_id), expires);
                if !freeing {
                    self.timers.set(
                        Timer::Extend(bind_id),
                        now + lease.mul_f64(self.config.extend_at),
                    );
                }
                self.hold_up_registration(expires);
                self.events
                    .push_back(HostEvent::BindingExtended { bind_id, expires });
            }
            View::FreeResponse { .. } => {
                if self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::RevokedByGateway);
                }
            }
            View::ErrorResponse { .. } if lost_us => self.resync(now),
            View::ErrorResponse {
                error: code @ ErrorCode::BadBindId,
                ..
            } => {
                if self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::ExtendRefused(code));
                }
            }
            View::ErrorResponse { error, .. } => {
                // RFC 3103 9.10.3: "If the lease is not renewed, the RSIP
                // gateway MAY let it implicitly expire": keep it until then.
                self.events.push_back(HostEvent::GatewayError {
                    code: error,
                    bind_id: Some(bind_id),
                });
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_async(&mut self, now: Instant, msg: &Message) {
        let ours = self.registration.as_ref().map(|r| r.client_id);
        match msg.view() {
            // RFC 3103 9.13.3: "An RSIP host must always be ready to accept a
            // FREE_RESPONSE, even if its lease on the specified bind ID is not
            // yet expired."
            View::FreeResponse { client_id, bind_id } => match self.bindings.get(&bind_id) {
                Some(held) if Some(client_id) == ours => {
                    let reason = if held.freeing {
                        RevokeReason::Freed
                    } else {
                        RevokeReason::RevokedByGateway
                    };
                    self.revoke(now, bind_id, reason);
                }
                _ => self.stats.ignored += 1,
            },
            // RFC 3103 9.5.1: "Upon receiving a DE-REGISTER_RESPONSE message,
            // an RSIP host MUST stop all use of the resources that have been
            // allocated to it by the gateway."
            View::DeregisterResponse { client_id } if Some(client_id) == ours => {
                self.end_registration(
                    UnregisterReason::DeregisteredByGateway,
                    RevokeReason::Deregistered,
                );
                if self.lifecycle == Lifecycle::ShuttingDown {
                    self.close(now);
                } else {
                    // Often just the registration lease lapsing at the
                    // gateway first (its clock runs ahead of ours by the
                    // network delay): register again only with something to
                    // ask, and not before a pause.
                    self.register_wanted = false;
                    self.pause(now);
                }
            }
            View::ErrorResponse {
                error,
                client_id,
                bind_id,
            } => {
                if client_id.is_some() && client_id != ours {
                    self.stats.ignored += 1;
                    return;
                }
                // RFC 3103 10.2.2: REGISTER_FIRST: "an RSIP host MUST interpret
                // the message as an indication of a loss of synchronization".
                if matches!(error, ErrorCode::RegisterFirst | ErrorCode::BadClientId)
                    && ours.is_some()
                {
                    self.resync(now);
                } else {
                    self.events.push_back(HostEvent::GatewayError {
                        code: error,
                        bind_id,
                    });
                }
            }
            _ => self.stats.ignored += 1,
        }
    }
}

/// Message types a gateway sends (RFC 3103 Appendix B; RFC 3104 Appendix C).
pub(super) fn from_gateway(t: MessageType) -> bool {
    use MessageType as M;
    matches!(
        t,
        M::ErrorResponse
            | M::RegisterResponse
            | M::DeregisterResponse
            | M::AssignResponseRsaIp
            | M::AssignResponseRsapIp
            | M::ExtendResponse
            | M::FreeResponse
            | M::QueryResponse
            | M::ListenResponse
            | M::AssignResponseRsipsec
    )
}

/// RFC 3103 10.1: "only three RSIP messages can be transmitted asynchronously:
/// ERROR_RESPONSE, DE-REGISTER_RESPONSE, and FREE_RESPONSE".
fn is_async_type(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::ErrorResponse | MessageType::DeregisterResponse | MessageType::FreeResponse
    )
}
