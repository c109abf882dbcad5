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

use realm_lab::strongswan::{Charon, Settings, count_up, require_strongswan};
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
    /// Lines for Realm's `[connections.ss]` and its child, and strongSwan's `ss { }` and its
    /// child (timers: rekeying, DPD).
    tuning: Tuning,
    /// RSA signatures with certificates made at test time, instead of the pre-shared key.
    rsa: bool,
}

#[derive(Clone, Copy, Debug)]
struct Tuning {
    realm_conn: &'static str,
    realm_child: &'static str,
    ss_conn: &'static str,
    ss_child: &'static str,
}

/// No rekeying and no DPD: a test sees one pair of SAs.
const QUIET: Tuning = Tuning {
    realm_conn: "rekey_time = \"0s\"",
    realm_child: "rekey_time = \"0s\"\nlife_time = \"1h\"",
    ss_conn: "rekey_time = 0",
    ss_child: "rekey_time = 0\n                life_time = 3600",
};

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
ikev1_decryption_table = "{table}"

[connections.ss]
version = 1
local_addrs = "{me}"
remote_addrs = "{other}"
proposals = "{proposals}"
encap = true
{realm_conn}
local.auth = "psk"
local.id = "realm.example"
remote.auth = "psk"
remote.id = "strongswan.example"

[connections.ss.children.net]
local_ts = "{my_net}"
remote_ts = "{their_net}"
esp_proposals = "{esp}"
{realm_child}

[secrets.ike-ss]
id-a = "realm.example"
id-b = "strongswan.example"
secret = "{PSK}"
"#,
        socket = pair.socket(0).display(),
        export = pair.export(0).display(),
        table = pair.dir.join("ikev1_decryption_table").display(),
        inner = INNER[0],
        me = UNDERLAY[0],
        other = UNDERLAY[1],
        my_net = NETS[0],
        their_net = NETS[1],
        proposals = c.proposals,
        esp = c.esp,
        realm_conn = c.tuning.realm_conn,
        realm_child = c.tuning.realm_child,
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
        {ss_conn}
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
                {ss_child}
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
        ss_conn = c.tuning.ss_conn,
        ss_child = c.tuning.ss_child,
    )
}

fn ike_sas(pair: &Pair) -> Vec<Value> {
    match ctl(&pair.socket(0), "ike") {
        Ok(Value::Array(v)) => v,
        other => panic!("ctl ike: {other:?}\n{}", pair.log(0)),
    }
}

/// Both sides up, the SAs negotiated by the side the case says, checked on both.
fn bring_up(c: Case) -> (Pair, Charon) {
    let (pair, charon, _) = bring_up_captured(c, false);
    (pair, charon)
}

/// [`bring_up`], with a capture on Realm's underlay started before the first IKE message
/// when `capture` is set.
fn bring_up_captured(c: Case, capture: bool) -> (Pair, Charon, Option<Capture>) {
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
    let mut conf = realm_config(&pair, c);
    let mut ss_conf = swanctl_conf(c);
    if c.rsa {
        (conf, ss_conf) = rsa_configs(&pair, &conf, &ss_conf);
    }
    pair.start(0, &conf);
    // strongSwan refuses to answer Aggressive Mode with a pre-shared key unless told to (the
    // PSK can be guessed offline from message 2, RFC 2409 section 5.4's known weakness).
    let mut settings = Settings {
        extra: vec!["i_dont_care_about_security_and_use_aggressive_mode_psk = yes".into()],
        ..Settings::default()
    };
    if c.rsa {
        // Certificates, keys and trust chains.
        for p in ["pem", "pkcs1", "pkcs8", "x509", "pubkey", "constraints"] {
            settings.plugins.push(p.into());
        }
    }
    let charon = Charon::start_with(
        &pair.ns[1].clone(),
        &pair.dir.join("charon"),
        &ss_conf,
        &settings,
    )
    .expect("charon");
    let capture = capture.then(|| Capture::start(&mut pair, 0));
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
    let peer = if c.rsa {
        "sun.example.org"
    } else {
        "strongswan.example"
    };
    assert_eq!(rsa["peer_id"], peer);
    assert_eq!(rsa["local"], format!("{}:4500", UNDERLAY[0]));
    let rc = &rsa["children"][0];
    assert_eq!(rc["spi_in"].as_str(), child.get("spi-out"), "{child:?}");
    assert_eq!(rc["spi_out"].as_str(), child.get("spi-in"), "{child:?}");
    assert!(rc["description"].as_str().unwrap().contains("udp-encap"));
    (pair, charon, capture)
}

fn run_case(c: Case) {
    let (mut pair, charon, capture) = bring_up_captured(c, true);

    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let from = tcp_echo(&nb, INNER[1], &na);
    assert_eq!(from.ip(), INNER[0]);
    tcp_echo(&na, INNER[0], &nb);
    let sas = ctl(&pair.socket(0), "sas").unwrap();
    for sa in sas.as_array().unwrap() {
        assert!(sa["bytes"].as_u64().unwrap() > 2 << 20, "{sa}");
    }
    let (file, _) = capture.unwrap().stop(&mut pair);
    // tshark with Realm's exported keys: the IKE messages after message 4 (on UDP 4500,
    // encrypted) and the ESP (in UDP) decrypt.
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
        std::fs::read_to_string(pair.dir.join("ikev1_decryption_table")).unwrap(),
    )
    .unwrap();
    let ids = tshark_fields(&file, &home, "isakmp", "isakmp.id.data.fqdn");
    assert!(
        ids.iter().any(|l| l.contains("realm.example"))
            && ids.iter().any(|l| l.contains("strongswan.example")),
        "tshark read no identities from Main Mode messages 5 and 6: {ids:?}"
    );
    let inner = tshark_fields(&file, &home, "esp && tcp", "tcp.port");
    assert!(
        inner.len() > 100,
        "tshark decrypted {} TCP segments in ESP",
        inner.len()
    );

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
        tuning: QUIET,
        rsa: false,
    });
}

#[test]
fn strongswan_initiates_main_mode_psk_modp2048_esp_gcm() {
    run_case(Case {
        realm_initiates: false,
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
        tuning: QUIET,
        rsa: false,
    });
}

#[test]
fn realm_initiates_ecp256_esp_cbc_sha256_pfs_ecp256() {
    run_case(Case {
        realm_initiates: true,
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256-ecp256",
        tuning: QUIET,
        rsa: false,
    });
}

#[test]
fn strongswan_initiates_ecp256_esp_cbc_sha256_pfs_modp2048() {
    run_case(Case {
        realm_initiates: false,
        proposals: "aes256-sha1-ecp256",
        esp: "aes128-sha256-modp2048",
        tuning: QUIET,
        rsa: false,
    });
}

/// Rekeying under traffic: Realm rekeys the child (make-before-break) every 3 s and the ISAKMP
/// SA (a new Main Mode that adopts the children) every 5 s, strongSwan rekeys the child every
/// 7 s; one TCP connection keeps echoing through all of it.
#[test]
fn rekeys_by_both_sides_and_an_isakmp_rekey_keep_one_tcp_connection_going() {
    let c = Case {
        realm_initiates: true,
        proposals: "aes128-sha256-ecp256",
        esp: "aes128gcm16",
        tuning: Tuning {
            realm_conn: "rekey_time = \"5s\"\nrand_time = \"0s\"",
            realm_child: "rekey_time = \"3s\"\nlife_time = \"30s\"\nrand_time = \"0s\"",
            ss_conn: "rekey_time = 0",
            ss_child: "rekey_time = 7\n                life_time = 30\n                rand_time = 0",
        },
        rsa: false,
    };
    let (mut pair, charon) = bring_up(c);
    let first = ike_sas(&pair)[0]["children"][0]["spi_in"].clone();
    let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
    let chunks = tcp_session(&nb, INNER[1], 5002, &na, Duration::from_secs(12));
    assert!(chunks > 50, "{chunks} chunks");
    let log = pair.log(0);
    let installed = log.matches("child SA installed").count();
    assert!(installed >= 4, "{installed} child SAs installed:\n{log}");
    assert!(log.matches("IKE SA established").count() >= 3, "{log}");
    let removed = log.matches("child SA removed").count();
    assert!(removed >= 2, "{log}");
    // strongSwan began a Quick Mode of its own (its rekey) and Realm answered it.
    assert!(
        charon.log().contains("rekeying CHILD_SA") || charon.log().contains("rekeying"),
        "{}",
        charon.log()
    );
    let now = ike_sas(&pair);
    let established: Vec<&Value> = now.iter().filter(|s| s["state"] == "ESTABLISHED").collect();
    assert!(!established.is_empty(), "{now:?}");
    assert_ne!(established[0]["children"][0]["spi_in"], first);
    drop(charon);
    pair.stop(0);
}

/// Dead Peer Detection both ways: strongSwan killed, Realm notices within dpd_timeout; then
/// Realm killed, strongSwan notices.
#[test]
fn dead_peer_detection_notices_a_killed_peer_each_way() {
    let tuning = Tuning {
        realm_conn: "rekey_time = \"0s\"\ndpd_delay = \"1s\"\ndpd_timeout = \"4s\"",
        realm_child: "rekey_time = \"0s\"\nlife_time = \"1h\"",
        ss_conn: "rekey_time = 0\n        dpd_delay = 1\n        dpd_timeout = 4",
        ss_child: "rekey_time = 0\n                life_time = 3600\n                dpd_action = clear",
    };
    let c = Case {
        realm_initiates: true,
        proposals: "aes128-sha256-ecp256",
        esp: "aes128gcm16",
        tuning,
        rsa: false,
    };
    // strongSwan dies: Realm's SAs go within dpd_delay + dpd_timeout (+ one probe's wait).
    let (pair, mut charon) = bring_up(c);
    let killed = realm_io::now();
    charon.kill();
    let deadline = killed + Duration::from_secs(12);
    while !ike_sas(&pair).is_empty() {
        assert!(
            realm_io::now() < deadline,
            "Realm kept the SA of a dead peer:\n{}",
            pair.log(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = realm_io::now() - killed;
    assert!(pair.log(0).contains("peer dead (DPD)"), "{}", pair.log(0));
    assert!(
        took >= Duration::from_secs(4),
        "declared dead after {took:?}, before dpd_timeout"
    );
    let sas = ctl(&pair.socket(0), "sas").unwrap();
    assert_eq!(sas, Value::Array(Vec::new()));
    drop(charon);
    drop(pair);

    // Realm dies: strongSwan's SAs go.
    let (mut pair, charon) = bring_up(c);
    pair.kill(0);
    let after = charon
        .wait_sas(Duration::from_secs(15), |s| s.is_empty())
        .unwrap();
    assert!(after.is_empty(), "{after:?}\n{}", charon.log());
    assert!(charon.log().contains("DPD"), "{}", charon.log());
}

/// No rekeying, no DPD, Aggressive Mode on both sides.
const AGGRESSIVE: Tuning = Tuning {
    realm_conn: "rekey_time = \"0s\"\naggressive = true",
    realm_child: "rekey_time = \"0s\"\nlife_time = \"1h\"",
    ss_conn: "rekey_time = 0\n        aggressive = yes",
    ss_child: "rekey_time = 0\n                life_time = 3600",
};

#[test]
fn realm_initiates_aggressive_mode_psk() {
    run_case(Case {
        realm_initiates: true,
        proposals: "aes128-sha256-modp2048",
        esp: "aes128gcm16",
        tuning: AGGRESSIVE,
        rsa: false,
    });
}

#[test]
fn strongswan_initiates_aggressive_mode_psk() {
    run_case(Case {
        realm_initiates: false,
        proposals: "aes256-sha256-ecp256",
        esp: "aes128-sha256",
        tuning: AGGRESSIVE,
        rsa: false,
    });
}

/// A CA and two host certificates (RSA-2048), made now with rcgen: Realm's (moon) in the test
/// directory with its key and the CA, strongSwan's (sun) in its swanctl x509/, private/ and
/// x509ca/ directories. Returns both configurations rewritten for `auth = pubkey` with FQDN
/// identities checked against the certificates' subjectAltNames.
fn rsa_configs(pair: &Pair, realm: &str, swanctl: &str) -> (String, String) {
    let TestCerts {
        ca,
        moon,
        moon_key,
        sun,
        sun_key,
    } = TestCerts::new();
    std::fs::write(pair.dir.join("ca.pem"), &ca).unwrap();
    std::fs::write(pair.dir.join("moon.pem"), &moon).unwrap();
    std::fs::write(pair.dir.join("moon.key"), &moon_key).unwrap();
    let sw = pair.dir.join("charon/swanctl");
    for (sub, file, text) in [
        ("x509", "sun.pem", sun.as_str()),
        ("private", "sun.key", sun_key.as_str()),
        ("x509ca", "ca.pem", ca.as_str()),
    ] {
        std::fs::create_dir_all(sw.join(sub)).unwrap();
        std::fs::write(sw.join(sub).join(file), text).unwrap();
    }
    let realm = realm
        .replace(
            "local.auth = \"psk\"\nlocal.id = \"realm.example\"",
            &format!(
                "local.auth = \"pubkey\"\nlocal.id = \"moon.example.org\"\nlocal.certs = [\"{}\"]",
                pair.dir.join("moon.pem").display()
            ),
        )
        .replace(
            "remote.auth = \"psk\"\nremote.id = \"strongswan.example\"",
            &format!(
                "remote.auth = \"pubkey\"\nremote.id = \"sun.example.org\"\nremote.cacerts = [\"{}\"]",
                pair.dir.join("ca.pem").display()
            ),
        );
    let realm = realm[..realm.find("[secrets.ike-ss]").unwrap()].to_string()
        + &format!(
            "[secrets.private-moon]\nfile = \"{}\"\n",
            pair.dir.join("moon.key").display()
        );
    let swanctl = swanctl
        .replace(
            "auth = psk\n            id = strongswan.example",
            "auth = pubkey\n            certs = sun.pem\n            id = sun.example.org",
        )
        .replace(
            "auth = psk\n            id = realm.example",
            "auth = pubkey\n            id = moon.example.org",
        );
    let swanctl = swanctl[..swanctl.find("secrets {").unwrap()].to_string();
    (realm, swanctl)
}

#[test]
fn main_mode_rsa_signatures_each_side_initiating() {
    for realm_initiates in [true, false] {
        let c = Case {
            realm_initiates,
            proposals: "aes128-sha256-modp2048",
            esp: "aes128gcm16",
            tuning: QUIET,
            rsa: true,
        };
        let (mut pair, charon) = bring_up(c);
        let realm = ike_sas(&pair);
        assert_eq!(realm[0]["peer_id"], "sun.example.org", "{realm:?}");
        let sas = charon.list_sas().unwrap();
        assert_eq!(sas[0].get("remote-id"), Some("moon.example.org"), "{sas:?}");
        let (na, nb) = (pair.ns[0].clone(), pair.ns[1].clone());
        tcp_echo(&nb, INNER[1], &na);
        tcp_echo(&na, INNER[0], &nb);
        ctl_args(&pair.socket(0), "terminate", &["ss"]).unwrap();
        let after = charon.wait_sas(WAIT, |s| s.is_empty()).unwrap();
        assert!(after.is_empty(), "{after:?}");
        drop(charon);
        pair.stop(0);
    }
}
