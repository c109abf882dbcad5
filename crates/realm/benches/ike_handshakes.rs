//! IKEv1 handshakes (Main Mode with a pre-shared key, then Quick Mode) between two `realm peer`
//! daemons, beside the same handshakes between two strongSwan charons, and beside the machine's
//! raw Diffie-Hellman rate, all in one run (`scripts/bench-ike`, or
//! `cargo bench -p realm --bench ike_handshakes` as root with strongSwan installed:
//! `scripts/ensure-strongswan`; dumpcap from tshark, `scripts/install-deps`).
//!
//! For DH group 14 (`aes128-sha256-modp2048`) and group 19 (`aes128-sha256-ecp256`), ESP
//! `aes128gcm16`, tunnel mode, NAT-T forced on both implementations (`encap`; strongSwan's
//! user-space ESP needs it, Realm does it too so both exchange the same nine messages and float
//! to UDP 4500 after message 4):
//!
//! 1. **DH**: `realm_ike::AwsLcCrypto` (what Realm uses) generating key pairs and agreeing with a
//!    fixed peer value in a loop on one thread for about a second each. One handshake costs each
//!    side one key pair and one agreement, so with both sides on one core DH alone caps a run at
//!    `1 / (2 * (keygen + agree))` handshakes/s: the "DH ceiling" printed.
//! 2. **realm peer** and 3. **strongswan**: two daemons in two namespaces joined by a veth. A
//!    few warm-up handshakes, then `REALM_BENCH_HANDSHAKES` (default 50) **sequential**
//!    handshakes: the initiator is told to initiate (`realm ctl initiate net`,
//!    `swanctl --initiate`), the bench waits until both sides list the IKE SA and the child SA,
//!    then terminates it (`realm ctl terminate`, `swanctl --terminate`) and waits until both
//!    sides list nothing. dumpcap on the responder's veth records every IKE message.
//!
//! What is measured is the IKE implementation, not the control tools: the **latency** of a
//! handshake is taken from the capture, from Main Mode message 1 to Quick Mode message 3 (the
//! last of the nine; the responder installs its SAs on it), per initiator cookie, so process
//! start-up of `realm ctl`/`swanctl` and the bench's polling are outside it. Printed: mean and
//! median of those, **handshakes/s** = 1 / mean (one at a time, back to back on the wire), and
//! realm/strongswan. For reference also the daemons' CPU per handshake (both daemons' threads,
//! `/proc/PID/task/*/schedstat`, over the measured loop: it includes answering the bench's
//! polling and the terminate/Delete exchange) and the wall-clock cycle rate of the whole loop
//! (initiate, wait, terminate, wait: control-tool start-up included). Never asserts timings;
//! it fails loudly when a handshake does not complete or the capture misses one.
//!
//! Logging: Realm at `info`, strongSwan's file log at level 1 (its default): both write a few
//! lines per handshake. A run takes 20-30 s on a 2-core VM with the default 50 handshakes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `side` indexes several per-side arrays at once.
#![allow(clippy::needless_range_loop)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use realm_ike::{AwsLcCrypto, Crypto as _, DhGroup, DhKeyPair as _};
use realm_lab::strongswan::{Charon, Settings, count_up, require_strongswan};
use serde_json::Value;

#[path = "../tests/peer_util/mod.rs"]
mod peer_util;
use peer_util::*;

const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];
const PSK: &str = "realm-ike-handshake-bench";
const WARMUP: usize = 3;
/// ISAKMP exchange types (RFC 2408 section 3.1, RFC 2409 section 5.5).
const EXCH_MAIN_MODE: u8 = 2;
const EXCH_QUICK_MODE: u8 = 32;

#[derive(Clone, Copy)]
struct Case {
    group: DhGroup,
    proposals: &'static str,
    esp: &'static str,
}

/// One implementation's figures.
struct Figures {
    /// Per-handshake wire latency, MM1 to QM3, sorted.
    latencies: Vec<Duration>,
    /// Both daemons' CPU time over the measured loop.
    cpu: Duration,
    /// Wall-clock time of the measured loop (control tools and polling included).
    wall: Duration,
}

impl Figures {
    fn mean(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / self.latencies.len() as u32
    }
    fn median(&self) -> Duration {
        let n = self.latencies.len();
        if n % 2 == 1 {
            self.latencies[n / 2]
        } else {
            (self.latencies[n / 2 - 1] + self.latencies[n / 2]) / 2
        }
    }
    fn rate(&self) -> f64 {
        1.0 / self.mean().as_secs_f64()
    }
    fn print(&self, name: &str) {
        let k = self.latencies.len();
        println!(
            "  {:<12}{:>7.1} handshakes/s  latency mean {:>6.2} ms  median {:>6.2} ms  \
             min {:>6.2} ms  max {:>6.2} ms  | CPU {:>5.2} ms/handshake (both daemons)  \
             cycle {:>5.1}/s (wall, incl. control)",
            format!("{name}:"),
            self.rate(),
            ms(self.mean()),
            ms(self.median()),
            ms(self.latencies[0]),
            ms(self.latencies[k - 1]),
            ms(self.cpu) / k as f64,
            k as f64 / self.wall.as_secs_f64(),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if let Err(e) = realm_io::netns::require_privileges() {
        panic!("the IKE handshake benchmark builds network namespaces: run it as root: {e}");
    }
    if let Err(e) = require_strongswan() {
        panic!("the IKE handshake benchmark compares with strongSwan: {e}");
    }
    let k: usize = std::env::var("REALM_BENCH_HANDSHAKES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    assert!(k > 0, "REALM_BENCH_HANDSHAKES must be at least 1");
    let optimized = Path::new(REALM)
        .components()
        .any(|c| c.as_os_str() == "release");
    println!("realm binary: {REALM}");
    if !optimized {
        println!(
            "  WARNING: not a release/bench-profile build; Realm's figures are not comparable"
        );
    }
    println!(
        "{k} sequential handshakes per implementation (after {WARMUP} warm-up), \
         Main Mode PSK + Quick Mode, ESP aes128gcm16 tunnel, NAT-T forced;\n\
         latency = MM1 to QM3 on the responder's veth (dumpcap), handshakes/s = 1 / mean latency"
    );
    let cases = [
        Case {
            group: DhGroup::Modp2048,
            proposals: "aes128-sha256-modp2048",
            esp: "aes128gcm16",
        },
        Case {
            group: DhGroup::Ecp256,
            proposals: "aes128-sha256-ecp256",
            esp: "aes128gcm16",
        },
    ];
    for c in cases {
        println!();
        println!("{}: proposal {}, esp {}", c.group, c.proposals, c.esp);
        let (keygen, agree) = dh_rate(c.group);
        let per_handshake = 2.0 * (1.0 / keygen + 1.0 / agree);
        println!(
            "  DH (AwsLcCrypto, 1 thread): {keygen:.0} keygen/s, {agree:.0} agree/s; \
             DH ceiling {:.0} handshakes/s (2 keygen + 2 agree per handshake on one core)",
            1.0 / per_handshake
        );
        let realm = bench_realm(c, k);
        realm.print("realm peer");
        let swan = bench_strongswan(c, k);
        swan.print("strongswan");
        println!(
            "  realm/strongswan: {:.2}x handshakes/s (mean latency {:.2}x, CPU {:.2}x)",
            realm.rate() / swan.rate(),
            realm.mean().as_secs_f64() / swan.mean().as_secs_f64(),
            realm.cpu.as_secs_f64() / swan.cpu.as_secs_f64(),
        );
    }
}

/// Key pairs generated and agreements computed per second, each for about a second.
fn dh_rate(group: DhGroup) -> (f64, f64) {
    let crypto = AwsLcCrypto::new();
    let peer = crypto.generate_key_pair(group).unwrap();
    let peer_public = peer.public_value().to_vec();
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..10 {
            f();
        }
        let start = realm_io::now();
        let mut n = 0u64;
        while (realm_io::now() - start) < Duration::from_secs(1) {
            f();
            n += 1;
        }
        n as f64 / (realm_io::now() - start).as_secs_f64()
    };
    let keygen = time(&mut || {
        std::hint::black_box(crypto.generate_key_pair(group).unwrap());
    });
    let mine = crypto.generate_key_pair(group).unwrap();
    let agree = time(&mut || {
        std::hint::black_box(crypto.agree(&mine, &peer_public).unwrap());
    });
    (keygen, agree)
}

/// CPU time (threads' run time) of a process so far (`/proc/PID/task/*/schedstat`).
fn cpu(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    Duration::from_nanos(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum(),
    )
}

/// Wire latency per handshake from a capture: for each initiator cookie, the first Main Mode
/// message to the last Quick Mode message. Fails unless exactly `k` complete handshakes (six
/// Main Mode and at least three Quick Mode messages) are in it.
fn wire_latencies(file: &Path, k: usize) -> Vec<Duration> {
    use std::collections::BTreeMap;
    let mut reader =
        pcap_file::pcap::PcapReader::new(std::fs::File::open(file).unwrap()).expect("pcap");
    // cookie -> (first MM, last QM, MM count, QM count)
    let mut seen: BTreeMap<[u8; 8], (Duration, Duration, usize, usize)> = BTreeMap::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        let Some((cookie, exchange)) = isakmp(&pkt.data) else {
            continue;
        };
        let e = seen
            .entry(cookie)
            .or_insert((pkt.timestamp, pkt.timestamp, 0, 0));
        match exchange {
            EXCH_MAIN_MODE => {
                e.0 = e.0.min(pkt.timestamp);
                e.2 += 1;
            }
            EXCH_QUICK_MODE => {
                e.1 = e.1.max(pkt.timestamp);
                e.3 += 1;
            }
            _ => {}
        }
    }
    let mut out: Vec<Duration> = seen
        .values()
        .filter(|e| e.2 >= 6 && e.3 >= 3)
        .map(|e| e.1 - e.0)
        .collect();
    assert_eq!(
        out.len(),
        k,
        "complete handshakes in the capture (cookie: first MM, last QM, #MM, #QM): {seen:?}"
    );
    out.sort();
    out
}

/// The initiator cookie and exchange type of an ISAKMP message in an Ethernet frame (UDP 500,
/// or UDP 4500 after the four-byte non-ESP marker, RFC 3948 section 2.2).
fn isakmp(frame: &[u8]) -> Option<([u8; 8], u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let payload = udp.get(8..)?;
    let msg = if sport == 500 || dport == 500 {
        payload
    } else if sport == 4500 || dport == 4500 {
        if payload.get(..4)? != [0, 0, 0, 0] {
            return None; // ESP in UDP
        }
        payload.get(4..)?
    } else {
        return None;
    };
    if msg.len() < 28 {
        return None;
    }
    let cookie: [u8; 8] = msg.get(..8)?.try_into().ok()?;
    Some((cookie, *msg.get(18)?))
}

fn realm_config(pair: &Pair, side: usize, c: Case) -> String {
    let (me, other) = (side, 1 - side);
    format!(
        r#"log_level = "info"
control_socket = "{socket}"

[tun]
name = "realm0"
mtu = 1400
addresses = ["{inner}/32"]
routes = ["{their_net}"]

[underlay]
address = "{me_addr}"
device = "eth0"

[ike]
retransmit_timeout = 1.0

[connections.site]
version = 1
local_addrs = "{me_addr}"
remote_addrs = "{other_addr}"
proposals = "{proposals}"
encap = true
rekey_time = "0s"
local.auth = "psk"
local.id = "side{me}.realm.example"
remote.auth = "psk"
remote.id = "side{other}.realm.example"

[connections.site.children.net]
local_ts = "{my_net}"
remote_ts = "{their_net}"
esp_proposals = "{esp}"
mode = "tunnel"
rekey_time = "0s"
life_time = "1h"

[secrets.ike-site]
id = "side{me}.realm.example"
id-peer = "side{other}.realm.example"
secret = "{PSK}"
"#,
        socket = pair.socket(side).display(),
        inner = INNER[me],
        me_addr = UNDERLAY[me],
        other_addr = UNDERLAY[other],
        my_net = NETS[me],
        their_net = NETS[other],
        proposals = c.proposals,
        esp = c.esp,
    )
}

fn realm_ike(pair: &Pair, side: usize) -> Vec<Value> {
    match ctl(&pair.socket(side), "ike") {
        Ok(Value::Array(v)) => v,
        other => panic!("ctl ike on {side}: {other:?}\n{}", pair.log(side)),
    }
}

fn realm_up(sas: &[Value]) -> bool {
    sas.iter().any(|sa| {
        sa["state"] == "ESTABLISHED" && sa["children"].as_array().is_some_and(|c| c.len() == 1)
    })
}

/// Polls `done` every 2 ms until it holds; panics with `why()` after [`WAIT`].
fn wait_until(mut done: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = realm_io::now() + WAIT;
    while !done() {
        assert!(realm_io::now() < deadline, "{}", why());
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn realm_handshake(pair: &Pair) {
    let answer = ctl_args(&pair.socket(0), "initiate", &["net"]).unwrap();
    assert_eq!(answer["initiating"], "net");
    let why = || {
        format!(
            "realm handshake did not complete\n--- A ---\n{}\n--- B ---\n{}",
            pair.log(0),
            pair.log(1)
        )
    };
    wait_until(
        || realm_up(&realm_ike(pair, 0)) && realm_up(&realm_ike(pair, 1)),
        why,
    );
    let t = ctl_args(&pair.socket(0), "terminate", &["site"]).unwrap();
    assert_eq!(t["ike_sas"], 1);
    wait_until(
        || realm_ike(pair, 0).is_empty() && realm_ike(pair, 1).is_empty(),
        || {
            format!(
                "realm SAs left after terminate\n--- A ---\n{}\n--- B ---\n{}",
                pair.log(0),
                pair.log(1)
            )
        },
    );
}

fn bench_realm(c: Case, k: usize) -> Figures {
    let mut pair = Pair::new();
    for side in 0..2 {
        let conf = realm_config(&pair, side, c);
        pair.start(side, &conf);
    }
    for _ in 0..WARMUP {
        realm_handshake(&pair);
    }
    let pids: Vec<u32> = (0..2)
        .map(|side| {
            let id = pair.peers[side].unwrap();
            pair.lab.child_mut(id).unwrap().id()
        })
        .collect();
    let capture = Capture::start(&mut pair, 1);
    let cpu0: Duration = pids.iter().map(|p| cpu(*p)).sum();
    let start = realm_io::now();
    for _ in 0..k {
        realm_handshake(&pair);
    }
    let wall = realm_io::now() - start;
    let cpu1: Duration = pids.iter().map(|p| cpu(*p)).sum();
    let (file, said) = capture.stop(&mut pair);
    let latencies = wire_latencies(&file, k);
    let _ = said;
    pair.stop(0);
    pair.stop(1);
    Figures {
        latencies,
        cpu: cpu1 - cpu0,
        wall,
    }
}

fn swanctl_conf(side: usize, c: Case) -> String {
    let (me, other) = (side, 1 - side);
    format!(
        r#"connections {{
    site {{
        version = 1
        local_addrs = {me_addr}
        remote_addrs = {other_addr}
        proposals = {proposals}
        encap = yes
        rekey_time = 0
        local {{
            auth = psk
            id = side{me}.strongswan.example
        }}
        remote {{
            auth = psk
            id = side{other}.strongswan.example
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
    ike-site {{
        id-a = side0.strongswan.example
        id-b = side1.strongswan.example
        secret = {PSK}
    }}
}}
"#,
        me_addr = UNDERLAY[me],
        other_addr = UNDERLAY[other],
        my_net = NETS[me],
        their_net = NETS[other],
        proposals = c.proposals,
        esp = c.esp,
    )
}

fn swan_handshake(charons: &[Charon; 2]) {
    let why = |what: &str| {
        format!(
            "strongSwan: {what}\n--- A ---\n{}\n--- B ---\n{}",
            charons[0].log(),
            charons[1].log()
        )
    };
    // Returns once the initiator has installed its CHILD SA.
    charons[0]
        .initiate("net")
        .unwrap_or_else(|e| panic!("{}", why(&e.to_string())));
    wait_until(
        || count_up(&charons[1].list_sas().unwrap()) == (1, 1),
        || why("the responder did not install the SA"),
    );
    charons[0]
        .terminate("site")
        .unwrap_or_else(|e| panic!("{}", why(&e.to_string())));
    wait_until(
        || charons[0].list_sas().unwrap().is_empty() && charons[1].list_sas().unwrap().is_empty(),
        || why("SAs left after terminate"),
    );
}

fn bench_strongswan(c: Case, k: usize) -> Figures {
    let mut pair = Pair::new();
    let settings = Settings {
        log_levels: vec![("default".to_owned(), 1)],
        ..Settings::default()
    };
    let mut charons = Vec::new();
    for side in 0..2 {
        // kernel-libipsec routes from an address inside the local selector.
        let ns = pair.ns[side].clone();
        pair.lab
            .run_ok(
                &ns,
                "ip",
                &["addr", "add", &format!("{}/32", INNER[side]), "dev", "lo"],
            )
            .unwrap();
        let dir = pair.dir.join(format!("charon-{side}"));
        charons.push(Charon::start_with(&ns, &dir, &swanctl_conf(side, c), &settings).unwrap());
    }
    let charons: [Charon; 2] = charons.try_into().unwrap();
    for _ in 0..WARMUP {
        swan_handshake(&charons);
    }
    let pids: Vec<u32> = charons.iter().map(|ch| ch.pid().unwrap()).collect();
    let capture = Capture::start(&mut pair, 1);
    let cpu0: Duration = pids.iter().map(|p| cpu(*p)).sum();
    let start = realm_io::now();
    for _ in 0..k {
        swan_handshake(&charons);
    }
    let wall = realm_io::now() - start;
    let cpu1: Duration = pids.iter().map(|p| cpu(*p)).sum();
    let (file, _said) = capture.stop(&mut pair);
    let latencies = wire_latencies(&file, k);
    drop(charons);
    Figures {
        latencies,
        cpu: cpu1 - cpu0,
        wall,
    }
}
