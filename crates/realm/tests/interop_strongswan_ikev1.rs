//! `realm peer` against strongSwan 5.9 (Debian, `scripts/ensure-strongswan`): IKEv1 between
//! Realm in one namespace and charon in another, joined by a veth. strongSwan's ESP runs in
//! user space (kernel-libipsec: UDP-encapsulated tunnel mode only), so every case forces
//! NAT-T (`encap`). Each case proves, on one lab, that
//! - the side that initiates (Realm with `realm ctl initiate`, or strongSwan with
//!   `swanctl --initiate`) brings one IKE SA and one child SA up on both sides, with the
//!   configured algorithms, IKE floated to UDP 4500, and SPIs that mirror each other;
//! - TCP carries 1 MiB each way between the private networks, echoed intact;
//! - closing the SA on Realm's side (`realm ctl terminate`) empties strongSwan's
//!   `swanctl --list-sas` (Realm sends Delete).
//!
//! Needs root, iproute2 and strongSwan: without them these tests FAIL, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::Duration;

use realm_lab::strongswan::{Charon, count_up, require_strongswan};
use serde_json::Value;

mod peer_util;
use peer_util::*;

/// Realm's network (on its TUN) and strongSwan's (a /32 on its `lo`).
const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];
const PSK: &str = "realm-strongswan-interop";

#[derive(Clone, Copy, Debug)]
struct Case {
    /// Who initiates: Realm (side 0) or strongSwan (side 1).
    realm_initiates: bool,
    proposals: &'static str,
    esp: &'static str,
}

fn realm_config(pair: &Pair, c: Case) -> String {
    format!(
        r#"log_level = "info"
control_socket = "{socket}"
esp_sa_export = "{export}"

[tun]
name = "realm0"
mtu = 1400
addresses = ["{inner}/32"]
routes = ["{their_net}"]

[underlay]
address = "{me}"
device = "eth0"

[ike]
retransmit_timeout = 1.0

[connections.ss]
version = 1
local_addrs = "{me}"
remote_addrs = "{other}"
proposals = "{proposals}"
encap = true
rekey_time = "0s"
local.auth = "psk"
local.id = "realm.example"
remote.auth = "psk"
remote.id = "strongswan.example"

[connections.ss.children.net]
local_ts = "{my_net}"
remote_ts = "{their_net}"
esp_proposals = "{esp}"
rekey_time = "0s"
life_time = "1h"

[secrets.ike-ss]
id-a = "realm.example"
id-b = "strongswan.example"
secret = "{PSK}"
"#,
        socket = pair.socket(0).display(),
        export = pair.export(0).display(),
        inner = INNER[0],
        me = UNDERLAY[0],
        other = UNDERLAY[1],
        my_net = NETS[0],
        their_net = NETS[1],
        proposals = c.proposals,
        esp = c.esp,
    )
}

fn swanctl_conf(c: Case) -> String {
    format!(
        r#"connections {{
    ss {{
        version = 1
        local_addrs = {me}
        remote_addrs = {other}
        proposals = {proposals}
        encap = yes
        rekey_time = 0
        local {{
            auth = psk
            id = strongswan.example
        }}
        remote {{
            auth = psk
            id = realm.example
        }}
        children {{
            net {{
                local_ts = {my_net}
                remote_ts = {their_net}
                esp_proposals = {esp}
                mode = tunnel
                rekey_time = 0
                life_time = 3600
            }}
        }}
    }}
}}
secrets {{
    ike-ss {{
        id-a = realm.example
        id-b = strongswan.example
        secret = {PSK}
    }}
}}
"#,
        me = UNDERLAY[1],
        other = UNDERLAY[0],
        my_net = NETS[1],
        their_net = NETS[0],
        proposals = c.proposals,
        esp = c.esp,
    )
}

fn ike_sas(pair: &Pair) -> Vec<Value> {
    match ctl(&pair.socket(0), "ike") {
        Ok(Value::Array(v)) => v,
        other => panic!("ctl ike: {other:?}\n{}", pair.log(0)),
    }
}

fn run_case(c: Case) {
    if let Err(e) = require_strongswan() {
        panic!("the strongSwan interop tests need strongSwan: {e}");
    }
    let mut pair = Pair::new();
    // strongSwan's private address, inside its traffic selector (kernel-libipsec routes from it).
    pair.lab
        .run_ok(
            &pair.ns[1].clone(),
            "ip",
            &["addr", "add", &format!("{}/32", INNER[1]), "dev", "lo"],
        )
        .unwrap();
    let conf = realm_config(&pair, c);
    pair.start(0, &conf);
    let charon = Charon::start(
        &pair.ns[1].clone(),
        &pair.dir.join("charon"),
        &swanctl_conf(c),
    )
    .expect("charon");
    if c.realm_initiates {
        ctl_args(&pair.socket(0), "initiate", &["net"]).unwrap();
    } else {
        charon.initiate("net").unwrap_or_else(|e| {
            panic!(
                "swanctl --initiate: {e}\n{}\n--- realm ---\n{}",
                charon.log(),
                pair.log(0)
            )
        });
    }
    let sas = charon.wait_sas(WAIT, |s| count_up(s) == (1, 1)).unwrap();
    assert_eq!(
        count_up(&sas),
        (1, 1),
        "{sas:?}\n{}\n--- realm ---\n{}",
        charon.log(),
        pair.log(0)
    );
    let ike = &sas[0];
    assert_eq!(ike.get("local-port"), Some("4500"), "{ike:?}");
    assert_eq!(ike.get("remote-port"), Some("4500"), "{ike:?}");
    let child = &ike.children[0];
    assert_eq!(child.get("encap"), Some("yes"), "{child:?}");

    let deadline = realm_io::now() + WAIT;
    let realm = loop {
        let v = ike_sas(&pair);
        if v.iter().any(|sa| {
            sa["state"] == "ESTABLISHED" && sa["children"].as_array().is_some_and(|c| c.len() == 1)
        }) {
            break v;
        }
        assert!(realm_io::now() < deadline, "{v:?}\n{}", pair.log(0));
        std::thread::sleep(Duration::from_millis(50));
    };
    let rsa = realm
        .iter()
        .find(|sa| sa["state"] == "ESTABLISHED")
        .unwrap();
    assert_eq!(rsa["proposal"], c.proposals);
    assert_eq!(rsa["initiator"], c.realm_initiates);
    assert_eq!(rsa["peer_id"], "strongswan.example");
    assert_eq!(rsa["local"], format!("{}:4500", UNDERLAY[0]));
    let rc = &rsa["children"][0];
    assert_eq!(rc["spi_in"].as_str(), child.get("spi-out"), "{child:?}");
    assert_eq!(rc["spi_out"].as_str(), child.get("spi-in"), "{child:?}");
    assert!(rc["description"].as_str().unwrap().contains("udp-encap"));

    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let from = tcp_echo(&nb, INNER[1], &na);
    assert_eq!(from.ip(), INNER[0]);
    tcp_echo(&na, INNER[0], &nb);
    let sas = ctl(&pair.socket(0), "sas").unwrap();
    for sa in sas.as_array().unwrap() {
        assert!(sa["bytes"].as_u64().unwrap() > 2 << 20, "{sa}");
    }

    // Realm closes: strongSwan is told (Delete) and lists nothing.
    ctl_args(&pair.socket(0), "terminate", &["ss"]).unwrap();
    let after = charon.wait_sas(WAIT, |s| s.is_empty()).unwrap();
    assert!(after.is_empty(), "{after:?}\n{}", charon.log());
    drop(charon);
    pair.stop(0);
}

#[test]
fn realm_initiates_main_mode_psk_modp2048_esp_gcm() {
    run_case(Case {
        realm_initiates: true,
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
    });
}

#[test]
fn strongswan_initiates_main_mode_psk_modp2048_esp_gcm() {
    run_case(Case {
        realm_initiates: false,
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
    });
}

#[test]
fn realm_initiates_ecp256_esp_cbc_sha256_pfs_ecp256() {
    run_case(Case {
        realm_initiates: true,
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256-ecp256",
    });
}

#[test]
fn strongswan_initiates_ecp256_esp_cbc_sha256_pfs_modp2048() {
    run_case(Case {
        realm_initiates: false,
        proposals: "aes256-sha1-ecp256",
        esp: "aes128-sha256-modp2048",
    });
}
