//! Scheduling: one transaction at a time (RFC 3103 10.1), its encoding,
//! signing, retransmission and answer timers.

use std::time::{Duration, Instant};

use realm_wire::rsip::{ClientId, Message, QueryTuple};

use super::config::ip_address;
use super::requests::build_acquire;
use super::timer::Timer;
use super::{
    Host, HostError, HostEvent, Lifecycle, Op, Outstanding, RequestId, RevokeReason, SlotState,
    Transport, UnregisterReason,
};
use crate::auth;

impl Host {
    pub(super) fn admit(&mut self) -> Result<RequestId, HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let waiting = self
            .queue
            .iter()
            .filter(|op| op.app_request().is_some())
            .count();
        if waiting >= self.config.max_queued_requests {
            return Err(HostError::QueueFull);
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        Ok(id)
    }

    fn wants_registration(&self) -> bool {
        self.register_wanted
            || !self.queue.is_empty()
            || self
                .slots
                .iter()
                .any(|s| matches!(s.state, SlotState::Idle | SlotState::Pending))
    }

    /// Starts the next transaction if nothing is outstanding.
    pub(super) fn pump(&mut self, now: Instant) {
        while self.outstanding.is_none()
            && self.connected
            && self.lifecycle != Lifecycle::Closed
            && !self.timers.is_armed(Timer::RetryPause)
        {
            let Some(op) = self.next_op(now) else { return };
            let client_id = match &op {
                Op::Register => None,
                Op::Deregister { client_id, .. } => Some(*client_id),
                _ => self.registration.as_ref().map(|r| r.client_id),
            };
            let counter = (self.config.transport == Transport::Udp).then_some(self.counter);
            let Some(bytes) = self.encode(&op, client_id, counter) else {
                // Only a request validated when it was made, re-built with
                // another client ID or counter: cannot fail. Drop it rather
                // than loop.
                continue;
            };
            self.transmits.push_back(bytes.clone());
            self.outstanding = Some(Outstanding {
                op,
                bytes,
                client_id,
                counter,
                attempts: 1,
            });
            self.arm_answer_timer(now);
        }
    }

    pub(super) fn next_op(&mut self, now: Instant) -> Option<Op> {
        if let Some(client_id) = self.stale_client.take() {
            return Some(Op::Deregister {
                client_id,
                shutdown: false,
            });
        }
        if self.lifecycle == Lifecycle::ShuttingDown {
            return match &self.registration {
                Some(r) => Some(Op::Deregister {
                    client_id: r.client_id,
                    shutdown: true,
                }),
                None => {
                    self.close(now);
                    None
                }
            };
        }
        if self.registration.is_none() {
            return self.wants_registration().then_some(Op::Register);
        }
        while let Some(op) = self.queue.pop_front() {
            // Skip what lost its purpose while queued.
            let live = match &op {
                Op::Extend { bind_id } => self.bindings.get(bind_id).is_some_and(|h| !h.freeing),
                Op::Free {
                    bind_id,
                    sync: false,
                } => self.bindings.contains_key(bind_id),
                _ => true,
            };
            if live {
                return Some(op);
            }
        }
        None
    }

    /// The request's bytes, signed when a key is configured.
    pub(super) fn encode(
        &mut self,
        op: &Op,
        client: Option<ClientId>,
        counter: Option<u32>,
    ) -> Option<Vec<u8>> {
        let msg = self.build(op, client, counter)?;
        let msg = match &self.key {
            Some(key) => {
                self.auth_sent = self.auth_sent.saturating_add(1);
                auth::sign(&msg, key, self.auth_sent).ok()?
            }
            None => msg,
        };
        Some(msg.to_bytes())
    }

    fn build(&self, op: &Op, client: Option<ClientId>, counter: Option<u32>) -> Option<Message> {
        let msg = match (op, client) {
            (Op::Register, _) => Message::register_request(counter),
            (Op::Deregister { client_id, .. }, _) => {
                Message::deregister_request(*client_id, counter)
            }
            (Op::Acquire { spec, .. }, Some(c)) => build_acquire(spec, c, counter).ok()?,
            (Op::Extend { bind_id }, Some(c)) => {
                let lease = self.bindings.get(bind_id).and_then(|h| h.spec.lease_time());
                Message::extend_request(c, *bind_id, lease, counter)
            }
            (Op::Free { bind_id, .. }, Some(c)) => Message::free_request(c, *bind_id, counter),
            (Op::Query { tuples, .. }, Some(c)) => {
                Message::query_request(c, counter, tuples).ok()?
            }
            (Op::Reattach, Some(c)) => {
                let gateway = QueryTuple::address(ip_address(self.config.gateway.ip()));
                Message::query_request(c, counter, &[gateway]).ok()?
            }
            (_, None) => return None,
        };
        Some(msg)
    }

    pub(super) fn arm_answer_timer(&mut self, now: Instant) {
        let Some(o) = &self.outstanding else { return };
        match self.config.transport {
            Transport::Udp => {
                // RFC 3103 5: "binary exponential backoff scheme with an
                // initial duration of 12.5 ms".
                let shift = o.attempts.saturating_sub(1).min(31);
                let timeout = self.config.initial_timeout().saturating_mul(1 << shift);
                self.timers.set(Timer::Retransmit, now + timeout);
            }
            Transport::Tcp => self.timers.set(
                Timer::ResponseTimeout,
                now + Duration::from_millis(self.config.tcp_response_timeout_ms),
            ),
        }
    }

    /// The answer came: the counter moves on (RFC 3103 10.1: "will not
    /// increment its message counter value to n+1 until it receives a message
    /// from the RSIP gateway with a message counter value of n"; "it will wrap
    /// around to 1, not 0").
    pub(super) fn finish_outstanding(&mut self) -> Option<Outstanding> {
        let o = self.outstanding.take()?;
        if o.counter.is_some() {
            self.counter = crate::next_message_counter(self.counter);
        }
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::ResponseTimeout);
        self.timers.stop(Timer::RetryPause);
        Some(o)
    }

    /// Puts an unanswered transaction back to be sent again (with a new counter).
    pub(super) fn requeue(&mut self, op: Op) {
        match op {
            // Decided afresh by next_op.
            Op::Register | Op::Deregister { shutdown: true, .. } => {}
            Op::Deregister {
                client_id,
                shutdown: false,
            } => self.stale_client = Some(client_id),
            other => self.queue.push_front(other),
        }
    }

    pub(super) fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Retransmit => self.on_retransmit_timeout(now),
            Timer::ResponseTimeout => self
                .events
                .push_back(HostEvent::GatewayUnreachable { attempts: 1 }),
            Timer::RetryPause => {
                if let Some(o) = &mut self.outstanding
                    && o.attempts == 0
                {
                    // "starts over": a new round with the same message.
                    o.attempts = 1;
                    self.transmits.push_back(o.bytes.clone());
                    self.stats.retransmissions += 1;
                    self.arm_answer_timer(now);
                }
            }
            Timer::RegistrationExpiry => {
                // RFC 3103 6: "If this lease time expires, the RSIP host
                // automatically reverts to the unregistered state."
                self.end_registration(UnregisterReason::Expired, RevokeReason::Deregistered);
                self.register_wanted = false;
            }
            Timer::Extend(bind_id) => {
                let queued = self
                    .queue
                    .iter()
                    .any(|op| matches!(op, Op::Extend { bind_id: b } if *b == bind_id));
                let live = self.bindings.get(&bind_id).is_some_and(|h| !h.freeing);
                if live && !queued && self.lifecycle == Lifecycle::Running {
                    self.queue.push_front(Op::Extend { bind_id });
                }
            }
            Timer::BindingExpiry(bind_id) => {
                if let Some(held) = self.bindings.get(&bind_id) {
                    let reason = if held.freeing {
                        RevokeReason::Freed
                    } else {
                        RevokeReason::Expired
                    };
                    self.revoke(now, bind_id, reason);
                }
            }
            Timer::Reacquire(index) => self.reacquire_slot(index),
            Timer::ShutdownDeadline => self.close(now),
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant) {
        let max = self.config.retransmit.max_attempts;
        let pause = self.config.retry_pause();
        let Some(o) = &mut self.outstanding else {
            return;
        };
        if o.attempts >= max {
            // RFC 3103 5: "seven total attempts before failure".
            let attempts = o.attempts;
            o.attempts = 0;
            self.events
                .push_back(HostEvent::GatewayUnreachable { attempts });
            self.timers.set(Timer::RetryPause, now + pause);
        } else {
            // RFC 3103 10.1: "the copy of the message (from the "last
            // message" buffer) is retransmitted".
            o.attempts += 1;
            self.transmits.push_back(o.bytes.clone());
            self.stats.retransmissions += 1;
            self.arm_answer_timer(now);
        }
    }

    /// TCP, after a reconnection: if registered and nothing went out, a
    /// request naming the client ID (`Op::Reattach`), once.
    pub(super) fn reattach(&mut self, now: Instant) {
        let busy = self.outstanding.is_some()
            || self.stale_client.is_some()
            || self.queue.iter().any(|op| matches!(op, Op::Reattach));
        if busy || self.registration.is_none() || self.lifecycle != Lifecycle::Running {
            return;
        }
        // Ahead of anything a retry pause holds back: the connection is the
        // point. Whatever else is queued then follows under the same client ID.
        self.queue.push_front(Op::Reattach);
        self.pump(now);
    }

    pub(super) fn pause(&mut self, now: Instant) {
        self.timers
            .set(Timer::RetryPause, now + self.config.retry_pause());
    }
}
