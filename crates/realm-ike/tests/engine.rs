//! The IKEv1 engine end to end between two instances: datagrams carried by the test, time
//! passed in. Main Mode + Quick Mode, retransmission and duplicates, giving up, a wrong key,
//! a flood of first messages, selectors, Quick Mode begun by the phase 1 responder, rekeying
//! and expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::SeededCrypto;
use realm_ike::config::IkeConfig;
use realm_ike::engine::{
    ChildDownReason, ChildSaUp, EngineConfig, Event, Ike, LogLevel, RetransmitConfig, Transmit,
};

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

struct Conf<'a> {
    proposals: &'a str,
    esp: &'a str,
    local_ts: &'a str,
    remote_ts: &'a str,
    secret: &'a str,
    extra_child: &'a str,
    /// `remote_addrs`; empty: the peer's address.
    remote_addrs: &'a str,
    /// `encap = true`.
    encap: bool,
    /// Lines added to `[connections.site]`.
    extra_connection: &'a str,
    /// `local.auth` and `remote.auth`.
    auth: &'a str,
}

impl Default for Conf<'_> {
    fn default() -> Self {
        Conf {
            proposals: "aes128-sha256-ecp256",
            esp: "aes128gcm16",
            local_ts: "10.1.0.0/16",
            remote_ts: "10.2.0.0/16",
            secret: "a shared secret",
            extra_child: "",
            remote_addrs: "",
            encap: false,
            extra_connection: "",
            auth: "psk",
        }
    }
}

fn config(me: Ipv4Addr, peer: Ipv4Addr, c: &Conf<'_>) -> IkeConfig {
    let text = format!(
        r#"
[connections.site]
version = 1
local_addrs = "{me}"
remote_addrs = "{remote_addrs}"
proposals = "{proposals}"
encap = {encap}
{extra_connection}
local.auth = "{auth}"
remote.auth = "{auth}"

[connections.site.children.net]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = "{esp}"
{extra}

[secrets.ike-site]
secret = "{secret}"
"#,
        proposals = c.proposals,
        local_ts = c.local_ts,
        remote_ts = c.remote_ts,
        esp = c.esp,
        extra = c.extra_child,
        secret = c.secret,
        encap = c.encap,
        extra_connection = c.extra_connection,
        auth = c.auth,
        remote_addrs = if c.remote_addrs.is_empty() {
            peer.to_string()
        } else {
            c.remote_addrs.to_string()
        },
    );
    IkeConfig::parse(&text, "test.toml").unwrap()
}

fn swapped<'a>(c: &Conf<'a>) -> Conf<'a> {
    Conf {
        local_ts: c.remote_ts,
        remote_ts: c.local_ts,
        ..*c
    }
}

struct Net {
    now: Instant,
    a: Ike<SeededCrypto>,
    b: Ike<SeededCrypto>,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
    /// Every datagram carried, in order: (from A?, bytes).
    carried: Vec<(bool, Vec<u8>)>,
    /// Which of B's datagrams (counted from 0) are lost on the way.
    lose_from_b: Vec<usize>,
    /// Everything is lost (B unreachable).
    cut: bool,
    sent_by_b: usize,
}

#[allow(clippy::disallowed_methods)] // the test's arbitrary epoch
fn epoch() -> Instant {
    Instant::now()
}

impl Net {
    fn new(a: &Conf<'_>, b: &Conf<'_>) -> Net {
        Net::with(a, b, |_| {})
    }

    fn with(a: &Conf<'_>, b: &Conf<'_>, tune: impl Fn(&mut EngineConfig)) -> Net {
        let mut ca = EngineConfig::new(A);
        let mut cb = EngineConfig::new(B);
        tune(&mut ca);
        tune(&mut cb);
        Net::from_configs(a, b, ca, cb)
    }

    fn from_configs(a: &Conf<'_>, b: &Conf<'_>, ca: EngineConfig, cb: EngineConfig) -> Net {
        let now = epoch();
        let wall = common::certs::now();
        Net {
            now,
            a: Ike::new(SeededCrypto::new(1), ca, config(A, B, a), now, wall).unwrap(),
            b: Ike::new(SeededCrypto::new(2), cb, config(B, A, b), now, wall).unwrap(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            carried: Vec::new(),
            lose_from_b: Vec::new(),
            cut: false,
            sent_by_b: 0,
        }
    }

    /// Carries datagrams both ways until none is left; `lose` picks those lost on the way.
    fn pump_lossy(&mut self, mut lose: impl FnMut(bool, &Transmit) -> bool) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                assert_eq!(t.remote.ip(), IpAddr::V4(B));
                if !lose(true, &t) {
                    self.carried.push((true, t.bytes.clone()));
                    self.b
                        .handle_datagram(self.now, t.remote, t.local, &t.bytes);
                }
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                assert_eq!(t.remote.ip(), IpAddr::V4(A));
                self.sent_by_b += 1;
                if !lose(false, &t) && !self.lose_from_b.contains(&(self.sent_by_b - 1)) {
                    self.carried.push((false, t.bytes.clone()));
                    self.a
                        .handle_datagram(self.now, t.remote, t.local, &t.bytes);
                }
            }
            while let Some(e) = self.a.poll_event() {
                self.events_a.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.events_b.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the engines never went quiet");
    }

    fn pump(&mut self) {
        let cut = self.cut;
        self.pump_lossy(|_, _| cut);
    }

    /// Advances time to `t` through every timer on the way, carrying datagrams.
    fn advance_to(&mut self, t: Instant) {
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(n) if n <= t => {
                    self.now = self.now.max(n);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = t;
        self.a.handle_timeout(t);
        self.b.handle_timeout(t);
        self.pump();
    }

    fn child_ups(events: &[Event]) -> Vec<&ChildSaUp> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaUp(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }

    fn ike_ups(events: &[Event]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::IkeSaUp { .. }))
            .count()
    }

    fn logs(events: &[Event]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Log { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The two sides' views of one child SA pair agree: each one's outbound SA is the other's
/// inbound SA, with the same keys.
fn assert_pair_matches(x: &ChildSaUp, y: &ChildSaUp) {
    assert_eq!(x.pair.outbound.spi, y.pair.inbound.spi);
    assert_eq!(x.pair.inbound.spi, y.pair.outbound.spi);
    assert_eq!(
        x.pair.outbound.encryption_key.expose(),
        y.pair.inbound.encryption_key.expose()
    );
    assert_eq!(
        x.pair.inbound.encryption_key.expose(),
        y.pair.outbound.encryption_key.expose()
    );
    assert_ne!(
        x.pair.inbound.encryption_key.expose(),
        x.pair.outbound.encryption_key.expose()
    );
    assert_eq!(x.local_ts, y.remote_ts);
    assert_eq!(x.remote_ts, y.local_ts);
}

#[test]
fn main_mode_then_quick_mode_gives_both_sides_matching_child_sas() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_a), 1, "{:?}", net.events_a);
    assert_eq!(Net::ike_ups(&net.events_b), 1, "{:?}", net.events_b);
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!(
        (ua.len(), ub.len()),
        (1, 1),
        "{:?} / {:?}",
        net.events_a,
        net.events_b
    );
    assert_pair_matches(ua[0], ub[0]);
    assert_eq!(ua[0].local_ts.to_string(), "10.1.0.0/16");
    assert_eq!(ua[0].remote_ts.to_string(), "10.2.0.0/16");
    assert_eq!(ua[0].remote, SocketAddr::new(IpAddr::V4(B), 500));
    assert_eq!(ub[0].remote, SocketAddr::new(IpAddr::V4(A), 500));
    // Main Mode's six messages and Quick Mode's three, nothing else.
    assert_eq!(net.carried.len(), 9);
    let views = net.a.ike_sas(net.now);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].state, "ESTABLISHED");
    assert_eq!(views[0].proposal.as_deref(), Some("aes128-sha256-ecp256"));
    assert_eq!(views[0].peer_id.as_deref(), Some("192.0.2.2"));
    assert_eq!(views[0].children.len(), 1);
    assert_eq!(views[0].children[0].inbound_spi, ua[0].pair.inbound.spi);
    assert_eq!(net.b.ike_sas(net.now)[0].children.len(), 1);

    // A second child under the same ISAKMP SA: Quick Mode only.
    let before = net.carried.len();
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(net.carried.len() - before, 3);
    assert_eq!(Net::ike_ups(&net.events_a), 1);
    let ua = Net::child_ups(&net.events_a);
    assert_eq!(ua.len(), 2);
    assert_ne!(ua[0].pair.inbound.spi, ua[1].pair.inbound.spi);
}

#[test]
fn quick_mode_with_pfs_in_modp2048_and_aes_cbc_hmac() {
    let conf = Conf {
        proposals: "aes256-sha256-modp2048",
        esp: "aes128-sha256-modp2048",
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!((ua.len(), ub.len()), (1, 1), "{}", Net::logs(&net.events_b));
    assert_pair_matches(ua[0], ub[0]);
    assert_eq!(ua[0].pair.proposal.to_string(), "aes128-sha256-modp2048");
    assert!(ua[0].pair.outbound.integrity_key.is_some());
    // Phase 1 DH and the PFS DH on each side.
    assert_eq!(net.a.crypto().agreed.borrow().len(), 2);
    assert_eq!(net.b.crypto().agreed.borrow().len(), 2);
}

#[test]
fn a_lost_answer_is_retransmitted_and_the_duplicate_answered_from_the_stored_reply() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    // Lose B's first answer (message 2), and message 6 (B's fourth datagram: 2, 2 again, 4, 6).
    net.lose_from_b = vec![0, 3];
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_a), 0);
    let t = net.now + Duration::from_secs(5);
    net.advance_to(t);
    // Message 1 again: B answers from its stored reply, without a second exchange.
    assert_eq!(net.b.counters().duplicates_answered, 1);
    assert_eq!(net.b.ike_sas(net.now).len(), 1);
    assert_eq!(Net::ike_ups(&net.events_b), 1, "B is done after message 5");
    assert_eq!(Net::ike_ups(&net.events_a), 0, "message 6 was lost");
    let t = net.now + Duration::from_secs(5);
    net.advance_to(t);
    assert_eq!(net.b.counters().duplicates_answered, 2);
    assert_eq!(Net::ike_ups(&net.events_a), 1);
    assert_eq!(net.a.counters().retransmitted, 2);
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!((ua.len(), ub.len()), (1, 1));
    assert_pair_matches(ua[0], ub[0]);
    // B did the DH once.
    assert_eq!(net.b.crypto().generated.get(), 1);
}

#[test]
fn an_unanswered_initiator_retransmits_with_backoff_then_gives_up() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    let start = net.now;
    let mut sends = Vec::new();
    let mut at = start;
    for _ in 0..10 {
        while let Some(t) = net.a.poll_transmit() {
            assert_eq!(t.remote, SocketAddr::new(IpAddr::V4(B), 500));
            sends.push((at - start).as_millis());
        }
        let Some(next) = net.a.poll_timeout() else {
            break;
        };
        at = next;
        net.a.handle_timeout(at);
        while let Some(e) = net.a.poll_event() {
            net.events_a.push(e);
        }
        if !net.events_a.is_empty() {
            break;
        }
    }
    assert_eq!(sends, [0, 4000, 11200, 24160, 47488, 89478]);
    assert!(
        net.events_a
            .iter()
            .any(|e| matches!(e, Event::ChildFailed { child, .. } if child == "net")),
        "{:?}",
        net.events_a
    );
    assert!(
        net.events_a
            .iter()
            .any(|e| matches!(e, Event::IkeSaDown { .. }))
    );
    assert!(net.a.ike_sas(net.now).is_empty());
}

#[test]
fn a_wrong_pre_shared_key_establishes_nothing_and_is_logged() {
    let conf = Conf::default();
    let wrong = Conf {
        secret: "another secret",
        ..swapped(&conf)
    };
    let mut net = Net::new(&conf, &wrong);
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_a) + Net::ike_ups(&net.events_b), 0);
    assert!(
        Net::logs(&net.events_b).contains("Main Mode message refused"),
        "{}",
        Net::logs(&net.events_b)
    );
}

#[test]
fn a_flood_of_first_messages_from_spoofed_sources_is_bounded_and_does_no_dh() {
    let conf = Conf::default();
    let b = Conf {
        remote_addrs: "%any",
        ..swapped(&conf)
    };
    let mut net = Net::with(&conf, &b, |c| c.max_half_open = 64);
    // A real first message to replay from many sources with fresh cookies.
    net.a.initiate(net.now, "net").unwrap();
    let first = net.a.poll_transmit().unwrap();
    let b_local = first.remote;
    for i in 0..5000u32 {
        let mut m = first.bytes.clone();
        m[..4].copy_from_slice(&i.to_be_bytes());
        let src = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 250) as u8 + 1)),
            1024 + (i / 250) as u16,
        );
        net.b.handle_datagram(net.now, b_local, src, &m);
        while net.b.poll_transmit().is_some() {}
    }
    assert!(
        net.b.ike_sas(net.now).len() <= 64,
        "{}",
        net.b.ike_sas(net.now).len()
    );
    assert_eq!(net.b.counters().half_open_evicted, 5000 - 64);
    assert_eq!(
        net.b.crypto().generated.get(),
        0,
        "no DH key pair before the cookie echo"
    );
    assert!(net.b.crypto().agreed.borrow().is_empty());
    // The real initiator still gets through.
    net.b
        .handle_datagram(net.now, b_local, first.local, &first.bytes);
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_a), 1);
    assert_eq!(Net::child_ups(&net.events_b).len(), 1);
    // The half-open entries are forgotten after half_open_timeout.
    let t = net.now + Duration::from_secs(31);
    net.advance_to(t);
    assert_eq!(net.b.ike_sas(net.now).len(), 1);
}

#[test]
fn selectors_wider_than_the_responders_are_refused() {
    let conf = Conf {
        remote_ts: "10.0.0.0/8",
        ..Conf::default()
    };
    let b = Conf {
        local_ts: "10.2.0.0/16",
        remote_ts: "10.1.0.0/16",
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &b);
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_a), 1);
    assert!(Net::child_ups(&net.events_a).is_empty());
    assert!(Net::child_ups(&net.events_b).is_empty());
    let log = Net::logs(&net.events_b);
    assert!(
        log.contains("10.1.0.0/16 === 10.0.0.0/8 are not within 10.1.0.0/16 === 10.2.0.0/16"),
        "{log}"
    );

    // Narrower is fine.
    let narrow = Conf {
        remote_ts: "10.2.3.0/24",
        ..Conf::default()
    };
    let mut net = Net::new(&narrow, &b);
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let ub = Net::child_ups(&net.events_b);
    assert_eq!(ub.len(), 1, "{}", Net::logs(&net.events_b));
    assert_eq!(ub[0].local_ts.to_string(), "10.2.3.0/24");
}

#[test]
fn quick_mode_begun_by_the_phase_1_responder() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let before = net.carried.len();
    net.b.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(
        net.carried.len() - before,
        3,
        "Quick Mode under the existing SA"
    );
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!((ua.len(), ub.len()), (2, 2));
    assert_pair_matches(ua[1], ub[1]);
    assert_eq!(ub[1].local_ts.to_string(), "10.2.0.0/16");
}

#[test]
fn a_duplicate_quick_mode_offer_is_answered_from_the_stored_reply() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    net.a.initiate(net.now, "net").unwrap();
    let offer = net.a.poll_transmit().unwrap();
    net.b
        .handle_datagram(net.now, offer.remote, offer.local, &offer.bytes);
    let answer = net.b.poll_transmit().unwrap();
    net.b
        .handle_datagram(net.now, offer.remote, offer.local, &offer.bytes);
    let again = net.b.poll_transmit().unwrap();
    assert_eq!(answer, again);
    assert_eq!(net.b.counters().duplicates_answered, 1);
    net.a
        .handle_datagram(net.now, answer.remote, answer.local, &answer.bytes);
    net.pump();
    assert_eq!(Net::child_ups(&net.events_b).len(), 2);
}

#[test]
fn a_child_is_rekeyed_before_it_expires_and_the_old_pair_removed() {
    let child = "rekey_time = \"60s\"\nlife_time = \"70s\"\nrand_time = \"5s\"";
    let conf = Conf {
        extra_child: child,
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&conf));
    let start = net.now;
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let first = Net::child_ups(&net.events_a)[0].pair.inbound.spi;
    let first_b = Net::child_ups(&net.events_b)[0].pair.inbound.spi;
    net.advance_to(start + Duration::from_secs(61));
    let ua = Net::child_ups(&net.events_a);
    assert_eq!(ua.len(), 2, "rekeyed between 55 s and 60 s");
    assert_eq!(ua[1].replaces, Some(first));
    assert_pair_matches(ua[1], Net::child_ups(&net.events_b)[1]);
    let second = ua[1].pair.inbound.spi;
    assert!(net.events_a.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.inbound_spi == first && d.reason == ChildDownReason::Rekeyed)));
    // B's old pair goes at its hard lifetime at the latest.
    net.advance_to(start + Duration::from_secs(71));
    assert!(net.events_b.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.inbound_spi == first_b)));
    let views = net.a.ike_sas(net.now);
    assert_eq!(views[0].children.len(), 1);
    assert_eq!(views[0].children[0].inbound_spi, second);
}

#[test]
fn terminate_reports_the_children_down() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(net.a.terminate(net.now, "site").unwrap(), 1);
    net.pump();
    assert!(net.events_a.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.reason == ChildDownReason::Closed)));
    assert!(net.a.ike_sas(net.now).is_empty());
    assert!(net.a.initiate(net.now, "nope").is_err());
    assert!(net.a.terminate(net.now, "nope").is_err());
}

#[test]
fn garbage_and_unknown_cookies_are_dropped() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    let (l, r) = (
        SocketAddr::new(IpAddr::V4(B), 500),
        SocketAddr::new(IpAddr::V4(A), 500),
    );
    net.b.handle_datagram(net.now, l, r, &[1, 2, 3]);
    net.b
        .handle_datagram(net.now, SocketAddr::new(IpAddr::V4(B), 4500), r, &[0xff]);
    let mut m = vec![7u8; 28];
    m[16] = 1; // next payload SA
    m[17] = 0x10;
    m[18] = 2;
    net.b.handle_datagram(net.now, l, r, &m);
    assert_eq!(net.b.counters().dropped, 3);
    assert!(net.b.ike_sas(net.now).is_empty());
    let _ = LogLevel::Info;
    let _ = RetransmitConfig::default();
}

#[test]
fn forced_encapsulation_floats_to_4500_with_the_marker_and_encapsulates_esp() {
    let conf = Conf {
        encap: true,
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&Conf::default()));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!((ua.len(), ub.len()), (1, 1), "{}", Net::logs(&net.events_b));
    assert_pair_matches(ua[0], ub[0]);
    for up in [ua[0], ub[0]] {
        assert_eq!(up.local.port(), 4500);
        assert_eq!(up.remote.port(), 4500);
        assert_eq!(
            up.pair.encapsulation.udp,
            realm_ike::proposal::UdpEncapsulation::Rfc3947
        );
    }
    // Messages 1-4 on 500 without a marker; from message 5 on, the marker on 4500.
    assert_eq!(net.carried.len(), 9);
    for (i, (_, bytes)) in net.carried.iter().enumerate() {
        let marked = bytes.starts_with(&[0, 0, 0, 0]);
        assert_eq!(marked, i >= 4, "datagram {i}");
    }
    let view = &net.b.ike_sas(net.now)[0];
    assert_eq!(view.local.port(), 4500);
    assert_eq!(view.remote.port(), 4500);

    // Without encap and without a NAT: plain ESP on 500.
    let mut net = Net::new(&Conf::default(), &swapped(&Conf::default()));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let ua = Net::child_ups(&net.events_a);
    assert_eq!(
        ua[0].pair.encapsulation.udp,
        realm_ike::proposal::UdpEncapsulation::None
    );
    assert_eq!(ua[0].remote.port(), 500);
}

#[test]
fn terminate_sends_deletes_that_close_the_peers_sas_too() {
    let conf = Conf::default();
    let mut net = Net::new(&conf, &swapped(&conf));
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let b_spi = Net::child_ups(&net.events_b)[0].pair.inbound.spi;
    let before = net.carried.len();
    net.a.terminate(net.now, "site").unwrap();
    net.pump();
    // A Delete for the child SA, then one for the ISAKMP SA.
    assert_eq!(net.carried.len() - before, 2);
    assert!(net.events_b.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.inbound_spi == b_spi && d.reason == ChildDownReason::DeletedByPeer)));
    assert!(
        net.events_b.iter().any(
            |e| matches!(e, Event::IkeSaDown { reason, .. } if reason == "deleted by the peer")
        )
    );
    assert!(net.b.ike_sas(net.now).is_empty());
    // A replayed Delete finds nothing (and is not taken twice).
    let (from_a, replay) = net.carried[before].clone();
    assert!(from_a);
    let n = net.events_b.len();
    net.b.handle_datagram(
        net.now,
        SocketAddr::new(IpAddr::V4(B), 500),
        SocketAddr::new(IpAddr::V4(A), 500),
        &replay,
    );
    net.pump();
    assert_eq!(net.events_b.len(), n);
}

#[test]
fn dead_peer_detection_keeps_a_live_peer_and_declares_a_dead_one_then_restarts() {
    let conf = Conf {
        extra_connection: "dpd_delay = \"10s\"\ndpd_timeout = \"30s\"",
        extra_child: "dpd_action = \"restart\"",
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&Conf::default()));
    let start = net.now;
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let established = net.carried.len();
    // Idle for 25 s: probes (R-U-THERE) answered (R-U-THERE-ACK), the peer stays.
    net.advance_to(start + Duration::from_secs(25));
    let probes = net.carried.len() - established;
    assert!(
        probes >= 4 && probes.is_multiple_of(2),
        "{probes} datagrams"
    );
    assert!(
        !net.events_a
            .iter()
            .any(|e| matches!(e, Event::PeerDead { .. }))
    );
    // B goes silent: within dpd_timeout of the first unanswered probe A declares it dead.
    net.cut = true;
    net.advance_to(start + Duration::from_secs(25 + 10 + 30 + 1));
    assert!(
        net.events_a
            .iter()
            .any(|e| matches!(e, Event::PeerDead { .. })),
        "{:?}",
        net.events_a
    );
    assert!(net.events_a.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.reason == ChildDownReason::PeerDead)));
    // dpd_action = restart: a new Main Mode toward the peer.
    let views = net.a.ike_sas(net.now);
    assert_eq!(views.len(), 1, "{views:?}");
    assert_ne!(views[0].state, "ESTABLISHED");
}

#[test]
fn an_isakmp_sa_rekey_is_a_new_main_mode_that_adopts_the_children() {
    let conf = Conf {
        extra_connection: "rekey_time = \"30s\"\nrand_time = \"1s\"",
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&Conf::default()));
    let start = net.now;
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let child = Net::child_ups(&net.events_a)[0].pair.inbound.spi;
    let first = net.a.ike_sas(net.now)[0].id;
    net.advance_to(start + Duration::from_secs(31));
    assert_eq!(Net::ike_ups(&net.events_a), 2);
    assert_eq!(Net::ike_ups(&net.events_b), 2);
    for (side, views) in [("A", net.a.ike_sas(net.now)), ("B", net.b.ike_sas(net.now))] {
        assert_eq!(views.len(), 1, "{side}: {views:?}");
        assert_eq!(views[0].state, "ESTABLISHED");
        assert_eq!(
            views[0].children.len(),
            1,
            "{side}: the child moved to the new SA"
        );
    }
    assert_ne!(net.a.ike_sas(net.now)[0].id, first);
    assert_eq!(net.a.ike_sas(net.now)[0].children[0].inbound_spi, child);
    for events in [&net.events_a, &net.events_b] {
        assert!(
            !events.iter().any(|e| matches!(e, Event::ChildSaDown(_))),
            "{events:?}"
        );
        assert!(events.iter().any(|e| matches!(e, Event::IkeSaDown { .. })));
    }
    // The adopted child is closed under the new SA, and the peer hears of it.
    net.a.terminate(net.now, "site").unwrap();
    net.pump();
    assert!(net.events_b.iter().any(|e| matches!(e,
        Event::ChildSaDown(d) if d.reason == ChildDownReason::DeletedByPeer)));
}

#[test]
fn aggressive_mode_then_quick_mode_also_with_forced_nat_t_and_a_lost_message_2() {
    let a = Conf {
        extra_connection: "aggressive = true",
        ..Conf::default()
    };
    let b = Conf {
        extra_connection: "aggressive = true",
        ..swapped(&Conf::default())
    };
    let mut net = Net::new(&a, &b);
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!(
        (ua.len(), ub.len()),
        (1, 1),
        "{}\n{}",
        Net::logs(&net.events_a),
        Net::logs(&net.events_b)
    );
    assert_pair_matches(ua[0], ub[0]);
    // Three Aggressive Mode messages and Quick Mode's three.
    assert_eq!(net.carried.len(), 6);

    // Forced NAT-T and B's message 2 lost once: B resends it, A answers with its message 3.
    let a = Conf {
        extra_connection: "aggressive = true",
        encap: true,
        ..Conf::default()
    };
    let mut net = Net::new(&a, &b);
    net.lose_from_b = vec![0];
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let t = net.now + Duration::from_secs(5);
    net.advance_to(t);
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!(
        (ua.len(), ub.len()),
        (1, 1),
        "{}\n{}",
        Net::logs(&net.events_a),
        Net::logs(&net.events_b)
    );
    assert_eq!(ua[0].remote.port(), 4500);
    assert_eq!(ub[0].remote.port(), 4500);
    assert_eq!(
        ua[0].pair.encapsulation.udp,
        realm_ike::proposal::UdpEncapsulation::Rfc3947
    );

    // A Main Mode peer does not reach an aggressive-only responder.
    let mut net = Net::new(&Conf::default(), &b);
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    assert_eq!(Net::ike_ups(&net.events_b), 0);
    assert!(
        Net::logs(&net.events_b).contains("no connection matches"),
        "{}",
        Net::logs(&net.events_b)
    );
}

#[test]
fn main_mode_with_rsa_signatures_and_a_certificate_that_must_match_remote_id() {
    use common::certs::{MOON_IP, SUN_IP, VALID, credentials, host, root_ca};
    let ca = root_ca("Realm Test CA");
    let moon = host("moon.example.org", MOON_IP, &ca, VALID);
    let sun = host("sun.example.org", SUN_IP, &ca, VALID);
    let run = |remote_id_of_b: &str| {
        let extra_a = "local.certs = [\"moon.pem\"]\nremote.id = \"sun.example.org\"";
        let extra_b = format!("local.certs = [\"sun.pem\"]\nremote.id = \"{remote_id_of_b}\"");
        let a = Conf {
            auth: "pubkey",
            extra_connection: extra_a,
            ..Conf::default()
        };
        let b = Conf {
            auth: "pubkey",
            extra_connection: &extra_b,
            ..swapped(&Conf::default())
        };
        let mut ca_conf = EngineConfig::new(A);
        ca_conf
            .credentials
            .insert("site".into(), credentials(&moon, &ca, None));
        let mut cb_conf = EngineConfig::new(B);
        cb_conf
            .credentials
            .insert("site".into(), credentials(&sun, &ca, None));
        let mut net = Net::from_configs(&a, &b, ca_conf, cb_conf);
        net.a.initiate(net.now, "net").unwrap();
        net.pump();
        net
    };
    let net = run("moon.example.org");
    let (ua, ub) = (Net::child_ups(&net.events_a), Net::child_ups(&net.events_b));
    assert_eq!(
        (ua.len(), ub.len()),
        (1, 1),
        "{}\n{}",
        Net::logs(&net.events_a),
        Net::logs(&net.events_b)
    );
    assert_pair_matches(ua[0], ub[0]);
    // The identities are the certificates' subjects (ID_DER_ASN1_DN), strongSwan's default.
    let peer = net.a.ike_sas(net.now)[0].peer_id.clone().unwrap();
    assert!(peer.contains("sun.example.org"), "{peer}");
    // B expects another peer: moon's certificate does not match, nothing comes up on B.
    let net = run("venus.example.org");
    assert!(Net::child_ups(&net.events_b).is_empty());
    assert_eq!(
        Net::ike_ups(&net.events_b),
        0,
        "{}",
        Net::logs(&net.events_b)
    );
}

#[test]
fn a_child_rekey_cut_short_by_an_isakmp_rekey_begins_again_under_the_new_sa() {
    let conf = Conf {
        extra_connection: "rekey_time = \"19s\"\nrand_time = \"0s\"",
        extra_child: "rekey_time = \"19s\"\nlife_time = \"60s\"\nrand_time = \"0s\"",
        ..Conf::default()
    };
    let mut net = Net::new(&conf, &swapped(&Conf::default()));
    let start = net.now;
    net.a.initiate(net.now, "net").unwrap();
    net.pump();
    let first = Net::child_ups(&net.events_a)[0].pair.inbound.spi;
    // 18 s: the ISAKMP SA's rekey (a new Main Mode; the SA's lifetime is 20 s) begins; 19 s:
    // the child's rekey begins under the old SA. Nothing is carried in between.
    for t in [18, 19] {
        net.now = start + Duration::from_secs(t) + Duration::from_millis(500);
        net.a.handle_timeout(net.now);
        net.b.handle_timeout(net.now);
    }
    // The child rekey's Quick Mode message 1 is lost; the new ISAKMP SA comes up meanwhile and
    // the old one (with the unfinished Quick Mode) is deleted.
    let mut lost = false;
    net.pump_lossy(|from_a, t| {
        let b = t.bytes.strip_prefix(&[0, 0, 0, 0]).unwrap_or(&t.bytes);
        let quick_mode = b.get(18) == Some(&32);
        if from_a && quick_mode && !lost {
            lost = true;
            return true;
        }
        false
    });
    assert!(lost, "{:?}", net.a.ike_sas(net.now));
    assert_eq!(Net::ike_ups(&net.events_a), 2);
    // The rekey begins again under the new SA and replaces the first pair.
    let t = net.now + Duration::from_secs(1);
    net.advance_to(t);
    let ua = Net::child_ups(&net.events_a);
    assert_eq!(ua.len(), 2, "{}", Net::logs(&net.events_a));
    assert_eq!(ua[1].replaces, Some(first));
    let views = net.a.ike_sas(net.now);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].children.len(), 1);
    assert_eq!(views[0].children[0].inbound_spi, ua[1].pair.inbound.spi);
}
