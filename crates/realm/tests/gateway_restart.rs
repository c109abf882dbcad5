//! Starting `realm gateway` on what an earlier run left: leases that ran out
//! while it was down are ended (and logged as expiries), and a corrupt store
//! is moved aside: the gateway starts empty, says so, and hosts register
//! again (RFC 3103 10.2.2).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::time::Duration;

use gateway_util::*;
use realm_wire::rsip::{Message, View};

const SHORT_LEASES: &str = r#"
[gateway]
registration_lease_secs = 2
default_binding_lease_secs = 1
max_binding_lease_secs = 1
[[gateway.pool]]
addresses = "192.0.2.1"
"#;

#[test]
fn leases_that_ran_out_while_down_are_ended_at_start() {
    let mut g = GatewayProc::start(SHORT_LEASES);
    let mut h = TcpHost::connect(g.net.addr(2), g.tcp_addr());
    let c = h.register();
    let b = bind_of(&h.exchange(&assign_ports(c, 2, None)));
    assert!(g.terminate().success());
    drop(h);
    std::thread::sleep(Duration::from_millis(2500));
    g.spawn();
    assert!(g.ctl(&["bindings"]).as_array().unwrap().is_empty());
    assert!(g.ctl(&["hosts"]).as_array().unwrap().is_empty());
    let log = g.alloc_log();
    assert!(
        log.contains(&format!("event=expire client={:#010x}", c.0))
            && log.contains(&format!("bind={}", b.0)),
        "{log}"
    );
    assert!(g.log().contains("expired_bindings=1"), "{}", g.log());
    // The host's next request names a client ID the gateway no longer has.
    let mut h = TcpHost::connect(g.net.addr(2), g.tcp_addr());
    let r = h.exchange(&Message::extend_request(c, b, None, None));
    assert!(r.error().is_some(), "{:?}", r.view());
    // It registers again and is served.
    let c2 = h.register();
    bind_of(&h.exchange(&assign_ports(c2, 1, None)));
}

#[test]
fn a_corrupt_store_is_moved_aside_and_the_gateway_starts_empty() {
    let mut g = GatewayProc::start(SHORT_LEASES);
    let mut h = TcpHost::connect(g.net.addr(2), g.tcp_addr());
    let c = h.register();
    bind_of(&h.exchange(&assign_ports(c, 1, None)));
    assert!(g.terminate().success());
    std::fs::write(g.store_path(), vec![0x5a; 8192]).unwrap();
    g.spawn();
    let log = g.log();
    assert!(log.contains("moved aside"), "{log}");
    assert!(g.ctl(&["bindings"]).as_array().unwrap().is_empty());
    let aside = std::fs::read_dir(g.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(aside, "the corrupt file is kept for inspection");
    let mut h = TcpHost::connect(g.net.addr(2), g.tcp_addr());
    let r = h.exchange(&Message::register_request(None));
    assert!(matches!(r.view(), View::RegisterResponse { .. }));
}
