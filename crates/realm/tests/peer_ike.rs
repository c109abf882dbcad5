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
local.auth = "psk"
local.id = "side{me}.realm.example"
remote.auth = "psk"
remote.id = "side{other}.realm.example"

[connections.site.children.net]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = "{esp}"
mode = "{mode}"

[secrets.ike-site]
id = "side{me}.realm.example"
id-peer = "side{other}.realm.example"
secret = "{secret}"
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
    assert_eq!(a["peer_id"], "side1.realm.example");
    assert_eq!(b["peer_id"], "side0.realm.example");
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
    assert_eq!(
        isakmp, 9,
        "Main Mode and Quick Mode; dumpcap: {said}\n{frames:?}"
    );
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
    let ids = tshark_fields(&file, &home, "isakmp.id.data.fqdn");
    assert!(
        ids.iter().any(|l| l.contains("side0.realm.example"))
            && ids.iter().any(|l| l.contains("side1.realm.example")),
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

fn tshark_fields(file: &std::path::Path, home: &std::path::Path, field: &str) -> Vec<String> {
    let out = std::process::Command::new("tshark")
        .env("HOME", home)
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", "isakmp", "-T", "fields", "-e", field])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn main_mode_psk_modp2048_esp_gcm_tunnel() {
    run_case(Case {
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
        mode: "tunnel",
        encap: false,
    });
}

#[test]
fn main_mode_psk_ecp256_esp_cbc_sha256_pfs_ecp256_transport() {
    run_case(Case {
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256-ecp256",
        mode: "transport",
        encap: false,
    });
}

#[test]
fn main_mode_psk_forced_nat_t_esp_in_udp_tunnel() {
    run_case(Case {
        proposals: "aes128-sha256-ecp256",
        esp: "aes256gcm16",
        mode: "tunnel",
        encap: true,
    });
}
