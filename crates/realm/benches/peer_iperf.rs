//! iperf3 TCP through two `realm peer` daemons, beside plain kernel routing
//! through the same namespaces, in one run (`scripts/bench-peer`, or
//! `cargo bench -p realm --bench peer_iperf` as root with iperf3 installed).
//!
//! Topology (two namespaces, one veth):
//!
//! ```text
//!  A: 203.0.113.1 (lo, or realm0) -- eth0 192.0.2.1 ==== 192.0.2.2 eth0 -- (lo, or realm0) 198.51.100.1 :B
//! ```
//!
//! 1. kernel: the inner addresses on `lo`, routes to the other side's
//!    network via the veth; iperf3 from 203.0.113.1 to 198.51.100.1.
//! 2. realm: the same inner addresses on the peers' TUNs, ESP tunnel mode
//!    with AES-128-GCM between 192.0.2.1 and 192.0.2.2; the same iperf3.
//! 3. realm again with the SAs UDP-encapsulated (RFC 3948, port 4500), which
//!    lets the daemons use UDP GSO/GRO on the underlay.
//! 4. realm with plain ESP again, `af_packet = false`: through the raw IP
//!    sockets only, as before the AF_PACKET path (step 2 uses it).
//!
//! Prints Gbit/s (iperf3's receiver side) for each, realm/kernel, and the
//! sender's TCP retransmissions; for the realm runs also both daemons' CPU
//! time per GB carried and each daemon's busy cores (from
//! `/proc/PID/task/*/schedstat`, softirq work done in their system calls
//! included). On a shared machine Gbit/s follows what else runs; CPU per GB
//! much less, so compare changes by both.
//! `REALM_BENCH_SECONDS` sets the duration of each measurement (default 10).
//!
//! # What limits plain ESP
//! Profiled with `perf record -a -g` during step 2 and syscall tracepoints, on
//! a 2-core VM: both daemons spend 6-7.5 CPU s/GB on ESP against 2-2.8 on
//! ESP-in-UDP, because without GSO every ~1.45 KB packet makes its own trip
//! through the kernel. About 80% of the sending daemon's time is `sendmmsg` on
//! the raw socket; of that, ~40% is the *receiver's* input path, run as
//! softirq inside the sending call (veth `netif_rx`, `ip_rcv`, input route,
//! `raw_local_deliver`, queueing and waking the receiving daemon), 10-20% the
//! output route, which Linux does not cache for `IP_HDRINCL` to an on-link
//! destination (`FLOWI_FLAG_KNOWN_NH`: a dst allocated and freed per packet),
//! the rest skb allocation, copy and `ip_output`. Userspace (AES-GCM,
//! superpacket splitting, GRO, the engine) is under a quarter of the daemons'
//! CPU. The receiving daemon woke ~3,000 times a second and half its
//! `recvmmsg` calls returned one packet. A separate sending thread was tried
//! and reverted (more CPU per GB, no throughput gain on 2 cores: figures in
//! the revert's commit message), and so was a 50 us pause after small receive
//! batches (no change).
//!
//! The figures above are for the raw sockets (step 4 now). Step 2 leaves the
//! IP stack out: plain ESP goes out through an AF_PACKET socket to the next
//! hop's MAC (no output route, no netfilter) and comes in through an
//! AF_PACKET `TPACKET_V2` ring ahead of the IP stack, which a netdev ingress
//! rule keeps from also handling it. That took the daemons from ~7-7.4 to
//! ~4.9-5.5 CPU s/GB and plain ESP from ~0.09-0.11x to ~0.13-0.15x in the same
//! runs. `PACKET_QDISC_BYPASS` was tried and dropped: no gain through the
//! veth's noqueue qdisc, and it hides the frames from captures on the
//! sending host. What is left, profiled on a quiet machine: the sending
//! daemon is the bottleneck (~0.9 of a core); half of its `sendmmsg` time is
//! still the receiver's input path, run as softirq inside the call (veth
//! `netif_rx`, `packet_rcv`, the ingress drop, waking the receiver), the rest
//! skb allocation, copy and the veth transmit. Next candidates: a
//! `PACKET_TX_RING` (no per-packet copy from userspace), AF_XDP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `side` indexes several per-side arrays at once.
#![allow(clippy::needless_range_loop)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use realm_io::netns::{self, Lab, LabStdio};
use realm_io::{Ipv4Prefix, RouteVia};

const REALM: &str = env!("CARGO_BIN_EXE_realm");
const UNDERLAY: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];
const SPI: [u32; 2] = [0x0000_1001, 0x0000_2001];

fn config(side: usize, socket: &Path, udp_encap: bool, af_packet: bool) -> String {
    let (me, other) = (side, 1 - side);
    let encap = if udp_encap {
        "udp_encap = { src_port = 4500, dst_port = 4500 }\n"
    } else {
        ""
    };
    let sa = |spi: u32, dir: &str, src: Ipv4Addr, dst: Ipv4Addr, from: &str, to: &str| {
        format!(
            "[[sa]]\nspi = \"{spi:#010x}\"\ndirection = \"{dir}\"\nmode = \"tunnel\"\nsrc = \"{src}\"\n\
             dst = \"{dst}\"\nencryption = \"aes-gcm-128\"\n\
             encryption_key = \"0x{spi:08x}0102030405060708090a0b0c0d0e0f10\"\n{encap}\
             selector = {{ src = \"{from}\", dst = \"{to}\" }}\n\n"
        )
    };
    format!(
        "log_level = \"warn\"\ncontrol_socket = \"{}\"\n\n[tun]\nname = \"realm0\"\nmtu = 1400\n\
         addresses = [\"{}/32\"]\nroutes = [\"{}\"]\n\n[underlay]\naddress = \"{}\"\ndevice = \"eth0\"\naf_packet = {}\n\n\
         {}{}\
         [[policy]]\ndirection = \"outbound\"\nselector = {{ src = \"{}\", dst = \"{}\" }}\naction = \"apply\"\nsa = [\"{:#010x}\"]\n\n\
         [[policy]]\ndirection = \"inbound\"\nselector = {{ src = \"{}\", dst = \"{}\" }}\naction = \"apply\"\nsa = [\"{:#010x}\"]\n",
        socket.display(),
        INNER[me],
        NETS[other],
        UNDERLAY[me],
        af_packet,
        sa(
            SPI[me],
            "outbound",
            UNDERLAY[me],
            UNDERLAY[other],
            NETS[me],
            NETS[other]
        ),
        sa(
            SPI[other],
            "inbound",
            UNDERLAY[other],
            UNDERLAY[me],
            NETS[other],
            NETS[me]
        ),
        NETS[me],
        NETS[other],
        SPI[me],
        NETS[other],
        NETS[me],
        SPI[other],
    )
}

/// One iperf3 TCP run from A's inner address to B's: receiver Gbit/s and
/// the sender's TCP retransmissions.
fn iperf(lab: &mut Lab, a: &str, b: &str, seconds: u64) -> (f64, u64) {
    let server = lab
        .spawn(
            b,
            "iperf3",
            &["-s", "-1", "-B", &INNER[1].to_string()],
            LabStdio::Null,
        )
        .expect("iperf3 is required: scripts/ensure-bench-tools");
    std::thread::sleep(Duration::from_millis(300));
    let out = lab
        .run(
            a,
            "iperf3",
            &[
                "-c",
                &INNER[1].to_string(),
                "-B",
                &INNER[0].to_string(),
                "-t",
                &seconds.to_string(),
                "-J",
            ],
        )
        .unwrap();
    let _ = lab.wait(server);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 output: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if let Some(err) = json.get("error") {
        panic!("iperf3: {err}");
    }
    let gbit = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("iperf3 JSON: end.sum_received.bits_per_second")
        / 1e9;
    let retransmits = json["end"]["sum_sent"]["retransmits"]
        .as_u64()
        .unwrap_or_default();
    (gbit, retransmits)
}

/// CPU time (ns) a process's threads have run so far (`/proc/PID/task/*/schedstat`):
/// user and system time, including the softirq work (such as the receiving side of
/// the veth) the kernel does in its system calls.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn wait_for_socket(socket: &Path, log: &Path) {
    let deadline = realm_io::now() + Duration::from_secs(20);
    while realm_io::now() < deadline {
        let ok = Command::new(REALM)
            .args(["ctl", "--socket"])
            .arg(socket)
            .arg("status")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "realm peer did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn main() {
    if let Err(e) = netns::require_privileges() {
        panic!("the peer benchmark builds network namespaces: run it as root: {e}");
    }
    let seconds: u64 = std::env::var("REALM_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut lab = Lab::new().unwrap();
    let a = lab.add_namespace("bench_a").unwrap();
    let b = lab.add_namespace("bench_b").unwrap();
    lab.veth((&a, "eth0"), (&b, "eth0")).unwrap();
    for (ns, addr) in [(&a, UNDERLAY[0]), (&b, UNDERLAY[1])] {
        lab.add_address(ns, "eth0", Ipv4Prefix::new(addr, 24).unwrap())
            .unwrap();
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("realm-bench-{}", lab.tag()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Plain kernel routing between the inner addresses.
    let ns = [a.clone(), b.clone()];
    for side in 0..2 {
        let inner = Ipv4Prefix::host(INNER[side]);
        lab.add_address(&ns[side], "lo", inner).unwrap();
        lab.add_route(
            &ns[side],
            NETS[1 - side].parse().unwrap(),
            &RouteVia::Gateway(UNDERLAY[1 - side]),
        )
        .unwrap();
    }
    let kernel = iperf(&mut lab, &a, &b, seconds);
    for side in 0..2 {
        let inner = format!("{}/32", INNER[side]);
        netns::ip(&["-n", &ns[side], "addr", "del", &inner, "dev", "lo"]).unwrap();
        netns::ip(&["-n", &ns[side], "route", "del", NETS[1 - side]]).unwrap();
    }

    // 2. The same through two realm peers: ESP (AF_PACKET), ESP-in-UDP (UDP
    // GSO/GRO), then ESP through raw sockets only.
    let runs = [
        ("realm peer, ESP", false, true),
        ("realm peer, ESP-in-UDP", true, true),
        ("realm peer, ESP, raw sockets", false, false),
    ];
    let mut realm = [(0.0f64, 0u64); 3];
    let mut cpu_per_gb = [0.0f64; 3];
    let mut busy = [[0.0f64; 2]; 3];
    let mut sas = String::new();
    for (k, &(_, udp_encap, af_packet)) in runs.iter().enumerate() {
        let mut peers = Vec::new();
        for side in 0..2 {
            let socket = dir.join(format!("ctl-{k}-{side}.sock"));
            let file = dir.join(format!("peer-{k}-{side}.toml"));
            let log = dir.join(format!("peer-{k}-{side}.log"));
            std::fs::write(&file, config(side, &socket, udp_encap, af_packet)).unwrap();
            let script = r#"exec "$0" peer --config "$1" 2>"$2""#;
            peers.push(
                lab.spawn(
                    &ns[side],
                    "sh",
                    &[
                        "-c",
                        script,
                        REALM,
                        file.to_str().unwrap(),
                        log.to_str().unwrap(),
                    ],
                    LabStdio::Null,
                )
                .unwrap(),
            );
            wait_for_socket(&socket, &log);
        }
        let pids: Vec<u32> = peers
            .iter()
            .map(|&p| lab.child_mut(p).unwrap().id())
            .collect();
        let before: Vec<u64> = pids.iter().map(|&p| cpu_ns(p)).collect();
        let start = realm_io::now();
        realm[k] = iperf(&mut lab, &a, &b, seconds);
        let wall = start.elapsed().as_secs_f64();
        let used: Vec<f64> = pids
            .iter()
            .zip(&before)
            .map(|(&p, &b)| (cpu_ns(p) - b) as f64 / 1e9)
            .collect();
        // Both daemons' CPU seconds per gigabyte carried (iperf3's receiver count).
        let gigabytes = realm[k].0 * seconds as f64 / 8.0;
        cpu_per_gb[k] = used.iter().sum::<f64>() / gigabytes;
        busy[k] = [used[0] / wall, used[1] / wall];
        for (side, command) in [(0, "sas"), (0, "status"), (1, "status")] {
            let out = Command::new(REALM)
                .args(["ctl", "--socket"])
                .arg(dir.join(format!("ctl-{k}-{side}.sock")))
                .arg(command)
                .output()
                .unwrap();
            sas += &format!("{} {command}:\n", ["A", "B"][side]);
            sas += &String::from_utf8_lossy(&out.stdout);
            sas += &String::from_utf8_lossy(&out.stderr);
        }
        for p in peers {
            lab.kill(p).unwrap();
        }
    }

    println!();
    println!(
        "realm peer benchmark: iperf3 TCP, {seconds} s, A -> B, one veth (MTU 1500), TUN MTU 1400, AES-128-GCM tunnel mode"
    );
    let (kernel, kernel_retransmits) = kernel;
    println!(
        "  kernel routing                    {kernel:7.3} Gbit/s                  {kernel_retransmits} retransmits"
    );
    for (k, &(name, _, _)) in runs.iter().enumerate() {
        let ((gbit, retransmits), cpu, [a, b]) = (realm[k], cpu_per_gb[k], busy[k]);
        println!(
            "  {name:<33} {gbit:7.3} Gbit/s   ratio {:.3}x   {retransmits} retransmits   daemons' CPU {cpu:.2} s/GB (A {a:.2}, B {b:.2} cores)",
            gbit / kernel
        );
    }
    println!("  (target 0.13x, goal 0.3x; strongSwan libipsec on this machine: 0.013x)");
    println!(
        "  (CPU s/GB: both daemons' CPU time, softirq work in their system calls included, per GB carried;\n   \
         it varies far less with what else the machine runs than the Gbit/s figures)"
    );
    println!("\nSAs on A, status of A and B after each run:\n{sas}");
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}
