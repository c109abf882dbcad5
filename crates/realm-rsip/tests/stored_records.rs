//! The records a store holds keep reading across versions: the RSIP
//! vocabulary (`realm_wire::rsip::{Method, TunnelKind, Transport,
//! BindingKind}`) has one spelling, and the method's earlier one (`"RsapIp"`,
//! written before the vocabulary was shared) still parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use realm_lease::{BindId, ClientId, PortSet, QuarantineRecord, Spi, SpiSet, Timestamp};
use realm_rsip::gateway::{
    BindingKind, BindingRecord, HostRecord, Method, RemoteSpec, Transport, TunnelKind,
};

fn binding(method: Method, kind: BindingKind, tunnel: TunnelKind) -> BindingRecord {
    BindingRecord {
        bind: BindId(7),
        client: ClientId(0x5eed),
        private_address: Ipv4Addr::new(10, 0, 0, 2),
        method,
        kind,
        public_address: Ipv4Addr::new(192, 0, 2, 1),
        ports: PortSet::Range {
            first: 40000,
            count: 8,
        },
        spis: SpiSet::List(vec![Spi(0x1000)]),
        remote: RemoteSpec::any(),
        tunnel,
        lease_secs: 3600,
        expires_at: Timestamp::from_secs(1_800_000_000),
    }
}

#[test]
fn one_spelling_for_the_vocabulary() {
    let b = binding(Method::RsapIp, BindingKind::Listen, TunnelKind::Gre);
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["method"], "rsap-ip");
    assert_eq!(json["kind"], "listen");
    assert_eq!(json["tunnel"], "gre");
    assert_eq!(json["bind"], 7);
    assert_eq!(json["client"], 0x5eed);
    assert_eq!(serde_json::from_value::<BindingRecord>(json).unwrap(), b);
    for (m, text) in [
        (Method::RsaIp, "rsa-ip"),
        (Method::RsapIp, "rsap-ip"),
        (Method::Rsipsec, "rsipsec"),
    ] {
        assert_eq!(serde_json::to_value(m).unwrap(), text);
        assert_eq!(m.name(), text);
    }
    for (t, text) in [
        (TunnelKind::IpIp, "ip-ip"),
        (TunnelKind::Gre, "gre"),
        (TunnelKind::L2tp, "l2tp"),
    ] {
        assert_eq!(serde_json::to_value(t).unwrap(), text);
        assert_eq!(t.name(), text);
    }
    assert_eq!(serde_json::to_value(Transport::Udp).unwrap(), "udp");
    assert_eq!(serde_json::to_value(Transport::Tcp).unwrap(), "tcp");
    assert_eq!(serde_json::to_value(BindingKind::Assign).unwrap(), "assign");
    let host = HostRecord {
        client: ClientId(0x5eed),
        private_address: Ipv4Addr::new(10, 0, 0, 2),
        transport: Transport::Udp,
        udp_port: Some(4555),
        registered_at: Timestamp::from_secs(1_700_000_000),
        expires_at: Timestamp::from_secs(1_800_000_000),
        auth_counter: 0,
    };
    let json = serde_json::to_value(&host).unwrap();
    assert_eq!(json["transport"], "udp");
    assert_eq!(serde_json::from_value::<HostRecord>(json).unwrap(), host);
}

#[test]
fn records_of_earlier_versions_still_load() {
    // Before the vocabulary was shared the method was stored as its Rust
    // name; every other field is spelled as it was.
    for (method, old) in [
        (Method::RsaIp, "RsaIp"),
        (Method::RsapIp, "RsapIp"),
        (Method::Rsipsec, "Rsipsec"),
    ] {
        let b = binding(method, BindingKind::Assign, TunnelKind::IpIp);
        let new = serde_json::to_string(&b).unwrap();
        let stored = new.replace(
            &format!("\"method\":\"{}\"", method.name()),
            &format!("\"method\":\"{old}\""),
        );
        assert_ne!(stored, new);
        assert_eq!(serde_json::from_str::<BindingRecord>(&stored).unwrap(), b);

        let q = QuarantineRecord {
            bind: BindId(3),
            method,
            address: Ipv4Addr::new(192, 0, 2, 1),
            ports: PortSet::None,
            spis: SpiSet::None,
            until: Timestamp::from_secs(500),
        };
        let stored = format!(
            r#"{{"bind":3,"method":"{old}","address":"192.0.2.1","ports":"None","spis":"None","until":500000}}"#
        );
        assert_eq!(
            serde_json::from_str::<QuarantineRecord>(&stored).unwrap(),
            q
        );
    }
}
