//! State the gateway learns from outbound packets, to demultiplex inbound
//! ones that carry no leased field: IKE initiator cookies on shared UDP 500 and
//! 4500 (RFC 3104 s6.1), ICMP query identifiers (RFC 3102 s6.2) and the
//! peers' ESP SPIs (for ICMP errors quoting an outbound ESP packet).
//!
//! Each entry points at the binding that allowed it (slot and generation): an
//! entry whose binding was removed is dead and is overwritten or expired, so
//! removing a binding costs nothing here and never lets an entry reach a later
//! holder of the slot. Entries expire after an idle time; the sweep walks a
//! FIFO in bounded steps. Bounds: `max_total` entries, `max_per_host` per host.

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::Duration;

use realm_lease::{ClientId, Timestamp};
use rustc_hash::FxHashMap;

use super::table::Table;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Learned {
    pub(crate) host: ClientId,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) last_used: Timestamp,
    /// Another host used the same key while this entry lived: inbound
    /// packets that need it are dropped rather than guessed.
    pub(crate) ambiguous: bool,
}

/// What to do when a second host uses a live key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCollision {
    /// Refuse the second host (its packet is dropped): cookies, query IDs.
    Refuse,
    /// Let the packet through, mark the key ambiguous: ESP flows.
    MarkAmbiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// Another host holds the key.
    InUse,
    /// At the bound, for the host or in total.
    Full,
}

#[derive(Debug)]
pub(crate) struct LearnedMap<K> {
    map: FxHashMap<K, Learned>,
    queue: VecDeque<K>,
    per_host: FxHashMap<ClientId, u32>,
    idle: Duration,
    max_total: usize,
    max_per_host: u32,
    on_collision: OnCollision,
}

impl<K: Copy + Eq + Hash> LearnedMap<K> {
    pub(crate) fn new(
        idle: Duration,
        max_total: usize,
        max_per_host: u32,
        on_collision: OnCollision,
    ) -> Self {
        LearnedMap {
            map: FxHashMap::default(),
            queue: VecDeque::new(),
            per_host: FxHashMap::default(),
            idle,
            max_total,
            max_per_host,
            on_collision,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn alive(&self, e: &Learned, table: &Table, now: Timestamp) -> bool {
        table.is_live(e.slot, e.generation) && e.last_used + self.idle > now
    }

    /// The live entry for `key`, refreshed.
    pub(crate) fn lookup(&mut self, key: &K, table: &Table, now: Timestamp) -> Option<Learned> {
        let idle = self.idle;
        let e = self.map.get_mut(key)?;
        if !(table.is_live(e.slot, e.generation) && e.last_used + idle > now) {
            return None;
        }
        e.last_used = e.last_used.max(now);
        Some(*e)
    }

    /// Records that `host` (through binding `slot`) uses `key`.
    pub(crate) fn claim(
        &mut self,
        key: K,
        host: ClientId,
        slot: u32,
        table: &Table,
        now: Timestamp,
    ) -> Result<(), ClaimError> {
        let generation = table.slot(slot).generation;
        let fresh = Learned {
            host,
            slot,
            generation,
            last_used: now,
            ambiguous: false,
        };
        if let Some(existing) = self.map.get(&key).copied() {
            if self.alive(&existing, table, now) {
                if existing.host == host {
                    if let Some(e) = self.map.get_mut(&key) {
                        e.last_used = e.last_used.max(now);
                        e.slot = slot;
                        e.generation = generation;
                    }
                    return Ok(());
                }
                return match self.on_collision {
                    OnCollision::Refuse => Err(ClaimError::InUse),
                    OnCollision::MarkAmbiguous => {
                        if let Some(e) = self.map.get_mut(&key) {
                            e.ambiguous = true;
                            e.last_used = e.last_used.max(now);
                        }
                        Ok(())
                    }
                };
            }
            // Dead or idle: the key is free; take it over in place (it keeps
            // its one place in the queue).
            if existing.host != host {
                if self.host_count(host) >= self.max_per_host {
                    return Err(ClaimError::Full);
                }
                self.dec(existing.host);
                *self.per_host.entry(host).or_insert(0) += 1;
            }
            self.map.insert(key, fresh);
            return Ok(());
        }
        if self.map.len() >= self.max_total {
            self.expire(now, table, 64);
            if self.map.len() >= self.max_total {
                return Err(ClaimError::Full);
            }
        }
        if self.host_count(host) >= self.max_per_host {
            return Err(ClaimError::Full);
        }
        *self.per_host.entry(host).or_insert(0) += 1;
        self.map.insert(key, fresh);
        self.queue.push_back(key);
        Ok(())
    }

    fn host_count(&self, host: ClientId) -> u32 {
        self.per_host.get(&host).copied().unwrap_or(0)
    }

    fn dec(&mut self, host: ClientId) {
        if let Some(n) = self.per_host.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&host);
            }
        }
    }

    /// Looks at up to `budget` entries at the head of the queue: dead or idle
    /// ones are removed, live ones go to the back. Returns how many were removed.
    pub(crate) fn expire(&mut self, now: Timestamp, table: &Table, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.queue.len()) {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            let Some(e) = self.map.get(&key).copied() else {
                continue;
            };
            if self.alive(&e, table, now) {
                self.queue.push_back(key);
            } else {
                self.map.remove(&key);
                self.dec(e.host);
                removed += 1;
            }
        }
        removed
    }

    /// The earliest time an entry may expire (a hint for `poll_timeout`).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        let key = self.queue.front()?;
        self.map.get(key).map(|e| e.last_used + self.idle)
    }
}

/// What an unauthenticated packet can do to learned state (issue 11,
/// docs/signalling-auth.md): entries are created only by [`LearnedMap::claim`],
/// which the data plane calls for outbound packets that passed a host's
/// binding (the tunnel's outer source is the host's endpoint); inbound packets
/// only [`LearnedMap::lookup`]. A live entry of one host is never displaced by
/// another host's claim, and a host at its bound evicts nobody.
#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::dataplane::Resources;
    use crate::dataplane::tests::{binding, ports};

    const A: ClientId = ClientId(1);
    const B: ClientId = ClientId(2);

    fn table() -> (Table, u32, u32) {
        let public = Ipv4Addr::new(192, 0, 2, 1);
        let mut t = Table::new(&[], 8, 8);
        t.insert(binding(
            1,
            A,
            Ipv4Addr::new(10, 0, 0, 2),
            public,
            Resources::Ports(ports(2000, 10)),
        ))
        .unwrap();
        t.insert(binding(
            2,
            B,
            Ipv4Addr::new(10, 0, 0, 3),
            public,
            Resources::Ports(ports(3000, 10)),
        ))
        .unwrap();
        let (a, b) = (t.host_slots(A)[0], t.host_slots(B)[0]);
        (t, a, b)
    }

    #[test]
    fn another_host_cannot_displace_a_live_entry() {
        let (t, a, b) = table();
        let now = Timestamp::from_millis(1_000);
        let idle = Duration::from_secs(60);
        for on_collision in [OnCollision::Refuse, OnCollision::MarkAmbiguous] {
            let mut m: LearnedMap<u64> = LearnedMap::new(idle, 16, 2, on_collision);
            m.claim(7, A, a, &t, now).unwrap();
            let second = m.claim(7, B, b, &t, now);
            let e = m.lookup(&7, &t, now).unwrap();
            assert_eq!(e.host, A, "{on_collision:?}");
            match on_collision {
                OnCollision::Refuse => assert_eq!(second, Err(ClaimError::InUse)),
                OnCollision::MarkAmbiguous => assert!(e.ambiguous),
            }
        }
    }

    #[test]
    fn lookups_create_nothing_and_a_full_host_evicts_nobody() {
        let (t, a, b) = table();
        let now = Timestamp::from_millis(1_000);
        let mut m: LearnedMap<u64> =
            LearnedMap::new(Duration::from_secs(60), 16, 2, OnCollision::Refuse);
        // Inbound: nothing learned.
        assert!(m.lookup(&1, &t, now).is_none());
        assert_eq!(m.len(), 0);
        m.claim(1, A, a, &t, now).unwrap();
        m.claim(2, B, b, &t, now).unwrap();
        m.claim(3, B, b, &t, now).unwrap();
        // B at its bound: refused, and A's entry stays.
        assert_eq!(m.claim(4, B, b, &t, now), Err(ClaimError::Full));
        assert_eq!(m.lookup(&1, &t, now).map(|e| e.host), Some(A));
        assert_eq!(m.len(), 3);
    }
}
