//! iperf3 TCP from an RSIP host to the public host through the `realm lab`
//! topology, beside kernel routing and kernel NAT through the same
//! namespaces, in one run (`cargo bench -p realm --bench lab_iperf` as root,
//! iperf3 and nft installed).
//!
//! ```text
//!  host1 10.0.0.11 eth0 == h1 [br0 10.0.0.1  gateway  pub0 192.0.2.1] == eth0 192.0.2.2 public
//! ```
//!
//! 1. kernel routing: the gateway forwards (`ip_forward`), the public host
//!    routes 10.0.0.0/24 back via 192.0.2.1.
//! 2. kernel NAT: no route back; the gateway masquerades behind 192.0.2.1
//!    (nftables `masquerade`: the kernel's nf_nat, as iptables MASQUERADE).
//! 3. RSIP: `realm gateway` with its data plane and `realm host` (8 ports),
//!    traffic tunnelled IP-in-IP and forwarded untranslated; bulk TCP from
//!    the host encapsulated by its kernel offload (an eBPF program on the
//!    TUN, `realm_io::offload`) and crossing the private link whole.
//! 4. RSIP again with `realm host --no-kernel-offload`: the host daemon
//!    tunnels each superpacket itself (fragmented on the private link,
//!    reassembled by the gateway's kernel).
//!
//! Prints Gbit/s (iperf3's receiver) both ways (host to public, and `-R`:
//! public to host) and RSIP/NAT. `REALM_BENCH_SECONDS`
//! sets each measurement's duration (default 10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use realm_io::netns::LabStdio;
use realm_lab::topology::{GATEWAY_PUBLIC, PUBLIC_HOST};
use realm_lab::{HostSpec, LabSpec, RsipLab, Transport};

fn seconds() -> u32 {
    std::env::var("REALM_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

fn spec() -> LabSpec {
    spec_with(&[])
}

/// The lab with one 8-port host given `extra` flags.
fn spec_with(extra: &[&str]) -> LabSpec {
    let mut spec = LabSpec::new(PathBuf::from(env!("CARGO_BIN_EXE_realm")));
    let mut host = HostSpec::ports(Transport::Tcp, 8);
    host.args.extend(extra.iter().map(|a| (*a).to_owned()));
    spec.hosts = vec![host];
    spec.log_level = "warn".into();
    spec
}

/// iperf3 from host 1 to the public host; Gbit/s at the receiver.
/// `reverse`: the public host sends (iperf3 `-R`), the RSIP host receives.
fn iperf(lab: &mut RsipLab, reverse: bool) -> f64 {
    let public = lab.public_ns.clone();
    let server = lab
        .lab()
        .spawn(
            &public,
            "iperf3",
            &["-s", "-1", "-B", &PUBLIC_HOST.to_string()],
            LabStdio::Null,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let secs = seconds().to_string();
    let out = lab
        .run_ok(
            &lab.host_ns[0].clone(),
            "iperf3",
            &[
                "-c",
                &PUBLIC_HOST.to_string(),
                "-t",
                &secs,
                "-J",
                if reverse { "-R" } else { "-4" },
            ],
        )
        .unwrap_or_else(|e| panic!("iperf3: {e}\n{}", lab.log_tails(20)));
    let _ = lab.lab().wait(server);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no result in {out}"))
        / 1e9
}

fn kernel(nat: bool) -> (f64, f64) {
    let mut lab = RsipLab::build(spec()).unwrap();
    let gw = lab.gateway_ns.clone();
    lab.lab().set_ip_forward(&gw, true).unwrap();
    let h = lab.host_ns[0].clone();
    lab.run_ok(&h, "ip", &["route", "add", "default", "via", "10.0.0.1"])
        .unwrap();
    if nat {
        let rules = format!(
            "table ip realm_bench_nat {{\n chain post {{\n  type nat hook postrouting priority 100;\n  \
             oifname \"pub0\" snat to {GATEWAY_PUBLIC}\n }}\n}}\n"
        );
        // `snat to` the one public address is what MASQUERADE does on pub0.
        realm_io::netns::in_namespace(&gw, || realm_io::nft::apply(&rules))
            .unwrap()
            .unwrap();
    } else {
        let p = lab.public_ns.clone();
        lab.run_ok(
            &p,
            "ip",
            &["route", "add", "10.0.0.0/24", "via", "192.0.2.1"],
        )
        .unwrap();
    }
    (iperf(&mut lab, false), iperf(&mut lab, true))
}

fn rsip(extra: &[&str]) -> ((f64, f64), String) {
    let mut lab = RsipLab::build(spec_with(extra)).unwrap();
    lab.start_gateway().unwrap();
    lab.start_host(0, 1).unwrap();
    let gbps = (iperf(&mut lab, false), iperf(&mut lab, true));
    let d = lab.gateway_ctl("dataplane", &[]).unwrap();
    let c = &d["counters"];
    let summary = format!(
        "gateway: outbound {} packets ({} superpackets forwarded as GSO), inbound {}, drops out {} in {}, send errors {}",
        c["outbound"]["packets"],
        d["gso_forwarded"],
        c["inbound"]["packets"],
        total(&c["outbound"]["drops"]),
        total(&c["inbound"]["drops"]),
        d["send_errors"]
    );
    (gbps, summary)
}

fn total(drops: &serde_json::Value) -> u64 {
    drops
        .as_object()
        .map(|m| m.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` run passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("lab_iperf: run with `cargo bench -p realm --bench lab_iperf` (root)");
        return;
    }
    let secs = seconds();
    println!("iperf3 TCP, {secs} s each, through the lab topology");
    println!("                      host1 -> public    public -> host1 (-R)");
    let routing = kernel(false);
    println!(
        "  kernel routing      {:6.2} Gbit/s      {:6.2} Gbit/s",
        routing.0, routing.1
    );
    let nat = kernel(true);
    println!(
        "  kernel NAT          {:6.2} Gbit/s      {:6.2} Gbit/s",
        nat.0, nat.1
    );
    let (r, summary) = rsip(&[]);
    println!(
        "  RSIP (realm)        {:6.2} Gbit/s      {:6.2} Gbit/s",
        r.0, r.1
    );
    let (plain, _) = rsip(&["--no-kernel-offload"]);
    println!(
        "  RSIP, no offload    {:6.2} Gbit/s      {:6.2} Gbit/s",
        plain.0, plain.1
    );
    println!(
        "  RSIP / kernel NAT   {:6.3}x            {:6.3}x",
        r.0 / nat.0,
        r.1 / nat.1
    );
    println!(
        "  RSIP / routing      {:6.3}x            {:6.3}x",
        r.0 / routing.0,
        r.1 / routing.1
    );
    println!("  {summary}");
}
