//! `realm peer` keyed by IKE, Realm to Realm: two daemons in two namespaces negotiate their
//! SAs with IKEv1 (Main Mode with a pre-shared key, then Quick Mode) from the `[connections]`
//! and `[secrets]` of their files, and carry TCP both ways through them. Each case checks
//! - `realm ctl initiate` on one side brings the IKE SA and the child SA up on both
//!   (`realm ctl ike --json`), with the negotiated proposal and selectors;
//! - 1 MiB of TCP goes each way and comes back intact, over the negotiated SAs
//!   (`realm ctl sas` counters, with the negotiated SPIs);
//! - the underlay carried IKE on UDP 500 and only ESP besides; tshark decrypts the IKE
//!   messages with the exported `ikev1_decryption_table` and the ESP with `esp_sa`;
//! - `realm ctl terminate` removes the SAs on that side.
//!
//! Needs root, iproute2 and tshark (`scripts/install-deps`): without them these tests FAIL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;

mod peer_util;
use peer_util::*;

const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];

#[derive(Clone, Copy)]
struct Case {
    proposals: &'static str,
    esp: &'static str,
    mode: &'static str,
    /// `encap = true` on the initiator: NAT-T forced, IKE on 4500, ESP in UDP.
    encap: bool,
    /// Lines added to both sides' `[connections.site]` (`aggressive = true`).
    extra_conn: &'static str,
    /// RSA signatures with certificates made at test time instead of the pre-shared key.
    rsa: bool,
}

/// Each side's identity.
fn id(side: usize, c: Case) -> &'static str {
    match (c.rsa, side) {
        (true, 0) => "moon.example.org",
        (true, _) => "sun.example.org",
        (false, 0) => "side0.realm.example",
        (false, _) => "side1.realm.example",
    }
}

fn ike_table(pair: &Pair, side: usize) -> std::path::PathBuf {
    pair.dir.join(format!("ikev1_decryption_table-{side}"))
}

fn config(pair: &Pair, side: usize, c: Case, secret: &str) -> String {
    let (me, other) = (side, 1 - side);
    let (tun, local_ts, remote_ts) = if c.mode == "transport" {
        (
            format!("routes = [\"{}/32\"]", UNDERLAY[other]),
            "dynamic".to_string(),
            "dynamic".to_string(),
        )
    } else {
        (
            format!(
                "addresses = [\"{}/32\"]\nroutes = [\"{}\"]",
                INNER[me], NETS[other]
            ),
            NETS[me].to_string(),
            NETS[other].to_string(),
        )
    };
    let (my_id, peer_id) = (id(me, c), id(other, c));
    let (auth, secrets) = if c.rsa {
        let file = |name: &str| pair.dir.join(name).display().to_string();
        let (cert, key) = if me == 0 {
            ("moon.pem", "moon.key")
        } else {
            ("sun.pem", "sun.key")
        };
        (
            format!(
                "local.auth = \"pubkey\"\nlocal.id = \"{my_id}\"\nlocal.certs = [\"{}\"]\n\
                 remote.auth = \"pubkey\"\nremote.id = \"{peer_id}\"\nremote.cacerts = [\"{}\"]",
                file(cert),
                file("ca.pem")
            ),
            format!("[secrets.private-me]\nfile = \"{}\"", file(key)),
        )
    } else {
        (
            format!(
                "local.auth = \"psk\"\nlocal.id = \"{my_id}\"\nremote.auth = \"psk\"\nremote.id = \"{peer_id}\""
            ),
            format!(
                "[secrets.ike-site]\nid = \"{my_id}\"\nid-peer = \"{peer_id}\"\nsecret = \"{secret}\""
            ),
        )
    };
    format!(
        r#"log_level = "info"
control_socket = "{socket}"
esp_sa_export = "{export}"

[tun]
name = "realm0"
mtu = 1400
{tun}

[underlay]
address = "{me_addr}"
device = "eth0"

[ike]
retransmit_timeout = 0.5
ikev1_decryption_table = "{table}"

[connections.site]
version = 1
local_addrs = "{me_addr}"
remote_addrs = "{other_addr}"
proposals = "{proposals}"
encap = {encap}
{extra_conn}
{auth}

[connections.site.children.net]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = "{esp}"
mode = "{mode}"

{secrets}
"#,
        socket = pair.socket(side).display(),
        export = pair.export(side).display(),
        table = ike_table(pair, side).display(),
        me_addr = UNDERLAY[me],
        other_addr = UNDERLAY[other],
        proposals = c.proposals,
        esp = c.esp,
        mode = c.mode,
        encap = c.encap && side == 0,
        extra_conn = c.extra_conn,
        auth = auth,
        secrets = secrets,
    )
}

fn ike_sas(pair: &Pair, side: usize) -> Vec<Value> {
    match ctl(&pair.socket(side), "ike") {
        Ok(Value::Array(v)) => v,
        other => panic!("ctl ike on {side}: {other:?}\n{}", pair.log(side)),
    }
}

/// Waits until both sides list an established IKE SA with `children` child SAs.
fn wait_established(pair: &Pair, children: usize) -> [Value; 2] {
    let deadline = realm_io::now() + WAIT;
    loop {
        let sides = [ike_sas(pair, 0), ike_sas(pair, 1)];
        let ready = sides.iter().all(|s| {
            s.iter().any(|sa| {
                sa["state"] == "ESTABLISHED"
                    && sa["children"]
                        .as_array()
                        .is_some_and(|c| c.len() == children)
            })
        });
        if ready {
            let [a, b] = sides;
            let pick = |v: Vec<Value>| {
                v.into_iter()
                    .find(|sa| sa["state"] == "ESTABLISHED")
                    .unwrap()
            };
            return [pick(a), pick(b)];
        }
        assert!(
            realm_io::now() < deadline,
            "not established: {sides:?}\n--- A ---\n{}\n--- B ---\n{}",
            pair.log(0),
            pair.log(1)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_case(c: Case) {
    let mut pair = Pair::new();
    if c.rsa {
        let certs = TestCerts::new();
        for (name, text) in [
            ("ca.pem", &certs.ca),
            ("moon.pem", &certs.moon),
            ("moon.key", &certs.moon_key),
            ("sun.pem", &certs.sun),
            ("sun.key", &certs.sun_key),
        ] {
            std::fs::write(pair.dir.join(name), text).unwrap();
        }
    }
    for side in 0..2 {
        let conf = config(&pair, side, c, "realm to realm");
        pair.start(side, &conf);
    }
    let capture = Capture::start(&mut pair, 1);
    let answer = ctl_args(&pair.socket(0), "initiate", &["net"]).unwrap();
    assert_eq!(answer["initiating"], "net");
    let [a, b] = wait_established(&pair, 1);
    assert_eq!(a["proposal"], c.proposals);
    assert_eq!(a["initiator"], true);
    assert_eq!(b["initiator"], false);
    assert_eq!(a["peer_id"], id(1, c));
    assert_eq!(b["peer_id"], id(0, c));
    assert_eq!(a["initiator_cookie"], b["initiator_cookie"]);
    let (ca, cb) = (&a["children"][0], &b["children"][0]);
    assert_eq!(ca["spi_in"], cb["spi_out"]);
    assert_eq!(ca["spi_out"], cb["spi_in"]);
    assert_eq!(ca["local_ts"], cb["remote_ts"]);
    if c.mode == "tunnel" {
        assert_eq!(ca["local_ts"], NETS[0]);
        assert_eq!(ca["remote_ts"], NETS[1]);
    } else {
        assert_eq!(ca["local_ts"], format!("{}/32", UNDERLAY[0]));
    }

    // TCP both ways over the negotiated SAs.
    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let (server_b, server_a) = if c.mode == "transport" {
        (UNDERLAY[1], UNDERLAY[0])
    } else {
        (INNER[1], INNER[0])
    };
    let from = tcp_echo(&nb, server_b, &na);
    assert_eq!(from.ip(), server_a);
    tcp_echo(&na, server_a, &nb);
    let (file, said) = capture.stop(&mut pair);
    for side in 0..2 {
        let sas = match ctl(&pair.socket(side), "sas") {
            Ok(Value::Array(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(sas.len(), 2, "{sas:?}");
        for sa in &sas {
            assert!(sa["bytes"].as_u64().unwrap() > 2 << 20, "side {side}: {sa}");
            assert_eq!(sa["mode"], c.mode);
        }
        let ike = &ike_sas(&pair, side)[0]["children"][0];
        let inbound = sas.iter().find(|s| s["direction"] == "inbound").unwrap();
        assert_eq!(
            inbound["spi"],
            format!("0x{}", ike["spi_in"].as_str().unwrap())
        );
    }

    // The underlay: IKE on 500, ESP for the rest; decrypted with the exported keys.
    let frames = protocols(&file, None);
    let isakmp = frames.iter().filter(|f| f.contains(":isakmp")).count();
    // Main Mode's six messages or Aggressive Mode's three, then Quick Mode's three.
    let phase1 = if c.extra_conn.contains("aggressive") {
        3
    } else {
        6
    };
    assert_eq!(isakmp, phase1 + 3, "ISAKMP frames; dumpcap: {said}");
    let esp = if c.encap {
        "eth:ethertype:ip:udp:udpencap:esp"
    } else {
        "eth:ethertype:ip:esp"
    };
    for f in frames.iter().filter(|f| f.contains(":ip:")) {
        assert!(
            f.contains(":isakmp") || f.starts_with(esp),
            "unexpected frame {f}"
        );
    }
    if c.encap {
        // Messages 5 and 6 and Quick Mode went on 4500 behind the non-ESP marker.
        let floated = frames
            .iter()
            .filter(|f| f.contains("udpencap:isakmp"))
            .count();
        assert_eq!(floated, 5, "{frames:?}");
    }
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER),
        "plaintext on the wire"
    );
    let home = pair.dir.join("home");
    let uat = home.join(".config/wireshark");
    std::fs::create_dir_all(&uat).unwrap();
    std::fs::write(
        uat.join("esp_sa"),
        std::fs::read_to_string(pair.export(0)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        uat.join("ikev1_decryption_table"),
        std::fs::read_to_string(ike_table(&pair, 0)).unwrap(),
    )
    .unwrap();
    let decrypted = protocols(&file, Some(&home));
    let tcp = decrypted
        .iter()
        .filter(|f| f.contains(":esp:") && f.contains(":tcp"))
        .count();
    // ESP-in-UDP leaves in UDP GSO superpackets, which tshark reads as one ESP packet each.
    let min_tcp = if c.encap { 1 } else { 1000 };
    assert!(tcp >= min_tcp, "tshark decrypted {tcp} TCP frames");
    let ids = tshark_fields(&file, &home, "isakmp", "isakmp.id.data.fqdn");
    assert!(
        ids.iter().any(|l| l.contains(id(0, c))) && ids.iter().any(|l| l.contains(id(1, c))),
        "tshark read no identities from messages 5 and 6: {ids:?}"
    );

    // terminate: that side's SAs are gone.
    let t = ctl_args(&pair.socket(0), "terminate", &["site"]).unwrap();
    assert_eq!(t["ike_sas"], 1);
    assert!(ike_sas(&pair, 0).is_empty());
    let sas = ctl(&pair.socket(0), "sas").unwrap();
    assert_eq!(sas, Value::Array(Vec::new()));
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn main_mode_psk_modp2048_esp_gcm_tunnel() {
    run_case(Case {
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
        mode: "tunnel",
        encap: false,
        extra_conn: "",
        rsa: false,
    });
}

#[test]
fn main_mode_psk_ecp256_esp_cbc_sha256_pfs_ecp256_transport() {
    run_case(Case {
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256-ecp256",
        mode: "transport",
        encap: false,
        extra_conn: "",
        rsa: false,
    });
}

#[test]
fn main_mode_psk_forced_nat_t_esp_in_udp_tunnel() {
    run_case(Case {
        proposals: "aes128-sha256-ecp256",
        esp: "aes256gcm16",
        mode: "tunnel",
        encap: true,
        extra_conn: "",
        rsa: false,
    });
}

#[test]
fn aggressive_mode_psk_tunnel() {
    run_case(Case {
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
        mode: "tunnel",
        encap: false,
        extra_conn: "aggressive = true",
        rsa: false,
    });
}

#[test]
fn main_mode_rsa_signatures_tunnel() {
    run_case(Case {
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256",
        mode: "tunnel",
        encap: false,
        extra_conn: "",
        rsa: true,
    });
}

/// Realm to Realm under traffic: the initiator rekeys the child every 3 s and the ISAKMP SA
/// every 6 s (lifetime 16 s) while one TCP connection keeps echoing; then the responder is
/// killed and DPD (1 s delay, 4 s timeout) removes the initiator's child SAs (a rekey toward
/// the dead peer may still be retrying its Main Mode).
#[test]
fn rekeys_under_one_tcp_connection_then_dpd_notices_a_killed_peer() {
    let c = Case {
        proposals: "aes128-sha256-ecp256",
        esp: "aes128gcm16",
        mode: "tunnel",
        encap: false,
        extra_conn: "rekey_time = \"6s\"\nover_time = \"10s\"\nrand_time = \"0s\"\n\
                     dpd_delay = \"1s\"\ndpd_timeout = \"4s\"",
        rsa: false,
    };
    let mut pair = Pair::new();
    for side in 0..2 {
        let conf = config(&pair, side, c, "rekeys").replace(
            "mode = \"tunnel\"",
            "mode = \"tunnel\"\nrekey_time = \"3s\"\nlife_time = \"30s\"\nrand_time = \"0s\"",
        );
        pair.start(side, &conf);
    }
    ctl_args(&pair.socket(0), "initiate", &["net"]).unwrap();
    wait_established(&pair, 1);
    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let chunks = tcp_session(&nb, INNER[1], 5003, &na, Duration::from_secs(10));
    assert!(chunks > 50, "{chunks} chunks");
    for side in 0..2 {
        let log = pair.log(side);
        assert!(
            log.matches("child SA installed").count() >= 3,
            "side {side}:\n{log}"
        );
        assert!(
            log.matches("child SA removed").count() >= 2,
            "side {side}:\n{log}"
        );
        assert!(
            log.matches("IKE SA established").count() >= 2,
            "side {side}:\n{log}"
        );
    }
    let killed = realm_io::now();
    pair.kill(1);
    let empty = Value::Array(Vec::new());
    // The child SAs go with the dead peer; a Main Mode rekey toward it may still be retrying.
    while !pair.log(0).contains("peer dead (DPD)") || ctl(&pair.socket(0), "sas").unwrap() != empty
    {
        assert!(
            realm_io::now() < killed + Duration::from_secs(12),
            "the dead peer's SAs stayed:\n{}",
            pair.log(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = ike_sas(&pair, 0);
    assert!(
        left.iter().all(|sa| sa["state"] != "ESTABLISHED"),
        "{left:?}"
    );
    pair.stop(0);
}

/// `start_action = "trap"`: nothing is negotiated until traffic matches the child's selectors;
/// the first packet (a TCP SYN) makes realm peer negotiate, and the retransmitted SYN goes
/// through the new SA.
#[test]
fn a_trap_negotiates_when_traffic_matches() {
    let c = Case {
        proposals: "aes128-sha256-ecp256",
        esp: "aes128gcm16",
        mode: "tunnel",
        encap: false,
        extra_conn: "",
        rsa: false,
    };
    let mut pair = Pair::new();
    for side in 0..2 {
        let mut conf = config(&pair, side, c, "trap");
        if side == 0 {
            conf = conf.replace(
                "mode = \"tunnel\"",
                "mode = \"tunnel\"\nstart_action = \"trap\"",
            );
        }
        pair.start(side, &conf);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(ike_sas(&pair, 0).is_empty(), "nothing before traffic");
    assert!(
        pair.log(0).contains("trap policy installed"),
        "{}",
        pair.log(0)
    );
    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let from = tcp_echo(&nb, INNER[1], &na);
    assert_eq!(from.ip(), INNER[0]);
    let [a, _] = wait_established(&pair, 1);
    assert_eq!(a["initiator"], true);
    assert!(
        pair.log(0).contains("traffic for a trap policy"),
        "{}",
        pair.log(0)
    );
    pair.stop(0);
    pair.stop(1);
}
