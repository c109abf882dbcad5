//! Every operation and every refusal of the lease manager, on a fake clock
//! (a `Timestamp` advanced by `Duration`s).
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use realm_lease::{
    AddressConfig, AddressRequest, AssignError, BindId, BindingError, ClientId, Config, Grant,
    Holder, LeaseManager, Method, PortRequest, PortSet, RegisterError, RestoreError, Shortage, Spi,
    SpiRequest, SpiSet, Timestamp,
};

/// Shared (the gateway's own address): ports 1024-1100 minus 1050-1059.
const S: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Dedicated: leasable whole or by ports 2000-2099.
const D1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// Dedicated, whole only.
const D2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// Not in the pool.
const X: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

const H1: ClientId = ClientId(0x1111);
const H2: ClientId = ClientId(0x2222);
const H3: ClientId = ClientId(0x3333);
const H4: ClientId = ClientId(0x4444);

const T0: Timestamp = Timestamp::from_secs(1_000_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> Config {
    let mut c = Config::new(vec![
        AddressConfig {
            address: S,
            whole_lease: false,
            ports: vec![1024..=1100],
            excluded: vec![1050..=1059],
        },
        AddressConfig {
            address: D1,
            whole_lease: true,
            ports: vec![2000..=2099],
            excluded: vec![],
        },
        AddressConfig {
            address: D2,
            whole_lease: true,
            ports: vec![],
            excluded: vec![],
        },
    ]);
    c.spis = 256..=511;
    c.quota.ports = 32;
    c.quota.addresses = 1;
    c.quota.spis = 8;
    c.quota.bindings = 6;
    c.max_hosts = 3;
    c.registration_lease = secs(60);
    c.default_lease = secs(30);
    c.max_lease = secs(120);
    c.time_wait = secs(120);
    c
}

fn manager() -> LeaseManager {
    LeaseManager::new(config()).unwrap()
}

fn with_hosts(hosts: &[ClientId]) -> LeaseManager {
    let mut m = manager();
    for &h in hosts {
        m.register(h, T0).unwrap();
    }
    m
}

fn any() -> AddressRequest {
    AddressRequest::DontCare
}

fn at(a: Ipv4Addr) -> AddressRequest {
    AddressRequest::Specific(a)
}

fn ports(first: u16, count: u16) -> PortRequest {
    PortRequest::Range { first, count }
}

fn rsap(
    m: &mut LeaseManager,
    h: ClientId,
    a: AddressRequest,
    p: PortRequest,
) -> Result<Grant, AssignError> {
    m.assign_rsap_ip(h, a, p, None, T0)
}

fn holder(client: ClientId, g: &Grant) -> Option<Holder> {
    Some(Holder {
        client,
        bind: g.binding.bind,
    })
}

// ---- registration ---------------------------------------------------------------

#[test]
fn register_and_its_refusals() {
    let mut m = manager();
    let r = m.register(H1, T0).unwrap();
    assert_eq!(r.expires_at, T0 + secs(60));
    assert_eq!(m.registration(H1), Some(r));
    assert_eq!(m.register(H1, T0), Err(RegisterError::AlreadyRegistered));
    m.register(H2, T0).unwrap();
    m.register(H3, T0).unwrap();
    assert_eq!(m.register(H4, T0), Err(RegisterError::RegistrationDenied));
    m.deregister(H3, T0).unwrap();
    m.register(H4, T0).unwrap();
    assert_eq!(m.usage().hosts, 3);
}

#[test]
fn deregister_frees_everything_into_quarantine() {
    let mut m = with_hosts(&[H1, H2]);
    assert_eq!(
        m.deregister(H3, T0).unwrap_err(),
        BindingError::RegisterFirst
    );
    let a = m.assign_rsa_ip(H1, at(D2), None, T0).unwrap();
    let b = rsap(&mut m, H1, at(S), ports(1024, 4)).unwrap();
    let c = m
        .assign_rsipsec(
            H1,
            at(S),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 2 },
            None,
            T0,
        )
        .unwrap();
    let d = m.deregister(H1, T0 + secs(5)).unwrap();
    let mut freed: Vec<BindId> = d.released.iter().map(|r| r.binding.bind).collect();
    freed.sort();
    assert_eq!(freed, vec![a.binding.bind, b.binding.bind, c.binding.bind]);
    assert!(d.released.iter().all(|r| r.held_until == T0 + secs(125)));
    assert_eq!(m.registration(H1), None);
    assert_eq!(m.holder_of_address(D2), None);
    assert_eq!(m.holder_of_port(S, 1024), None);
    let u = m.usage();
    assert_eq!(
        (
            u.bindings,
            u.ports_leased,
            u.ports_held,
            u.spis_held,
            u.addresses_held
        ),
        (0, 0, 4, 2, 1)
    );
    // Held: the same resources are refused to another host until the hold ends.
    assert_eq!(
        m.assign_rsa_ip(H2, at(D2), None, T0 + secs(124))
            .unwrap_err(),
        AssignError::LocalAddrInUse
    );
    assert_eq!(
        m.assign_rsap_ip(H2, at(S), ports(1026, 1), None, T0 + secs(124))
            .unwrap_err(),
        AssignError::LocalAddrPortInUse { port: 1026 }
    );
    m.assign_rsa_ip(H2, at(D2), None, T0 + secs(125)).unwrap();
    assert_eq!(
        m.extend(H1, a.binding.bind, None, T0).unwrap_err(),
        BindingError::RegisterFirst
    );
    assert_eq!(
        m.free(H1, a.binding.bind, T0).unwrap_err(),
        BindingError::RegisterFirst
    );
    assert_eq!(
        m.assign_rsap_ip(H1, any(), ports(1024, 1), None, T0)
            .unwrap_err(),
        AssignError::RegisterFirst
    );
}

// ---- RSA-IP ---------------------------------------------------------------------

#[test]
fn rsa_ip_whole_address_is_exclusive() {
    let mut m = with_hosts(&[H1, H2, H3]);
    let g = m.assign_rsa_ip(H1, any(), Some(secs(50)), T0).unwrap();
    assert_eq!(g.binding.address, D1);
    assert_eq!(g.binding.method, Method::RsaIp);
    assert_eq!(
        (g.binding.ports.clone(), g.binding.spis.clone()),
        (PortSet::None, SpiSet::None)
    );
    assert_eq!(g.lease, secs(50));
    assert_eq!(m.holder_of_address(D1), holder(H1, &g));
    assert_eq!(m.holder_of_port(D1, 2000), holder(H1, &g));
    assert_eq!(m.holder_of_port(D1, 80), holder(H1, &g));
    assert_eq!(m.holder_of_spi(D1, Spi(300)), holder(H1, &g));
    // No port or SPI of it for anyone, itself included.
    assert_eq!(
        rsap(&mut m, H2, at(D1), ports(2000, 1)).unwrap_err(),
        AssignError::LocalAddrInUse
    );
    assert_eq!(
        rsap(&mut m, H1, at(D1), ports(2000, 1)).unwrap_err(),
        AssignError::LocalAddrInUse
    );
    assert_eq!(
        m.assign_rsa_ip(H2, at(D1), None, T0).unwrap_err(),
        AssignError::LocalAddrInUse
    );
    // Quota: one address per host.
    assert_eq!(
        m.assign_rsa_ip(H1, any(), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Quota
        }
    );
    let g2 = m.assign_rsa_ip(H2, any(), None, T0).unwrap();
    assert_eq!(g2.binding.address, D2);
    // Nothing left: don't care and specific both get LOCAL_ADDR_UNAVAILABLE.
    assert_eq!(
        m.assign_rsa_ip(H3, any(), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    assert_eq!(
        m.assign_rsa_ip(H3, at(D1), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    // Policy: the shared address and foreign addresses are never leased whole.
    assert_eq!(
        m.assign_rsa_ip(H3, at(S), None, T0).unwrap_err(),
        AssignError::LocalAddrUnallowed
    );
    assert_eq!(
        m.assign_rsa_ip(H3, at(X), None, T0).unwrap_err(),
        AssignError::LocalAddrUnallowed
    );
    assert_eq!(m.usage().addresses_leased, 2);
}

#[test]
fn rsa_ip_refused_while_ports_are_leased_or_held() {
    let mut m = with_hosts(&[H1, H2]);
    let p = rsap(&mut m, H1, at(D1), ports(2000, 2)).unwrap();
    assert_eq!(
        m.assign_rsa_ip(H2, at(D1), None, T0).unwrap_err(),
        AssignError::LocalAddrInUse
    );
    // Don't care skips it.
    assert_eq!(
        m.assign_rsa_ip(H2, any(), None, T0)
            .unwrap()
            .binding
            .address,
        D2
    );
    m.free(H1, p.binding.bind, T0 + secs(1)).unwrap();
    // Its ports are in TIME_WAIT: the address is still in use, and with D2
    // leased no address at all is available.
    assert_eq!(
        m.assign_rsa_ip(H1, at(D1), None, T0 + secs(120))
            .unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    m.assign_rsa_ip(H1, at(D1), None, T0 + secs(121)).unwrap();
}

#[test]
fn rsa_ip_don_t_care_prefers_longest_free_address() {
    let mut m = with_hosts(&[H1, H2]);
    let a = m.assign_rsa_ip(H1, any(), None, T0).unwrap();
    assert_eq!(a.binding.address, D1);
    m.free(H1, a.binding.bind, T0).unwrap();
    // D1 is held; D2 was never used.
    assert_eq!(
        m.assign_rsa_ip(H1, any(), None, T0 + secs(200))
            .unwrap()
            .binding
            .address,
        D2
    );
    assert_eq!(
        m.assign_rsa_ip(H2, any(), None, T0 + secs(200))
            .unwrap()
            .binding
            .address,
        D1
    );
}

// ---- RSAP-IP --------------------------------------------------------------------

#[test]
fn rsap_ip_don_t_care_ports() {
    let mut m = with_hosts(&[H1, H2]);
    // The shared address goes first (keeping D1 whole-leasable), never-used
    // ports ascending.
    let g = rsap(&mut m, H1, any(), PortRequest::DontCare { count: 1 }).unwrap();
    assert_eq!(
        (g.binding.address, g.binding.ports.clone()),
        (
            S,
            PortSet::Range {
                first: 1024,
                count: 1
            }
        )
    );
    assert_eq!(g.lease, secs(30));
    assert_eq!(g.binding.expires_at, T0 + secs(30));
    let g = rsap(&mut m, H1, any(), PortRequest::DontCare { count: 4 }).unwrap();
    assert_eq!(
        g.binding.ports,
        PortSet::Range {
            first: 1025,
            count: 4
        }
    );
    assert_eq!(m.holder_of_port(S, 1027), holder(H1, &g));
    assert_eq!(m.holder_of_port(S, 1029), None);
    // A block skips the excluded 1050-1059.
    let g = rsap(&mut m, H2, at(S), PortRequest::DontCare { count: 25 }).unwrap();
    assert_eq!(
        g.binding.ports,
        PortSet::Range {
            first: 1060,
            count: 25
        }
    );
    assert_eq!(m.host_usage(H1).unwrap().ports, 5);
}

#[test]
fn rsap_ip_scattered_when_no_block_fits_and_unavailable_when_short() {
    let mut c = config();
    c.pool = vec![AddressConfig {
        address: S,
        whole_lease: false,
        ports: vec![100..=109],
        excluded: vec![],
    }];
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    m.register(H2, T0).unwrap();
    let list = PortRequest::List(vec![101, 103, 105, 107, 109]);
    rsap(&mut m, H1, any(), list).unwrap();
    let g = rsap(&mut m, H2, any(), PortRequest::DontCare { count: 3 }).unwrap();
    assert_eq!(g.binding.ports, PortSet::List(vec![100, 102, 104]));
    assert_eq!(
        rsap(&mut m, H2, any(), PortRequest::DontCare { count: 3 }).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Exhausted
        }
    );
    assert_eq!(
        rsap(&mut m, H2, at(S), PortRequest::DontCare { count: 3 }).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Exhausted
        }
    );
    rsap(&mut m, H2, any(), PortRequest::DontCare { count: 2 }).unwrap();
}

#[test]
fn rsap_ip_specific_ports_and_policy() {
    let mut m = with_hosts(&[H1, H2]);
    let g = rsap(&mut m, H1, at(S), PortRequest::List(vec![1040, 1030])).unwrap();
    assert_eq!(g.binding.ports, PortSet::List(vec![1030, 1040]));
    let g = rsap(&mut m, H1, any(), ports(2010, 3)).unwrap();
    assert_eq!(
        (g.binding.address, g.binding.ports),
        (
            D1,
            PortSet::Range {
                first: 2010,
                count: 3
            }
        )
    );
    // In use: the first taken port in request order.
    assert_eq!(
        rsap(&mut m, H2, at(S), PortRequest::List(vec![1041, 1040, 1030])).unwrap_err(),
        AssignError::LocalAddrPortInUse { port: 1040 }
    );
    assert_eq!(
        rsap(&mut m, H2, any(), ports(2011, 1)).unwrap_err(),
        AssignError::LocalAddrPortInUse { port: 2011 }
    );
    // Not allowed: 0, excluded, outside the ranges, RSIP's own port.
    for port in [0, 1055, 1101, 4555] {
        assert_eq!(
            rsap(&mut m, H2, at(S), ports(port, 1)).unwrap_err(),
            AssignError::LocalAddrPortUnallowed { port }
        );
        assert_eq!(
            rsap(&mut m, H2, any(), ports(port, 1)).unwrap_err(),
            AssignError::LocalAddrPortUnallowed { port }
        );
    }
    assert_eq!(
        rsap(&mut m, H2, at(S), ports(1048, 4)).unwrap_err(),
        AssignError::LocalAddrPortUnallowed { port: 1050 }
    );
    // Addresses: foreign, or with no leasable port.
    assert_eq!(
        rsap(&mut m, H2, at(X), ports(1030, 1)).unwrap_err(),
        AssignError::LocalAddrUnallowed
    );
    assert_eq!(
        rsap(&mut m, H2, at(D2), PortRequest::DontCare { count: 1 }).unwrap_err(),
        AssignError::LocalAddrUnallowed
    );
}

#[test]
fn rsap_ip_bad_params() {
    let mut m = with_hosts(&[H1]);
    for p in [
        PortRequest::DontCare { count: 0 },
        PortRequest::Range {
            first: 1030,
            count: 0,
        },
        PortRequest::Range {
            first: 65535,
            count: 2,
        },
        PortRequest::List(vec![]),
        PortRequest::List(vec![1030, 1031, 1030]),
        PortRequest::DontNeed,
    ] {
        let e = rsap(&mut m, H1, at(S), p.clone()).unwrap_err();
        assert!(matches!(e, AssignError::BadParam { .. }), "{p:?}: {e:?}");
        assert_eq!(e.code(), 205);
    }
    let e = m
        .assign_rsipsec(
            H1,
            at(S),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 0 },
            None,
            T0,
        )
        .unwrap_err();
    assert!(matches!(e, AssignError::BadParam { .. }));
    let e = m
        .assign_rsipsec(
            H1,
            at(S),
            PortRequest::DontNeed,
            SpiRequest::Range {
                first: Spi(u32::MAX),
                count: 2,
            },
            None,
            T0,
        )
        .unwrap_err();
    assert!(matches!(e, AssignError::BadParam { .. }));
    let e = m
        .assign_rsipsec(
            H1,
            at(S),
            PortRequest::DontNeed,
            SpiRequest::List(vec![Spi(300), Spi(300)]),
            None,
            T0,
        )
        .unwrap_err();
    assert!(matches!(e, AssignError::BadParam { .. }));
    assert_eq!(m.usage().bindings, 0);
}

#[test]
fn rsap_ip_quotas() {
    let mut m = with_hosts(&[H1]);
    rsap(&mut m, H1, any(), PortRequest::DontCare { count: 30 }).unwrap();
    assert_eq!(
        rsap(&mut m, H1, any(), PortRequest::DontCare { count: 3 }).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Quota
        }
    );
    assert_eq!(
        rsap(&mut m, H1, at(S), ports(1090, 3)).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Quota
        }
    );
    rsap(&mut m, H1, any(), PortRequest::DontCare { count: 1 }).unwrap();
    for _ in 0..3 {
        m.assign_rsipsec(
            H1,
            any(),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 1 },
            None,
            T0,
        )
        .unwrap();
    }
    m.assign_rsa_ip(H1, any(), None, T0).unwrap();
    assert_eq!(m.host_usage(H1).unwrap().bindings, 6);
    assert_eq!(
        rsap(&mut m, H1, any(), PortRequest::DontCare { count: 1 }).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Quota
        }
    );
    m.register(H2, T0).unwrap();
    let g = m.assign_rsa_ip(H2, any(), None, T0).unwrap();
    assert_eq!(g.binding.address, D2);
    let mut c = config();
    c.quota.bindings = 1;
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    rsap(&mut m, H1, any(), ports(1030, 1)).unwrap();
    assert_eq!(
        m.assign_rsa_ip(H1, any(), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Quota
        }
    );
}

#[test]
fn shared_request_when_every_address_is_leased_whole() {
    let mut c = config();
    c.pool.remove(0);
    let mut m = LeaseManager::new(c).unwrap();
    for h in [H1, H2, H3] {
        m.register(h, T0).unwrap();
    }
    m.assign_rsa_ip(H1, at(D1), None, T0).unwrap();
    // D2 has no ports: a port request has no address at all.
    assert_eq!(
        rsap(&mut m, H3, any(), PortRequest::DontCare { count: 1 }).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    assert_eq!(
        rsap(&mut m, H3, at(D1), ports(2000, 1)).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    // An SPI-only binding can still use D2.
    let g = m
        .assign_rsipsec(
            H3,
            any(),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 1 },
            None,
            T0,
        )
        .unwrap();
    assert_eq!(g.binding.address, D2);
    // Now D2 is shared: RSA-IP on it is in use.
    assert_eq!(
        m.assign_rsa_ip(H2, at(D2), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    // SPI-only on D1 (leased whole): in use, since D2 is available.
    assert_eq!(
        m.assign_rsipsec(
            H2,
            at(D1),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 1 },
            None,
            T0
        )
        .unwrap_err(),
        AssignError::LocalAddrInUse
    );
}

// ---- RSIPSEC --------------------------------------------------------------------

#[test]
fn rsipsec_spis() {
    let mut m = with_hosts(&[H1, H2]);
    let dont_need = PortRequest::DontNeed;
    let g = m
        .assign_rsipsec(
            H1,
            at(S),
            dont_need.clone(),
            SpiRequest::DontCare { count: 2 },
            None,
            T0,
        )
        .unwrap();
    assert_eq!(g.binding.method, Method::Rsipsec);
    assert_eq!(g.binding.ports, PortSet::None);
    assert_eq!(
        g.binding.spis,
        SpiSet::Range {
            first: Spi(256),
            count: 2
        }
    );
    assert_eq!(m.holder_of_spi(S, Spi(257)), holder(H1, &g));
    assert_eq!(m.holder_of_spi(S, Spi(258)), None);
    assert_eq!(m.holder_of_spi(D1, Spi(257)), None);
    // With ports too.
    let g2 = m
        .assign_rsipsec(
            H1,
            at(S),
            PortRequest::DontCare { count: 2 },
            SpiRequest::List(vec![Spi(400), Spi(300)]),
            None,
            T0,
        )
        .unwrap();
    assert_eq!(g2.binding.spis, SpiSet::List(vec![Spi(300), Spi(400)]));
    assert_eq!(
        g2.binding.ports,
        PortSet::Range {
            first: 1024,
            count: 2
        }
    );
    // Suggested SPIs in use on that address; the same SPI on another address is fine.
    let range = |first, count| SpiRequest::Range {
        first: Spi(first),
        count,
    };
    assert_eq!(
        m.assign_rsipsec(H2, at(S), dont_need.clone(), range(255 + 1, 1), None, T0)
            .unwrap_err(),
        AssignError::IpsecSpiInUse { spi: Spi(256) }
    );
    assert_eq!(
        m.assign_rsipsec(
            H2,
            at(S),
            dont_need.clone(),
            SpiRequest::List(vec![Spi(301), Spi(400)]),
            None,
            T0
        )
        .unwrap_err(),
        AssignError::IpsecSpiInUse { spi: Spi(400) }
    );
    let g3 = m
        .assign_rsipsec(H2, at(D1), dont_need.clone(), range(256, 2), None, T0)
        .unwrap();
    assert_eq!(m.holder_of_spi(D1, Spi(257)), holder(H2, &g3));
    // Don't care on any address: avoids taken tuples.
    let g4 = m
        .assign_rsipsec(H2, any(), dont_need.clone(), range(256, 1), None, T0)
        .unwrap();
    assert_eq!(g4.binding.address, D2);
    // Out of range.
    assert_eq!(
        m.assign_rsipsec(H2, at(S), dont_need.clone(), range(100, 1), None, T0)
            .unwrap_err(),
        AssignError::IpsecSpiUnavailable {
            reason: Shortage::Policy
        }
    );
    assert_eq!(
        m.assign_rsipsec(H2, at(S), dont_need.clone(), range(511, 2), None, T0)
            .unwrap_err(),
        AssignError::IpsecSpiUnavailable {
            reason: Shortage::Policy
        }
    );
    // Quota: H1 holds 4 SPIs of 8.
    assert_eq!(
        m.assign_rsipsec(
            H1,
            at(S),
            dont_need.clone(),
            SpiRequest::DontCare { count: 5 },
            None,
            T0
        )
        .unwrap_err(),
        AssignError::IpsecSpiUnavailable {
            reason: Shortage::Quota
        }
    );
    // A freed SPI is held: INUSE until the hold ends.
    m.free(H1, g.binding.bind, T0).unwrap();
    assert_eq!(m.holder_of_spi(S, Spi(256)), None);
    assert_eq!(
        m.assign_rsipsec(
            H2,
            at(S),
            dont_need.clone(),
            range(256, 1),
            None,
            T0 + secs(119)
        )
        .unwrap_err(),
        AssignError::IpsecSpiInUse { spi: Spi(256) }
    );
    m.assign_rsipsec(H2, at(S), dont_need, range(256, 1), None, T0 + secs(120))
        .unwrap();
}

#[test]
fn rsipsec_unallowed_and_exhausted() {
    let mut c = config();
    c.quota.spis = 0;
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    assert_eq!(
        m.assign_rsipsec(
            H1,
            any(),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 1 },
            None,
            T0
        )
        .unwrap_err(),
        AssignError::IpsecUnallowed
    );
    let mut c = config();
    c.spis = 256..=259;
    c.pool.truncate(1);
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    m.register(H2, T0).unwrap();
    m.assign_rsipsec(
        H1,
        any(),
        PortRequest::DontNeed,
        SpiRequest::List(vec![Spi(257), Spi(259)]),
        None,
        T0,
    )
    .unwrap();
    // Two left, not contiguous: a list.
    let g = m
        .assign_rsipsec(
            H2,
            any(),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 2 },
            None,
            T0,
        )
        .unwrap();
    assert_eq!(g.binding.spis, SpiSet::List(vec![Spi(256), Spi(258)]));
    assert_eq!(
        m.assign_rsipsec(
            H2,
            any(),
            PortRequest::DontNeed,
            SpiRequest::DontCare { count: 1 },
            None,
            T0
        )
        .unwrap_err(),
        AssignError::IpsecSpiUnavailable {
            reason: Shortage::Exhausted
        }
    );
}

// ---- extend, free, expiry -----------------------------------------------------------

#[test]
fn extend_clamps_and_pushes_the_registration() {
    let mut m = with_hosts(&[H1, H2]);
    let g = rsap(&mut m, H1, any(), PortRequest::DontCare { count: 1 }).unwrap();
    let bind = g.binding.bind;
    let t = T0 + secs(10);
    let e = m.extend(H1, bind, None, t).unwrap();
    assert_eq!((e.lease, e.binding.expires_at), (secs(30), t + secs(30)));
    let e = m.extend(H1, bind, Some(secs(500)), t).unwrap();
    assert_eq!(e.lease, secs(120));
    assert_eq!(e.registration.expires_at, t + secs(120));
    assert_eq!(m.registration(H1).unwrap().expires_at, t + secs(120));
    let e = m.extend(H1, bind, Some(Duration::ZERO), t).unwrap();
    assert_eq!((e.lease, e.binding.expires_at), (secs(1), t + secs(1)));
    // R never shrinks.
    assert_eq!(e.registration.expires_at, t + secs(120));
    assert_eq!(
        m.extend(H2, bind, None, t).unwrap_err(),
        BindingError::BadBindId
    );
    assert_eq!(
        m.extend(H1, BindId(999), None, t).unwrap_err(),
        BindingError::BadBindId
    );
    assert_eq!(
        m.extend(H3, bind, None, t).unwrap_err(),
        BindingError::RegisterFirst
    );
    m.expire(t + secs(1));
    assert_eq!(
        m.extend(H1, bind, None, t + secs(1)).unwrap_err(),
        BindingError::BadBindId
    );
}

#[test]
fn free_and_its_refusals() {
    let mut m = with_hosts(&[H1, H2]);
    let g = rsap(&mut m, H1, at(S), ports(1030, 2)).unwrap();
    let bind = g.binding.bind;
    assert_eq!(m.free(H2, bind, T0).unwrap_err(), BindingError::BadBindId);
    assert_eq!(
        m.free(H3, bind, T0).unwrap_err(),
        BindingError::RegisterFirst
    );
    let r = m.free(H1, bind, T0 + secs(3)).unwrap();
    assert_eq!(r.binding, g.binding);
    assert_eq!(r.held_until, T0 + secs(123));
    let q = r.quarantine();
    assert_eq!(
        (q.bind, q.address, q.ports.clone(), q.until),
        (bind, S, g.binding.ports.clone(), r.held_until)
    );
    assert_eq!(m.free(H1, bind, T0).unwrap_err(), BindingError::BadBindId);
    assert_eq!(m.binding(bind), None);
    assert_eq!(m.bindings_of(H1).count(), 0);
    let u = m.host_usage(H1).unwrap();
    assert_eq!((u.ports, u.bindings), (0, 0));
}

#[test]
fn expiry_happens_exactly_at_lease_end() {
    let mut m = with_hosts(&[H1, H2]);
    let g = m
        .assign_rsap_ip(
            H1,
            any(),
            PortRequest::DontCare { count: 1 },
            Some(secs(100)),
            T0,
        )
        .unwrap();
    let end = T0 + secs(100);
    assert_eq!(g.registration.expires_at, end);
    // H2 has no binding: its registration lapses at T0 + 60 s.
    assert_eq!(m.next_timeout(), Some(T0 + secs(60)));
    assert_eq!(m.next_binding_expiry(), Some(end));
    assert_eq!(m.next_registration_expiry(), Some(T0 + secs(60)));
    assert!(m.expire(T0 + Duration::from_millis(59_999)).is_empty());
    let e = m.expire(T0 + secs(60));
    assert_eq!((e.bindings.len(), e.registrations.clone()), (0, vec![H2]));
    assert_eq!(m.next_timeout(), Some(end));
    assert!(m.expire(end - Duration::from_millis(1)).is_empty());
    assert_eq!(
        m.holder_of_port(S, 1024),
        Some(Holder {
            client: H1,
            bind: g.binding.bind
        })
    );
    // The binding and the registration end together (R = Bi).
    let e = m.expire(end);
    assert_eq!(e.bindings.len(), 1);
    assert_eq!(e.bindings[0].binding, g.binding);
    assert_eq!(e.bindings[0].held_until, end + secs(120));
    assert_eq!(e.registrations, vec![H1]);
    assert_eq!(m.next_timeout(), None);
    assert_eq!(m.next_binding_expiry(), None);
    assert_eq!(m.next_registration_expiry(), None);
    assert_eq!(m.holder_of_port(S, 1024), None);
    assert_eq!(m.usage().ports_held, 1);
    assert!(m.expire(end + secs(120)).is_empty());
    assert_eq!(m.usage().ports_held, 0);
}

#[test]
fn registration_outlives_its_bindings() {
    let mut m = with_hosts(&[H1]);
    let g = m
        .assign_rsap_ip(
            H1,
            any(),
            PortRequest::DontCare { count: 1 },
            Some(secs(10)),
            T0,
        )
        .unwrap();
    assert_eq!(g.registration.expires_at, T0 + secs(60));
    let e = m.expire(T0 + secs(10));
    assert_eq!((e.bindings.len(), e.registrations.len()), (1, 0));
    let e = m.expire(T0 + secs(60));
    assert_eq!(e.registrations, vec![H1]);
}

// ---- TIME_WAIT and IDs --------------------------------------------------------------

#[test]
fn freed_ports_reused_first_in_first_out_after_the_hold() {
    let mut c = config();
    c.pool = vec![AddressConfig {
        address: S,
        whole_lease: false,
        ports: vec![100..=103],
        excluded: vec![],
    }];
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    let one = PortRequest::DontCare { count: 1 };
    let mut binds = Vec::new();
    for p in 100..=103 {
        let g = rsap(&mut m, H1, any(), one.clone()).unwrap();
        assert_eq!(g.binding.ports, PortSet::Range { first: p, count: 1 });
        binds.push(g.binding.bind);
    }
    m.free(H1, binds[2], T0).unwrap();
    m.free(H1, binds[0], T0 + secs(1)).unwrap();
    m.free(H1, binds[3], T0 + secs(2)).unwrap();
    // Nothing free during the hold.
    assert_eq!(
        m.assign_rsap_ip(H1, any(), one.clone(), None, T0 + secs(119))
            .unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Exhausted
        }
    );
    let t = T0 + secs(200);
    let order: Vec<PortSet> = (0..3)
        .map(|_| {
            m.assign_rsap_ip(H1, any(), one.clone(), None, t)
                .unwrap()
                .binding
                .ports
        })
        .collect();
    let expect = [102, 100, 103].map(|first| PortSet::Range { first, count: 1 });
    assert_eq!(order, expect);
}

#[test]
fn bind_ids_are_never_reused_while_held() {
    let mut m = with_hosts(&[H1, H2]);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20u64 {
        let t = T0 + secs(i);
        let g = rsap(
            &mut m,
            if i % 2 == 0 { H1 } else { H2 },
            any(),
            PortRequest::DontCare { count: 1 },
        )
        .unwrap();
        assert!(seen.insert(g.binding.bind), "{:?} reused", g.binding.bind);
        m.free(g.binding.client, g.binding.bind, t).unwrap();
    }
    assert!(!seen.contains(&BindId(0)));
}

#[test]
fn zero_time_wait_reuses_at_once() {
    let mut c = config();
    c.time_wait = Duration::ZERO;
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    let g = rsap(&mut m, H1, at(S), ports(1030, 1)).unwrap();
    m.free(H1, g.binding.bind, T0).unwrap();
    assert_eq!(m.usage().ports_held, 0);
    rsap(&mut m, H1, at(S), ports(1030, 1)).unwrap();
}

// ---- lookups, counters ----------------------------------------------------------------

#[test]
fn lookups_and_counters() {
    let mut m = with_hosts(&[H1, H2]);
    let a = rsap(&mut m, H1, at(S), ports(1030, 3)).unwrap();
    let b = m.assign_rsa_ip(H2, at(D2), None, T0).unwrap();
    let c = m
        .assign_rsipsec(
            H2,
            at(D1),
            PortRequest::List(vec![2005]),
            SpiRequest::DontCare { count: 3 },
            None,
            T0,
        )
        .unwrap();
    assert_eq!(m.holder_of_port(S, 1032), holder(H1, &a));
    assert_eq!(m.holder_of_port(S, 1033), None);
    assert_eq!(m.holder_of_port(D1, 2005), holder(H2, &c));
    assert_eq!(m.holder_of_port(X, 2005), None);
    assert_eq!(m.holder_of_address(D2), holder(H2, &b));
    assert_eq!(m.holder_of_address(S), None);
    assert_eq!(m.holder_of_address(X), None);
    assert_eq!(m.holder_of_spi(X, Spi(256)), None);
    let mine: Vec<BindId> = m.bindings_of(H2).map(|r| r.bind).collect();
    assert_eq!(mine, vec![b.binding.bind, c.binding.bind]);
    assert_eq!(m.binding(a.binding.bind), Some(a.binding.clone()));
    let u = m.usage();
    assert_eq!(
        (u.hosts, u.bindings, u.addresses, u.addresses_leased),
        (2, 3, 3, 1)
    );
    assert_eq!(
        (u.ports_leasable, u.ports_leased, u.spis_leased),
        (67 + 100, 4, 3)
    );
    let h = m.host_usage(H2).unwrap();
    assert_eq!((h.ports, h.addresses, h.spis, h.bindings), (1, 1, 3, 2));
    assert_eq!(m.host_usage(H3), None);
    assert!(m.heap_estimate() > 16 * 1024);
    assert_eq!(m.config().time_wait, secs(120));
}

#[test]
fn soho_address_never_leases_rsip_port_or_ephemeral_range() {
    let mut c = Config::new(vec![AddressConfig::shared(S, 32768..=60999)]);
    c.quota.ports = 70_000;
    let mut m = LeaseManager::new(c).unwrap();
    m.register(H1, T0).unwrap();
    for port in [4555, 32768, 60999, 80, 0] {
        assert_eq!(
            rsap(&mut m, H1, at(S), ports(port, 1)).unwrap_err(),
            AssignError::LocalAddrPortUnallowed { port }
        );
    }
    assert_eq!(
        m.assign_rsa_ip(H1, any(), None, T0).unwrap_err(),
        AssignError::LocalAddrUnavailable {
            reason: Shortage::Exhausted
        }
    );
    // Every leasable port, then nothing: none of them excluded.
    let leasable = m.usage().ports_leasable;
    assert_eq!(leasable, (32767 - 1024) + (65535 - 61000 + 1));
    let g = rsap(&mut m, H1, any(), PortRequest::DontCare { count: 30_000 }).unwrap();
    let g2 = rsap(
        &mut m,
        H1,
        any(),
        PortRequest::DontCare {
            count: (leasable - 30_000) as u16,
        },
    )
    .unwrap();
    for p in g.binding.ports.iter().chain(g2.binding.ports.iter()) {
        assert!(
            p != 4555 && !(32768..=60999).contains(&p) && p >= 1024,
            "{p}"
        );
    }
    assert_eq!(
        rsap(&mut m, H1, any(), PortRequest::DontCare { count: 1 }).unwrap_err(),
        AssignError::LocalAddrPortUnavailable {
            reason: Shortage::Exhausted
        }
    );
}

// ---- restore ----------------------------------------------------------------------------

fn busy_manager() -> LeaseManager {
    let mut m = with_hosts(&[H1, H2, H3]);
    m.assign_rsa_ip(H1, at(D2), Some(secs(90)), T0).unwrap();
    rsap(&mut m, H1, at(S), PortRequest::List(vec![1030, 1032])).unwrap();
    let f = rsap(&mut m, H2, any(), PortRequest::DontCare { count: 5 }).unwrap();
    m.assign_rsipsec(
        H3,
        at(D1),
        PortRequest::DontNeed,
        SpiRequest::DontCare { count: 4 },
        None,
        T0,
    )
    .unwrap();
    m.free(H2, f.binding.bind, T0 + secs(1)).unwrap();
    rsap(&mut m, H2, any(), PortRequest::DontCare { count: 2 }).unwrap();
    m
}

#[test]
fn restore_rebuilds_the_same_state() {
    let m = busy_manager();
    let records = m.records();
    assert_eq!(
        (
            records.registrations.len(),
            records.bindings.len(),
            records.quarantine.len()
        ),
        (3, 4, 1)
    );
    let json = serde_json::to_string(&records).unwrap();
    let back: realm_lease::Records = serde_json::from_str(&json).unwrap();
    assert_eq!(back, records);
    let mut r = LeaseManager::new(config()).unwrap();
    r.restore(&back).unwrap();
    assert_eq!(r.records(), records);
    assert_eq!(r.usage(), m.usage());
    for h in [H1, H2, H3] {
        assert_eq!(r.host_usage(h), m.host_usage(h));
    }
    for p in 1024..=1100 {
        assert_eq!(r.holder_of_port(S, p), m.holder_of_port(S, p));
    }
    assert_eq!(r.holder_of_address(D2), m.holder_of_address(D2));
    // Held ports stay held after the restart, and bind IDs go on upwards.
    let held = records.quarantine[0].ports.iter().next().unwrap();
    let mut r2 = LeaseManager::new(config()).unwrap();
    r2.restore(&records).unwrap();
    assert_eq!(
        rsap(&mut r2, H2, at(S), ports(held, 1)).unwrap_err(),
        AssignError::LocalAddrPortInUse { port: held }
    );
    let max = records
        .bindings
        .iter()
        .chain([])
        .map(|b| b.bind)
        .max()
        .unwrap();
    let g = rsap(&mut r2, H2, any(), PortRequest::DontCare { count: 1 }).unwrap();
    assert!(g.binding.bind > max);
    assert!(g.binding.bind > records.quarantine[0].bind);
}

#[test]
fn restore_refuses_conflicts() {
    let m = busy_manager();
    let records = m.records();
    let mut r = LeaseManager::new(config()).unwrap();
    r.restore(&records).unwrap();
    let reg = &records.registrations[0];
    assert_eq!(
        r.restore_registration(reg),
        Err(RestoreError::DuplicateClient(reg.client))
    );
    let b = records.bindings[1].clone();
    assert_eq!(
        r.restore_binding(&b),
        Err(RestoreError::DuplicateBind(b.bind))
    );
    let mut c = b.clone();
    c.bind = BindId(777);
    assert_eq!(
        r.restore_binding(&c),
        Err(RestoreError::Conflict(BindId(777)))
    );
    c.client = H4;
    assert_eq!(
        r.restore_binding(&c),
        Err(RestoreError::UnknownClient {
            bind: BindId(777),
            client: H4
        })
    );
    let mut q = records.quarantine[0].clone();
    assert_eq!(
        r.restore_quarantine(&q),
        Err(RestoreError::DuplicateBind(q.bind))
    );
    q.bind = BindId(778);
    assert_eq!(
        r.restore_quarantine(&q),
        Err(RestoreError::Conflict(BindId(778)))
    );
    // Whole address: conflicts with the RSA-IP lease, and with ports.
    let whole = records
        .bindings
        .iter()
        .find(|b| b.method == Method::RsaIp)
        .unwrap();
    let mut w = whole.clone();
    w.bind = BindId(779);
    assert_eq!(
        r.restore_binding(&w),
        Err(RestoreError::Conflict(BindId(779)))
    );
    w.address = S;
    assert_eq!(
        r.restore_binding(&w),
        Err(RestoreError::Unallowed(BindId(779)))
    );
    w.address = D1;
    assert_eq!(
        r.restore_binding(&w),
        Err(RestoreError::Conflict(BindId(779)))
    );
    w.address = X;
    assert_eq!(
        r.restore_binding(&w),
        Err(RestoreError::Unallowed(BindId(779)))
    );
    // Malformed records.
    let mut bad = c.clone();
    bad.client = H1;
    bad.ports = PortSet::List(vec![1080, 1070]);
    assert!(matches!(
        r.restore_binding(&bad),
        Err(RestoreError::BadRecord { .. })
    ));
    bad.method = Method::RsaIp;
    bad.ports = PortSet::Range {
        first: 1080,
        count: 1,
    };
    assert!(matches!(
        r.restore_binding(&bad),
        Err(RestoreError::BadRecord { .. })
    ));
    bad.method = Method::Rsipsec;
    assert!(matches!(
        r.restore_binding(&bad),
        Err(RestoreError::BadRecord { .. })
    ));
    bad.bind = BindId(0);
    assert_eq!(
        r.restore_binding(&bad),
        Err(RestoreError::DuplicateBind(BindId(0)))
    );
    // A config that no longer allows a port.
    let mut narrower = config();
    narrower.pool[0].excluded.push(1030..=1030);
    let mut n = LeaseManager::new(narrower).unwrap();
    let err = n.restore(&records).unwrap_err();
    assert!(matches!(err, RestoreError::Unallowed(_)), "{err:?}");
    // A state restored is consistent even when its expiry passed meanwhile.
    let late = records.bindings.iter().map(|b| b.expires_at).max().unwrap();
    let e = r.expire(late);
    assert_eq!(e.bindings.len(), records.bindings.len());
}

#[test]
fn config_errors_reach_new() {
    assert!(LeaseManager::new(Config::new(vec![])).is_err());
}
