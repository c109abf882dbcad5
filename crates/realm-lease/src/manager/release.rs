//! Extension, freeing, expiry, and the TIME_WAIT quarantine an ended
//! binding's resources pass through.

use std::time::Duration;

use super::{Held, LeaseManager, Whole};
use crate::{BindId, BindingError, ClientId, Expired, Extended, Method, Released, Timestamp};

impl LeaseManager {
    /// Extends a binding (EXTEND_REQUEST, RFC 3103 9.10): it now ends at `now`
    /// plus the granted lease (the host's suggestion or the default, clamped
    /// to 1 s..=[`Config::max_lease`]), which may be earlier than before.
    pub fn extend(
        &mut self,
        client: ClientId,
        bind: BindId,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Extended, BindingError> {
        self.release_held(now);
        self.check_owner(client, bind)?;
        let lease = self.lease_for(lease);
        let expires_at = now + lease;
        if let Some(b) = self.bindings.get_mut(&bind) {
            self.binding_expiry.remove(&(b.expires_at(), bind));
            self.binding_expiry.insert((expires_at, bind));
            b.set_expires_at(expires_at);
        }
        if let Some(host) = self.hosts.get_mut(&client)
            && expires_at > host.expires_at
        {
            // RFC 3103 6: R = max(R, Bi).
            self.host_expiry.remove(&(host.expires_at, client));
            self.host_expiry.insert((expires_at, client));
            host.expires_at = expires_at;
        }
        let binding = self.record(bind).ok_or(BindingError::BadBindId)?;
        let registration = self
            .registration(client)
            .ok_or(BindingError::RegisterFirst)?;
        Ok(Extended {
            binding,
            lease,
            registration,
        })
    }

    /// Frees a binding (FREE_REQUEST, RFC 3103 9.12): its resources go to
    /// quarantine for [`Config::time_wait`].
    pub fn free(
        &mut self,
        client: ClientId,
        bind: BindId,
        now: Timestamp,
    ) -> Result<Released, BindingError> {
        self.release_held(now);
        self.check_owner(client, bind)?;
        let released = self
            .release_binding(bind, now)
            .ok_or(BindingError::BadBindId)?;
        self.release_held(now);
        Ok(released)
    }

    fn check_owner(&self, client: ClientId, bind: BindId) -> Result<(), BindingError> {
        // RFC 3103 9.10.3, 9.12.3: REGISTER_FIRST, then BAD_BIND_ID.
        if !self.hosts.contains_key(&client) {
            return Err(BindingError::RegisterFirst);
        }
        match self.bindings.get(&bind) {
            Some(b) if b.client == client => Ok(()),
            _ => Err(BindingError::BadBindId),
        }
    }

    /// Ends every binding whose lease ends at or before `now`, then every
    /// registration that lapses at or before `now` (a registration outlives
    /// its bindings, RFC 3103 6), and returns them so that the engine can send
    /// FREE_RESPONSEs and DE-REGISTER_RESPONSEs (RFC 3103 9.5.3, 9.13.1).
    pub fn expire(&mut self, now: Timestamp) -> Expired {
        self.release_held(now);
        let mut out = Expired::default();
        let due: Vec<BindId> = self
            .binding_expiry
            .range(..=(now, BindId(u32::MAX)))
            .map(|&(_, b)| b)
            .collect();
        for bind in due {
            out.bindings.extend(self.release_binding(bind, now));
        }
        let lapsed: Vec<ClientId> = self
            .host_expiry
            .range(..=(now, ClientId(u32::MAX)))
            .map(|&(_, c)| c)
            .collect();
        for client in lapsed {
            // Its bindings ended no later than R; any left (a restore that
            // broke R >= Bi) end with it.
            out.bindings.extend(self.remove_host(client, now));
            out.registrations.push(client);
        }
        self.release_held(now);
        out
    }

    /// When [`LeaseManager::expire`] next has something to do: the earliest
    /// binding or registration expiry.
    pub fn next_timeout(&self) -> Option<Timestamp> {
        let b = self.binding_expiry.first().map(|&(t, _)| t);
        let h = self.host_expiry.first().map(|&(t, _)| t);
        b.into_iter().chain(h).min()
    }

    /// The earliest binding lease end (the engine's binding-lease timer).
    pub fn next_binding_expiry(&self) -> Option<Timestamp> {
        self.binding_expiry.first().map(|&(t, _)| t)
    }

    /// The earliest registration lapse (the engine's registration-lease timer).
    pub fn next_registration_expiry(&self) -> Option<Timestamp> {
        self.host_expiry.first().map(|&(t, _)| t)
    }

    /// Ends a binding: its resources go to quarantine until `now + time_wait`.
    pub(super) fn release_binding(&mut self, bind: BindId, now: Timestamp) -> Option<Released> {
        let record = self.record(bind)?;
        let b = self.bindings.remove(&bind)?;
        self.by_host.remove(&(b.client, bind));
        self.binding_expiry.remove(&(b.expires_at(), bind));
        let (ports, spis) = (record.ports.clone(), record.spis.clone());
        if b.extra {
            self.extras.remove(&bind);
        }
        let (nports, nspis) = (ports.len(), spis.len());
        if let Some(host) = self.hosts.get_mut(&b.client) {
            host.usage.bindings -= 1;
            host.usage.ports -= nports;
            host.usage.spis -= nspis;
            if b.method == Method::RsaIp {
                host.usage.addresses -= 1;
            } else if let Some(pos) = host.addresses.iter().position(|&(i, _)| i == b.addr) {
                host.addresses[pos].1 -= 1;
                if host.addresses[pos].1 == 0 {
                    host.addresses.swap_remove(pos);
                }
            }
        }
        let a = self.addr_mut(b.addr);
        if b.method == Method::RsaIp {
            a.whole = Whole::Held;
        } else {
            a.shared -= 1;
        }
        a.held += 1;
        if let Some(pool) = a.ports.as_mut() {
            for (first, _) in ports.runs() {
                pool.disown(first);
            }
        }
        for (first, _) in spis.runs() {
            a.spis.disown(first);
        }
        self.usage.bindings -= 1;
        self.usage.ports_leased -= u64::from(nports);
        self.usage.ports_held += u64::from(nports);
        self.usage.spis_leased -= u64::from(nspis);
        self.usage.spis_held += u64::from(nspis);
        if b.method == Method::RsaIp {
            self.usage.addresses_leased -= 1;
            self.usage.addresses_held += 1;
        }
        // RFC 3102 6.1: hold recently deallocated tuples for at least two
        // minutes (TCP TIME_WAIT) before leasing them again.
        let until = now + self.config.time_wait;
        self.push_held(Held {
            until,
            bind,
            addr: b.addr,
            method: b.method,
            ports,
            spis,
        });
        Some(Released {
            binding: record,
            held_until: until,
        })
    }

    pub(super) fn push_held(&mut self, held: Held) {
        self.held_binds.insert(held.bind);
        let pos = self.held.partition_point(|h| h.until <= held.until);
        self.held.insert(pos, held);
    }

    /// Returns to the pool everything held until `now` or earlier, oldest
    /// first (RFC 3102 6.1: FIFO from the pool of recently freed ports).
    pub(super) fn release_held(&mut self, now: Timestamp) {
        while self.held.front().is_some_and(|h| h.until <= now) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.held_binds.remove(&h.bind);
            let (nports, nspis) = (h.ports.len(), h.spis.len());
            let a = self.addr_mut(h.addr);
            a.held -= 1;
            if h.method == Method::RsaIp {
                a.whole = Whole::Free;
            }
            for (first, last) in h.ports.runs() {
                a.port_pool().release(first, last);
            }
            for (first, _) in h.spis.runs() {
                a.spis.release(first);
            }
            if a.whole_eligible() && !a.queued {
                a.queued = true;
                self.whole_queue.push_back(h.addr);
            }
            self.usage.ports_held -= u64::from(nports);
            self.usage.spis_held -= u64::from(nspis);
            if h.method == Method::RsaIp {
                self.usage.addresses_held -= 1;
            }
        }
    }
}
