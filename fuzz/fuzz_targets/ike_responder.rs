//! realm-ike's handling of what a peer sends before any key exists: the
//! RFC 2408 s5.1-5.3 checks (`isakmp::checks::check`, and `check_decrypted` on
//! the same bytes taken as plaintext), the Notify answer a rejection gets
//! (`isakmp::notify::reply`), and SA payload processing (s5.4-5.6:
//! `select_phase1` and `select_phase2` with the default proposals) of every SA
//! payload an accepted message carries.
//!
//! The first input byte picks the context (SA state, Message ID state,
//! padding rule, NAT-T draft payloads) and whether the lengths are first made
//! to agree with the buffer (as the `isakmp` target does), so the payload
//! checks and the SA processing are reached.
//!
//! Asserted: no panic; an answer is built only for a rejection whose policy
//! says an unprotected Notify, never for an Informational message nor before
//! the cookies are known (no SA: only a first message may be answered), is an
//! Informational exchange to the offending cookies, re-parses, and is at most
//! 60 bytes (no amplification); a chosen transform is one the peer offered,
//! echoed unchanged, under a configured proposal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::num::NonZeroU32;

use realm_ike::isakmp::checks::{
    Context, IKEV1_EXCHANGES, MessageIdState, SaState, Verdict, check, check_decrypted,
};
use realm_ike::isakmp::notify;
use realm_ike::proposal::{
    AuthMethod, EspProposals, IkeProposals, IpsecMode, Phase1Policy, Phase2Policy, select_phase1,
    UdpEncapsulation, select_phase2,
};
use realm_wire::isakmp::{
    Body, ExchangeType, Header, Message, Packet, Padding, PayloadBody, SecurityAssociation,
};

const HEADER: usize = 28;

fn set_len(buf: &mut [u8], at: usize, len: usize) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    buf[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Makes the header's Length and each generic payload length agree with the
/// buffer (the last payload stretched to the end).
fn fix_lengths(buf: &mut [u8]) {
    let total = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[24..28].copy_from_slice(&total.to_be_bytes());
    let mut at = HEADER;
    while at + 4 <= buf.len() {
        let next = buf[at];
        let declared = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        let len = if next == 0 || declared < 4 || at + declared > buf.len() {
            buf.len() - at
        } else {
            declared
        };
        set_len(buf, at, len);
        if next == 0 {
            return;
        }
        at += len;
    }
}

fn context(mode: u8) -> Context<'static> {
    let sa = match mode >> 1 & 3 {
        0 => SaState::None,
        1 => SaState::Phase1 {
            exchange: ExchangeType::IdentityProtection,
            keyed: mode & 0x08 != 0,
        },
        2 => SaState::Phase1 {
            exchange: ExchangeType::Aggressive,
            keyed: mode & 0x08 != 0,
        },
        _ => SaState::Established,
    };
    let mut ctx = Context::new(sa, &IKEV1_EXCHANGES);
    ctx.message_id = match mode >> 4 & 3 {
        0 => MessageIdState::Unused,
        1 => MessageIdState::InProgress(ExchangeType::QuickMode),
        _ => MessageIdState::Completed,
    };
    ctx.padding = if mode & 0x40 != 0 {
        Padding::Any
    } else {
        Padding::Forbidden
    };
    ctx.draft_nat_t = mode & 0x80 != 0;
    ctx
}

fn sas(msg: &Message) -> Vec<&SecurityAssociation> {
    let Body::Payloads(chain) = &msg.body else {
        return Vec::new();
    };
    chain
        .payloads
        .iter()
        .filter_map(|p| match &p.body {
            PayloadBody::SecurityAssociation(sa) => Some(sa),
            _ => None,
        })
        .collect()
}

fn select(sa: &SecurityAssociation) {
    let life = NonZeroU32::new(3600).expect("non-zero");
    let ike = IkeProposals::default_set();
    let offered = |t: &realm_wire::isakmp::Transform| {
        sa.proposals
            .iter()
            .any(|p| p.transforms.iter().any(|o| o == t))
    };
    if let Ok(c) = select_phase1(
        sa,
        &Phase1Policy::new(ike.as_slice(), AuthMethod::PreSharedKey, life),
    ) {
        assert!(
            offered(&c.transform),
            "phase 1: a transform the peer offered"
        );
        assert_eq!(ike.as_slice()[c.configured_index], c.proposal);
        let reply = c.reply();
        assert_eq!(reply.proposals.len(), 1);
        assert_eq!(reply.proposals[0].transforms, vec![c.transform.clone()]);
    }
    let esp = EspProposals::default_set();
    for (mode, encap) in [
        (IpsecMode::Tunnel, UdpEncapsulation::None),
        (IpsecMode::Tunnel, UdpEncapsulation::Rfc3947),
        (IpsecMode::Transport, UdpEncapsulation::None),
        (IpsecMode::Transport, UdpEncapsulation::Draft),
    ] {
        if let Ok(c) = select_phase2(sa, &Phase2Policy::new(esp.as_slice(), mode, encap, life)) {
            assert!(
                offered(&c.transform),
                "phase 2: a transform the peer offered"
            );
            assert_eq!(esp.as_slice()[c.configured_index], c.proposal);
            assert_eq!(
                c.reply([1, 2, 3, 4]).proposals[0].transforms,
                vec![c.transform.clone()]
            );
        }
    }
}

fn judge(bytes: &[u8], ctx: &Context<'_>, verdict: &Verdict) {
    match verdict {
        Verdict::Accept(msg) => {
            for sa in sas(msg) {
                select(sa);
            }
        }
        Verdict::Reject(r) => {
            let Some(answer) = notify::reply(r, 0x0102_0304) else {
                return;
            };
            let offending = r.header.as_ref().expect("an answer has a header to answer");
            assert_ne!(
                offending.exchange_type,
                ExchangeType::Informational,
                "an Informational message is never answered"
            );
            if ctx.sa == SaState::None {
                assert_eq!(
                    offending.responder_cookie, [0; 8],
                    "only a first message is answered without an SA"
                );
            }
            assert_eq!(answer.header.exchange_type, ExchangeType::Informational);
            assert_eq!(answer.header.initiator_cookie, offending.initiator_cookie);
            let wire = answer.to_bytes().expect("an answer emits");
            assert!(
                wire.len() <= 60,
                "answer of {} bytes to {} bytes",
                wire.len(),
                bytes.len()
            );
            assert_eq!(Message::parse(&wire).expect("an answer parses"), answer);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let mut buf = data.to_vec();
    if mode & 1 != 0 && buf.len() >= HEADER {
        fix_lengths(&mut buf);
    }
    let ctx = context(mode);
    let verdict = check(&buf, &ctx);
    judge(&buf, &ctx, &verdict);
    // The body as the plaintext of an encrypted message.
    if let Ok(packet) = Packet::new_checked(&buf[..]) {
        let Ok(header) = Header::parse(&packet) else {
            return;
        };
        let padding = if mode & 0x40 != 0 {
            Padding::Any
        } else {
            Padding::Zeros
        };
        let v = check_decrypted(&header, packet.next_payload(), packet.body(), padding, &ctx);
        if let Verdict::Accept(msg) = &v {
            for sa in sas(msg) {
                select(sa);
            }
        }
    }
});
