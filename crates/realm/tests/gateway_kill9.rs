//! Crash safety of `realm gateway`: SIGKILL while hosts are being granted
//! leases, restart on the same store, and every binding a host got an answer
//! for is still there (`realm ctl bindings --json`), with its allocation log
//! line; hosts with valid leases EXTEND them over a new connection without
//! re-registering. Then SIGTERM stops the gateway cleanly (exit 0) and the
//! next start finds a clean shutdown. Both store durabilities.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gateway_util::*;
use realm_wire::rsip::{BindId, ClientId, Message, View};

const HOSTS: u8 = 8;

const CONFIG: &str = r#"
[gateway]
methods = ["rsap-ip"]
max_hosts = 64
[gateway.quota]
ports = 100000
bindings = 100000
[[gateway.pool]]
addresses = "198.18.0.0/28"
shared = false
"#;

fn run(durability: &str) {
    let sections = Sections {
        store: format!("durability = \"{durability}\""),
        limits: "messages_per_sec = 100000\nburst = 100000".into(),
        ..Sections::default()
    };
    let mut g = GatewayProc::start_with(&sections, CONFIG);

    let stop = Arc::new(AtomicBool::new(false));
    // Grants the hosts have received an answer for: the kill waits on this,
    // the same quantity the test asserts on after it.
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for i in 0..HOSTS {
        let from = g.net.addr(10 + i);
        let to = g.tcp_addr();
        let stop = Arc::clone(&stop);
        let answered = Arc::clone(&answered);
        workers.push(std::thread::spawn(move || {
            let mut h = TcpHost::connect(from, to);
            let client = h.register();
            let mut acked = Vec::new();
            // Several requests in flight, as a busy host would have.
            let window = 4;
            let mut outstanding = 0;
            loop {
                while outstanding < window && !stop.load(Ordering::Relaxed) {
                    // The kill can come before `stop` is set: a write then
                    // fails (reset), which ends this host's run like a
                    // failed read does.
                    if !h.try_send(&assign_ports(client, 1, None)) {
                        return (from, client, acked);
                    }
                    outstanding += 1;
                }
                if outstanding == 0 {
                    break;
                }
                // The gateway dies mid-run: the read fails or ends.
                match h.try_recv() {
                    Some(m) => {
                        outstanding -= 1;
                        match m.view() {
                            View::AssignResponseRsapIp { bind_id, .. } => {
                                acked.push(bind_id);
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("unexpected answer {other:?}"),
                        }
                    }
                    None => break,
                }
            }
            (from, client, acked)
        }));
    }
    // Let grants flow, then kill -9 in the middle of them.
    wait_until("200 acknowledged grants", Duration::from_secs(60), || {
        answered.load(Ordering::Relaxed) > 200
    });
    g.kill9();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(std::net::Ipv4Addr, ClientId, Vec<BindId>)> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    let acked: BTreeSet<u32> = results
        .iter()
        .flat_map(|(_, _, b)| b.iter().map(|b| b.0))
        .collect();
    assert!(
        acked.len() > 200,
        "only {} grants acknowledged",
        acked.len()
    );

    // Restart on the same store: every acknowledged binding is there.
    g.spawn();
    assert!(
        g.log().contains("previous shutdown unclean"),
        "the store saw the crash:\n{}",
        g.log()
    );
    let stored: BTreeSet<u32> = g.bind_ids().into_iter().collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged bindings lost: {lost:?}");
    // Every acknowledged grant has its allocation log line.
    let log = g.alloc_log();
    for b in &acked {
        assert!(
            log.contains(&format!(" bind={b} method=rsap-ip")),
            "no log line for bind {b}"
        );
    }

    // Hosts extend over a new connection, without registering again.
    for (from, client, binds) in &results {
        let Some(&bind) = binds.first() else { continue };
        let mut h = TcpHost::connect(*from, g.tcp_addr());
        let r = h.exchange(&Message::extend_request(*client, bind, Some(600), None));
        match r.view() {
            View::ExtendResponse {
                client_id, bind_id, ..
            } => {
                assert_eq!((client_id, bind_id), (*client, bind));
            }
            other => panic!("EXTEND after restart: {other:?}"),
        }
    }
    let hosts = g.ctl(&["hosts"]);
    assert_eq!(hosts.as_array().unwrap().len(), HOSTS as usize);
    assert_eq!(g.metric("realm_gateway_registrations_total"), 0.0);

    // SIGTERM: a clean stop, and the next start knows it.
    let status = g.terminate();
    assert!(status.success(), "exit status {status}\n{}", g.log());
    g.spawn();
    let after: BTreeSet<u32> = g.bind_ids().into_iter().collect();
    assert!(acked.is_subset(&after));
    assert!(
        g.log().contains("previous shutdown clean at"),
        "{}",
        g.log()
    );
    let status = g.terminate();
    assert!(status.success());
}

#[test]
fn kill_9_loses_no_acknowledged_binding_normal() {
    run("normal");
}

#[test]
fn kill_9_loses_no_acknowledged_binding_full() {
    run("full");
}
