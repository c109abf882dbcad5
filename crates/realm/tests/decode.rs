//! `realm decode` end to end: the built binary on hex, on standard input, and
//! on a pcap holding RSIP over UDP and TCP, IP-in-IP, GRE, ESP, IKE and NAT
//! keepalives, in text and JSON, with malformed input reported by offset.

// Test helpers may panic on setup failures: that is how a test fails.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use common::{GATEWAY, HOST, ipv4, ipv4_tcp, ipv4_udp, realm, write_pcap};
use realm_wire::ipv4::{IpProtocol, Packet as Ipv4Packet};
use realm_wire::rsip::{ClientId, Message};
use realm_wire::{gre, ipip};

const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// RFC 3103 Appendix C 16.2's ASSIGN_RESPONSE_RSAP-IP.
const ASSIGN_RESPONSE: &str = "01 09 0039  04 0004 00000005  05 0004 00000001  01 0005 019570f09c  02 0003 080801  01 0005 0126c44906  02 0003 010015  03 0004 00000258  06 0001 01";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

#[test]
fn decodes_an_rsip_message_from_hex_arguments() {
    let out = realm(&["decode", ASSIGN_RESPONSE]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for line in [
        "RSIP ASSIGN_RESPONSE_RSAP-IP (9) length 57",
        "Client ID: 5",
        "Bind ID: 1",
        "Address: 149.112.240.156",
        // RFC 3103 s8.2: "8-2049" is the eight ports 2049..2056.
        "Ports: 2049-2056 (8 ports)",
        "Ports: 21",
        "Lease Time: 600 s",
        "Tunnel Type: IP-IP (1)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn reads_hex_from_standard_input_and_prints_json() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_realm"))
        .args(["decode", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"0102000b\n0b00040000002a\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let layer = &v["layers"][0];
    assert_eq!(layer["layer"], "rsip");
    let parsed: Message = Message::parse(&hex::decode("0102000b0b00040000002a").unwrap()).unwrap();
    assert_eq!(parsed.message_counter(), Some(42));
    assert_eq!(layer["msg_type"], "RegisterRequest", "{v}");
    assert!(v.get("problems").is_none());
}

#[test]
fn malformed_rsip_reports_offset_and_the_gateways_error_code() {
    // Overall length says 57, only 18 bytes follow.
    let out = realm(&["decode", "01 11 0039  04 0004 00000005  05 0004 00000002"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("(at byte 2)"), "{text}");
    assert!(text.contains("BAD_MESSAGE (207)"), "{text}");

    // A REGISTER_RESPONSE without its required Client ID: MISSING_PARAM.
    let out = realm(&["decode", "--json", "01 03 000b 03 0004 00000258"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["problems"][0]["rsip_error"]["code"], 201, "{v}");

    // Version 2: UNSUPPORTED_RSIP_VERSION.
    let out = realm(&["decode", "02 02 0004"]);
    assert!(
        stdout(&out).contains("UNSUPPORTED_RSIP_VERSION (106)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unusable_input_is_an_error_not_a_panic() {
    for bad in [
        &["decode", "0g"][..],
        &["decode", "123"],
        &["decode", "--pcap", "/nonexistent/x.pcap"],
    ] {
        let out = realm(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("realm: "),
            "{out:?}"
        );
    }
}

/// An IKEv1 Main Mode header with no payloads (RFC 2408 s3.1), 28 bytes.
fn isakmp_header() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&[0x11; 8]); // initiator cookie
    m.extend_from_slice(&[0; 8]); // responder cookie
    m.extend_from_slice(&[0, 0x10, 2, 0]); // next payload none, version 1.0, Main Mode, no flags
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 28]);
    m
}

#[test]
fn decodes_a_capture_layer_by_layer() {
    let register = Message::register_request(Some(1)).to_bytes();
    let deregister = Message::deregister_request(ClientId(5), None).to_bytes();
    // Two RSIP messages over TCP, cut across three segments.
    let stream = [register.clone(), deregister.clone()].concat();
    let (a, rest) = stream.split_at(3);
    let (b, c) = rest.split_at(10);

    let inner = ipv4_udp(PUBLIC, PEER, 40000, 53, b"query");
    let mut tunnelled = Vec::new();
    let tunnel = ipip::Tunnel {
        src_addr: HOST,
        dst_addr: GATEWAY,
        ttl: 64,
        dont_frag: ipip::DontFragment::CopyInner,
    };
    ipip::encapsulate(&tunnel, 7, &inner, &mut tunnelled).unwrap();

    let mut gre_tunnelled = Vec::new();
    let gre_options = gre::Options {
        checksum: true,
        key: Some(77),
        sequence_number: None,
    };
    gre::encapsulate(&tunnel, 8, &gre_options, &inner, &mut gre_tunnelled).unwrap();

    let mut esp = 0x0000_1000u32.to_be_bytes().to_vec();
    esp.extend_from_slice(&5u32.to_be_bytes());
    esp.extend_from_slice(&[0xab; 40]);

    let mut truncated = ipv4_udp(HOST, GATEWAY, 4555, 4555, &register);
    truncated.truncate(15);

    let packets = vec![
        ipv4_udp(HOST, GATEWAY, 40001, 4555, &register), // 1
        ipv4_tcp(HOST, GATEWAY, 40002, 4555, 1, a),      // 2
        ipv4_tcp(HOST, GATEWAY, 40002, 4555, 4, b),      // 3
        ipv4_tcp(HOST, GATEWAY, 40002, 4555, 14, c),     // 4
        tunnelled,                                       // 5
        ipv4(PEER, PUBLIC, IpProtocol::Esp, &esp),       // 6
        ipv4_udp(PEER, PUBLIC, 500, 500, &isakmp_header()), // 7
        ipv4_udp(PEER, PUBLIC, 4500, 4500, &[0xff]),     // 8
        ipv4_udp(PEER, PUBLIC, 1234, 53, b"not interesting"), // 9
        truncated,                                       // 10
        gre_tunnelled,                                   // 11
    ];
    let dir = common::scratch_dir("decode-capture");
    let pcap = dir.join("mixed.pcap");
    write_pcap(&pcap, &packets);
    let pcap = pcap.to_str().unwrap();

    let out = realm(&["decode", "--json", "--pcap", pcap]);
    assert_eq!(out.status.code(), Some(1), "frame 10 is malformed: {out:?}");
    let reports: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let frames: Vec<u64> = reports
        .iter()
        .map(|r| r["frame"].as_u64().unwrap())
        .collect();
    // Frame 9 (plain DNS) is left out without --all; frame 2 completes no message but is RSIP's TCP.
    assert_eq!(frames, [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
    let layers = |frame: u64| -> Vec<String> {
        let r = reports.iter().find(|r| r["frame"] == frame).unwrap();
        r["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["layer"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(layers(1), ["ipv4", "udp", "rsip"]);
    assert_eq!(layers(2), ["ipv4", "tcp"]);
    assert_eq!(
        layers(3),
        ["ipv4", "tcp", "rsip"],
        "REGISTER_REQUEST completes in segment 2"
    );
    assert_eq!(
        layers(4),
        ["ipv4", "tcp", "rsip"],
        "DE-REGISTER_REQUEST completes in segment 3"
    );
    assert_eq!(layers(5), ["ipv4", "ip_ip", "ipv4", "udp", "data"]);
    assert_eq!(layers(6), ["ipv4", "esp", "data"]);
    assert_eq!(layers(7), ["ipv4", "udp", "isakmp"]);
    assert_eq!(layers(8), ["ipv4", "udp", "nat_keepalive"]);
    assert_eq!(layers(11), ["ipv4", "gre", "ipv4", "udp", "data"]);
    let r10 = reports.iter().find(|r| r["frame"] == 10).unwrap();
    assert_eq!(r10["problems"][0]["layer"], "IPv4", "{r10}");

    let r4 = reports.iter().find(|r| r["frame"] == 4).unwrap();
    assert_eq!(r4["layers"][2]["msg_type"], "DeregisterRequest", "{r4}");
    let r6 = reports.iter().find(|r| r["frame"] == 6).unwrap();
    assert_eq!(r6["layers"][1]["spi"], 0x1000);

    // The text form names the same things, and --all brings frame 9 back.
    let out = realm(&["decode", "--all", "--pcap", pcap]);
    let text = stdout(&out);
    for needle in [
        "frame 1 at 0.000000 s",
        "RSIP REGISTER_REQUEST (2) length 11",
        "RSIP DE-REGISTER_REQUEST (4) length 11",
        "IP-in-IP tunnel (RFC 2003), inner packet:",
        "GRE protocol Ipv4 key 77 checksum, inner packet:",
        "IPv4 192.0.2.1 -> 203.0.113.9 Udp",
        "ESP spi 0x00001000 seq 5",
        "ISAKMP IdentityProtection icookie 1111111111111111",
        "NAT keepalive (RFC 3948)",
        "frame 9 at",
        "error: IPv4:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The packets the test built are valid IPv4 (the emitters agree with the parsers).
    assert!(
        Ipv4Packet::new_checked(&packets[0][..])
            .unwrap()
            .verify_checksum()
    );
}

/// A capture taken on the sending host holds partial TCP/UDP checksums
/// (checksum offload): the packet is decoded, the checksum noted, and the
/// decode does not fail.
#[test]
fn an_offloaded_transport_checksum_is_a_note_not_an_error() {
    let register = Message::register_request(None).to_bytes();
    let mut tcp = ipv4_tcp(HOST, GATEWAY, 40000, 4555, 1, &register);
    let ihl = usize::from(tcp[0] & 15) * 4;
    tcp[ihl + 16] ^= 0xff; // TCP checksum
    let mut udp = ipv4_udp(HOST, GATEWAY, 4555, 4555, &register);
    udp[ihl + 6] ^= 0xff; // UDP checksum
    for (proto, packet) in [("TCP", tcp), ("UDP", udp)] {
        let out = realm(&["decode", "--layer", "ip", &hex::encode(&packet)]);
        let text = stdout(&out);
        assert!(out.status.success(), "{proto}: {out:?}\n{text}");
        assert!(
            text.contains(&format!("{proto} checksum incorrect")),
            "{proto}: {text}"
        );
        assert!(text.contains("REGISTER_REQUEST"), "{proto}: {text}");
    }
}
