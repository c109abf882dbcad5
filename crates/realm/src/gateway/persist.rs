//! Gateway events to store batches, and store rows back to the engine's
//! [`PersistedState`].
//!
//! Rows (JSON values, `realm-store` kinds):
//! - `Kind::REGISTRATION`, keyed by client ID: the engine's [`HostRecord`]
//!   (a superset of `realm_lease::RegistrationRecord`), expiring at its lapse;
//! - `Kind::BINDING`, keyed by bind ID: the engine's [`BindingRecord`] (lease
//!   plus flow state), expiring at its lease's end;
//! - `Kind::QUARANTINE`, keyed by the ended binding's ID: the
//!   `realm_lease::QuarantineRecord`, expiring when its TIME_WAIT ends.
//!
//! It owns the per-host mirror needed to rewrite a host's row when a grant
//! pushes its registration lapse later (the event carries only the new time)
//! and the queue of quarantine rows to delete once their hold ends. It holds
//! nothing per binding.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use realm_lease::{BindId, ClientId, QuarantineRecord, Timestamp};
use realm_rsip::gateway::{BindingRecord, Event, FreeReason, HostRecord, PersistedState};
use realm_store::{AllocEvent, AllocEventKind, Batch, Kind, Store, StoreError};

/// Turns events into batch operations.
#[derive(Debug, Default)]
pub(crate) struct Persister {
    hosts: HashMap<ClientId, HostRecord>,
    /// Quarantine rows by the end of their hold (earliest first).
    quarantine: BinaryHeap<Reverse<(Timestamp, BindId)>>,
}

/// What one event did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing countable beyond the engine's own counters.
    None,
    /// A binding was granted, extended or ended: one allocation log line.
    AllocLine,
}

impl Persister {
    /// A persister for the state the engine was restored from.
    pub(crate) fn new(state: &PersistedState) -> Persister {
        let mut p = Persister::default();
        for h in &state.hosts {
            p.hosts.insert(h.client, h.clone());
        }
        for q in &state.quarantine {
            p.quarantine.push(Reverse((q.until, q.bind)));
        }
        p
    }

    /// Adds the rows and log lines of `event` (at `now`) to `batch`.
    pub(crate) fn apply(
        &mut self,
        batch: &mut Batch,
        event: &Event,
        now: Timestamp,
    ) -> Result<Effect, StoreError> {
        match event {
            Event::Registered { host } | Event::HostUpdated { host } => {
                self.put_host(batch, host.clone())?;
                Ok(Effect::None)
            }
            Event::Deregistered { host, .. } => {
                self.hosts.remove(&host.client);
                batch.delete_registration(host.client);
                Ok(Effect::None)
            }
            Event::BindingGranted {
                binding,
                registration_expires_at,
            }
            | Event::BindingExtended {
                binding,
                registration_expires_at,
            } => {
                batch.put_json(
                    Kind::BINDING,
                    u64::from(binding.bind.0),
                    binding,
                    Some(binding.expires_at),
                )?;
                if let Some(h) = self.hosts.get_mut(&binding.client)
                    && h.expires_at != *registration_expires_at
                {
                    h.expires_at = *registration_expires_at;
                    let h = h.clone();
                    batch.put_json(
                        Kind::REGISTRATION,
                        u64::from(h.client.0),
                        &h,
                        Some(h.expires_at),
                    )?;
                }
                let kind = if matches!(event, Event::BindingGranted { .. }) {
                    AllocEventKind::Grant
                } else {
                    AllocEventKind::Extend
                };
                let lease = Some(Duration::from_secs(u64::from(binding.lease_secs)));
                batch.log(alloc_event(now, kind, binding, lease));
                Ok(Effect::AllocLine)
            }
            Event::BindingFreed {
                binding,
                reason,
                held_until,
            } => {
                batch.delete_binding(binding.bind);
                if *held_until > now {
                    batch.put_quarantine(&QuarantineRecord {
                        bind: binding.bind,
                        method: binding.method,
                        address: binding.public_address,
                        ports: binding.ports.clone(),
                        spis: binding.spis.clone(),
                        until: *held_until,
                    })?;
                    self.quarantine.push(Reverse((*held_until, binding.bind)));
                } else {
                    batch.delete_quarantine(binding.bind);
                }
                let kind = match reason {
                    FreeReason::Expired => AllocEventKind::Expire,
                    _ => AllocEventKind::Free,
                };
                batch.log(alloc_event(now, kind, binding, None));
                Ok(Effect::AllocLine)
            }
            Event::ErrorSent { .. } => Ok(Effect::None),
        }
    }

    /// Deletes quarantine rows whose hold ended at or before `now` (at most
    /// `max`, bounded work). `realm-lease` never reuses a bind ID while it
    /// is held, so the row deleted is the one that ended.
    pub(crate) fn prune_quarantine(&mut self, batch: &mut Batch, now: Timestamp, max: usize) {
        let mut n = 0;
        while n < max
            && let Some(Reverse((until, bind))) = self.quarantine.peek().copied()
            && until <= now
        {
            self.quarantine.pop();
            batch.delete_quarantine(bind);
            n += 1;
        }
    }

    /// When [`Persister::prune_quarantine`] next has work.
    pub(crate) fn next_prune(&self) -> Option<Timestamp> {
        self.quarantine.peek().map(|Reverse((t, _))| *t)
    }

    fn put_host(&mut self, batch: &mut Batch, host: HostRecord) -> Result<(), StoreError> {
        batch.put_json(
            Kind::REGISTRATION,
            u64::from(host.client.0),
            &host,
            Some(host.expires_at),
        )?;
        self.hosts.insert(host.client, host);
        Ok(())
    }
}

fn alloc_event(
    time: Timestamp,
    event: AllocEventKind,
    b: &BindingRecord,
    lease: Option<Duration>,
) -> AllocEvent {
    AllocEvent {
        time,
        event,
        client: b.client,
        private: Some(b.private_address),
        public: b.public_address,
        ports: b.ports.clone(),
        spis: b.spis.clone(),
        lease,
        bind: b.bind,
        method: b.method,
    }
}

/// Reads the engine's state from the store. Rows that do not decode are
/// skipped and named in `undecodable` (hosts resync them, RFC 3103 10.2.2).
pub(crate) fn load(store: &Store) -> Result<(PersistedState, Vec<String>), StoreError> {
    let mut state = PersistedState::default();
    let mut undecodable = Vec::new();
    let rows = |kind: Kind| store.load_all(kind);
    for (id, bytes) in rows(Kind::REGISTRATION)? {
        match serde_json::from_slice::<HostRecord>(&bytes) {
            Ok(h) => state.hosts.push(h),
            Err(e) => undecodable.push(format!("registration {id}: {e}")),
        }
    }
    for (id, bytes) in rows(Kind::BINDING)? {
        match serde_json::from_slice::<BindingRecord>(&bytes) {
            Ok(b) => state.bindings.push(b),
            Err(e) => undecodable.push(format!("binding {id}: {e}")),
        }
    }
    for (id, bytes) in rows(Kind::QUARANTINE)? {
        match serde_json::from_slice::<QuarantineRecord>(&bytes) {
            Ok(q) => state.quarantine.push(q),
            Err(e) => undecodable.push(format!("quarantine {id}: {e}")),
        }
    }
    state.quarantine.sort_by_key(|q| (q.until, q.bind));
    Ok((state, undecodable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_rows_pruned_once_their_hold_ends() {
        let mut p = Persister::default();
        p.quarantine
            .push(Reverse((Timestamp::from_secs(10), BindId(1))));
        p.quarantine
            .push(Reverse((Timestamp::from_secs(5), BindId(2))));
        let mut b = Batch::new();
        p.prune_quarantine(&mut b, Timestamp::from_secs(6), 16);
        assert_eq!(b.ops.len(), 1);
        assert_eq!(p.next_prune(), Some(Timestamp::from_secs(10)));
        let mut b = Batch::new();
        p.prune_quarantine(&mut b, Timestamp::from_secs(60), 16);
        assert_eq!(b.ops.len(), 1);
        assert_eq!(p.next_prune(), None);
    }
}
