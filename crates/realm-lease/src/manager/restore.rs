//! Persistence: the records a store keeps, and restoring them after a
//! restart.

use std::net::Ipv4Addr;

use super::{Held, LeaseManager, Plan, Whole};
use crate::spis::HELD;
use crate::{
    BindId, BindingRecord, Method, PortSet, QuarantineRecord, Records, RegistrationRecord,
    RestoreError, SpiSet,
};

impl LeaseManager {
    /// Everything a store needs to rebuild this state with
    /// [`LeaseManager::restore`].
    pub fn records(&self) -> Records {
        let mut registrations: Vec<RegistrationRecord> = self
            .hosts
            .iter()
            .map(|(&client, h)| RegistrationRecord {
                client,
                expires_at: h.expires_at,
            })
            .collect();
        registrations.sort_by_key(|r| r.client);
        let mut bindings: Vec<BindingRecord> = self
            .bindings
            .keys()
            .filter_map(|&b| self.record(b))
            .collect();
        bindings.sort_by_key(|r| r.bind);
        let quarantine = self
            .held
            .iter()
            .map(|h| QuarantineRecord {
                bind: h.bind,
                method: h.method,
                address: self.addr(h.addr).address,
                ports: h.ports.clone(),
                spis: h.spis.clone(),
                until: h.until,
            })
            .collect();
        Records {
            registrations,
            bindings,
            quarantine,
        }
    }

    /// Restores registrations, then bindings, then quarantine, stopping at the
    /// first refused record. Use the `restore_*` methods to skip bad records
    /// instead.
    pub fn restore(&mut self, records: &Records) -> Result<(), RestoreError> {
        for r in &records.registrations {
            self.restore_registration(r)?;
        }
        for b in &records.bindings {
            self.restore_binding(b)?;
        }
        for q in &records.quarantine {
            self.restore_quarantine(q)?;
        }
        Ok(())
    }

    /// Restores a registration as persisted (quotas and `max_hosts` are not
    /// enforced: the host already holds it).
    pub fn restore_registration(
        &mut self,
        record: &RegistrationRecord,
    ) -> Result<(), RestoreError> {
        if self.hosts.contains_key(&record.client) {
            return Err(RestoreError::DuplicateClient(record.client));
        }
        self.insert_host(record.client, record.expires_at);
        Ok(())
    }

    /// Restores a live binding with its ID, resources and expiry. Its
    /// registration must be restored first. A record that lapsed while the
    /// gateway was down is restored too: the next [`LeaseManager::expire`]
    /// ends it (and the engine tells the host).
    pub fn restore_binding(&mut self, record: &BindingRecord) -> Result<(), RestoreError> {
        let bind = record.bind;
        if self.bind_in_use(bind) {
            return Err(RestoreError::DuplicateBind(bind));
        }
        if !self.hosts.contains_key(&record.client) {
            return Err(RestoreError::UnknownClient {
                bind,
                client: record.client,
            });
        }
        let addr = self.check_restorable(
            bind,
            record.method,
            record.address,
            &record.ports,
            &record.spis,
        )?;
        let plan = Plan {
            addr,
            ports: record.ports.clone(),
            spis: record.spis.clone(),
        };
        self.install(bind, record.client, record.method, plan, record.expires_at);
        self.note_bind(bind);
        Ok(())
    }

    /// Restores quarantined resources with their hold time.
    pub fn restore_quarantine(&mut self, record: &QuarantineRecord) -> Result<(), RestoreError> {
        let bind = record.bind;
        if self.bind_in_use(bind) {
            return Err(RestoreError::DuplicateBind(bind));
        }
        let addr = self.check_restorable(
            bind,
            record.method,
            record.address,
            &record.ports,
            &record.spis,
        )?;
        let (nports, nspis) = (record.ports.len(), record.spis.len());
        let a = self.addr_mut(addr);
        a.held += 1;
        if record.method == Method::RsaIp {
            a.whole = Whole::Held;
        }
        for (first, last) in record.ports.runs() {
            a.port_pool().hold(first, last);
        }
        for (first, last) in record.spis.runs() {
            a.spis.take(first, last, HELD);
        }
        if record.method == Method::RsaIp {
            self.usage.addresses_held += 1;
        }
        self.usage.ports_held += u64::from(nports);
        self.usage.spis_held += u64::from(nspis);
        self.push_held(Held {
            until: record.until,
            bind,
            addr,
            method: record.method,
            ports: record.ports.clone(),
            spis: record.spis.clone(),
        });
        self.note_bind(bind);
        Ok(())
    }

    /// Checks a restored record's shape, policy and conflicts; returns its
    /// address index.
    fn check_restorable(
        &self,
        bind: BindId,
        method: Method,
        address: Ipv4Addr,
        ports: &PortSet,
        spis: &SpiSet,
    ) -> Result<u32, RestoreError> {
        let bad = |what| RestoreError::BadRecord { bind, what };
        ports.check().map_err(bad)?;
        spis.check().map_err(bad)?;
        match method {
            Method::RsaIp if !ports.is_empty() || !spis.is_empty() => {
                return Err(bad("RSA-IP binding with ports or SPIs"));
            }
            Method::RsapIp if ports.is_empty() || !spis.is_empty() => {
                return Err(bad("RSAP-IP binding without ports or with SPIs"));
            }
            Method::Rsipsec if spis.is_empty() => return Err(bad("RSIPSEC binding without SPIs")),
            _ => {}
        }
        let i = self.lookup(address).ok_or(RestoreError::Unallowed(bind))?;
        let a = self.addr(i);
        let (lo, hi) = self.spi_bounds();
        let allowed = match method {
            Method::RsaIp => a.whole_lease,
            _ => {
                ports.iter().all(|p| a.port_allowed(p))
                    && spis.iter().all(|s| (lo..=hi).contains(&s.0))
            }
        };
        if !allowed {
            return Err(RestoreError::Unallowed(bind));
        }
        let free = match method {
            Method::RsaIp => a.whole_eligible(),
            _ => {
                a.whole == Whole::Free
                    && ports.iter().all(|p| a.port_free(p))
                    && spis
                        .runs()
                        .iter()
                        .all(|&(f, l)| a.spis.overlap(f, l).is_none())
            }
        };
        if free {
            Ok(i)
        } else {
            Err(RestoreError::Conflict(bind))
        }
    }
}
