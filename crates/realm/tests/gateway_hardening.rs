//! Issue 11's gateway findings against a real `realm gateway` process on
//! loopback, probed from outside as an attacker would: what an
//! unauthenticated datagram may change, rate limits per source address, idle
//! connections, registration floods and socket drops. Each test fails on a
//! gateway without the fix. Readiness handshakes only: every wait is an
//! answer, a closed connection or a metric reached within a bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

use gateway_util::*;
use realm_rsip::auth::{self, SharedKey};
use realm_wire::rsip::{ClientId, ErrorCode, Message, RequestOptions, View};

const SECRET: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_ID: u32 = 7;

fn gateway_section(keyed: Option<std::net::Ipv4Addr>, extra: &str) -> String {
    let auth = match keyed {
        Some(h) => format!(
            "[gateway.auth]\nkeys = [{{ host = \"{h}\", key_id = {KEY_ID}, secret_hex = \"{SECRET}\" }}]\n"
        ),
        None => String::new(),
    };
    format!(
        r#"
[gateway]
methods = ["rsap-ip"]
tunnel_types = ["ip-ip"]
registration_lease_secs = 600
{extra}
[[gateway.pool]]
addresses = "149.112.240.156"
ports = ["1234-65535"]
{auth}
"#
    )
}

/// A host that signs when it has a key, with a replay counter of its own.
struct Signer {
    key: Option<SharedKey>,
    counter: u64,
}

impl Signer {
    fn new(keyed: bool) -> Signer {
        Signer {
            key: keyed.then(|| SharedKey::new(KEY_ID, &hex(SECRET))),
            counter: 0,
        }
    }

    fn bytes(&mut self, m: &Message) -> Vec<u8> {
        match &self.key {
            Some(k) => {
                self.counter += 1;
                auth::sign(m, k, self.counter).unwrap().to_bytes()
            }
            None => m.to_bytes(),
        }
    }
}

fn udp_recv(s: &UdpSocket) -> Message {
    let mut buf = [0u8; 65536];
    let (n, _) = s.recv_from(&mut buf).expect("a UDP answer");
    Message::parse(&buf[..n]).expect("the gateway sent a valid message")
}

fn client_of(m: &Message) -> ClientId {
    match m.view() {
        View::RegisterResponse { client_id, .. } => client_id,
        other => panic!("expected REGISTER_RESPONSE, got {other:?}"),
    }
}

fn error_of(m: &Message) -> Option<ErrorCode> {
    match m.view() {
        View::ErrorResponse { error, .. } => Some(error),
        _ => None,
    }
}

/// The spoof of finding 1: the host's own source address and port (sent
/// from its socket: on the wire it is the same), a message counter far above
/// the host's, no valid client ID and no key.
fn spoof(counter: u32) -> Vec<u8> {
    // An ASSIGN naming a client ID nobody holds: BAD_CLIENT_ID.
    assign_ports(ClientId(0xdead_beef), 1, Some(counter)).to_bytes()
}

fn udp_lockout(keyed: bool) {
    let net = Net::new();
    let host_ip = net.addr(2);
    let g = GatewayProc::start_on(
        net,
        &Sections::default(),
        &gateway_section(keyed.then_some(host_ip), ""),
    );
    let s = UdpSocket::bind(SocketAddrV4::new(host_ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let to = g.tcp_addr();
    let mut signer = Signer::new(keyed);
    let reg = Message::register_request(None)
        .with_param(realm_wire::rsip::Parameter::MessageCounter(1))
        .unwrap();
    s.send_to(&signer.bytes(&reg), to).unwrap();
    let client = client_of(&udp_recv(&s));
    s.send_to(&signer.bytes(&assign_ports(client, 1, Some(2))), to)
        .unwrap();
    assert!(udp_recv(&s).bind_id().is_some(), "first binding granted");

    // The attacker's datagram: refused, answered.
    s.send_to(&spoof(0x7fff_0000), to).unwrap();
    let refused = udp_recv(&s);
    assert!(error_of(&refused).is_some(), "{:?}", refused.view());

    // The host's next request is answered (not dropped as stale).
    s.send_to(&signer.bytes(&assign_ports(client, 1, Some(3))), to)
        .unwrap();
    let answer = udp_recv(&s);
    assert_eq!(answer.message_counter(), Some(3), "{:?}", answer.view());
    assert!(answer.bind_id().is_some(), "{:?}", answer.view());

    // A spoofed REGISTER from the host's endpoint (accepted without keys: a
    // REGISTER names no client) does not move the endpoint's counter either.
    let spoofed_reg = Message::register_request(None)
        .with_param(realm_wire::rsip::Parameter::MessageCounter(0x7fff_1000))
        .unwrap()
        .to_bytes();
    s.send_to(&spoofed_reg, to).unwrap();
    let _ = udp_recv(&s);
    s.send_to(&signer.bytes(&assign_ports(client, 1, Some(4))), to)
        .unwrap();
    let answer = udp_recv(&s);
    assert_eq!(answer.message_counter(), Some(4), "{:?}", answer.view());
    assert!(answer.bind_id().is_some(), "{:?}", answer.view());
}

#[test]
fn spoofed_counter_does_not_lock_out_a_udp_host() {
    udp_lockout(false);
}

#[test]
fn spoofed_counter_does_not_lock_out_a_keyed_udp_host() {
    udp_lockout(true);
}

fn tcp_lockout(keyed: bool) {
    let net = Net::new();
    let host_ip = net.addr(2);
    let g = GatewayProc::start_on(
        net,
        &Sections::default(),
        &gateway_section(keyed.then_some(host_ip), ""),
    );
    let mut signer = Signer::new(keyed);
    let mut h = TcpHost::connect(host_ip, g.tcp_addr());
    h.send_bytes(&signer.bytes(&Message::register_request(None)));
    let client = client_of(&h.recv());
    // Datagrams from the TCP host's address and from its port number.
    let s = UdpSocket::bind(SocketAddrV4::new(host_ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.send_to(&spoof(0x7fff_0000), g.tcp_addr()).unwrap();
    assert!(error_of(&udp_recv(&s)).is_some());
    let named = Message::assign_request_rsap_ip(
        client,
        realm_wire::rsip::Flow {
            local_address: realm_wire::rsip::Address::DONT_CARE_V4,
            local_ports: realm_wire::rsip::Ports::DontCare { count: 1 },
            remote_address: realm_wire::rsip::Address::DONT_CARE_V4,
            remote_ports: realm_wire::rsip::Ports::DONT_CARE_ONE,
        },
        RequestOptions {
            message_counter: Some(0x7fff_0001),
            ..RequestOptions::default()
        },
    )
    .unwrap();
    s.send_to(&named.to_bytes(), g.tcp_addr()).unwrap();
    assert!(error_of(&udp_recv(&s)).is_some());
    // The TCP host's next request is answered.
    h.send_bytes(&signer.bytes(&assign_ports(client, 1, None)));
    let answer = h.recv();
    assert!(answer.bind_id().is_some(), "{:?}", answer.view());
}

#[test]
fn spoofed_counter_does_not_lock_out_a_tcp_host() {
    tcp_lockout(false);
}

#[test]
fn spoofed_counter_does_not_lock_out_a_keyed_tcp_host() {
    tcp_lockout(true);
}

/// Waits until the gateway has received `n` datagrams (its own count), then
/// until a probe from a fresh address is answered: every answer to what came
/// before has been sent by then (one engine, in order).
fn settle(g: &GatewayProc, n: f64, probe_from: std::net::Ipv4Addr) {
    wait_until(
        "the gateway to receive every datagram",
        Duration::from_secs(30),
        || g.metric("realm_gateway_udp_datagrams_total") >= n,
    );
    let probe = UdpHost::bind(probe_from, g.tcp_addr());
    let answer = probe.exchange(&assign_ports(ClientId(1), 1, Some(1)));
    assert!(error_of(&answer).is_some());
}

fn drain(s: &UdpSocket) -> usize {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while s.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn one_address_with_many_ports_gets_one_address_rate() {
    let sections = Sections {
        limits: "messages_per_sec = 10\nburst = 20\n".to_owned(),
        ..Sections::default()
    };
    let net = Net::new();
    let g = GatewayProc::start_on(net, &sections, &gateway_section(None, ""));
    let sockets: Vec<UdpSocket> = (0..30)
        .map(|_| UdpSocket::bind(SocketAddrV4::new(net.addr(2), 0)).unwrap())
        .collect();
    let before = g.metric("realm_gateway_udp_datagrams_total");
    let started = realm_io::clock::now();
    let mut sent = 0u32;
    for s in &sockets {
        for i in 0..20u32 {
            let m = assign_ports(ClientId(0x1234_5678), 1, Some(i + 1));
            s.send_to(&m.to_bytes(), g.tcp_addr()).unwrap();
            sent += 1;
        }
    }
    settle(&g, before + f64::from(sent), net.addr(3));
    let elapsed = started.elapsed().as_secs_f64();
    let answered: usize = sockets.iter().map(drain).sum();
    // docs/gateway-config.md: `messages_per_sec` and `burst` per source
    // address, whatever its ports.
    let allowed = 20.0 + 10.0 * elapsed + 1.0;
    assert!(answered >= 1, "nothing answered");
    assert!(
        answered as f64 <= allowed,
        "{answered} of {sent} answered from one address in {elapsed:.2} s (allowed {allowed:.0})"
    );
    let dropped = g.metric("realm_gateway_udp_dropped_total{reason=\"rate\"}")
        + g.metric("realm_gateway_udp_dropped_total{reason=\"port_share\"}");
    assert_eq!(dropped as usize + answered, sent as usize);
}

#[test]
fn idle_connections_are_closed_and_give_their_place_back() {
    let sections = Sections {
        limits: "first_message_timeout_secs = 1\nmax_connections_per_address = 4\n".to_owned(),
        ..Sections::default()
    };
    let net = Net::new();
    let g = GatewayProc::start_on(net, &sections, &gateway_section(None, ""));
    let mut idle: Vec<TcpHost> = (0..4)
        .map(|_| TcpHost::connect(net.addr(2), g.tcp_addr()))
        .collect();
    for c in &mut idle {
        assert!(
            c.closed_within(Duration::from_secs(20)),
            "an idle connection stayed open"
        );
    }
    wait_until("the closes to be counted", Duration::from_secs(10), || {
        g.metric("realm_gateway_connections_closed_total{reason=\"idle_timeout\"}") >= 4.0
    });
    // Their places are free again: a host from the same address registers.
    let mut h = TcpHost::connect(net.addr(2), g.tcp_addr());
    h.register();
    assert_eq!(g.metric("realm_gateway_connections"), 1.0);
}

#[test]
fn registration_flood_turns_new_udp_registrations_to_tcp() {
    let net = Net::new();
    let g = GatewayProc::start_on(
        net,
        &Sections::default(),
        &gateway_section(
            None,
            "max_hosts = 64\nudp = { use_tcp_above_hosts_percent = 50 }\n",
        ),
    );
    // A UDP host and a TCP host, registered before the flood.
    let udp_host = UdpHost::bind(net.addr(2), g.tcp_addr());
    let reg = Message::register_request(None)
        .with_param(realm_wire::rsip::Parameter::MessageCounter(1))
        .unwrap();
    let udp_client = client_of(&udp_host.exchange(&reg));
    let mut tcp_host = TcpHost::connect(net.addr(3), g.tcp_addr());
    let tcp_client = tcp_host.register();

    // The flood: REGISTERs from 200 addresses that never registered.
    let mut registered = 0;
    let mut use_tcp = 0;
    for last in 10..210u8 {
        let s = UdpHost::bind(net.addr(last), g.tcp_addr());
        let answer = s.exchange(&reg);
        match answer.view() {
            View::RegisterResponse { .. } => registered += 1,
            View::ErrorResponse {
                error: ErrorCode::UseTcp,
                ..
            } => use_tcp += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // Half of max_hosts (32) with the two hosts above: 30 more, then USE_TCP.
    assert_eq!(registered, 30);
    assert_eq!(use_tcp, 170);
    assert_eq!(
        g.metric("realm_gateway_registrations_sent_to_tcp_total"),
        170.0
    );
    // Registered hosts keep working, over UDP and TCP.
    let a = udp_host.exchange(&assign_ports(udp_client, 1, Some(2)));
    assert!(a.bind_id().is_some(), "{:?}", a.view());
    tcp_host.send(&assign_ports(tcp_client, 1, None));
    let a = tcp_host.recv();
    assert!(a.bind_id().is_some(), "{:?}", a.view());
    // A new host told USE_TCP registers over TCP.
    let mut moved = TcpHost::connect(net.addr(250), g.tcp_addr());
    let fresh = UdpHost::bind(net.addr(250), g.tcp_addr());
    assert_eq!(error_of(&fresh.exchange(&reg)), Some(ErrorCode::UseTcp));
    moved.register();
}

#[test]
fn socket_drops_are_counted() {
    let sections = Sections {
        limits: "udp_recv_buffer = 4096\n".to_owned(),
        ..Sections::default()
    };
    let net = Net::new();
    let g = GatewayProc::start_on(net, &sections, &gateway_section(None, ""));
    assert_eq!(g.metric("realm_gateway_udp_socket_drops_total"), 0.0);
    let s = UdpSocket::bind(SocketAddrV4::new(net.addr(2), 0)).unwrap();
    let junk = [0u8; 1400];
    // Bursts far faster than one engine task reads into an 8 KiB buffer.
    let sent = 20_000u32;
    for _ in 0..sent {
        s.send_to(&junk, g.tcp_addr()).unwrap();
    }
    // The count is read from the socket once a second.
    wait_until(
        "socket drops in the metrics",
        Duration::from_secs(10),
        || g.metric("realm_gateway_udp_socket_drops_total") >= 1.0,
    );
    let received = g.metric("realm_gateway_udp_datagrams_total");
    assert!(received < f64::from(sent), "{received} of {sent} received");
}
