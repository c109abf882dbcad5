//! realm-ike's sans-IO IKEv1 engine (`realm_ike::engine::Ike`) as a responder,
//! with a real initiator engine beside it producing valid messages to replay
//! and mutate.
//!
//! The first input byte picks the initiator's options (forced NAT-T, DPD);
//! the rest is a program of at most 64 operations: an arbitrary datagram to
//! the responder (port 500 or 4500, with or without the non-ESP marker, from
//! one of four sources) or to the initiator; a copy of a message the
//! initiator (or the responder) sent, replayed with one mutation (a byte set,
//! a bit flipped, a byte inserted, a truncation, the responder's latest
//! cookie spliced in as CKY-R) from its own or another source; carrying the
//! queued datagrams between the two engines (some lost); time moving on
//! (with `handle_timeout` when due); `initiate` and `terminate` on either
//! engine. Transmits and events are drained after each.
//!
//! Both engines use AwsLcCrypto with a seeded random source and DH key pairs
//! made from it, so every execution is deterministic.
//!
//! Asserted: no panic; the responder sends only from its own address, on 500
//! or 4500 (there after the non-ESP marker), only to an address that sent it
//! something, and never more than an ISAKMP header's worth of garbage; it
//! keeps at most `max_half_open` exchanges before the cookie echo and no more
//! SAs in all than that plus the datagrams that carried a responder cookie;
//! the initiator sends only to the responder; a handled timeout is not due
//! again at once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_ike::config::IkeConfig;
use realm_ike::crypto::{Digest, PrfOutput, SharedSecret};
use realm_ike::engine::{EngineConfig, Ike, NON_ESP_MARKER, Transmit};
use realm_ike::{
    AwsLcCrypto, AwsLcKeyPair, CipherAlgorithm, Crypto, CryptoError, DhGroup, HashAlgorithm,
    PrfAlgorithm,
};
use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Operations per input.
const MAX_OPS: usize = 64;
/// Datagrams queued per direction, and messages kept to replay.
const QUEUE: usize = 32;
/// The responder's bound on exchanges before the cookie echo.
const MAX_HALF_OPEN: usize = 4;

const I: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Where datagrams come from: the initiator, and three strangers.
const SOURCES: [Ipv4Addr; 4] = [
    I,
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(203, 0, 113, 9),
    Ipv4Addr::new(192, 0, 2, 3),
];

/// AwsLcCrypto with a seeded random source (xorshift64*), whose DH key pairs
/// are made from that source: an execution depends only on its input.
struct FuzzCrypto {
    inner: AwsLcCrypto,
    state: Cell<u64>,
}

impl FuzzCrypto {
    fn new(seed: u64) -> Self {
        Self {
            inner: AwsLcCrypto::new(),
            state: Cell::new(seed | 1),
        }
    }
}

impl Crypto for FuzzCrypto {
    type KeyPair = AwsLcKeyPair;

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for b in out {
            let mut x = self.state.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state.set(x);
            *b = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
        Ok(())
    }

    fn generate_key_pair(&self, group: DhGroup) -> Result<AwsLcKeyPair, CryptoError> {
        // An ECP scalar of the coordinate length, below the group order (top bit clear); a
        // MODP exponent of 256 bits.
        let len = match group {
            DhGroup::Ecp384 => 48,
            _ => 32,
        };
        let mut private = vec![0u8; len];
        self.fill_random(&mut private)?;
        private[0] &= 0x7f;
        private[len - 1] |= 1;
        self.inner.key_pair_from_private(group, &private)
    }

    fn agree(&self, kp: &AwsLcKeyPair, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        self.inner.agree(kp, peer)
    }

    fn prf(&self, prf: PrfAlgorithm, key: &[u8], data: &[&[u8]]) -> Result<PrfOutput, CryptoError> {
        self.inner.prf(prf, key, data)
    }

    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Result<Digest, CryptoError> {
        self.inner.hash(hash, data)
    }

    fn encrypt_cbc(
        &self,
        c: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.encrypt_cbc(c, key, iv, data)
    }

    fn decrypt_cbc(
        &self,
        c: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.decrypt_cbc(c, key, iv, data)
    }
}

fn config(me: Ipv4Addr, remote: &str, local_ts: &str, remote_ts: &str, extra: &str) -> IkeConfig {
    let text = format!(
        r#"
[connections.site]
version = 1
local_addrs = "{me}"
remote_addrs = "{remote}"
proposals = "aes128-sha256-ecp256,aes256-sha1-ecp256"
{extra}
local.auth = "psk"
remote.auth = "psk"

[connections.site.children.net]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = "aes128gcm16-ecp256,aes128-sha256-ecp256"
rekey_time = "60s"
life_time = "70s"
rand_time = "5s"

[secrets.ike-site]
secret = "a shared secret"
"#
    );
    IkeConfig::parse(&text, "fuzz.toml").expect("the fuzz configuration parses")
}

/// The initiator's configuration for `mode` (bit 0: forced NAT-T, bit 1: DPD) and the
/// responder's, parsed once.
fn configs(mode: u8) -> (IkeConfig, IkeConfig) {
    static CONFIGS: OnceLock<(Vec<IkeConfig>, IkeConfig)> = OnceLock::new();
    let (initiators, responder) = CONFIGS.get_or_init(|| {
        let initiators = (0..4)
            .map(|m| {
                let mut extra = String::new();
                if m & 1 != 0 {
                    extra.push_str("encap = true\n");
                }
                if m & 2 != 0 {
                    extra.push_str("dpd_delay = \"10s\"\ndpd_timeout = \"30s\"\n");
                }
                config(I, &R.to_string(), "10.1.0.0/16", "10.2.0.0/16", &extra)
            })
            .collect();
        // The responder takes anyone (remote_addrs %any), so strangers reach its exchanges.
        let responder = config(R, "%any", "10.2.0.0/16", "10.1.0.0/16", "");
        (initiators, responder)
    });
    (initiators[usize::from(mode & 3)].clone(), responder.clone())
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn ike_sas(ike: &Ike<FuzzCrypto>, now: Instant) -> (usize, usize) {
    let views = ike.ike_sas(now);
    let half_open = views
        .iter()
        .filter(|v| !v.initiator && v.state == "MM_SA_R")
        .count();
    (views.len(), half_open)
}

struct Harness {
    now: Instant,
    i: Ike<FuzzCrypto>,
    r: Ike<FuzzCrypto>,
    /// The initiator's datagrams on their way to the responder, and back.
    to_r: VecDeque<Transmit>,
    to_i: VecDeque<Transmit>,
    /// The last datagrams each sent, to replay.
    sent_by_i: VecDeque<Transmit>,
    sent_by_r: VecDeque<Transmit>,
    /// Every address that sent the responder something.
    heard_by_r: HashSet<SocketAddr>,
    /// Datagrams given to the responder whose CKY-R was not zero.
    with_cky_r: usize,
    /// CKY-R of the responder's latest message.
    cky_r: [u8; 8],
}

fn push(q: &mut VecDeque<Transmit>, t: Transmit) {
    if q.len() == QUEUE {
        q.pop_front();
    }
    q.push_back(t);
}

/// The IKE message in a datagram received on `local`: without the marker on 4500.
fn ike_message(local: SocketAddr, bytes: &[u8]) -> &[u8] {
    if local.port() == 4500 {
        bytes.strip_prefix(&NON_ESP_MARKER).unwrap_or(&[])
    } else {
        bytes
    }
}

impl Harness {
    fn deliver_to_responder(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let m = ike_message(local, bytes);
        if m.len() >= 16 && m[8..16] != [0; 8] {
            self.with_cky_r += 1;
        }
        self.heard_by_r.insert(remote);
        self.r.handle_datagram(self.now, local, remote, bytes);
    }

    fn deliver_to_initiator(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        self.i.handle_datagram(self.now, local, remote, bytes);
    }

    fn drain(&mut self) {
        while self.i.poll_event().is_some() {}
        while self.r.poll_event().is_some() {}
        while let Some(t) = self.i.poll_transmit() {
            assert_eq!(
                t.remote.ip(),
                IpAddr::V4(R),
                "the initiator sends to its peer"
            );
            assert_eq!(t.local.ip(), IpAddr::V4(I));
            push(&mut self.sent_by_i, t.clone());
            push(&mut self.to_r, t);
        }
        while let Some(t) = self.r.poll_transmit() {
            assert_eq!(
                t.local.ip(),
                IpAddr::V4(R),
                "the responder sends from its address"
            );
            assert!(
                matches!(t.local.port(), 500 | 4500),
                "from port {}",
                t.local.port()
            );
            assert!(
                self.heard_by_r.contains(&t.remote),
                "the responder sends {} only to an address it heard from",
                t.remote
            );
            let m = ike_message(t.local, &t.bytes);
            assert!(m.len() >= 28, "every transmit is an ISAKMP message");
            self.cky_r.copy_from_slice(&m[8..16]);
            push(&mut self.sent_by_r, t.clone());
            // What goes to the strangers is lost.
            if t.remote.ip() == IpAddr::V4(I) {
                push(&mut self.to_i, t);
            }
        }
        let (all, half_open) = ike_sas(&self.r, self.now);
        assert!(
            half_open <= MAX_HALF_OPEN,
            "{half_open} half-open exchanges"
        );
        assert!(
            all <= MAX_HALF_OPEN + self.with_cky_r,
            "{all} SAs after {} cookie echoes",
            self.with_cky_r
        );
    }

    fn timeout(&mut self) {
        for ike in [&mut self.i, &mut self.r] {
            if ike.poll_timeout().is_some_and(|t| t <= self.now) {
                ike.handle_timeout(self.now);
                if let Some(t) = ike.poll_timeout() {
                    assert!(t > self.now, "a handled timeout is not due again at once");
                }
            }
        }
    }
}

/// `bytes` changed once: `kind` picks how, `at` where, `val` with what.
fn mutate(bytes: &mut Vec<u8>, kind: u8, at: u8, val: u8, cky_r: [u8; 8]) {
    let at = if bytes.is_empty() {
        0
    } else {
        usize::from(at) * bytes.len() / 256
    };
    match kind % 6 {
        0 => {}
        1 => {
            if let Some(b) = bytes.get_mut(at) {
                *b = val;
            }
        }
        2 => {
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1 << (val & 7);
            }
        }
        3 => bytes.insert(at, val),
        4 => bytes.truncate(at),
        _ => {
            // The cookie echo: CKY-R as the responder last sent it (after the marker, if any).
            let off = if bytes.starts_with(&NON_ESP_MARKER) {
                4
            } else {
                0
            };
            if let Some(c) = bytes.get_mut(off + 8..off + 16) {
                c.copy_from_slice(&cky_r);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let now = epoch();
    let (ci, cr) = configs(mode);
    let mut er = EngineConfig::new(R);
    er.max_half_open = MAX_HALF_OPEN;
    let (Ok(i), Ok(r)) = (
        Ike::new(FuzzCrypto::new(1), EngineConfig::new(I), ci, now, std::time::UNIX_EPOCH),
        Ike::new(FuzzCrypto::new(2), er, cr, now, std::time::UNIX_EPOCH),
    ) else {
        return;
    };
    let mut h = Harness {
        now,
        i,
        r,
        to_r: VecDeque::new(),
        to_i: VecDeque::new(),
        sent_by_i: VecDeque::new(),
        sent_by_r: VecDeque::new(),
        heard_by_r: HashSet::new(),
        with_cky_r: 0,
        cky_r: [0; 8],
    };
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        rest = tail;
        let Some((&arg, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let source = SOURCES[usize::from(op >> 4 & 3)];
        let nat_t = op & 0x40 != 0;
        match op & 0x0f {
            0..=3 => {
                // Arbitrary bytes (a length, then that many), to the responder or (3) the
                // initiator, on 500 or 4500, with the marker prepended when op's top bit says.
                let n = usize::from(arg).min(rest.len());
                let (body, tail) = rest.split_at(n);
                rest = tail;
                let mut bytes = Vec::with_capacity(n + 4);
                if nat_t && op & 0x80 != 0 {
                    bytes.extend_from_slice(&NON_ESP_MARKER);
                }
                bytes.extend_from_slice(body);
                let port = if nat_t { 4500 } else { 500 };
                if op & 0x0f == 3 {
                    let local = SocketAddr::new(IpAddr::V4(I), port);
                    h.deliver_to_initiator(local, SocketAddr::new(IpAddr::V4(R), port), &bytes);
                } else {
                    let local = SocketAddr::new(IpAddr::V4(R), port);
                    h.deliver_to_responder(
                        local,
                        SocketAddr::new(IpAddr::V4(source), port),
                        &bytes,
                    );
                }
            }
            4..=7 => {
                // A message the initiator (7: the responder) sent, mutated, replayed from
                // where it came (to the responder: or from a stranger, to the port it went to).
                let Some((&[kind, at, val], tail)) = rest.split_first_chunk::<3>() else {
                    break;
                };
                rest = tail;
                let to_i = op & 0x0f == 7;
                let pool = if to_i { &h.sent_by_r } else { &h.sent_by_i };
                if pool.is_empty() {
                    continue;
                }
                let t = pool[usize::from(arg) % pool.len()].clone();
                let mut bytes = t.bytes;
                mutate(&mut bytes, kind, at, val, h.cky_r);
                if to_i {
                    // To the initiator's own address (the responder may have sent it to a
                    // stranger), on the port it went to.
                    let local = SocketAddr::new(IpAddr::V4(I), t.remote.port());
                    h.deliver_to_initiator(local, t.local, &bytes);
                } else {
                    let from = if op & 0x30 == 0 {
                        t.local
                    } else {
                        SocketAddr::new(IpAddr::V4(source), t.local.port())
                    };
                    h.deliver_to_responder(t.remote, from, &bytes);
                }
            }
            8..=9 => {
                // Carry up to arg % 16 + 1 queued datagrams each way; bit 4 of arg loses the
                // first one from the responder, bit 5 the first from the initiator.
                let mut lose_r = arg & 0x10 != 0;
                let mut lose_i = arg & 0x20 != 0;
                for _ in 0..=arg % 16 {
                    let a = h.to_r.pop_front();
                    let b = h.to_i.pop_front();
                    if a.is_none() && b.is_none() {
                        break;
                    }
                    if let Some(t) = a {
                        if !std::mem::take(&mut lose_i) {
                            h.deliver_to_responder(t.remote, t.local, &t.bytes);
                        }
                    }
                    if let Some(t) = b {
                        if !std::mem::take(&mut lose_r) {
                            h.deliver_to_initiator(t.remote, t.local, &t.bytes);
                        }
                    }
                    h.drain();
                }
            }
            10..=11 => {
                let step = if op & 0x0f == 10 { 1 } else { 7 };
                h.now += Duration::from_secs(u64::from(arg) * step);
                h.timeout();
            }
            12 => {
                let _ = h.i.initiate(h.now, "net");
            }
            13 => {
                // The responder's remote_addrs is %any: it has nowhere to start Main Mode to,
                // but Quick Mode under an established SA it may.
                let _ = h.r.initiate(h.now, "net");
            }
            14 => {
                let _ = h.i.terminate(h.now, "site");
            }
            _ => {
                if arg & 1 != 0 {
                    h.r.shutdown(h.now);
                } else {
                    let _ = h.r.terminate(h.now, "site");
                }
            }
        }
        h.drain();
    }
});
