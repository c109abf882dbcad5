//! The RSIP host engine (RFC 3103 s10) fed gateway answers after a start.
//!
//! The first byte picks the transport (UDP or TCP). The host starts with one
//! configured RSAP-IP binding and, over TCP, a connection; then a program of
//! operations follows: arbitrary bytes as a message from the gateway; an RFC
//! 3103 Appendix C answer carrying the message counter of the host's last
//! request, with one fuzz-chosen byte changed; time moving on (with
//! `handle_timeout` when due); over TCP, the connection dropping and coming
//! back. Transmits and events are drained after each. Asserted: the engine
//! never panics and every transmit parses as an RSIP message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_rsip::host::{BindingConfig, Host, HostConfig, Transport};
use realm_wire::rsip::appendix_c as c;
use realm_wire::rsip::{Message, Parameter};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

const ANSWERS: [&str; 10] = [
    c::C1_REGISTER_RESPONSE,
    c::C1_ASSIGN_RESPONSE_1,
    c::C1_QUERY_RESPONSE,
    c::C1_EXTEND_RESPONSE,
    c::C1_FREE_RESPONSE_1,
    c::C1_DEREGISTER_RESPONSE,
    c::C2_REGISTER_RESPONSE,
    c::C2_ASSIGN_RESPONSE,
    c::C2_LISTEN_RESPONSE,
    c::C3_ERROR_RESPONSE,
];

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// `bytes` with its Message Counter set to `counter` (UDP: RFC 3103 10.1).
fn with_counter(bytes: Vec<u8>, counter: Option<u32>) -> Vec<u8> {
    let (Some(n), Ok(m)) = (counter, Message::parse(&bytes)) else {
        return bytes;
    };
    let mut params: Vec<Parameter> = m
        .params()
        .iter()
        .filter(|p| !matches!(p, Parameter::MessageCounter(_)))
        .cloned()
        .collect();
    params.push(Parameter::MessageCounter(n));
    Message::new(m.msg_type(), params).map_or(bytes, |m| m.to_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let tcp = mode & 1 != 0;
    let mut config = HostConfig::new(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, 1),
        4555,
    )));
    config.transport = if tcp { Transport::Tcp } else { Transport::Udp };
    config.bindings = vec![BindingConfig::rsap_ip(1 + (mode >> 1) % 4)];
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let Ok(mut host) = Host::new(config, now) else {
        return;
    };
    if tcp {
        host.handle_connected(now);
    }
    let mut counter = None;
    let drain = |host: &mut Host, counter: &mut Option<u32>| {
        while host.poll_event().is_some() {}
        while let Some(bytes) = host.poll_transmit() {
            let m = Message::parse(&bytes).expect("every transmit is an RSIP message");
            *counter = m.message_counter().or(*counter);
        }
    };
    drain(&mut host, &mut counter);
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        // A program longer than this reaches nothing new; it only slows
        // every execution down.
        ops += 1;
        if ops > 64 {
            break;
        }
        let Some((&arg, tail)) = tail.split_first() else {
            break;
        };
        rest = tail;
        match op % 8 {
            0..=2 => {
                let n = usize::from(arg).min(rest.len());
                let (bytes, tail) = rest.split_at(n);
                rest = tail;
                host.handle_message(now, bytes);
            }
            3..=5 => {
                let Some((edit, tail)) = rest.split_first_chunk::<2>() else {
                    break;
                };
                rest = tail;
                let mut bytes = hex(ANSWERS[usize::from(arg) % ANSWERS.len()]);
                if !tcp {
                    bytes = with_counter(bytes, counter);
                }
                if edit[0] != 0 && !bytes.is_empty() {
                    let at = usize::from(edit[0]) % bytes.len();
                    bytes[at] = edit[1];
                }
                host.handle_message(now, &bytes);
            }
            6 => {
                now += Duration::from_millis(u64::from(arg) * 250);
                if host.poll_timeout().is_some_and(|t| t <= now) {
                    host.handle_timeout(now);
                }
            }
            _ => {
                if tcp {
                    host.handle_disconnected(now);
                    drain(&mut host, &mut counter);
                    now += Duration::from_millis(u64::from(arg) * 10);
                    host.handle_connected(now);
                }
            }
        }
        drain(&mut host, &mut counter);
    }
});
