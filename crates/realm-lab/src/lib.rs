//! The RSIP lab: network namespaces holding RSIP hosts on a private network,
//! a gateway with one public address, and a public host; `realm gateway` and
//! `realm host` run in them as real processes. `realm lab` (the README's main
//! command) and the end-to-end tests build it with this crate, so the demo
//! and the tests exercise the same topology.
//!
//! ```text
//!   host1 10.0.0.11 ─┐                                       public host
//!   host2 10.0.0.12 ─┤ br0 10.0.0.1 [gateway] pub0 192.0.2.1 ── 192.0.2.2
//!   ...              ┘        private realm      public realm
//! ```
//!
//! Addresses come from 10.0.0.0/8 (private) and the documentation prefix
//! 192.0.2.0/24 (public); traffic stays between the lab's namespaces. The
//! public host has no route to the private network: everything the hosts
//! reach there goes through RSIP. The lab owns its namespaces
//! ([`realm_io::netns::Lab`]): dropping it, also while unwinding from a
//! failure, kills the processes and deletes the namespaces.
//!
//! [`traffic`] holds the checks (HTTP, UDP, ICMP, inbound to a LISTEN port),
//! each run with sockets opened inside the namespaces of this process.
//!
//! [`strongswan`] runs strongSwan's charon in a namespace, one per peer, for
//! the interoperability tests.

pub mod strongswan;
pub mod topology;
pub mod traffic;

pub use topology::{HostSpec, LabSpec, RsipLab, Transport};
