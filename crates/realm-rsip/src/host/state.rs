//! State changes: revocation, the end of a registration, resynchronisation
//! (RFC 3103 10.2), configured bindings waiting or re-acquired, and closing.

use std::time::Instant;

use realm_wire::rsip::BindId;

use super::requests::same_resources;
use super::timer::Timer;
use super::{
    Host, HostEvent, Lifecycle, Op, Origin, RESYNC_STREAK_LIMIT, RequestError, RevokeReason,
    SlotState, UnregisterReason,
};

impl Host {
    /// RFC 3103 6: "when binding Bi is established or extended ... R = max(R, Bi)".
    pub(super) fn hold_up_registration(&mut self, expires: Instant) {
        if let Some(reg) = &mut self.registration
            && expires > reg.expires
        {
            reg.expires = expires;
            self.timers.set(Timer::RegistrationExpiry, expires);
        }
    }

    /// Drops a binding and reports it.
    pub(super) fn revoke(&mut self, now: Instant, bind_id: BindId, reason: RevokeReason) {
        let Some(held) = self.bindings.remove(&bind_id) else {
            return;
        };
        self.timers.stop(Timer::Extend(bind_id));
        self.timers.stop(Timer::BindingExpiry(bind_id));
        if let Origin::Config(i) = held.origin
            && reason != RevokeReason::Freed
        {
            self.wait_slot(now, i);
        }
        self.events.push_back(HostEvent::BindingRevoked {
            binding: held.binding,
            reason,
        });
    }

    /// Ends the registration: every binding revoked, queued extends and frees
    /// dropped, configured bindings back to idle.
    pub(super) fn end_registration(&mut self, reason: UnregisterReason, revoke: RevokeReason) {
        let Some(reg) = self.registration.take() else {
            return;
        };
        for (_, held) in std::mem::take(&mut self.bindings) {
            let reason = if held.freeing {
                RevokeReason::Freed
            } else {
                revoke
            };
            self.events.push_back(HostEvent::BindingRevoked {
                binding: held.binding,
                reason,
            });
        }
        self.queue.retain(|op| {
            !matches!(
                op,
                Op::Extend { .. }
                    | Op::Free { .. }
                    | Op::Reattach
                    | Op::Acquire {
                        origin: Origin::Config(_),
                        ..
                    }
            )
        });
        for slot in &mut self.slots {
            if slot.state != SlotState::Retired {
                slot.state = SlotState::Idle;
            }
        }
        self.timers.retain(|t| {
            !matches!(
                t,
                Timer::Extend(_)
                    | Timer::BindingExpiry(_)
                    | Timer::RegistrationExpiry
                    | Timer::Reacquire(_)
            )
        });
        self.events.push_back(HostEvent::Unregistered {
            client_id: reg.client_id,
            reason,
        });
    }

    /// RFC 3103 10.2.2: the gateway lost the host's state. De-register the old
    /// client ID, register again, re-acquire every binding.
    pub(super) fn resync(&mut self, now: Instant) {
        self.stats.resyncs += 1;
        self.resync_streak += 1;
        let mut reacquire = Vec::new();
        for (_, held) in std::mem::take(&mut self.bindings) {
            if held.freeing {
                self.events.push_back(HostEvent::BindingRevoked {
                    binding: held.binding,
                    reason: RevokeReason::Freed,
                });
                continue;
            }
            let preferred = same_resources(&held);
            let (spec, fallback) = match preferred {
                Some(p) if p != held.spec => (Box::new(p), Some(Box::new(held.spec))),
                _ => (Box::new(held.spec), None),
            };
            reacquire.push(Op::Acquire {
                request: held.binding.request,
                origin: held.origin,
                spec,
                fallback,
            });
            self.events.push_back(HostEvent::BindingRevoked {
                binding: held.binding,
                reason: RevokeReason::Resync,
            });
        }
        self.queue
            .retain(|op| !matches!(op, Op::Extend { .. } | Op::Free { .. } | Op::Reattach));
        for op in reacquire.into_iter().rev() {
            self.queue.push_front(op);
        }
        self.timers.retain(|t| {
            !matches!(
                t,
                Timer::Extend(_) | Timer::BindingExpiry(_) | Timer::RegistrationExpiry
            )
        });
        if let Some(reg) = self.registration.take() {
            // RFC 3103 10.2.2: "The RSIP host SHOULD immediately transmit a
            // DE-REGISTRATION_REQUEST with its old client ID".
            self.stale_client = Some(reg.client_id);
            self.events.push_back(HostEvent::Unregistered {
                client_id: reg.client_id,
                reason: UnregisterReason::Resync,
            });
        }
        self.register_wanted = true;
        if self.resync_streak >= RESYNC_STREAK_LIMIT {
            self.resync_streak = 0;
            self.pause(now);
        }
    }

    pub(super) fn queue_slot(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        slot.state = SlotState::Pending;
        self.queue.push_back(Op::Acquire {
            request: slot.request,
            origin: Origin::Config(index),
            spec: Box::new(slot.spec.clone()),
            fallback: None,
        });
    }

    pub(super) fn wait_slot(&mut self, now: Instant, index: usize) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        if let Some(slot) = self.slots.get_mut(index)
            && slot.state != SlotState::Retired
        {
            slot.state = SlotState::Waiting;
            self.timers
                .set(Timer::Reacquire(index), now + self.config.retry_pause());
        }
    }

    pub(super) fn reacquire_slot(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if slot.state != SlotState::Waiting {
            return;
        }
        if self.registration.is_some() {
            self.queue_slot(index);
        } else {
            slot.state = SlotState::Idle;
        }
    }

    pub(super) fn close(&mut self, _now: Instant) {
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        if let Some(op) = self.outstanding.take().map(|o| o.op)
            && let Some(request) = op.app_request()
        {
            self.events.push_back(HostEvent::RequestFailed {
                request,
                error: RequestError::Shutdown,
            });
        }
        for op in std::mem::take(&mut self.queue) {
            if let Some(request) = op.app_request() {
                self.events.push_back(HostEvent::RequestFailed {
                    request,
                    error: RequestError::Shutdown,
                });
            }
        }
        self.end_registration(UnregisterReason::Shutdown, RevokeReason::Deregistered);
        self.timers.clear();
        self.transmits.clear();
        self.stale_client = None;
        self.lifecycle = Lifecycle::Closed;
        self.events.push_back(HostEvent::Closed);
    }
}
