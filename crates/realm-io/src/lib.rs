//! Realm's one crate that touches the operating system (Linux only): TUN devices, raw IPv4 sockets,
//! small UDP/TCP socket helpers, rtnetlink, sysctls, the clock, and network-namespace plumbing for
//! tests and `realm lab`. It holds every `unsafe` block in Realm, each with a `// SAFETY:` note.
//!
//! It must never contain protocol logic: engines (sans-IO) decide, this crate moves bytes.
//!
//! | module | owns |
//! |---|---|
//! | [`tun`] | [`Tun`]: a layer-3 TUN device (IFF_TUN, IFF_NO_PI), whole IP packets, batch reads |
//! | [`raw`] | [`RawIp`]: raw IPv4 sockets per protocol (4, 47, 50, 51, 1, 255) with IP_HDRINCL |
//! | [`packet`] | AF_PACKET sockets for plain ESP on Ethernet: [`packet::PacketSender`] (frames straight to the next hop), [`packet::EspReceiver`] (BPF-filtered) |
//! | [`socket`] | UDP/TCP sockets with the options tokio does not expose (reuseport, device, freebind) |
//! | [`netlink`] | [`Netlink`]: links, MTU, IPv4 addresses and routes over rtnetlink |
//! | [`sysctl`] | `ip_local_port_range`, `ip_forward`, `rp_filter` of the current namespace |
//! | [`netns`] | [`netns::Lab`] (namespaces, veths, processes, RAII cleanup) and [`netns::enter`] |
//! | [`nft`] | [`nft::NftTable`]: an nftables table installed with `nft -f -`, deleted on drop |
//! | [`bpf`] | eBPF over `bpf(2)`: instructions ([`bpf::Asm`]), maps, programs, tcx links |
//! | [`offload`] | [`offload::IpipOffload`]: the kernel encapsulates a TUN's TCP superpackets (GSO IP-in-IP) |
//! | [`clock`] | [`now`], the only clock read outside tokio |

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bpf;
pub mod clock;
mod error;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod offload;
pub mod packet;
pub mod raw;
pub mod socket;
mod sys;
pub mod sysctl;
pub mod tun;

pub use clock::now;
pub use error::{Error, Result};
pub use netlink::{Ipv4Prefix, Netlink, RouteVia};
pub use raw::RawIp;
pub use tun::{Gso, Tun, TunConfig, segment_tcp};

/// Hands the heap's free memory back to the system (`malloc_trim`, glibc; nothing elsewhere): a
/// daemon calls it after releasing many buffers at once (closed connections), so memory a burst
/// cost is not kept for ever.
pub fn release_free_heap() {
    sys::malloc_trim();
}

/// Largest IPv4 packet; a receive buffer of this size never truncates.
pub const MAX_IPV4_PACKET: usize = 65_535;

/// Packets handed out per wake-up by the batch calls ([`Tun::recv_batch`], [`RawIp::recv_batch`])
/// at most: STYLE.md section 9 (bounded work per wake-up). Callers pass this many buffers or fewer.
pub const MAX_BATCH: usize = 64;
