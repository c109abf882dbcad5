//! strongSwan to strongSwan through the `realm_lab::strongswan` harness: two
//! charons (IKEv1 Main Mode, PSK, forced UDP encapsulation, user-space ESP
//! through kernel-libipsec) in two namespaces joined by a veth. Each case
//! proves, on one lab, that
//! - both charons start with private `/run`s, with no SA before initiation,
//! - `swanctl --initiate` from A gives one IKE SA ESTABLISHED and one CHILD
//!   SA INSTALLED on BOTH sides, with the configured algorithms, IKE moved to
//!   UDP 4500, tunnel mode in UDP, and SPIs that mirror each other,
//! - kernel-libipsec routed the remote private address into `ipsec0`,
//! - TCP carries data both ways between the private addresses (echoed
//!   intact), and the CHILD SA counters on both sides account for it,
//! - `swanctl --terminate --ike` from A empties both sides' SA lists and
//!   removes the route.
//!
//! Needs root, iproute2 and strongSwan (`scripts/ensure-strongswan`):
//! without them these tests FAIL, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use realm_io::Ipv4Prefix;
use realm_io::netns::{self, Lab};
use realm_lab::strongswan::{self, Charon, IkeSa, count_up};

const WAIT: Duration = Duration::from_secs(20);
/// How long SA state may take to settle on the responder.
const SETTLE: Duration = Duration::from_secs(5);
/// Underlay (IKE and UDP-encapsulated ESP) addresses of A and B.
const UNDERLAY: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
/// The private address behind each side (a /32 on its `lo`), the tunnel's
/// traffic selectors.
const PRIVATE: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1)];
const PORT: u16 = 5001;
/// Bytes sent each way per TCP connection.
const LEN: usize = 256 * 1024;
const CONN: &str = "realm";
const PSK: &str = "realm-strongswan-test-psk";

#[derive(Clone, Copy, Debug)]
struct Case {
    /// IKE (Main Mode) proposal.
    ike: &'static str,
    /// ESP (Quick Mode) proposal; a DH group here means PFS.
    esp: &'static str,
    /// Expected `dh-group` of the IKE SA.
    ike_dh: &'static str,
    /// Expected `encr-alg` and `integ-alg` of the CHILD SA (None: AEAD).
    child_encr: &'static str,
    child_integ: Option<&'static str>,
    /// Expected `dh-group` of the CHILD SA (PFS), if any.
    child_dh: Option<&'static str>,
}

fn swanctl_conf(side: usize, case: Case, psk: &str) -> String {
    let (me, other) = (side, 1 - side);
    format!(
        r#"connections {{
  {CONN} {{
    version = 1
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {ike}
    encap = yes
    rekey_time = 0
    local {{
      auth = psk
      id = {local}
    }}
    remote {{
      auth = psk
      id = {remote}
    }}
    children {{
      {CONN} {{
        mode = tunnel
        local_ts = {local_ts}/32
        remote_ts = {remote_ts}/32
        esp_proposals = {esp}
        start_action = none
        rekey_time = 0
      }}
    }}
  }}
}}
secrets {{
  ike-realm {{
    id-a = {a}
    id-b = {b}
    secret = "{psk}"
  }}
}}
"#,
        local = UNDERLAY[me],
        remote = UNDERLAY[other],
        local_ts = PRIVATE[me],
        remote_ts = PRIVATE[other],
        ike = case.ike,
        esp = case.esp,
        a = UNDERLAY[0],
        b = UNDERLAY[1],
    )
}

/// Two namespaces, two charons. The charons are declared first so they stop
/// before the lab deletes their namespaces.
struct Pair {
    charons: Vec<Charon>,
    lab: Lab,
    ns: [String; 2],
    dir: PathBuf,
}

impl Pair {
    fn new(case: Case) -> Pair {
        Pair::with_psks(case, [PSK, PSK])
    }

    /// As [`Pair::new`], each side with its own idea of the pre-shared key.
    fn with_psks(case: Case, psks: [&str; 2]) -> Pair {
        if let Err(e) = netns::require_privileges() {
            panic!(
                "strongSwan tests build network namespaces: run them as root with iproute2: {e}"
            );
        }
        if let Err(e) = strongswan::require_strongswan() {
            panic!("strongSwan tests need strongSwan: {e}");
        }
        let mut lab = Lab::new().expect("lab");
        let a = lab.add_namespace("sswan_a").unwrap();
        let b = lab.add_namespace("sswan_b").unwrap();
        lab.veth((&a, "eth0"), (&b, "eth0")).unwrap();
        for (side, ns) in [&a, &b].into_iter().enumerate() {
            lab.add_address(ns, "eth0", Ipv4Prefix::new(UNDERLAY[side], 24).unwrap())
                .unwrap();
            lab.add_address(ns, "lo", Ipv4Prefix::new(PRIVATE[side], 32).unwrap())
                .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("realm-sswan-test-{}", lab.tag()));
        let mut pair = Pair {
            charons: Vec::new(),
            lab,
            ns: [a, b],
            dir,
        };
        let started = realm_io::clock::now();
        for side in 0..2 {
            let dir = pair.dir.join(["a", "b"][side]);
            let charon = Charon::start(&pair.ns[side], &dir, &swanctl_conf(side, case, psks[side]))
                .unwrap_or_else(|e| panic!("start charon {side}: {e:#}"));
            pair.charons.push(charon);
        }
        eprintln!("two charons up and loaded in {:?}", started.elapsed());
        pair
    }

    /// Routing table 220, where charon installs its routes; empty before the
    /// first route (the table does not exist until then).
    fn route_table(&self, side: usize) -> String {
        let out = self
            .lab
            .run(&self.ns[side], "ip", &["route", "show", "table", "220"])
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else if stderr.contains("FIB table does not exist") {
            String::new()
        } else {
            panic!("ip route show table 220 in side {side}: {stderr}");
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (side, c) in self.charons.iter().enumerate() {
                let log = c.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                eprintln!("--- charon {side} log tail ({})", c.dir().display());
                eprintln!("{}", tail.join("\n"));
            }
        } else {
            for c in &mut self.charons {
                c.stop();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One TCP connection from `client_ns` to `server_ns`'s private address:
/// LEN bytes there, echoed back intact. Returns the client address the
/// server saw.
fn tcp_echo(server_ns: &str, addr: Ipv4Addr, client_ns: &str) -> SocketAddr {
    let listener = netns::in_namespace(server_ns, || TcpListener::bind((addr, PORT)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        from
    });
    let data: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut c = netns::in_namespace(client_ns, || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, PORT)), WAIT)
    })
    .unwrap()
    .expect("TCP connect through the strongSwan tunnel");
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.set_write_timeout(Some(WAIT)).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), data.len(), "echoed length");
    assert!(back == data, "echoed bytes differ");
    server.join().unwrap()
}

fn only_sa(sas: &[IkeSa], side: usize) -> &IkeSa {
    assert_eq!(sas.len(), 1, "side {side}: one IKE SA: {sas:#?}");
    assert_eq!(sas[0].children.len(), 1, "side {side}: one CHILD SA");
    &sas[0]
}

fn run(case: Case) {
    let pair = Pair::new(case);
    let [a, b] = [&pair.charons[0], &pair.charons[1]];
    for (side, c) in [a, b].into_iter().enumerate() {
        assert!(
            c.list_sas().unwrap().is_empty(),
            "side {side}: SAs before initiation"
        );
    }

    let t = realm_io::clock::now();
    a.initiate(CONN).expect("initiate from A");
    let setup = t.elapsed();
    let mut sas = Vec::new();
    for (side, c) in [a, b].into_iter().enumerate() {
        let list = c.wait_sas(SETTLE, |s| count_up(s) == (1, 1)).unwrap();
        assert_eq!(
            count_up(&list),
            (1, 1),
            "side {side}: IKE ESTABLISHED and CHILD INSTALLED:\n{}",
            c.list_sas_text().unwrap()
        );
        sas.push(list);
    }
    eprintln!(
        "{case:?}: initiate took {setup:?}, both sides up after {:?}",
        t.elapsed()
    );

    let (ike, child) = (only_sa(&sas[0], 0), only_sa(&sas[1], 1));
    let children = [&ike.children[0], &child.children[0]];
    for (side, list) in sas.iter().enumerate() {
        let ike = &list[0];
        let child = &ike.children[0];
        assert_eq!(ike.name, CONN);
        assert_eq!(ike.get("version"), Some("1"), "side {side}: IKEv1");
        assert_eq!(ike.get("local-host"), Some(&*UNDERLAY[side].to_string()));
        assert_eq!(
            ike.get("remote-host"),
            Some(&*UNDERLAY[1 - side].to_string())
        );
        // encap = yes fakes a NAT: IKE moved from 500 to 4500 (RFC 3947).
        assert_eq!(ike.get("local-port"), Some("4500"), "side {side}");
        assert_eq!(ike.get("remote-port"), Some("4500"), "side {side}");
        assert_eq!(ike.get("encr-alg"), Some("AES_CBC"), "side {side}");
        assert_eq!(ike.get("encr-keysize"), Some("128"), "side {side}");
        assert_eq!(ike.get("integ-alg"), Some("HMAC_SHA2_256_128"));
        assert_eq!(ike.get("prf-alg"), Some("PRF_HMAC_SHA2_256"));
        assert_eq!(ike.get("dh-group"), Some(case.ike_dh), "side {side}");
        assert_eq!(child.get("name"), Some(CONN));
        assert_eq!(child.get("mode"), Some("TUNNEL"), "side {side}");
        assert_eq!(child.get("protocol"), Some("ESP"), "side {side}");
        assert_eq!(child.get("encap"), Some("yes"), "side {side}: ESP in UDP");
        assert_eq!(child.get("encr-alg"), Some(case.child_encr), "side {side}");
        assert_eq!(child.get("integ-alg"), case.child_integ, "side {side}");
        assert_eq!(child.get("dh-group"), case.child_dh, "side {side}: PFS");
        assert_eq!(
            child.get("local-ts"),
            Some(&*format!("{}/32", PRIVATE[side]))
        );
        assert_eq!(
            child.get("remote-ts"),
            Some(&*format!("{}/32", PRIVATE[1 - side]))
        );
    }
    // One SA pair: what A receives on, B sends with, and the other way.
    assert_eq!(children[0].get("spi-in"), children[1].get("spi-out"));
    assert_eq!(children[0].get("spi-out"), children[1].get("spi-in"));
    assert_eq!(ike.get("initiator-spi"), child.get("initiator-spi"));
    assert_eq!(ike.get("responder-spi"), child.get("responder-spi"));

    // kernel-libipsec: the remote private address goes into ipsec0 (table
    // 220), from the local private address.
    for side in 0..2 {
        let routes = pair.route_table(side);
        let want = format!("{} dev ipsec0", PRIVATE[1 - side]);
        assert!(routes.contains(&want), "side {side} table 220: {routes}");
        assert!(
            routes.contains(&format!("src {}", PRIVATE[side])),
            "side {side} table 220: {routes}"
        );
    }
    // The log shows Main Mode starting on 500 and moving to 4500.
    let log = a.log();
    for want in [
        format!(
            "sending packet: from {}[500] to {}[500]",
            UNDERLAY[0], UNDERLAY[1]
        ),
        format!(
            "sending packet: from {}[4500] to {}[4500]",
            UNDERLAY[0], UNDERLAY[1]
        ),
    ] {
        assert!(log.contains(&want), "A's log lacks {want:?}");
    }

    // TCP both ways between the private addresses, through the tunnel only
    // (neither namespace has another route to the other's private address).
    let t = realm_io::clock::now();
    let from = tcp_echo(&pair.ns[1], PRIVATE[1], &pair.ns[0]);
    assert_eq!(from.ip(), PRIVATE[0], "B saw A's private address");
    let from = tcp_echo(&pair.ns[0], PRIVATE[0], &pair.ns[1]);
    assert_eq!(from.ip(), PRIVATE[1], "A saw B's private address");
    eprintln!("{case:?}: 4 x {LEN} bytes of TCP in {:?}", t.elapsed());
    for (side, c) in [a, b].into_iter().enumerate() {
        let list = c.list_sas().unwrap();
        let child = &only_sa(&list, side).children[0];
        for counter in ["bytes-in", "bytes-out"] {
            // Each side sent LEN and echoed LEN, and received as much.
            let n = child.counter(counter);
            assert!(n >= 2 * LEN as u64, "side {side} {counter} = {n}");
        }
    }

    // Terminate from A: both sides forget everything, the route goes.
    let t = realm_io::clock::now();
    a.terminate(CONN).expect("terminate from A");
    for (side, c) in [a, b].into_iter().enumerate() {
        let list = c.wait_sas(SETTLE, <[IkeSa]>::is_empty).unwrap();
        assert!(
            list.is_empty(),
            "side {side}: SAs after terminate:\n{}",
            c.list_sas_text().unwrap()
        );
        let routes = pair.route_table(side);
        assert!(
            !routes.contains(&PRIVATE[1 - side].to_string()),
            "side {side}: route left after terminate: {routes}"
        );
    }
    eprintln!("{case:?}: terminated on both sides in {:?}", t.elapsed());
}

const GCM: Case = Case {
    ike: "aes128-sha256-modp2048",
    esp: "aes128gcm16",
    ike_dh: "MODP_2048",
    child_encr: "AES_GCM_16",
    child_integ: None,
    child_dh: None,
};

#[test]
fn ikev1_psk_modp2048_esp_gcm() {
    run(GCM);
}

/// The harness can see failure: with different pre-shared keys Main Mode
/// cannot authenticate (message 5 does not decrypt at B), `swanctl
/// --initiate` fails after A's retransmissions, and neither side has an
/// ESTABLISHED IKE SA or any CHILD SA.
#[test]
fn ikev1_psk_mismatch_establishes_nothing() {
    let pair = Pair::with_psks(GCM, [PSK, "not-the-same-psk"]);
    let [a, b] = [&pair.charons[0], &pair.charons[1]];
    let t = realm_io::clock::now();
    let err = a.initiate(CONN).expect_err("initiate with mismatched PSKs");
    eprintln!(
        "mismatched PSKs: initiate failed after {:?}: {err:#}",
        t.elapsed()
    );
    for (side, c) in [a, b].into_iter().enumerate() {
        let list = c.list_sas().unwrap();
        assert_eq!(count_up(&list), (0, 0), "side {side}: {list:#?}");
    }
    // A gave up on its IKE SA entirely.
    assert!(a.list_sas().unwrap().is_empty(), "A keeps an IKE SA");
    assert!(pair.route_table(0).is_empty() && pair.route_table(1).is_empty());
}

#[test]
fn ikev1_psk_ecp256_esp_cbc_sha256_pfs() {
    run(Case {
        ike: "aes128-sha256-ecp256",
        esp: "aes128-sha256-ecp256",
        ike_dh: "ECP_256",
        child_encr: "AES_CBC",
        child_integ: Some("HMAC_SHA2_256_128"),
        child_dh: Some("ECP_256"),
    });
}
