//! `realm host` signalling end to end: the built binary in a "host" namespace
//! against a scripted gateway (a small tokio TCP/UDP server built on
//! `realm_wire::rsip::Message`, answering like RFC 3103 Appendix C) in a
//! "gateway" namespace. The host registers, obtains the configured ports,
//! extends them before expiry (2 s leases), and de-registers on SIGTERM.
//! Run as root; without privileges the tests fail, they never skip.

// Test code: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

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
type Seen = Arc<Mutex<Vec<(MessageType, Option<u8>)>>>;

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
    seen.lock().unwrap().push((req.msg_type(), count));
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

    let mut args = vec![
        "host",
        "--gateway",
        "10.0.0.1",
        "--ports",
        "8",
        "--lease",
        "2",
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
            .filter(|(t, _)| *t == MessageType::ExtendRequest)
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
    let seen = seen.lock().unwrap().clone();
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
