//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 played from the host's
//! side over TCP: the scripted gateway sends the literal bytes of
//! `realm-wire/src/rsip/tests.rs` (copied here: that module is private to
//! realm-wire), and the host must send exactly the requests of the appendix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host_util;

use realm_wire::rsip::appendix_c::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use host_util::*;
use realm_rsip::host::{
    BindingRequest, HostEvent, ListenRequest, RequestError, RevokeReason, Transport,
    UnregisterReason,
};
use realm_wire::rsip::{Address, BindId, ClientId, ErrorCode, Ports, RsipMethod, TunnelType};

const GW_ADDR: Address = Address::Ipv4(Ipv4Addr::new(149, 112, 240, 156));
const FTP_SERVER: Address = Address::Ipv4(Ipv4Addr::new(38, 196, 73, 6));

#[test]
fn appendix_c_16_1_rsap_ip_macro_no_remote_policy() {
    let mut s = Script::new(config(Transport::Tcp));
    s.expect_silent(); // TCP: nothing before the connection is up
    s.host.handle_connected(s.now);
    s.expect_sent_hex(C1_REGISTER_REQUEST);
    s.deliver_bytes(&h(C1_REGISTER_RESPONSE));
    let reg = s.host.registration().cloned().expect("registered");
    assert_eq!(reg.client_id, ClientId(1));
    assert_eq!(reg.methods, vec![RsipMethod::RsapIp]); // 9.3.3 default
    assert_eq!(reg.tunnel_types, vec![TunnelType::IpIp]);
    assert_eq!(s.events(), vec![HostEvent::Registered(reg)]);

    // Four ports, any, lease 3600 suggested.
    let r1 = s
        .host
        .request(s.now, BindingRequest::ports(4).with_lease(3600))
        .unwrap();
    s.expect_sent_hex(C1_ASSIGN_REQUEST_1);
    s.deliver_bytes(&h(C1_ASSIGN_RESPONSE_1));
    let b1 = s.host.binding(BindId(1)).cloned().expect("bind 1");
    assert_eq!(b1.request, r1);
    assert_eq!(
        b1.public_address(),
        Some(IpAddr::from([149, 112, 240, 156]))
    );
    assert_eq!(b1.ports(), vec![1234, 1235, 1236, 1237]);
    assert_eq!(b1.expires, s.now + Duration::from_secs(1800));
    assert_eq!(s.events(), vec![HostEvent::BindingGranted(b1)]);

    // Is 10.20.60.0/24 local?
    let q = s
        .host
        .query_network(
            s.now,
            IpAddr::from([10, 20, 60, 0]),
            IpAddr::from([255, 255, 255, 0]),
        )
        .unwrap();
    s.expect_sent_hex(C1_QUERY_REQUEST);
    s.deliver_bytes(&h(C1_QUERY_RESPONSE));
    match s.events().as_slice() {
        [HostEvent::QueryAnswered { request, answer }] => {
            assert_eq!(*request, q);
            assert!(answer.is_local(IpAddr::from([10, 20, 60, 77])));
            assert!(!answer.is_local(IpAddr::from([10, 20, 61, 1])));
        }
        other => panic!("{other:?}"),
    }

    // Eight specific ports on the same address.
    let req = BindingRequest::specific_ports(Ports::Range {
        first: 1238,
        count: 8,
    })
    .with_local_address(GW_ADDR)
    .with_lease(1800);
    s.host.request(s.now, req).unwrap();
    s.expect_sent_hex(C1_ASSIGN_REQUEST_2);
    s.deliver_bytes(&h(C1_ASSIGN_RESPONSE_2));
    let b2 = s.host.binding(BindId(2)).cloned().expect("bind 2");
    assert_eq!(b2.ports(), (1305..=1312).collect::<Vec<_>>());
    assert_eq!(s.events(), vec![HostEvent::BindingGranted(b2)]);

    // Free the first.
    s.host.free(s.now, BindId(1)).unwrap();
    s.expect_sent_hex(C1_FREE_REQUEST);
    s.deliver_bytes(&h(C1_FREE_RESPONSE_1));
    match s.events().as_slice() {
        [HostEvent::BindingRevoked { binding, reason }] => {
            assert_eq!(binding.bind_id, BindId(1));
            assert_eq!(*reason, RevokeReason::Freed);
        }
        other => panic!("{other:?}"),
    }

    // The second is extended at 2/3 of its 1800 s lease, suggesting 1800 s.
    s.advance(Duration::from_millis(1_200_599));
    s.expect_silent();
    s.advance(Duration::from_millis(1));
    s.expect_sent_hex(C1_EXTEND_REQUEST);
    s.deliver_bytes(&h(C1_EXTEND_RESPONSE));
    let expires = s.now + Duration::from_secs(1800);
    assert_eq!(
        s.events(),
        vec![HostEvent::BindingExtended {
            bind_id: BindId(2),
            expires
        }]
    );

    // The gateway revokes it.
    s.deliver_bytes(&h(C1_FREE_RESPONSE_2));
    match s.events().as_slice() {
        [HostEvent::BindingRevoked { binding, reason }] => {
            assert_eq!(binding.bind_id, BindId(2));
            assert_eq!(*reason, RevokeReason::RevokedByGateway);
        }
        other => panic!("{other:?}"),
    }
    s.expect_silent();

    s.host.shutdown(s.now);
    s.expect_sent_hex(C1_DEREGISTER_REQUEST);
    s.deliver_bytes(&h(C1_DEREGISTER_RESPONSE));
    assert_eq!(
        s.events(),
        vec![
            HostEvent::Unregistered {
                client_id: ClientId(1),
                reason: UnregisterReason::Shutdown
            },
            HostEvent::Closed
        ]
    );
    assert!(s.host.is_closed());
    assert_eq!(s.host.poll_timeout(), None);
    assert_eq!(s.host.stats().malformed + s.host.stats().ignored, 0);
}

#[test]
fn appendix_c_16_2_rsap_ip_micro_micro() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.expect_sent_hex(C1_REGISTER_REQUEST);
    s.deliver_bytes(&h(C2_REGISTER_RESPONSE));
    let reg = s.host.registration().cloned().unwrap();
    assert_eq!(reg.client_id, ClientId(5));
    assert_eq!(reg.methods, vec![RsipMethod::RsapIp, RsipMethod::RsaIp]);
    assert_eq!(reg.tunnel_types, vec![TunnelType::IpIp, TunnelType::Gre]);
    s.events();

    // Micro-flow remote policy: name the FTP server's control port.
    let req = BindingRequest::ports(1)
        .with_remote(FTP_SERVER, Ports::single(21))
        .with_lease(600)
        .with_tunnel(TunnelType::IpIp);
    s.host.request(s.now, req).unwrap();
    s.expect_sent_hex(C2_ASSIGN_REQUEST);
    s.deliver_bytes(&h(C2_ASSIGN_RESPONSE));
    let b1 = s.host.binding(BindId(1)).cloned().unwrap();
    assert_eq!(b1.ports(), vec![2049]);
    assert_eq!(b1.remote_address, FTP_SERVER);
    assert_eq!(b1.remote_ports, Ports::single(21));
    assert!(!b1.listen);

    // Listen for the FTP data connection from port 20.
    let listen = ListenRequest {
        local_address: GW_ADDR,
        local_ports: Ports::single(2050),
        remote_address: FTP_SERVER,
        remote_ports: Ports::single(20),
        lease_time: None,
        tunnel_types: Vec::new(),
    };
    let r = s.host.listen(s.now, listen).unwrap();
    s.expect_sent_hex(C2_LISTEN_REQUEST);
    s.deliver_bytes(&h(C2_LISTEN_RESPONSE));
    let b2 = s.host.binding(BindId(2)).cloned().unwrap();
    assert!(b2.listen);
    assert_eq!(b2.request, r);
    assert_eq!(b2.ports(), vec![2050]);
    assert_eq!(
        s.host
            .binding_for_port(IpAddr::from([149, 112, 240, 156]), 2050)
            .map(|b| b.bind_id),
        Some(BindId(2))
    );
    assert_eq!(s.events().len(), 2);

    s.host.shutdown(s.now);
    s.expect_sent_hex(C2_DEREGISTER_REQUEST);
    s.deliver_bytes(&h(C2_DEREGISTER_RESPONSE));
    let ev = s.events();
    // De-registering revoked both bindings (RFC 3103 9.4.1).
    assert!(matches!(
        ev.as_slice(),
        [
            HostEvent::BindingRevoked {
                reason: RevokeReason::Deregistered,
                ..
            },
            HostEvent::BindingRevoked {
                reason: RevokeReason::Deregistered,
                ..
            },
            HostEvent::Unregistered { .. },
            HostEvent::Closed
        ]
    ));
    assert_eq!(s.host.bindings().count(), 0);
}

#[test]
fn appendix_c_16_3_rsa_ip_macro_macro() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.expect_sent_hex(C1_REGISTER_REQUEST);
    s.deliver_bytes(&h(C3_REGISTER_RESPONSE));
    assert_eq!(s.host.registration().unwrap().client_id, ClientId(3));
    s.events();

    let rsa_ip = |name: &str| {
        BindingRequest::address()
            .with_remote(Address::Fqdn(name.to_owned()), Ports::DONT_CARE_ONE)
            .with_lease(3600)
            .with_tunnel(TunnelType::IpIp)
    };
    let foo = s.host.request(s.now, rsa_ip("www.foo.com")).unwrap();
    let bar = s.host.request(s.now, rsa_ip("www.bar.com")).unwrap();
    // One request at a time: bar waits for foo's answer.
    s.expect_sent_hex(C3_ASSIGN_REQUEST_FOO);
    assert_eq!(s.host.queued_requests(), 1);
    s.deliver_bytes(&h(C3_ERROR_RESPONSE));
    assert_eq!(
        s.events(),
        vec![HostEvent::RequestFailed {
            request: foo,
            error: RequestError::Gateway(ErrorCode::RemoteAddrUnallowed)
        }]
    );
    s.expect_sent_hex(C3_ASSIGN_REQUEST_BAR);
    s.deliver_bytes(&h(C3_ASSIGN_RESPONSE));
    let b = s.host.binding(BindId(1)).cloned().unwrap();
    assert_eq!(b.request, bar);
    assert_eq!(b.method, RsipMethod::RsaIp);
    assert_eq!(b.public_address(), Some(IpAddr::from([149, 112, 240, 17])));
    assert_eq!(b.local_ports, Ports::DontNeed);
    assert_eq!(b.remote_address, Address::Fqdn("www.bar.com".into()));
    assert_eq!(
        s.host
            .binding_for_port(IpAddr::from([149, 112, 240, 17]), 80)
            .map(|b| b.bind_id),
        Some(BindId(1)),
        "RSA-IP leases every port of the address"
    );
    assert_eq!(s.events(), vec![HostEvent::BindingGranted(b)]);

    s.host.shutdown(s.now);
    s.expect_sent_hex(C3_DEREGISTER_REQUEST);
    s.deliver_bytes(&h(C3_DEREGISTER_RESPONSE));
    assert!(s.host.is_closed());
}
