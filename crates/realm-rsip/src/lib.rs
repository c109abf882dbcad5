//! Sans-IO RSIP engines: the gateway (RFC 3103 s9-10, RFC 3104 s6.2) and the
//! host. An engine takes time and bytes in (`handle_*(now, ...)`) and hands
//! out transmissions (`poll_transmit`), its next deadline (`poll_timeout`)
//! and events (`poll_event`). It never touches a socket, a file or a clock:
//! the daemons in the `realm` binary drive it, and tests drive it on a fake
//! clock.
#![forbid(unsafe_code)]

pub mod dataplane;
pub mod gateway;
pub mod host;
