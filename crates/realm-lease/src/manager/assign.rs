//! Assignment: validating a request, planning a whole or shared address,
//! and committing the binding.

use std::time::Duration;

use super::{Address, Binding, LeaseManager, Plan, Whole, count32};
use crate::set::{checked_list, port_range, spi_range};
use crate::{
    AddressRequest, AssignError, BindId, BindingRecord, ClientId, Grant, Method, PortRequest,
    PortSet, Shortage, Spi, SpiRequest, SpiSet, Timestamp,
};

/// A validated port request.
enum PortNeed<'a> {
    DontNeed,
    Any(u32),
    /// The exact set, and the ports in request order (for error reports).
    Exact(PortSet, &'a PortRequest),
}

/// A validated SPI request.
enum SpiNeed<'a> {
    None,
    Any(u32),
    Exact(SpiSet, &'a SpiRequest),
}

impl PortNeed<'_> {
    fn count(&self) -> u32 {
        match self {
            PortNeed::DontNeed => 0,
            PortNeed::Any(n) => *n,
            PortNeed::Exact(set, _) => set.len(),
        }
    }

    /// The requested ports in request order.
    fn in_order(&self) -> Box<dyn Iterator<Item = u16> + '_> {
        match self {
            PortNeed::Exact(_, PortRequest::List(l)) => Box::new(l.iter().copied()),
            PortNeed::Exact(set, _) => Box::new(set.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }
}

impl SpiNeed<'_> {
    fn count(&self) -> u32 {
        match self {
            SpiNeed::None => 0,
            SpiNeed::Any(n) => *n,
            SpiNeed::Exact(set, _) => set.len(),
        }
    }

    fn in_order(&self) -> Box<dyn Iterator<Item = Spi> + '_> {
        match self {
            SpiNeed::Exact(_, SpiRequest::List(l)) => Box::new(l.iter().copied()),
            SpiNeed::Exact(set, _) => Box::new(set.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }
}

fn bad(what: &'static str) -> AssignError {
    AssignError::BadParam { what }
}

fn port_need(method: Method, req: &PortRequest) -> Result<PortNeed<'_>, AssignError> {
    Ok(match req {
        PortRequest::DontNeed if method != Method::RsapIp => PortNeed::DontNeed,
        PortRequest::DontNeed => return Err(bad("ports \"don't need\" outside RSIPSEC")),
        PortRequest::DontCare { count: 0 } => return Err(bad("zero port count")),
        PortRequest::DontCare { count } => PortNeed::Any(u32::from(*count)),
        PortRequest::Range { first, count } => {
            port_range(*first, *count).map_err(bad)?;
            PortNeed::Exact(
                PortSet::Range {
                    first: *first,
                    count: *count,
                },
                req,
            )
        }
        PortRequest::List(l) => PortNeed::Exact(PortSet::List(checked_list(l).map_err(bad)?), req),
    })
}

fn spi_need(req: Option<&SpiRequest>) -> Result<SpiNeed<'_>, AssignError> {
    Ok(match req {
        None => SpiNeed::None,
        Some(SpiRequest::DontCare { count: 0 }) => return Err(bad("zero SPI count")),
        Some(SpiRequest::DontCare { count }) => SpiNeed::Any(u32::from(*count)),
        Some(r @ SpiRequest::Range { first, count }) => {
            spi_range(first.0, u32::from(*count)).map_err(bad)?;
            SpiNeed::Exact(
                SpiSet::Range {
                    first: *first,
                    count: u32::from(*count),
                },
                r,
            )
        }
        Some(r @ SpiRequest::List(l)) => {
            SpiNeed::Exact(SpiSet::List(checked_list(l).map_err(bad)?), r)
        }
    })
}

impl LeaseManager {
    /// Leases a whole address (ASSIGN_REQUEST_RSA-IP, RFC 3103 9.6): no port
    /// or SPI of it can be leased to anyone else until it is freed and its
    /// quarantine ends. `lease` is the host's suggestion (default
    /// [`Config::default_lease`], clamped to 1 s..=[`Config::max_lease`]).
    pub fn assign_rsa_ip(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(
            client,
            Method::RsaIp,
            address,
            &PortRequest::DontNeed,
            None,
            lease,
            now,
        )
    }

    /// Leases ports of a shared address (ASSIGN_REQUEST_RSAP-IP, RFC 3103
    /// 9.8). "Don't care" ports get a contiguous block if one exists, else a
    /// list, oldest-free ports first. [`PortRequest::DontNeed`] is refused
    /// here (BAD_PARAM).
    pub fn assign_rsap_ip(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: PortRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(client, Method::RsapIp, address, &ports, None, lease, now)
    }

    /// Leases SPIs (and ports, or none with [`PortRequest::DontNeed`]) of a
    /// shared address (ASSIGN_REQUEST_RSIPSEC, RFC 3104 6.2). (Address, SPI)
    /// tuples are unique at the gateway; the same SPI may be leased on two
    /// addresses.
    pub fn assign_rsipsec(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: PortRequest,
        spis: SpiRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(
            client,
            Method::Rsipsec,
            address,
            &ports,
            Some(&spis),
            lease,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn assign(
        &mut self,
        client: ClientId,
        method: Method,
        address: AddressRequest,
        ports: &PortRequest,
        spis: Option<&SpiRequest>,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.release_held(now);
        // RFC 3103 9.6.3, 9.8.3: an unregistered host MUST get REGISTER_FIRST.
        let Some(host) = self.hosts.get(&client) else {
            return Err(AssignError::RegisterFirst);
        };
        let port_need = port_need(method, ports)?;
        let spi_need = spi_need(spis)?;
        // RFC 3104 6.2: IPSEC_UNALLOWED if the client may not use IPsec.
        if method == Method::Rsipsec && self.config.quota.spis == 0 {
            return Err(AssignError::IpsecUnallowed);
        }
        let (quota, used) = (self.config.quota, host.usage);
        if used.bindings >= quota.bindings {
            return Err(match method {
                Method::RsaIp => AssignError::LocalAddrUnavailable {
                    reason: Shortage::Quota,
                },
                _ => AssignError::LocalAddrPortUnavailable {
                    reason: Shortage::Quota,
                },
            });
        }
        if method == Method::RsaIp && used.addresses >= quota.addresses {
            return Err(AssignError::LocalAddrUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u64::from(used.ports) + u64::from(port_need.count()) > u64::from(quota.ports) {
            return Err(AssignError::LocalAddrPortUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u64::from(used.spis) + u64::from(spi_need.count()) > u64::from(quota.spis) {
            return Err(AssignError::IpsecSpiUnavailable {
                reason: Shortage::Quota,
            });
        }
        let plan = match method {
            Method::RsaIp => {
                let addr = self.plan_whole(address)?;
                Plan {
                    addr,
                    ports: PortSet::None,
                    spis: SpiSet::None,
                }
            }
            _ => self.plan_shared(client, address, &port_need, &spi_need)?,
        };
        let lease = self.lease_for(lease);
        let expires_at = now + lease;
        let bind = self.alloc_bind();
        let binding = BindingRecord {
            bind,
            client,
            method,
            address: self.addr(plan.addr).address,
            ports: plan.ports.clone(),
            spis: plan.spis.clone(),
            expires_at,
        };
        self.install(bind, client, method, plan, expires_at);
        let registration = self
            .registration(client)
            .ok_or(AssignError::RegisterFirst)?;
        Ok(Grant {
            binding,
            lease,
            registration,
        })
    }

    /// Picks the address for an RSA-IP binding.
    fn plan_whole(&mut self, address: AddressRequest) -> Result<u32, AssignError> {
        match address {
            AddressRequest::Specific(a) => {
                // RFC 3103 9.6.3: an address not allowed by policy MUST get
                // LOCAL_ADDR_UNALLOWED, one in use LOCAL_ADDR_INUSE, and if
                // no address at all can be allocated, LOCAL_ADDR_UNAVAILABLE.
                let i = self.lookup(a).ok_or(AssignError::LocalAddrUnallowed)?;
                if !self.addr(i).whole_lease {
                    return Err(AssignError::LocalAddrUnallowed);
                }
                if self.addr(i).whole_eligible() {
                    Ok(i)
                } else if self.addresses.iter().any(Address::whole_eligible) {
                    Err(AssignError::LocalAddrInUse)
                } else {
                    Err(AssignError::LocalAddrUnavailable {
                        reason: Shortage::Exhausted,
                    })
                }
            }
            AddressRequest::DontCare => {
                while let Some(i) = self.whole_queue.pop_front() {
                    let a = self.addr_mut(i);
                    a.queued = false;
                    if a.whole_eligible() {
                        return Ok(i);
                    }
                }
                Err(AssignError::LocalAddrUnavailable {
                    reason: Shortage::Exhausted,
                })
            }
        }
    }

    /// Candidate addresses for a shared binding of `client`, best first: ones
    /// the host already uses, then ones already shared or never leasable whole
    /// (keeping whole-leasable addresses free for RSA-IP), then most free
    /// ports.
    fn shared_candidates(&self, client: ClientId, needs_ports: bool) -> Vec<u32> {
        let mine: &[(u32, u32)] = self.hosts.get(&client).map_or(&[], |h| &h.addresses);
        let mut c: Vec<u32> = (0..count32(self.addresses.len()))
            .filter(|&i| self.addr(i).shared_eligible(needs_ports))
            .collect();
        c.sort_by_key(|&i| {
            let a = self.addr(i);
            (
                !mine.iter().any(|&(j, _)| j == i),
                a.whole_eligible(),
                std::cmp::Reverse(a.free_ports()),
                i,
            )
        });
        c
    }

    /// Picks the address, ports and SPIs for an RSAP-IP or RSIPSEC binding.
    fn plan_shared(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: &PortNeed<'_>,
        spis: &SpiNeed<'_>,
    ) -> Result<Plan, AssignError> {
        let needs_ports = !matches!(ports, PortNeed::DontNeed);
        let (lo, hi) = self.spi_bounds();
        let first_unallowed = |a: &Address| ports.in_order().find(|&p| !a.port_allowed(p));
        let spi_out_of_range = || spis.in_order().any(|s| s.0 < lo || s.0 > hi);
        let mut cands = match address {
            AddressRequest::Specific(want) => {
                // RFC 3103 9.8.3: LOCAL_ADDR_UNALLOWED, LOCAL_ADDRPORT_UNALLOWED
                // for what policy forbids.
                let i = self.lookup(want).ok_or(AssignError::LocalAddrUnallowed)?;
                let a = self.addr(i);
                if needs_ports && a.leasable_count == 0 {
                    return Err(AssignError::LocalAddrUnallowed);
                }
                if let Some(port) = first_unallowed(a) {
                    return Err(AssignError::LocalAddrPortUnallowed { port });
                }
                if spi_out_of_range() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                // RFC 3103 9.8.3: LOCAL_ADDR_INUSE for an address in use,
                // LOCAL_ADDR_UNAVAILABLE if none at all can be allocated.
                if !a.shared_eligible(needs_ports) {
                    return Err(
                        if self
                            .addresses
                            .iter()
                            .any(|a| a.shared_eligible(needs_ports))
                        {
                            AssignError::LocalAddrInUse
                        } else {
                            AssignError::LocalAddrUnavailable {
                                reason: Shortage::Exhausted,
                            }
                        },
                    );
                }
                vec![i]
            }
            AddressRequest::DontCare => {
                // RFC 3103 9.8.3: "don't care" and no address at all:
                // LOCAL_ADDR_UNAVAILABLE.
                let all = self.shared_candidates(client, needs_ports);
                let Some(&best) = all.first() else {
                    return Err(AssignError::LocalAddrUnavailable {
                        reason: Shortage::Exhausted,
                    });
                };
                let allowed: Vec<u32> = all
                    .iter()
                    .copied()
                    .filter(|&i| first_unallowed(self.addr(i)).is_none())
                    .collect();
                if allowed.is_empty() {
                    let port = first_unallowed(self.addr(best)).unwrap_or(0);
                    return Err(AssignError::LocalAddrPortUnallowed { port });
                }
                if spi_out_of_range() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                allowed
            }
        };
        // Ports: RFC 3103 9.8.3: a requested tuple in use MUST get
        // LOCAL_ADDRPORT_INUSE; a "don't care" number that cannot be granted
        // whole MUST get LOCAL_ADDRPORT_UNAVAILABLE.
        let first = cands.first().copied();
        match ports {
            PortNeed::DontNeed => {}
            PortNeed::Any(n) => {
                cands.retain(|&i| self.addr(i).free_ports() >= *n);
                if cands.is_empty() {
                    return Err(AssignError::LocalAddrPortUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            PortNeed::Exact(..) => {
                let busy = |a: &Address| ports.in_order().find(|&p| !a.port_free(p));
                cands.retain(|&i| busy(self.addr(i)).is_none());
                if cands.is_empty() {
                    let port = first.and_then(|i| busy(self.addr(i))).unwrap_or(0);
                    return Err(AssignError::LocalAddrPortInUse { port });
                }
            }
        }
        // SPIs: RFC 3104 6.2: "don't care" and none left: IPSEC_SPI_UNAVAILABLE;
        // a suggested (address, SPI) in use: IPSEC_SPI_INUSE.
        let first = cands.first().copied();
        match spis {
            SpiNeed::None => {}
            SpiNeed::Any(n) => {
                let room = u64::from(hi) - u64::from(lo) + 1;
                cands.retain(|&i| room - self.addr(i).spis.used() >= u64::from(*n));
                if cands.is_empty() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            SpiNeed::Exact(..) => {
                let busy = |a: &Address| spis.in_order().find(|s| !a.spi_free(s.0));
                cands.retain(|&i| busy(self.addr(i)).is_none());
                if cands.is_empty() {
                    let spi = first.and_then(|i| busy(self.addr(i))).unwrap_or(Spi(0));
                    return Err(AssignError::IpsecSpiInUse { spi });
                }
            }
        }
        // Choose: the first candidate, or for "don't care" ports the first
        // with a contiguous block.
        let mut chosen = cands.first().copied().unwrap_or(0);
        let mut port_set = PortSet::None;
        match ports {
            PortNeed::DontNeed => {}
            PortNeed::Exact(set, _) => port_set = set.clone(),
            PortNeed::Any(n) => {
                let count = u16::try_from(*n).unwrap_or(u16::MAX);
                let block = cands.iter().find_map(|&i| {
                    self.addr_mut(i)
                        .port_pool()
                        .find_contiguous(*n)
                        .map(|first| (i, first))
                });
                port_set = match block {
                    Some((i, first)) => {
                        chosen = i;
                        PortSet::Range { first, count }
                    }
                    None => self
                        .addr_mut(chosen)
                        .port_pool()
                        .find_scattered(*n)
                        .map(PortSet::List)
                        .ok_or(AssignError::LocalAddrPortUnavailable {
                            reason: Shortage::Exhausted,
                        })?,
                };
            }
        }
        let spi_set = match spis {
            SpiNeed::None => SpiSet::None,
            SpiNeed::Exact(set, _) => set.clone(),
            SpiNeed::Any(n) => {
                let pool = &self.addr(chosen).spis;
                match pool.find_contiguous(lo, hi, *n) {
                    Some(first) => SpiSet::Range {
                        first: Spi(first),
                        count: *n,
                    },
                    None => pool
                        .find_scattered(lo, hi, *n)
                        .map(|v| SpiSet::List(v.into_iter().map(Spi).collect()))
                        .ok_or(AssignError::IpsecSpiUnavailable {
                            reason: Shortage::Exhausted,
                        })?,
                }
            }
        };
        Ok(Plan {
            addr: chosen,
            ports: port_set,
            spis: spi_set,
        })
    }

    /// A bind ID not live and not in quarantine.
    fn alloc_bind(&mut self) -> BindId {
        loop {
            let id = BindId(self.next_bind);
            self.next_bind = self.next_bind.wrapping_add(1);
            if self.next_bind == 0 {
                self.next_bind = 1;
                self.wrapped = true;
            }
            if !self.wrapped || !self.bind_in_use(id) {
                return id;
            }
        }
    }

    pub(super) fn bind_in_use(&self, id: BindId) -> bool {
        id.0 == 0 || self.bindings.contains_key(&id) || self.held_binds.contains(&id)
    }

    pub(super) fn note_bind(&mut self, id: BindId) {
        if id.0 >= self.next_bind && !self.wrapped {
            match id.0.checked_add(1) {
                Some(n) => self.next_bind = n,
                None => {
                    self.next_bind = 1;
                    self.wrapped = true;
                }
            }
        }
    }

    /// Records a binding and takes its resources (which must be free).
    pub(super) fn install(
        &mut self,
        bind: BindId,
        client: ClientId,
        method: Method,
        plan: Plan,
        expires_at: Timestamp,
    ) {
        let Plan { addr, ports, spis } = plan;
        let (nports, nspis) = (ports.len(), spis.len());
        let a = self.addr_mut(addr);
        if method == Method::RsaIp {
            a.whole = Whole::Leased(bind);
        } else {
            a.shared += 1;
        }
        for (first, last) in ports.runs() {
            a.port_pool().take(first, last, bind);
        }
        for (first, last) in spis.runs() {
            a.spis.take(first, last, bind);
        }
        if method == Method::RsaIp {
            self.usage.addresses_leased += 1;
        }
        if let Some(host) = self.hosts.get_mut(&client) {
            host.usage.bindings += 1;
            host.usage.ports += nports;
            host.usage.spis += nspis;
            if method == Method::RsaIp {
                host.usage.addresses += 1;
            } else {
                match host.addresses.iter_mut().find(|(i, _)| *i == addr) {
                    Some((_, n)) => *n += 1,
                    None => host.addresses.push((addr, 1)),
                }
            }
            // RFC 3103 6: when binding Bi is established or extended, R = max(R, Bi).
            if expires_at > host.expires_at {
                self.host_expiry.remove(&(host.expires_at, client));
                self.host_expiry.insert((expires_at, client));
                host.expires_at = expires_at;
            }
        }
        self.by_host.insert((client, bind));
        self.binding_expiry.insert((expires_at, bind));
        let (binding, extra) = Binding::new(client, addr, method, expires_at, ports, spis);
        if let Some(extra) = extra {
            self.extras.insert(bind, extra);
        }
        self.bindings.insert(bind, binding);
        self.usage.bindings += 1;
        self.usage.ports_leased += u64::from(nports);
        self.usage.spis_leased += u64::from(nspis);
    }
}
