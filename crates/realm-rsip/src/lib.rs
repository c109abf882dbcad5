//! Sans-IO RSIP engines: the gateway (RFC 3103 s9-10, RFC 3104 s6.2) and the
//! host. An engine takes time and bytes in (`handle_*(now, ...)`) and hands
//! out transmissions (`poll_transmit`), its next deadline (`poll_timeout`)
//! and events (`poll_event`). It never touches a socket, a file or a clock:
//! the daemons in the `realm` binary drive it, and tests drive it on a fake
//! clock.
#![forbid(unsafe_code)]

pub mod auth;
pub mod dataplane;
pub mod gateway;
pub mod host;

/// The message counter after `n` (RFC 3103 10.1): "If the message counter
/// value reaches the maximum possible 32-bit value, it will wrap around to 1,
/// not 0" (0 marks the gateway's asynchronous messages).
pub fn next_message_counter(n: u32) -> u32 {
    n.checked_add(1).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_wrap_to_one() {
        assert_eq!(super::next_message_counter(1), 2);
        assert_eq!(super::next_message_counter(u32::MAX), 1);
        assert_eq!(super::next_message_counter(0), 1);
    }
}
