//! `realm lab`: the live demo (the README's main command). Builds the
//! `realm-lab` topology (two RSIP hosts on a private network, a gateway with
//! ONE public address, a public host) in network namespaces, runs `realm
//! gateway` and `realm host` as real processes, sends traffic through RSIP,
//! prints the bindings and what passed, and tears everything down, also on
//! Ctrl-C or failure. `--keep` leaves it running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

use anyhow::{Context as _, bail};
use realm_lab::traffic::{self, Check};
use realm_lab::{HostSpec, LabSpec, RsipLab, Transport};
use serde_json::Value;

/// `realm lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Leave the lab running and print how to enter each namespace.
    #[arg(long)]
    keep: bool,
    /// Remove labs left by `--keep` (their namespaces and processes), then exit.
    #[arg(long, conflicts_with = "keep")]
    down: bool,
    /// RSIP hosts on the private network.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=20))]
    hosts: u8,
    /// Hosts signal over UDP instead of TCP.
    #[arg(long)]
    udp: bool,
    /// Daemon log level (their logs are in the lab directory).
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// The TCP port host 1 holds through a LISTEN binding.
const LISTEN_PORT: u16 = 28080;

/// Tools the lab runs, and the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("ping", "iputils-ping"),
];

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs what the lab needs with the project's script when something is
/// missing (non-interactive, only what is missing).
fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<_> = TOOLS.iter().filter(|(t, _)| !have(t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<_> = missing.iter().map(|(t, p)| format!("{t} ({p})")).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-deps");
    if !script.exists() {
        bail!("missing {}: install them", names.join(", "));
    }
    eprintln!(
        "realm lab: missing {}; running {}",
        names.join(", "),
        script.display()
    );
    let ok = Command::new("bash")
        .arg(&script)
        .status()
        .context("run scripts/install-deps")?
        .success();
    if !ok || TOOLS.iter().any(|(t, _)| !have(t)) {
        bail!("could not install {}", names.join(", "));
    }
    Ok(())
}

/// Runs the lab. `Ok(true)`: every check passed.
pub(crate) fn run(args: &LabArgs) -> anyhow::Result<bool> {
    if !nix_is_root() {
        bail!("realm lab builds network namespaces: run it as root (e.g. sudo)");
    }
    if args.down {
        return down();
    }
    ensure_tools()?;
    let realm = std::env::current_exe().context("path of the realm binary")?;
    let transport = if args.udp {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let mut spec = LabSpec::new(realm);
    spec.log_level.clone_from(&args.log_level);
    spec.keep = args.keep;
    spec.hosts = (0..args.hosts)
        .map(|i| {
            let mut h = HostSpec::ports(transport, 8);
            if i == 0 {
                h.args
                    .extend(["--listen".to_owned(), LISTEN_PORT.to_string()]);
            }
            h
        })
        .collect();

    // The lab runs on a thread; this one waits for it or for Ctrl-C, and
    // on Ctrl-C removes the lab itself (the thread never unwinds then).
    let (tag_tx, tag_rx) = mpsc::channel::<(String, PathBuf)>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let keep = args.keep;
    std::thread::spawn(move || {
        let r = drive(spec, keep, &tag_tx);
        let _ = done_tx.send(r);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        tokio::select! {
            r = done_rx => r.unwrap_or_else(|_| Err(anyhow::anyhow!("the lab thread died"))),
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nrealm lab: interrupted, tearing down");
                if let Ok((tag, dir)) = tag_rx.try_recv() {
                    let _ = realm_io::netns::destroy_lab(&tag);
                    let _ = std::fs::remove_dir_all(dir);
                }
                Ok(false)
            }
        }
    })
}

fn nix_is_root() -> bool {
    // `id -u`: no libc call (and no unsafe) needed in this crate.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn down() -> anyhow::Result<bool> {
    let mut tags: Vec<String> = realm_io::netns::list_namespaces()?
        .into_iter()
        // Only labs left by `--keep`: a running lab (a test, another `realm
        // lab`) is never touched; dead runs' leftovers go with cleanup_stale.
        .filter(|n| n.starts_with(realm_io::netns::KEEP_PREFIX) && n.ends_with("-gateway"))
        .filter_map(|n| n.strip_suffix("-gateway").map(str::to_owned))
        .collect();
    tags.sort();
    tags.dedup();
    let stale = realm_io::netns::cleanup_stale(realm_io::netns::PREFIX)?;
    if !stale.is_empty() {
        println!("removed stale lab namespaces: {}", stale.join(", "));
    }
    if tags.is_empty() {
        println!("no lab running");
    }
    for tag in tags {
        let removed = realm_io::netns::destroy_lab(&tag)?;
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("realm-{tag}")));
        println!("removed {tag}: {}", removed.join(", "));
    }
    Ok(true)
}

fn drive(spec: LabSpec, keep: bool, tag: &mpsc::Sender<(String, PathBuf)>) -> anyhow::Result<bool> {
    let hosts = spec.hosts.len();
    println!("realm lab: building namespaces (gateway, public, {hosts} hosts)");
    let mut lab = RsipLab::build(spec)?;
    let _ = tag.send((lab.lab().tag().to_owned(), lab.dir().to_owned()));
    println!(
        "  private 10.0.0.0/24: gateway 10.0.0.1, hosts {}",
        (0..hosts)
            .map(|i| realm_lab::topology::host_private(i).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  public 192.0.2.0/24: gateway {} (its ONE public address, shared), public host {}",
        realm_lab::topology::GATEWAY_PUBLIC,
        realm_lab::topology::PUBLIC_HOST
    );
    println!("  files and logs: {}", lab.dir().display());
    lab.start_gateway()?;
    println!("realm gateway running");
    for i in 0..hosts {
        let bindings = if i == 0 { 2 } else { 1 };
        lab.start_host(i, bindings)?;
        println!("realm host {} registered", i + 1);
    }

    let mut checks: Vec<Check> = Vec::new();
    for i in 0..hosts {
        checks.push(traffic::http_get(&lab, i, 8080));
        checks.push(traffic::udp_both_ways(
            &lab,
            i,
            9000 + u16::try_from(i).unwrap_or(0),
        ));
        checks.push(traffic::ping(&lab, i));
    }
    checks.push(traffic::inbound_to_listen(&lab, 0, LISTEN_PORT));

    println!();
    print_bindings(&lab)?;
    println!();
    print_checks(&checks);
    println!();
    print_data_plane(&lab)?;
    let ok = checks.iter().all(|c| c.ok);
    if !ok {
        println!("\nsome checks failed; daemon logs:\n{}", lab.log_tails(20));
    }
    if keep {
        let dir = lab.dir().to_owned();
        let gw_sock = lab.gateway_socket();
        let names = lab.keep();
        println!("\nthe lab keeps running (files in {}):", dir.display());
        for n in &names {
            println!("  ip netns exec {n} bash");
        }
        println!("  realm ctl --socket {} bindings", gw_sock.display());
        println!("remove it with: realm lab --down");
    } else {
        drop(lab);
        println!("\nlab torn down");
    }
    Ok(ok)
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn ports_text(v: &Value) -> String {
    let p = realm_lab::topology::ports_of(v);
    match (p.first(), p.last()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) if usize::from(b - a) + 1 == p.len() => format!("{a}-{b}"),
        (Some(_), Some(_)) => format!("{} ports", p.len()),
        _ => "-".into(),
    }
}

/// RFC 3103's names for the methods the gateway's JSON spells.
fn method_name(m: &str) -> String {
    match realm_wire::rsip::Method::from_name(m) {
        Some(m) => realm_wire::rsip::RsipMethod::from(m).to_string(),
        None => m.to_string(),
    }
}

fn print_bindings(lab: &RsipLab) -> anyhow::Result<()> {
    let all = lab.gateway_ctl("bindings", &[])?;
    println!("bindings (realm ctl bindings):");
    let rows: Vec<Vec<String>> = all
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|b| {
            let s = |k: &str| match &b[k] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            vec![
                s("bind"),
                s("private_address"),
                format!("{} {}", method_name(&s("method")), s("kind")),
                s("public_address"),
                ports_text(&b["ports"]),
                s("tunnel"),
                format!("{}s", s("lease_secs")),
            ]
        })
        .collect();
    print_table(
        &[
            "bind",
            "host",
            "method",
            "public address",
            "ports",
            "tunnel",
            "lease",
        ],
        &rows,
    );
    Ok(())
}

fn print_checks(checks: &[Check]) {
    println!("traffic:");
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                if c.ok { "ok" } else { "FAIL" }.to_owned(),
                c.name.clone(),
                c.from.clone(),
                c.to.clone(),
                c.detail.clone(),
            ]
        })
        .collect();
    print_table(&["result", "check", "from", "to", "seen"], &rows);
}

fn print_data_plane(lab: &RsipLab) -> anyhow::Result<()> {
    let d = lab.gateway_ctl("dataplane", &[])?;
    println!("gateway data plane (realm ctl dataplane):");
    let mut rows = Vec::new();
    for dir in ["outbound", "inbound"] {
        let c = &d["counters"][dir];
        let drops: Vec<String> = c["drops"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(vec![
            dir.to_owned(),
            c["packets"].to_string(),
            c["bytes"].to_string(),
            c["passed"].to_string(),
            c["local"].to_string(),
            if drops.is_empty() {
                "none".into()
            } else {
                drops.join(" ")
            },
        ]);
    }
    print_table(
        &[
            "direction",
            "packets",
            "bytes",
            "passed",
            "to gateway",
            "dropped",
        ],
        &rows,
    );
    print_hosts_data_plane(lab);
    Ok(())
}

/// Each host's data plane (`realm ctl status`): what its daemon tunnelled
/// and what the kernel offload carried.
fn print_hosts_data_plane(lab: &RsipLab) {
    println!();
    println!("host data planes (realm ctl status):");
    let rows: Vec<Vec<String>> = (0..lab.host_ns.len())
        .map(|i| {
            let s = lab
                .ctl(&lab.host_socket(i), "status", &[])
                .unwrap_or_default();
            let d = &s["data_plane"];
            let offload = &d["kernel_offload"];
            vec![
                format!("host{}", i + 1),
                d["outbound"].to_string(),
                d["inbound"].to_string(),
                if offload.is_null() {
                    "off".into()
                } else {
                    format!(
                        "{} superpackets, {} bytes",
                        offload["superpackets"], offload["bytes"]
                    )
                },
            ]
        })
        .collect();
    print_table(
        &["host", "tunnelled out", "received", "kernel offload"],
        &rows,
    );
}
