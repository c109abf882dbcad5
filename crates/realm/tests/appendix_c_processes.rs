//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 between a real
//! `realm host` and a real `realm gateway` (both processes, signalling only,
//! `--no-data-plane`), over TCP and over UDP on loopback, with the gateway
//! configured as each example assumes (`gateway_util`'s `CONFIG_16_*`, shared
//! with `gateway_appendix_c.rs`; the 16.2 LISTEN admin override names the
//! host, 127.0.0.1). The host is driven through its
//! control socket (`realm ctl --socket HOST --json query|assign|listen|extend
//! |free`); each answer (addresses, ports, leases, bind IDs, the refusal's
//! error code, the free and de-register outcomes) is checked, and so is what
//! the gateway's `realm ctl bindings --json` shows. The gateway's forced FREE
//! in 16.1 is `realm ctl free 2` on the gateway. The byte-level exchanges are
//! `gateway_appendix_c.rs`' business; this test is about the two daemons.
//! Loopback only (the gateway on 127.A.B.1, the host's source the kernel's,
//! 127.0.0.1); every wait is bounded and fails loudly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gateway_util::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// The host's private address as the gateway sees it.
const HOST_ADDR: &str = "127.0.0.1";

/// A `realm host` process with its config, control socket and log in the
/// gateway's test directory.
struct HostProc {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

impl HostProc {
    /// Starts a host for `g` with `bindings` (`[[host.bindings]]` tables) and
    /// waits until it is registered.
    fn start(g: &GatewayProc, udp: bool, bindings: &str) -> HostProc {
        let dir = g.dir.path();
        let socket = dir.join("host.sock");
        let log = dir.join("host.log");
        let config = dir.join("host.toml");
        std::fs::write(
            &config,
            format!(
                "[host]\ngateway = \"{gw}\"\ntransport = \"{t}\"\n{bindings}\n\
                 [daemon]\ndata_plane = false\nlog_level = \"debug\"\ncontrol_socket = \"{s}\"\n",
                gw = g.tcp_addr(),
                t = if udp { "udp" } else { "tcp" },
                s = socket.display(),
            ),
        )
        .unwrap();
        let child = Command::new(BIN)
            .arg("host")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn realm host");
        let mut h = HostProc {
            child: Some(child),
            socket,
            log,
        };
        let deadline = realm_io::clock::now() + WAIT;
        loop {
            h.assert_running();
            if let Ok(s) = h.try_ctl(&["status"])
                && !s["registration"].is_null()
            {
                return h;
            }
            assert!(
                realm_io::clock::now() < deadline,
                "host not registered within {WAIT:?}\n{}\n--- gateway\n{}",
                h.log(),
                g.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("realm host exited early: {s}\n{}", self.log());
        }
    }

    /// `realm ctl --socket HOST --json ARGS`: the result, or the error line
    /// when the daemon answered with an error (exit status 1).
    fn try_ctl(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(BIN)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap()),
            Some(1) => Err(stderr),
            other => Err(format!("realm ctl could not ask ({other:?}): {stderr}")),
        }
    }

    /// Like [`HostProc::try_ctl`], the daemon's error a test failure.
    fn ctl(&self, args: &[&str]) -> Value {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("realm ctl {args:?}: {e}\n{}", self.log()))
    }

    /// SIGTERM; the exit status (waits at most 20 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        terminate_child(&mut c, "realm host", || self.log())
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn gw_bindings(g: &GatewayProc) -> Vec<Value> {
    g.ctl(&["bindings"]).as_array().unwrap().clone()
}

/// The gateway's record of bind ID `bind`.
fn gw_binding(g: &GatewayProc, bind: u64) -> Value {
    gw_bindings(g)
        .into_iter()
        .find(|b| b["bind"] == bind)
        .unwrap_or_else(|| panic!("gateway has no binding {bind}: {:#?}", gw_bindings(g)))
}

/// The registration as the host reports it, checked against the gateway's
/// host record; the client ID.
fn check_registration(g: &GatewayProc, h: &HostProc, udp: bool) -> Value {
    let status = h.ctl(&["status"]);
    assert_eq!(status["daemon"], "host");
    assert_eq!(status["transport"], if udp { "udp" } else { "tcp" });
    let hosts = g.ctl(&["hosts"]);
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{hosts:#?}");
    let record = &hosts[0]["record"];
    assert_eq!(record["private_address"], HOST_ADDR, "{record:#}");
    assert_eq!(record["transport"], if udp { "udp" } else { "tcp" });
    let reg = status["registration"].clone();
    assert_eq!(reg["client"], record["client"], "{reg:#} vs {record:#}");
    reg
}

/// Waits until the host's own `bindings` lists exactly `binds`.
fn wait_host_binds(h: &HostProc, binds: &[u64]) {
    let deadline = realm_io::clock::now() + WAIT;
    loop {
        let now: Vec<u64> = h
            .ctl(&["bindings"])
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bind"].as_u64().unwrap())
            .collect();
        if now == binds {
            return;
        }
        assert!(
            realm_io::clock::now() < deadline,
            "host bindings {now:?}, want {binds:?}\n{}",
            h.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM: the host de-registers (RFC 3103 9.4) and exits 0; the gateway
/// then holds no host and no binding.
fn deregister(g: &GatewayProc, mut h: HostProc) {
    let status = h.terminate();
    assert!(status.success(), "host exit {status}\n{}", h.log());
    assert_eq!(g.ctl(&["hosts"]), json!([]));
    assert_eq!(g.ctl(&["bindings"]), json!([]));
    assert_eq!(
        g.metric(r#"realm_gateway_deregistrations_total{reason="requested"}"#),
        1.0
    );
    assert!(!h.socket.exists(), "control socket left behind");
}

/// 16.1: macro local policy, no remote policy. ASSIGN 4 "don't care" ports,
/// QUERY a network (local), ASSIGN 8 specific ports, FREE the first binding,
/// EXTEND the second, the gateway frees it, DE-REGISTER.
fn run_16_1(udp: bool) {
    let g = GatewayProc::start(CONFIG_16_1);
    let h = HostProc::start(&g, udp, "");
    let reg = check_registration(&g, &h, udp);
    assert_eq!(reg["flow_policy"]["local"], "macro", "{reg:#}");
    assert_eq!(reg["methods"], json!(["rsap-ip"]));
    assert_eq!(reg["tunnel_types"], json!(["ip-ip"]));
    assert_eq!(reg["lease_secs"], 600);

    // ASSIGN_REQUEST_RSAP-IP (Ports 4-0, Lease 3600) -> bind 1, 4-1234, 1800.
    let b1 = h.ctl(&["assign", "ports=4", "lease=3600"]);
    assert_eq!(b1["bind"], 1, "{b1:#}");
    assert_eq!(b1["kind"], "assign");
    assert_eq!(b1["method"], "rsap-ip");
    assert_eq!(b1["local_address"], "149.112.240.156");
    assert_eq!(b1["ports"], json!([1234, 1235, 1236, 1237]));
    assert_eq!(b1["remote_address"], Value::Null);
    assert_eq!(b1["lease_secs"], 1800, "capped at max_binding_lease_secs");
    assert_eq!(b1["tunnel"], "ip-ip");

    // QUERY_REQUEST (network 10.20.60.0/255.255.255.0) -> local network.
    let q = h.ctl(&["query", "10.20.60.0/24"]);
    assert_eq!(q["local"], true, "{q:#}");
    assert_eq!(
        q["tuples"],
        json!([{"indicator": 2, "kind": "local network", "local": true,
                "address": "10.20.60.0", "netmask": "255.255.255.0"}])
    );
    // An address outside every local network: remote (no tuple applies).
    let q = h.ctl(&["query", "192.0.2.77"]);
    assert_eq!(q["local"], false, "{q:#}");

    // ASSIGN_REQUEST_RSAP-IP (149.112.240.156, Ports 8-1238, Lease 1800).
    let b2 = h.ctl(&[
        "assign",
        "local_address=149.112.240.156",
        "local_ports=1238-1245",
        "lease=1800",
    ]);
    assert_eq!(b2["bind"], 2, "{b2:#}");
    assert_eq!(b2["local_address"], "149.112.240.156");
    assert_eq!(b2["ports"], json!((1238..=1245).collect::<Vec<u16>>()));
    assert_eq!(b2["lease_secs"], 1800);
    wait_host_binds(&h, &[1, 2]);

    // The gateway holds both, for this host.
    let gb = gw_bindings(&g);
    assert_eq!(gb.len(), 2, "{gb:#?}");
    for (b, first, count) in [(1, 1234, 4), (2, 1238, 8)] {
        let r = gw_binding(&g, b);
        assert_eq!(r["client"], reg["client"], "{r:#}");
        assert_eq!(r["private_address"], HOST_ADDR);
        assert_eq!(r["public_address"], "149.112.240.156");
        assert_eq!(r["method"], "rsap-ip");
        assert_eq!(r["kind"], "assign");
        assert_eq!(r["ports"]["Range"]["first"], first, "{r:#}");
        assert_eq!(r["ports"]["Range"]["count"], count, "{r:#}");
        assert_eq!(r["lease_secs"], 1800);
    }

    // FREE_REQUEST (bind 1) -> FREE_RESPONSE: gone on both sides.
    let f = h.ctl(&["free", "1"]);
    assert_eq!(f, json!({"freed": 1, "reason": "freed"}));
    wait_host_binds(&h, &[2]);
    let gb = gw_bindings(&g);
    assert_eq!(gb.len(), 1, "{gb:#?}");
    assert_eq!(gb[0]["bind"], 2);
    // Freeing it again: the host holds no such binding.
    let e = h.try_ctl(&["free", "1"]).unwrap_err();
    assert!(e.contains("no binding"), "{e}");

    // EXTEND_REQUEST (bind 2, Lease 1800) -> EXTEND_RESPONSE (1800): the
    // gateway's lease end moves on.
    let before = gw_binding(&g, 2)["expires_at"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let x = h.ctl(&["extend", "2", "lease=1800"]);
    assert_eq!(x, json!({"bind": 2, "lease_secs": 1800}));
    let after = gw_binding(&g, 2)["expires_at"].as_u64().unwrap();
    assert!(after > before, "expires_at {before} -> {after}");
    assert_eq!(g.metric("realm_gateway_extensions_total"), 1.0);

    // "The gateway forces the host to free the resources of bind ID 2": an
    // unsolicited FREE_RESPONSE; the host drops the binding.
    assert_eq!(g.ctl(&["free", "2"])["freed"], 2);
    wait_host_binds(&h, &[]);
    assert_eq!(g.ctl(&["bindings"]), json!([]));
    let e = h.try_ctl(&["extend", "2"]).unwrap_err();
    assert!(e.contains("no binding"), "{e}");

    // DE-REGISTER_REQUEST -> DE-REGISTER_RESPONSE.
    deregister(&g, h);
    let log = g.alloc_log();
    assert_eq!(log.matches("event=grant").count(), 2, "{log}");
    assert_eq!(log.matches("event=extend").count(), 1, "{log}");
    assert_eq!(log.matches("event=free").count(), 2, "{log}");
}

#[test]
fn appendix_c_16_1_processes_over_tcp() {
    run_16_1(false);
}

#[test]
fn appendix_c_16_1_processes_over_udp() {
    run_16_1(true);
}

/// 16.2: micro/micro policy. ASSIGN one port for 38.196.73.6:21, LISTEN on
/// 149.112.240.156:2050 for 38.196.73.6:20, DE-REGISTER (which revokes
/// both).
fn run_16_2(udp: bool) {
    let g = GatewayProc::start(&config_16_2(Ipv4Addr::LOCALHOST));
    let h = HostProc::start(&g, udp, "");
    let reg = check_registration(&g, &h, udp);
    assert_eq!(
        reg["flow_policy"],
        json!({"local": "micro", "remote": "micro"})
    );
    assert_eq!(reg["methods"], json!(["rsap-ip", "rsa-ip"]));
    assert_eq!(reg["tunnel_types"], json!(["ip-ip", "gre"]));

    // ASSIGN_REQUEST_RSAP-IP (remote 38.196.73.6:21, Lease 600, IP-IP).
    let a = h.ctl(&[
        "assign",
        "remote_address=38.196.73.6",
        "remote_port=21",
        "lease=600",
        "tunnel=ip-ip",
    ]);
    assert_eq!(a["bind"], 1, "{a:#}");
    assert_eq!(a["local_address"], "149.112.240.156");
    assert_eq!(a["ports"], json!([2049]));
    assert_eq!(a["remote_address"], "38.196.73.6");
    assert_eq!(a["remote_ports"], json!([21]));
    assert_eq!(a["lease_secs"], 600);
    assert_eq!(a["tunnel"], "ip-ip");

    // LISTEN_REQUEST (149.112.240.156:2050 for 38.196.73.6:20).
    let l = h.ctl(&[
        "listen",
        "local_address=149.112.240.156",
        "port=2050",
        "remote_address=38.196.73.6",
        "remote_port=20",
    ]);
    assert_eq!(l["bind"], 2, "{l:#}");
    assert_eq!(l["kind"], "listen");
    assert_eq!(l["local_address"], "149.112.240.156");
    assert_eq!(l["ports"], json!([2050]));
    assert_eq!(l["remote_address"], "38.196.73.6");
    assert_eq!(l["remote_ports"], json!([20]));
    assert_eq!(l["lease_secs"], 600);
    wait_host_binds(&h, &[1, 2]);

    let r = gw_binding(&g, 1);
    assert_eq!(r["kind"], "assign", "{r:#}");
    assert_eq!(r["ports"]["Range"]["first"], 2049, "{r:#}");
    let r = gw_binding(&g, 2);
    assert_eq!(r["kind"], "listen", "{r:#}");
    assert_eq!(r["client"], reg["client"]);
    assert_eq!(r["public_address"], "149.112.240.156");
    assert_eq!(r["ports"]["Range"]["first"], 2050, "{r:#}");
    assert_eq!(r["ports"]["Range"]["count"], 1, "{r:#}");

    // "All of the host's bindings have been implicitly revoked."
    deregister(&g, h);
}

#[test]
fn appendix_c_16_2_processes_over_tcp() {
    run_16_2(false);
}

#[test]
fn appendix_c_16_2_processes_over_udp() {
    run_16_2(true);
}

/// 16.3: macro remote policy, RSA-IP. www.foo.com is refused with
/// REMOTE_ADDR_UNALLOWED; www.bar.com gets 149.112.240.17.
fn run_16_3(udp: bool) {
    let g = GatewayProc::start(CONFIG_16_3);
    let h = HostProc::start(&g, udp, "");
    let reg = check_registration(&g, &h, udp);
    assert_eq!(reg["flow_policy"]["remote"], "macro", "{reg:#}");
    assert_eq!(reg["tunnel_types"], json!(["ip-ip", "l2tp"]));

    let refused = [
        "assign",
        "method=rsa-ip",
        "remote_address=www.foo.com",
        "lease=3600",
        "tunnel=ip-ip",
    ];
    let e = h.try_ctl(&refused).unwrap_err();
    assert!(e.contains("REMOTE_ADDR_UNALLOWED (314)"), "{e}");
    assert_eq!(g.ctl(&["bindings"]), json!([]));

    let allowed = [
        "assign",
        "method=rsa-ip",
        "remote_address=www.bar.com",
        "lease=3600",
        "tunnel=ip-ip",
    ];
    let b = h.ctl(&allowed);
    assert_eq!(b["bind"], 1, "{b:#}");
    assert_eq!(b["method"], "rsa-ip");
    assert_eq!(b["local_address"], "149.112.240.17");
    assert_eq!(b["ports"], Value::Null, "RSA-IP leases the whole address");
    assert_eq!(b["remote_address"], "www.bar.com");
    assert_eq!(b["lease_secs"], 3600);
    let r = gw_binding(&g, 1);
    assert_eq!(r["method"], "rsa-ip", "{r:#}");
    assert_eq!(r["public_address"], "149.112.240.17");
    assert_eq!(r["client"], reg["client"]);

    deregister(&g, h);
    let m = g.metrics();
    assert_eq!(
        metric_in(
            &m,
            r#"realm_gateway_errors_total{code="314",name="REMOTE_ADDR_UNALLOWED"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn appendix_c_16_3_processes_over_tcp() {
    run_16_3(false);
}

#[test]
fn appendix_c_16_3_processes_over_udp() {
    run_16_3(true);
}

/// A `kind = "listen"` binding in `[[host.bindings]]` is acquired after
/// registering and held (the gateway lists it as a LISTEN binding on the
/// configured port) until the daemon stops.
#[test]
fn configured_listen_binding_is_held() {
    let g = GatewayProc::start(CONFIG_16_1);
    let h = HostProc::start(
        &g,
        false,
        "[[host.bindings]]\nkind = \"listen\"\nlocal_port = 8080\nlease_time = 600\n",
    );
    wait_host_binds(&h, &[1]);
    let b = &h.ctl(&["bindings"])[0];
    assert_eq!(b["kind"], "listen", "{b:#}");
    assert_eq!(b["request"], 1, "configured binding 0 is request 1");
    assert_eq!(b["ports"], json!([8080]));
    let r = gw_binding(&g, 1);
    assert_eq!(r["kind"], "listen", "{r:#}");
    assert_eq!(r["ports"]["Range"]["first"], 8080, "{r:#}");
    deregister(&g, h);
}
