//! `realm host` end to end (signalling and data plane): the built binary in a "host" namespace
//! against a scripted gateway (a small tokio TCP/UDP server built on
//! `realm_wire::rsip::Message`, answering like RFC 3103 Appendix C) in a
//! "gateway" namespace. The host registers, obtains the configured ports,
//! extends them before expiry (2 s leases), and de-registers on SIGTERM, over
//! TCP and UDP; reconnects a dropped TCP connection; and carries an
//! application's UDP datagram through the TUN and IP-in-IP to the scripted
//! gateway's raw socket and the answer back.
//! Run as root; without privileges the tests fail, they never skip.

// Test code: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use realm_io::Ipv4Prefix;
use realm_io::netns::{self, Lab, LabStdio};
use realm_wire::rsip::{
    Address, BindId, ClientId, Flow, FlowPolicy, Grant, LocalFlowPolicy, Message, MessageType,
    Ports, RemoteFlowPolicy, RsipMethod, StreamDecoder, TunnelType,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const FIRST_PORT: u16 = 40000;
const CLIENT: ClientId = ClientId(7);
const BIND: BindId = BindId(1);
const LEASE_S: u32 = 2;
const WAIT: Duration = Duration::from_secs(20);

/// What the scripted gateway saw: each request's type, and the port count of
/// RSAP-IP assigns.
/// What the scripted gateway received: each request's type, its port count
/// (ASSIGN), when it first arrived and its message counter (UDP). A UDP
/// retransmission (the same counter again, RFC 3103 s10.1, which a loaded
/// machine can cause) is answered again but recorded once.
type Seen = Arc<Mutex<Vec<(MessageType, Option<u8>, Instant, Option<u32>)>>>;

/// The requests without their arrival times and counters.
fn kinds(
    seen: &[(MessageType, Option<u8>, Instant, Option<u32>)],
) -> Vec<(MessageType, Option<u8>)> {
    seen.iter().map(|(t, c, _, _)| (*t, *c)).collect()
}

fn lab() -> Lab {
    if let Err(e) = netns::require_privileges() {
        panic!("realm host tests need root and iproute2's `ip` (network namespaces): {e}");
    }
    Lab::new().expect("create lab")
}

/// The scripted gateway's answer to one request (RFC 3103 Appendix C 16.1).
fn answer(req: &Message, seen: &Seen) -> Option<Message> {
    let counter = req.message_counter();
    let count = match (req.msg_type(), req.ports().next()) {
        (MessageType::AssignRequestRsapIp, Some(Ports::DontCare { count })) => Some(*count),
        _ => None,
    };
    {
        let mut seen = seen.lock().unwrap();
        let retransmission = counter.is_some() && seen.last().is_some_and(|last| last.3 == counter);
        if !retransmission {
            seen.push((req.msg_type(), count, realm_io::now(), counter));
        }
    }
    let policy = FlowPolicy {
        local: LocalFlowPolicy::Macro,
        remote: RemoteFlowPolicy::None,
    };
    Some(match req.msg_type() {
        MessageType::RegisterRequest => Message::register_response(
            CLIENT,
            LEASE_S * 5,
            policy,
            counter,
            &[RsipMethod::RsapIp],
            &[TunnelType::IpIp],
        )
        .unwrap(),
        MessageType::AssignRequestRsapIp => {
            let flow = Flow {
                local_address: Address::Ipv4(LEASED),
                local_ports: Ports::Range {
                    first: FIRST_PORT,
                    count: count.unwrap_or(1),
                },
                remote_address: req.addresses().nth(1).cloned()?,
                remote_ports: req.ports().nth(1).cloned()?,
            };
            let grant = Grant {
                lease_time: LEASE_S,
                tunnel_type: TunnelType::IpIp,
                tunnel_endpoint: None,
                message_counter: counter,
            };
            Message::assign_response_rsap_ip(CLIENT, BIND, flow, grant).unwrap()
        }
        MessageType::ExtendRequest => Message::extend_response(CLIENT, BIND, LEASE_S, counter),
        MessageType::FreeRequest => Message::free_response(CLIENT, BIND, counter),
        MessageType::DeregisterRequest => Message::deregister_response(CLIENT, counter),
        // The host's re-attach after a reconnection (nothing is local here).
        MessageType::QueryRequest => Message::query_response(CLIENT, counter, &[]).ok()?,
        _ => return None,
    })
}

async fn tcp_gateway(seen: Seen, ready: mpsc::Sender<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((GATEWAY, 4555)))
        .await
        .unwrap();
    ready.send(()).unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("host never connected")
        .unwrap();
    let mut decoder = StreamDecoder::new(65535);
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("host went quiet")
            .unwrap();
        if n == 0 {
            return;
        }
        assert_eq!(decoder.push(&buf[..n]), n);
        let mut out = Vec::new();
        let mut done = false;
        while let Some(frame) = decoder.next_frame().unwrap() {
            let req = Message::parse(frame).unwrap();
            done |= req.msg_type() == MessageType::DeregisterRequest;
            if let Some(resp) = answer(&req, &seen) {
                resp.emit(&mut out);
            }
        }
        stream.write_all(&out).await.unwrap();
        if done {
            return;
        }
    }
}

async fn udp_gateway(seen: Seen, ready: mpsc::Sender<()>) {
    let socket = tokio::net::UdpSocket::bind(SocketAddr::from((GATEWAY, 4555)))
        .await
        .unwrap();
    ready.send(()).unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
            .await
            .expect("host went quiet")
            .unwrap();
        let req = Message::parse(&buf[..n]).unwrap();
        if let Some(resp) = answer(&req, &seen) {
            socket.send_to(&resp.to_bytes(), from).await.unwrap();
        }
        if req.msg_type() == MessageType::DeregisterRequest {
            return;
        }
    }
}

fn register_extend_deregister(udp: bool) {
    let started = realm_io::now();
    let mut lab = lab();
    let host = lab.add_namespace("host").unwrap();
    let gw = lab.add_namespace("gateway").unwrap();
    lab.veth((&host, "eth0"), (&gw, "eth0")).unwrap();
    lab.add_address(&host, "eth0", Ipv4Prefix::new(HOST, 24).unwrap())
        .unwrap();
    lab.add_address(&gw, "eth0", Ipv4Prefix::new(GATEWAY, 24).unwrap())
        .unwrap();

    let seen: Seen = Arc::default();
    let (ready_tx, ready_rx) = mpsc::channel();
    let gw_seen = Arc::clone(&seen);
    let gateway = netns::spawn_in(&gw, move || async move {
        if udp {
            udp_gateway(gw_seen, ready_tx).await;
        } else {
            tcp_gateway(gw_seen, ready_tx).await;
        }
    });
    ready_rx.recv_timeout(WAIT).expect("gateway not ready");

    // A control socket of its own: tests run in parallel.
    let socket = common::scratch_dir(&format!("host-ree-{udp}")).join("host.sock");
    let socket = socket.to_str().unwrap();
    let mut args = vec![
        "host",
        "--gateway",
        "10.0.0.1",
        "--ports",
        "8",
        "--lease",
        "2",
        "--control-socket",
        socket,
    ];
    if udp {
        args.push("--udp");
    }
    let child = lab
        .spawn(&host, env!("CARGO_BIN_EXE_realm"), &args, LabStdio::Capture)
        .unwrap();

    // Two extensions of the 2 s lease: the host extends before expiry.
    let deadline = realm_io::now() + WAIT;
    loop {
        let extends = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _, _)| *t == MessageType::ExtendRequest)
            .count();
        if extends >= 2 {
            break;
        }
        if let Some(status) = lab.child_mut(child).unwrap().try_wait().unwrap() {
            let out = lab.wait(child).unwrap();
            panic!(
                "realm host exited early ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            realm_io::now() < deadline,
            "no extensions: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let pid = lab.child_mut(child).unwrap().id();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = realm_io::now() + Duration::from_secs(10);
    while lab.child_mut(child).unwrap().try_wait().unwrap().is_none() {
        assert!(
            realm_io::now() < deadline,
            "realm host did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = lab.wait(child).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert!(stderr.contains("registered"), "{stderr}");
    assert!(stderr.contains("binding granted"), "{stderr}");
    assert!(stderr.contains("binding extended"), "{stderr}");

    gateway.join().unwrap().unwrap();
    let timeline = seen.lock().unwrap().clone();
    // "Before expiry", timed: each EXTEND reaches the gateway within the
    // 2 s lease granted (or extended) by the answer to the request before
    // it, and not in a hurry either (the host extends at 2/3 of the lease;
    // timers never fire early, so more than a third has passed).
    let renewals: Vec<Instant> = timeline
        .iter()
        .filter(|(t, _, _, _)| {
            matches!(
                t,
                MessageType::AssignRequestRsapIp | MessageType::ExtendRequest
            )
        })
        .map(|(_, _, at, _)| *at)
        .collect();
    assert!(renewals.len() >= 3, "{timeline:?}");
    let lease = Duration::from_secs(u64::from(LEASE_S));
    for pair in renewals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < lease,
            "an EXTEND came {gap:?} after the lease began: {timeline:?}"
        );
        assert!(
            gap > lease / 3,
            "an EXTEND came only {gap:?} into the lease: {timeline:?}"
        );
    }
    let seen = kinds(&timeline);
    assert_eq!(
        seen.first(),
        Some(&(MessageType::RegisterRequest, None)),
        "{seen:?}"
    );
    assert_eq!(
        seen.get(1),
        Some(&(MessageType::AssignRequestRsapIp, Some(8))),
        "{seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&(MessageType::DeregisterRequest, None)),
        "{seen:?}"
    );
    assert!(
        seen[2..seen.len() - 1]
            .iter()
            .all(|(t, _)| *t == MessageType::ExtendRequest),
        "{seen:?}"
    );
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn tcp_register_assign_extend_deregister() {
    register_extend_deregister(false);
}

#[test]
fn udp_register_assign_extend_deregister() {
    register_extend_deregister(true);
}

const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// The scripted gateway's data plane: one IP-in-IP packet in (returned),
/// a UDP "pong" from the peer back through the tunnel.
async fn ipip_echo(ready: mpsc::Sender<()>) -> Vec<u8> {
    use realm_io::RawIp;
    use realm_io::raw::{RawIpOptions, proto};
    let raw = RawIp::open(proto::IPIP, &RawIpOptions::default()).unwrap();
    ready.send(()).unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let n = tokio::time::timeout(WAIT, raw.recv(&mut buf))
            .await
            .expect("no IP-in-IP packet at the gateway")
            .unwrap();
        let outer = &buf[..n];
        let ihl = usize::from(outer[0] & 0x0f) * 4;
        let inner = &outer[ihl..];
        // Only the application's datagram (IPv4/UDP to the peer).
        if inner[0] >> 4 != 4 || inner[9] != 17 || inner[16..20] != PEER.octets() {
            continue;
        }
        assert_eq!(&outer[12..16], &HOST.octets(), "outer source");
        assert_eq!(&outer[16..20], &GATEWAY.octets(), "outer destination");
        let iihl = usize::from(inner[0] & 0x0f) * 4;
        let sport = u16::from_be_bytes([inner[iihl], inner[iihl + 1]]);
        assert!(
            (FIRST_PORT..FIRST_PORT + 8).contains(&sport),
            "a packet from unleased port {sport} was tunnelled"
        );
        let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
        let reply = common::ipv4_udp(PEER, src, 7, sport, b"pong");
        let wrapped = common::ipv4(GATEWAY, HOST, realm_wire::ipv4::IpProtocol::IpIp, &reply);
        raw.send(&wrapped).await.unwrap();
        return inner.to_vec();
    }
}

/// The data plane: an application with an ephemeral socket reaches a public
/// peer through the TUN and the IP-in-IP tunnel, from the leased address and
/// a leased port, and gets the peer's answer back.
#[test]
fn tcp_data_plane_udp_round_trip() {
    data_plane_round_trip(false);
}

#[test]
fn udp_data_plane_udp_round_trip() {
    data_plane_round_trip(true);
}

fn data_plane_round_trip(udp: bool) {
    let mut lab = lab();
    let host = lab.add_namespace("host").unwrap();
    let gw = lab.add_namespace("gateway").unwrap();
    lab.veth((&host, "eth0"), (&gw, "eth0")).unwrap();
    lab.add_address(&host, "eth0", Ipv4Prefix::new(HOST, 24).unwrap())
        .unwrap();
    lab.add_address(&gw, "eth0", Ipv4Prefix::new(GATEWAY, 24).unwrap())
        .unwrap();

    let seen: Seen = Arc::default();
    let (ready_tx, ready_rx) = mpsc::channel();
    let raw_ready = ready_tx.clone();
    let gw_seen = Arc::clone(&seen);
    let gateway = netns::spawn_in(&gw, move || async move {
        let signalling = async {
            if udp {
                udp_gateway(gw_seen, ready_tx).await;
            } else {
                tcp_gateway(gw_seen, ready_tx).await;
            }
        };
        let (_, inner) = tokio::join!(signalling, ipip_echo(raw_ready));
        inner
    });
    ready_rx.recv_timeout(WAIT).expect("gateway not ready");
    ready_rx.recv_timeout(WAIT).expect("gateway not ready");

    // A control socket of its own: tests run in parallel.
    let socket = common::scratch_dir(&format!("host-dp-{udp}")).join("host.sock");
    let socket = socket.to_str().unwrap();
    let mut args = vec![
        "host",
        "--gateway",
        "10.0.0.1",
        "--ports",
        "8",
        "--lease",
        "30",
        "--control-socket",
        socket,
    ];
    if udp {
        args.push("--udp");
    }
    let child = lab
        .spawn(&host, env!("CARGO_BIN_EXE_realm"), &args, LabStdio::Capture)
        .unwrap();

    // Wait for the leased address on the TUN.
    let deadline = realm_io::now() + WAIT;
    loop {
        let addrs = lab
            .run_ok(&host, "ip", &["-4", "-o", "addr", "show"])
            .unwrap_or_default();
        if addrs.contains("realm0") && addrs.contains(&LEASED.to_string()) {
            break;
        }
        if lab.child_mut(child).unwrap().try_wait().unwrap().is_some() {
            let out = lab.wait(child).unwrap();
            panic!(
                "realm host exited: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if realm_io::now() > deadline {
            lab.child_mut(child).unwrap().kill().unwrap();
            let out = lab.wait(child).unwrap();
            panic!(
                "no leased address on realm0: {addrs}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let range = lab
        .run_ok(&host, "sysctl", &["-n", "net.ipv4.ip_local_port_range"])
        .unwrap();
    let range: Vec<u16> = range
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(range, [FIRST_PORT, FIRST_PORT + 7]);

    let (reply, from, local) = netns::in_namespace(&host, || {
        // From the leased address but a port outside the block: dropped.
        let rogue = std::net::UdpSocket::bind((LEASED, 50000)).unwrap();
        rogue.send_to(b"rogue", (PEER, 7)).unwrap();
        let sock = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        sock.send_to(b"ping", (PEER, 7)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).expect("no reply to the app");
        (buf[..n].to_vec(), from, sock.local_addr().unwrap())
    })
    .unwrap();
    assert_eq!(reply, b"pong");
    assert_eq!(from, SocketAddr::from((PEER, 7)));
    assert!(
        (FIRST_PORT..FIRST_PORT + 8).contains(&local.port()),
        "{local}"
    );

    let pid = lab.child_mut(child).unwrap().id();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = realm_io::now() + Duration::from_secs(10);
    while lab.child_mut(child).unwrap().try_wait().unwrap().is_none() {
        assert!(
            realm_io::now() < deadline,
            "realm host did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = lab.wait(child).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drop_not_leased: 1"), "{stderr}");
    let inner = gateway.join().unwrap().unwrap();
    assert_eq!(
        &inner[12..16],
        &LEASED.octets(),
        "inner source is the leased address"
    );
    let sport = u16::from_be_bytes([inner[20], inner[21]]);
    assert_eq!(sport, local.port());
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(t, _, _, _)| *t == MessageType::DeregisterRequest)
    );
}

/// A gateway that drops the TCP connection after granting the binding, then
/// accepts the host's reconnection and serves it. Returns the host's address
/// of each connection.
async fn tcp_gateway_dropping_once(seen: Seen, ready: mpsc::Sender<()>) -> Vec<SocketAddr> {
    let mut peers = Vec::new();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((GATEWAY, 4555)))
        .await
        .unwrap();
    ready.send(()).unwrap();
    for connection in 0..2 {
        let (mut stream, peer) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("host did not (re)connect")
            .unwrap();
        peers.push(peer);
        let mut decoder = StreamDecoder::new(65535);
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
                .await
                .expect("host went quiet")
                .unwrap();
            assert_ne!(n, 0, "host closed the connection");
            assert_eq!(decoder.push(&buf[..n]), n);
            let mut out = Vec::new();
            let mut done = false;
            let mut granted = false;
            while let Some(frame) = decoder.next_frame().unwrap() {
                let req = Message::parse(frame).unwrap();
                done |= req.msg_type() == MessageType::DeregisterRequest;
                granted |= req.msg_type() == MessageType::AssignRequestRsapIp;
                if let Some(resp) = answer(&req, &seen) {
                    resp.emit(&mut out);
                }
            }
            stream.write_all(&out).await.unwrap();
            if done {
                return peers;
            }
            if granted && connection == 0 {
                break; // drop the connection
            }
        }
    }
    peers
}

/// `--config FILE`, and a TCP connection lost after the grant: the host
/// reconnects (without registering again) and goes on extending the binding.
#[test]
fn tcp_config_file_and_reconnect() {
    config_file_and_reconnect(false);
}

/// The same with the data plane up, so the leased block (40000-40003) is the
/// namespace's ephemeral range when the host reconnects: its signalling
/// socket must not take one of those ports, which are its applications'.
#[test]
fn tcp_reconnect_takes_no_leased_port() {
    let peers = config_file_and_reconnect(true);
    assert_eq!(peers.len(), 2, "{peers:?}");
    let leased = FIRST_PORT..FIRST_PORT + 4;
    assert!(
        !leased.contains(&peers[1].port()),
        "the reconnection took leased port {}",
        peers[1].port()
    );
}

fn config_file_and_reconnect(data_plane: bool) -> Vec<SocketAddr> {
    let mut lab = lab();
    let host = lab.add_namespace("host").unwrap();
    let gw = lab.add_namespace("gateway").unwrap();
    lab.veth((&host, "eth0"), (&gw, "eth0")).unwrap();
    lab.add_address(&host, "eth0", Ipv4Prefix::new(HOST, 24).unwrap())
        .unwrap();
    lab.add_address(&gw, "eth0", Ipv4Prefix::new(GATEWAY, 24).unwrap())
        .unwrap();
    let dir = common::scratch_dir(&format!("host-config-reconnect-{data_plane}"));
    let config = dir.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\ngateway = \"10.0.0.1:4555\"\n[[host.bindings]]\nports = 4\nlease_time = 2\n\
             [daemon]\nreconnect_min_ms = 50\ndata_plane = {data_plane}\ncontrol_socket = \"{}\"\n",
            dir.join("host.sock").display()
        ),
    )
    .unwrap();

    let seen: Seen = Arc::default();
    let (ready_tx, ready_rx) = mpsc::channel();
    let gw_seen = Arc::clone(&seen);
    let gateway = netns::spawn_in(&gw, move || async move {
        tcp_gateway_dropping_once(gw_seen, ready_tx).await
    });
    ready_rx.recv_timeout(WAIT).expect("gateway not ready");
    let config = config.to_str().unwrap().to_owned();
    let child = lab
        .spawn(
            &host,
            env!("CARGO_BIN_EXE_realm"),
            &["host", "--config", &config],
            LabStdio::Capture,
        )
        .unwrap();

    let deadline = realm_io::now() + WAIT;
    while seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _, _)| *t == MessageType::ExtendRequest)
        .count()
        < 2
    {
        if realm_io::now() > deadline {
            lab.child_mut(child).unwrap().kill().unwrap();
            let out = lab.wait(child).unwrap();
            panic!(
                "no extensions after the reconnection: {:?}\n{}",
                seen.lock().unwrap(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = lab.child_mut(child).unwrap().id();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = realm_io::now() + Duration::from_secs(10);
    while lab.child_mut(child).unwrap().try_wait().unwrap().is_none() {
        assert!(
            realm_io::now() < deadline,
            "realm host did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = lab.wait(child).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TCP: connected"), "{stderr}");
    let peers = gateway.join().unwrap().unwrap();
    let seen = kinds(&seen.lock().unwrap());
    assert_eq!(
        seen.iter()
            .filter(|(t, _)| *t == MessageType::RegisterRequest)
            .count(),
        1,
        "registered again after a reconnection: {seen:?}"
    );
    assert_eq!(seen[1], (MessageType::AssignRequestRsapIp, Some(4)));
    // Re-attached on the new connection at once: the query comes right
    // after the grant (the last message of the first connection).
    assert_eq!(seen[2], (MessageType::QueryRequest, None), "{seen:?}");
    assert_eq!(seen.last(), Some(&(MessageType::DeregisterRequest, None)));
    peers
}
