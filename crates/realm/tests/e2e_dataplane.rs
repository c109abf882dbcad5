//! End to end through the RSIP data plane (issue 4): real `realm gateway`
//! and `realm host` processes in network namespaces (`realm_lab`), traffic
//! between the lab's namespaces only. Needs root, iproute2, nft, ping and
//! tshark (`scripts/install-deps`); without them the tests fail, never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use realm_lab::topology::{GATEWAY_PRIVATE, GATEWAY_PUBLIC, PUBLIC_HOST, host_private};
use realm_lab::traffic::{self, Check};
use realm_lab::{HostSpec, LabSpec, RsipLab, Transport};
use realm_wire::ipv4::IpProtocol;
use serde_json::Value;

fn realm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_realm"))
}

/// A lab with two 8-port RSAP-IP hosts over TCP, all running.
fn two_hosts() -> RsipLab {
    let mut lab = RsipLab::build(LabSpec::new(realm())).expect("build the lab (root, ip, nft)");
    lab.start_gateway().expect("gateway");
    lab.start_host(0, 1).expect("host 1");
    lab.start_host(1, 1).expect("host 2");
    lab
}

fn assert_ok(c: &Check, lab: &RsipLab) {
    assert!(
        c.ok,
        "{} {} -> {}: {}\n{}",
        c.name,
        c.from,
        c.to,
        c.detail,
        lab.log_tails(25)
    );
}

fn dataplane(lab: &RsipLab) -> Value {
    lab.gateway_ctl("dataplane", &[])
        .expect("realm ctl dataplane")
}

fn drops(lab: &RsipLab, direction: &str, reason: &str) -> u64 {
    dataplane(lab)["counters"][direction]["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn two_hosts_share_one_public_address_over_tcp_udp_and_icmp_at_the_same_time() {
    let lab = two_hosts();
    let p1 = lab.leased_ports(0).unwrap();
    let p2 = lab.leased_ports(1).unwrap();
    assert_eq!((p1.len(), p2.len()), (8, 8));
    assert!(
        p1.iter().all(|p| !p2.contains(p)),
        "leases overlap: {p1:?} {p2:?}"
    );
    let checks: Vec<Check> = std::thread::scope(|s| {
        let lab = &lab;
        let jobs: Vec<_> = (0..2)
            .flat_map(|i| {
                let port = 8080 + u16::try_from(i).unwrap();
                let udp = 9000 + u16::try_from(i).unwrap();
                [
                    s.spawn(move || traffic::http_get(lab, i, port)),
                    s.spawn(move || traffic::udp_both_ways(lab, i, udp)),
                    s.spawn(move || traffic::ping(lab, i)),
                ]
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for c in &checks {
        assert_ok(c, &lab);
    }
    // The public host saw each host as the gateway's address with its own ports.
    for (i, c) in checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name != "ICMP echo")
    {
        let host = if i < 3 { &p1 } else { &p2 };
        assert!(
            host.iter()
                .any(|p| c.detail.contains(&format!("saw {GATEWAY_PUBLIC}:{p}"))),
            "{}: {}",
            c.name,
            c.detail
        );
    }
    let d = dataplane(&lab);
    assert!(
        d["counters"]["outbound"]["passed"].as_u64().unwrap() >= 12,
        "{d}"
    );
    assert!(
        d["counters"]["inbound"]["passed"].as_u64().unwrap() >= 12,
        "{d}"
    );
}

/// An IP-in-IP packet from `outer_src` to the gateway carrying UDP
/// `inner_src` -> `inner_dst` (built with `tests/common`'s realm-wire helpers).
fn ipip_udp(outer_src: Ipv4Addr, inner_src: SocketAddrV4, inner_dst: SocketAddrV4) -> Vec<u8> {
    let inner = common::ipv4_udp(
        *inner_src.ip(),
        *inner_dst.ip(),
        inner_src.port(),
        inner_dst.port(),
        b"not leased",
    );
    common::ipv4(outer_src, GATEWAY_PRIVATE, IpProtocol::IpIp, &inner)
}

/// Polls `ready` every 50 ms until it holds; fails after `within`, with
/// the lab's logs.
fn wait_until(lab: &RsipLab, what: &str, within: Duration, ready: impl Fn(&RsipLab) -> bool) {
    let start = realm_io::clock::now();
    while !ready(lab) {
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}\n{}",
            lab.log_tails(25)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_host_sending_from_a_port_it_did_not_lease_is_dropped_and_told_also_after_a_gateway_crash() {
    let mut lab = two_hosts();
    let leased = lab.leased_ports(0).unwrap();
    let unleased = (20000u16..30000)
        .find(|p| !leased.contains(p) && *p > 29000)
        .unwrap();
    // The public host listens where the forged packet is going.
    let sink = realm_io::netns::block_on_in(&lab.public_ns, || async {
        std::net::UdpSocket::bind((PUBLIC_HOST, 9999)).unwrap()
    })
    .unwrap();
    sink.set_nonblocking(true).unwrap();
    // Host 1 misbehaves: it tunnels a packet from a port it does not hold,
    // bypassing its own daemon (which would never send it).
    let forged = ipip_udp(
        host_private(0),
        SocketAddrV4::new(GATEWAY_PUBLIC, unleased),
        SocketAddrV4::new(PUBLIC_HOST, 9999),
    );
    let send_forged = |lab: &RsipLab| {
        let forged = forged.clone();
        realm_io::netns::block_on_in(&lab.host_ns[0], || async move {
            let raw = realm_io::RawIp::open(
                realm_io::raw::proto::RAW,
                &realm_io::raw::RawIpOptions::default(),
            )
            .unwrap();
            raw.send(&forged).await.unwrap();
        })
        .unwrap();
    };
    let told_times = |lab: &RsipLab| {
        std::fs::read_to_string(lab.host_log(0))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("gateway error") && l.contains("LocalAddrportUnallowed"))
            .count()
    };
    // Told once: the gateway counted the drop and the report before the
    // host's log shows it, and the forged packet never left.
    let wait_told = |lab: &RsipLab, times: usize, what: &str| {
        wait_until(lab, what, Duration::from_secs(10), |l| {
            told_times(l) >= times
        });
    };

    send_forged(&lab);
    wait_told(&lab, 1, "host 1 is told of its violation");
    assert!(drops(&lab, "outbound", "local_addrport_unallowed") >= 1);
    let d = dataplane(&lab);
    assert!(
        d["counters"]["violations"]["reported"].as_u64().unwrap() >= 1,
        "{d}"
    );
    // RFC 3103 10.4: the host is sent ERROR_RESPONSE LOCAL_ADDRPORT_UNALLOWED (313).
    let status = lab.gateway_ctl("status", &[]).unwrap();
    assert!(
        status["counters"]["errors"]["313"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );

    // Issue 11, finding 6: right after a gateway crash and restart, the
    // reconnected TCP host is reached by the next violation report, long
    // before its first extension would have tied it to its registration.
    lab.restart_gateway(true).expect("restart the gateway");
    wait_until(
        &lab,
        "host 1 re-attaches to its registration",
        Duration::from_secs(15),
        |lab| {
            lab.gateway_ctl("hosts", &[]).is_ok_and(|h| {
                h.as_array().is_some_and(|a| {
                    a.iter().any(|r| {
                        r["record"]["private_address"].as_str()
                            == Some(host_private(0).to_string().as_str())
                            && r["connected"] == true
                    })
                })
            })
        },
    );
    send_forged(&lab);
    wait_told(&lab, 2, "host 1 is told again by the restarted gateway");
    let status = lab.gateway_ctl("status", &[]).unwrap();
    assert_eq!(
        status["counters"]["errors"]["313"].as_u64(),
        Some(1),
        "the restarted gateway reported once: {status}"
    );
    assert_eq!(
        status["counters"]["extensions"].as_u64().unwrap_or(0),
        0,
        "attached before any extension: {status}"
    );

    // A leased port still works afterwards, and nothing forged arrived.
    assert_ok(&traffic::udp_both_ways(&lab, 0, 9001), &lab);
    let mut buf = [0u8; 100];
    while let Ok((n, from)) = sink.recv_from(&mut buf) {
        assert_ne!(
            &buf[..n],
            b"not leased",
            "the public host received a packet from an unleased port ({from})"
        );
    }
}

#[test]
fn inbound_packets_for_one_host_never_reach_the_other() {
    let lab = two_hosts();
    let p1: BTreeSet<u16> = lab.leased_ports(0).unwrap().into_iter().collect();
    let p2: BTreeSet<u16> = lab.leased_ports(1).unwrap().into_iter().collect();
    // Each host counts every UDP packet its stack receives (a raw UDP socket
    // sees them all), by destination port.
    // Each listener says when its socket is open: the public host sends only
    // then (no fixed sleep).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let listeners: Vec<_> = (0..2)
        .map(|i| {
            let ready = ready_tx.clone();
            realm_io::netns::spawn_in(&lab.host_ns[i], move || async move {
                let raw = realm_io::RawIp::open(
                    realm_io::raw::proto::UDP,
                    &realm_io::raw::RawIpOptions::default(),
                )
                .unwrap();
                ready.send(()).unwrap();
                let mut seen = BTreeSet::new();
                let mut buf = vec![0u8; 2048];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1500), raw.recv(&mut buf)).await
                {
                    if n >= 28 && buf[9] == 17 {
                        let ihl = usize::from(buf[0] & 15) * 4;
                        seen.insert(u16::from_be_bytes([buf[ihl + 2], buf[ihl + 3]]));
                    }
                }
                seen
            })
        })
        .collect();
    for _ in 0..2 {
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a listener did not start");
    }
    // The public host sends to every port of the pool's first 40 and to both leases.
    let targets: Vec<u16> = (20000u16..20040).chain(p1.iter().copied()).collect();
    realm_io::netns::block_on_in(&lab.public_ns, || async {
        let s = std::net::UdpSocket::bind((PUBLIC_HOST, 0)).unwrap();
        for p in &targets {
            s.send_to(b"who gets this?", (GATEWAY_PUBLIC, *p)).unwrap();
        }
    })
    .unwrap();
    let seen: Vec<BTreeSet<u16>> = listeners
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(
        seen[0].is_subset(&p1),
        "host 1 got ports {:?} (leased {p1:?})",
        seen[0]
    );
    assert!(
        seen[1].is_subset(&p2),
        "host 2 got ports {:?} (leased {p2:?})",
        seen[1]
    );
    assert_eq!(seen[0], p1, "host 1 missed some of its ports");
    let expected_p2: BTreeSet<u16> = p2.iter().copied().filter(|p| *p < 20040).collect();
    assert_eq!(seen[1], expected_p2);
    // Unleased ports of the gateway's own address go to the gateway's own
    // stack (which answers "port unreachable"), never to a host.
    let unleased = (20000u16..20040)
        .filter(|p| !p1.contains(p) && !p2.contains(p))
        .count() as u64;
    let d = dataplane(&lab);
    assert!(
        d["counters"]["inbound"]["local"].as_u64().unwrap() >= unleased,
        "{d}"
    );
}

#[test]
fn a_5000_byte_datagram_fragmented_on_the_public_side_arrives_whole() {
    let lab = two_hosts();
    // Bound before the host sends (else: port unreachable).
    let sock = realm_io::netns::block_on_in(&lab.public_ns, || async {
        let s = std::net::UdpSocket::bind((PUBLIC_HOST, 7000)).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    })
    .unwrap();
    let server = realm_io::netns::spawn_in(&lab.public_ns, move || async move {
        let s = tokio::net::UdpSocket::from_std(sock).unwrap();
        let mut buf = [0u8; 100];
        let (_, peer) = s.recv_from(&mut buf).await.unwrap();
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        // The public MTU is 1500: the kernel sends this in 4 fragments.
        s.send_to(&big, peer).await.unwrap();
    });
    let got = realm_io::netns::block_on_in(&lab.host_ns[0], || async {
        let s = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .await
            .unwrap();
        s.send_to(b"send me something big", (PUBLIC_HOST, 7000))
            .await
            .unwrap();
        let mut buf = vec![0u8; 65536];
        match tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
            _ => None,
        }
    })
    .unwrap();
    let Some(got) = got else {
        panic!(
            "the big datagram never arrived; data plane: {}\n{}",
            dataplane(&lab),
            lab.log_tails(10)
        );
    };
    server.join().unwrap().unwrap();
    let expected: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(got, expected);
    let d = dataplane(&lab);
    // RFC 3102 3.1: reassembled at the gateway before demultiplexing, then
    // re-fragmented to fit the private link (outer DF clear, RFC 2003 5.1).
    assert!(
        d["counters"]["reassembly"]["reassembled"].as_u64().unwrap() >= 1,
        "{d}"
    );
    assert!(d["fragmented"].as_u64().unwrap() >= 1, "{d}");
}

/// 16 MiB from host 1 to the public host over TCP: every byte arrives in
/// order, from the gateway's public address. Returns the host's status.
fn bulk_upload(lab: &RsipLab, port: u16) -> Value {
    const LEN: usize = 16 << 20;
    let pattern = |i: usize| u8::try_from((i * 7 + i / 4099) % 251).unwrap();
    let listener = realm_io::netns::block_on_in(&lab.public_ns, || async {
        let l = std::net::TcpListener::bind((PUBLIC_HOST, port)).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    })
    .unwrap();
    let server = realm_io::netns::spawn_in(&lab.public_ns, move || async move {
        use tokio::io::AsyncReadExt as _;
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let (mut c, peer) = l.accept().await.unwrap();
        let mut got = Vec::with_capacity(LEN);
        c.read_to_end(&mut got).await.unwrap();
        (got, peer)
    });
    realm_io::netns::block_on_in(&lab.host_ns[0], || async {
        use tokio::io::AsyncWriteExt as _;
        let data: Vec<u8> = (0..LEN).map(pattern).collect();
        let mut c = tokio::net::TcpStream::connect((PUBLIC_HOST, port))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), c.write_all(&data))
            .await
            .expect("upload in time")
            .unwrap();
        c.shutdown().await.unwrap();
    })
    .unwrap();
    let (got, peer) = server.join().unwrap().unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    assert_eq!(peer.ip(), std::net::IpAddr::V4(GATEWAY_PUBLIC));
    let d = dataplane(lab);
    assert!(d["gso_forwarded"].as_u64().unwrap() >= 1, "{d}");
    assert_eq!(d["send_errors"].as_u64().unwrap(), 0, "{d}");
    lab.ctl(&lab.host_socket(0), "status", &[])
        .expect("realm ctl status (host)")
}

/// A bulk TCP upload: the host's TUN hands over superpackets, which the
/// kernel offload (a tcx program on the TUN) encapsulates and sends whole
/// across the 1500-byte private link as GSO packets; the gateway forwards
/// them as GSO packets; every byte arrives in order.
#[test]
fn a_bulk_tcp_upload_travels_as_superpackets_and_arrives_intact() {
    let lab = two_hosts();
    let status = bulk_upload(&lab, 7100);
    let offload = &status["data_plane"]["kernel_offload"];
    // 16 MiB in superpackets of up to 64 KiB: most of it by the kernel.
    assert!(offload["superpackets"].as_u64().unwrap() >= 64, "{status}");
    assert!(offload["bytes"].as_u64().unwrap() >= 8 << 20, "{status}");
    // Whole across the private link: the gateway's kernel reassembled nothing.
    assert_eq!(kernel_reassembled(&lab), 0);
}

/// IPv4 datagrams the gateway namespace's kernel reassembled (`ReasmOKs` in
/// /proc/net/snmp, read by a process in that namespace).
fn kernel_reassembled(lab: &RsipLab) -> u64 {
    let snmp = lab
        .run_ok(&lab.gateway_ns.clone(), "cat", &["/proc/net/snmp"])
        .expect("read /proc/net/snmp");
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap(), ip.next().unwrap());
    let column = names
        .split_whitespace()
        .position(|n| n == "ReasmOKs")
        .unwrap();
    values
        .split_whitespace()
        .nth(column)
        .unwrap()
        .parse()
        .unwrap()
}

/// The same upload with the kernel offload off: the host daemon tunnels each
/// superpacket as one IP-in-IP packet the kernel fragments, and the gateway
/// reassembles it.
#[test]
fn without_the_kernel_offload_superpackets_leave_whole_from_the_daemon() {
    let mut spec = LabSpec::new(realm());
    spec.hosts = vec![HostSpec {
        args: vec!["--ports".into(), "8".into(), "--no-kernel-offload".into()],
        ..HostSpec::ports(Transport::Tcp, 8)
    }];
    let mut lab = RsipLab::build(spec).expect("build the lab (root, ip, nft)");
    lab.start_gateway().expect("gateway");
    lab.start_host(0, 1).expect("host 1");
    let status = bulk_upload(&lab, 7101);
    assert!(status["data_plane"]["kernel_offload"].is_null(), "{status}");
    assert!(
        status["data_plane"]["outbound"].as_u64().unwrap() >= 64,
        "{status}"
    );
    // Fragmented on the private link, reassembled by the gateway's kernel.
    assert!(kernel_reassembled(&lab) >= 64);
}

#[test]
fn a_tshark_capture_on_the_private_link_decodes_rsip_and_the_tunnelled_packets() {
    assert!(
        std::process::Command::new("tshark")
            .arg("--version")
            .output()
            .is_ok(),
        "tshark is missing: run scripts/install-deps"
    );
    let mut lab = RsipLab::build(LabSpec::new(realm())).unwrap();
    lab.start_gateway().unwrap();
    let pcap = lab.dir().join("private.pcap");
    let pcap_s = pcap.display().to_string();
    let ns = lab.gateway_ns.clone();
    let cap = lab
        .lab()
        .spawn(
            &ns,
            "dumpcap",
            &["-i", "h1", "-w", &pcap_s, "-a", "duration:6"],
            realm_io::netns::LabStdio::Capture,
        )
        .unwrap();
    // Readiness, not a fixed sleep: dumpcap prints "Capturing on" BEFORE it
    // opens the device and "File: ..." once the device and the file are open
    // (tshark's own "Capturing on" came too early under load).
    let stderr = lab.lab().child_mut(cap).unwrap().stderr.take().unwrap();
    let (open_tx, open) = std::sync::mpsc::channel();
    let dumpcap_said = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut said = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("File:") {
                let _ = open_tx.send(());
            }
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    if open.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = lab.lab().kill(cap);
        panic!("dumpcap did not start: {}", dumpcap_said.join().unwrap());
    }
    lab.start_host(0, 1).unwrap();
    assert_ok(&traffic::udp_both_ways(&lab, 0, 9100), &lab);
    lab.lab().wait(cap).unwrap();
    let _ = dumpcap_said.join();
    let fields = |filter: &str, field: &str| -> Vec<String> {
        let out = std::process::Command::new("tshark")
            .args(["-r", &pcap_s, "-Y", filter, "-T", "fields", "-e", field])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    // RSIP signalling (Wireshark dissects TCP 4555 as RSIP).
    // RFC 3103 Appendix A: REGISTER_REQUEST 2, REGISTER_RESPONSE 3,
    // ASSIGN_REQUEST_RSAP-IP 8, ASSIGN_RESPONSE_RSAP-IP 9.
    let types = fields("rsip", "rsip.message_type");
    for t in ["2", "3", "8", "9"] {
        assert!(
            types.iter().any(|x| x == t),
            "no RSIP message type {t}: {types:?}"
        );
    }
    // The tunnelled packets: IP-in-IP whose inner source is the public
    // address, unchanged.
    let inner = fields("ip.proto == 4 && udp", "ip.src");
    assert!(
        inner
            .iter()
            .any(|l| l.contains(&host_private(0).to_string()) && l.contains("192.0.2.1")),
        "no tunnelled packet from host 1 with inner source 192.0.2.1: {inner:?}"
    );
    assert!(
        inner
            .iter()
            .any(|l| l.starts_with("10.0.0.1,") && l.contains("192.0.2.2")),
        "no tunnelled packet from the gateway with inner source 192.0.2.2: {inner:?}"
    );
    // Realm's own decoder reads the same capture.
    let out = std::process::Command::new(realm())
        .args(["decode", "--all", "--pcap", &pcap_s])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?} {}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("REGISTER_RESPONSE"), "{text}");
}

fn lab_namespaces() -> Vec<String> {
    realm_io::netns::list_namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(realm_io::netns::KEEP_PREFIX))
        .collect()
}

/// The README's main command: every check passes, nothing is left behind;
/// `--keep` leaves the lab running until `--down`.
#[test]
fn realm_lab_runs_every_check_and_cleans_up_and_keep_then_down() {
    let out = std::process::Command::new(realm())
        .arg("lab")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "realm lab failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "HTTP GET",
        "UDP both ways",
        "ICMP echo",
        "TCP to a LISTEN port",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(check)),
            "no passing {check:?} in:\n{text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("lab torn down"), "{text}");
    // Its namespaces (named after its pid) are gone.
    let tag = text
        .split_whitespace()
        .find_map(|w| {
            w.find("realm-rlm-")
                .map(|i| w[i + "realm-".len()..].to_owned())
        })
        .expect("the lab prints its directory");
    assert!(
        !realm_io::netns::list_namespaces()
            .unwrap()
            .iter()
            .any(|n| n.starts_with(&tag)),
        "namespaces of {tag} left behind"
    );

    let before = lab_namespaces();
    let out = std::process::Command::new(realm())
        .args(["lab", "--keep", "--hosts", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let kept: Vec<String> = lab_namespaces()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(kept.len(), 3, "gateway, public and one host: {kept:?}");
    // Other runs' stale-lab clean-up leaves a kept lab alone.
    realm_io::netns::cleanup_stale(realm_io::netns::PREFIX).unwrap();
    assert!(kept.iter().all(|n| lab_namespaces().contains(n)));
    let down = std::process::Command::new(realm())
        .args(["lab", "--down"])
        .output()
        .unwrap();
    assert!(down.status.success());
    let left: Vec<String> = lab_namespaces()
        .into_iter()
        .filter(|n| kept.contains(n))
        .collect();
    assert!(left.is_empty(), "left after --down: {left:?}");
}

/// `data_plane.nat_sources`: a host that does not speak RSIP gets plain NAT
/// from the kernel on the gateway's own ephemeral ports, beside an RSIP host
/// on the same public address; neither disturbs the other.
#[test]
fn a_host_without_rsip_gets_plain_nat_beside_an_rsip_host() {
    let mut spec = LabSpec::new(realm());
    spec.nat_sources = vec!["10.0.0.0/24".into()];
    let mut lab = RsipLab::build(spec).unwrap();
    lab.start_gateway().unwrap();
    lab.start_host(0, 1).unwrap();
    // Host 2 runs no realm host: it just routes through the gateway.
    let plain = lab.host_ns[1].clone();
    lab.run_ok(
        &plain,
        "ip",
        &["route", "add", "default", "via", "10.0.0.1"],
    )
    .unwrap();
    let listener = realm_io::netns::block_on_in(&lab.public_ns, || async {
        let l = std::net::TcpListener::bind((PUBLIC_HOST, 8443)).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    })
    .unwrap();
    let server = realm_io::netns::spawn_in(&lab.public_ns, move || async move {
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (mut s, peer) = tokio::time::timeout(Duration::from_secs(5), l.accept())
                .await
                .unwrap()
                .unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut s, b"hi\n")
                .await
                .unwrap();
            peers.push(peer);
        }
        peers
    });
    for ns in [lab.host_ns[1].clone(), lab.host_ns[0].clone()] {
        let got = realm_io::netns::block_on_in(&ns, || async {
            let mut s = tokio::net::TcpStream::connect((PUBLIC_HOST, 8443))
                .await
                .unwrap();
            let mut buf = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf)
                .await
                .unwrap();
            buf
        })
        .unwrap();
        assert_eq!(got, b"hi\n");
    }
    let peers = server.join().unwrap().unwrap();
    // First the NATed host: the gateway's address, an ephemeral (unleasable) port.
    let std::net::SocketAddr::V4(nat) = peers[0] else {
        panic!("{peers:?}")
    };
    assert_eq!(*nat.ip(), GATEWAY_PUBLIC);
    assert!(nat.port() >= 49152, "NAT used port {}", nat.port());
    // Then the RSIP host: the same address, one of its leased ports.
    let std::net::SocketAddr::V4(rsip) = peers[1] else {
        panic!("{peers:?}")
    };
    assert_eq!(*rsip.ip(), GATEWAY_PUBLIC);
    assert!(
        lab.leased_ports(0).unwrap().contains(&rsip.port()),
        "{rsip}"
    );
    // The NAT table exists while the gateway runs.
    let tables = lab
        .run_ok(&lab.gateway_ns.clone(), "nft", &["list", "tables"])
        .unwrap();
    assert!(tables.contains("realm_gw_nat_realm_gw0"), "{tables}");
}

/// RFC 2003 s5.1 / RFC 1191: a DF packet that fits the public link but not
/// the tunnel (1490 + 20 bytes > the private MTU of 1500) is not sent; the
/// public sender gets ICMP "fragmentation needed" with 1480 and its kernel
/// lowers the path MTU.
#[test]
fn a_df_packet_too_big_for_the_tunnel_teaches_the_sender_the_tunnel_mtu() {
    let lab = two_hosts();
    let port = lab.leased_ports(0).unwrap()[0];
    // Linux takes the path MTU from a UDP socket's ICMP error only while
    // the socket exists: the sender keeps it until its route shows the new
    // MTU (IP_MTU, 14, on the connected socket), at most 10 s.
    let script = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO\n\
         s.connect(('{GATEWAY_PUBLIC}', {port}))\n\
         s.send(b'x' * 1462)\n\
         deadline = time.time() + 10\n\
         while s.getsockopt(socket.IPPROTO_IP, 14) != 1480 and time.time() < deadline:\n    \
             time.sleep(0.05)\n"
    );
    lab.run_ok(&lab.public_ns, "python3", &["-c", &script])
        .unwrap();
    let mut learned = String::new();
    for _ in 0..40 {
        learned = lab
            .run_ok(
                &lab.public_ns,
                "ip",
                &["route", "get", &GATEWAY_PUBLIC.to_string()],
            )
            .unwrap();
        if learned.contains("mtu 1480") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        learned.contains("mtu 1480"),
        "route: {learned}\n{}",
        dataplane(&lab)
    );
    assert!(dataplane(&lab)["frag_needed_sent"].as_u64().unwrap() >= 1);
}
