//! IP-in-IP encapsulation of TCP superpackets in the kernel, for a host whose
//! kernel has no `ipip` module ([`IpipOffload`]).
//!
//! A TUN with offloads hands the stack's TCP superpackets (up to 64 KiB of one
//! flow) to its reader whole. Tunnelled by a process, such a superpacket
//! leaves as one IP-in-IP packet that the kernel must cut into ~45 fragments
//! for a 1500-byte link, and the far side must reassemble: that costs more
//! than everything else on the path. The kernel can do better on its own: a
//! GSO packet marked IP-in-IP (`SKB_GSO_IPXIP4`) crosses veths whole (and a
//! bridge that delivers it to its own stack) and is cut into proper tunnel
//! packets, outer header by outer header, only where a device cannot carry
//! it (a bridge transmitting it is one: it has no `hw_enc_features`). Only
//! the kernel can mark a packet so;
//! `bpf_skb_adjust_room` with `BPF_F_ADJ_ROOM_ENCAP_L3_IPV4` does.
//!
//! So a small tcx egress program on the TUN takes the superpackets whose
//! source (address, TCP port) the owner allowed ([`IpipOffload::allow`]), puts
//! the outer header the owner chose in front (RFC 2003 s3.1: TOS copied, DF
//! copied, TTL 64, protocol 4, a random identification) and sends them out of
//! the underlay device towards the endpoint (`bpf_redirect_neigh`: route and
//! neighbour looked up by the kernel). Everything else (small packets, other
//! sources, UDP, fragments, IP options, segments not full-sized for the TUN's
//! MTU) goes on to the TUN's reader as before. The program decides nothing of
//! its own: which sources may leave and where to is the map the owner fills.
//!
//! The inner TCP checksum of such a packet is left partial, as the TUN's
//! reader would have read it: the far side completes it per segment when it
//! forwards the packet as GSO (or the kernel does when it segments).

use std::net::Ipv4Addr;

use crate::bpf::{
    self, Alu, Asm, Cond, Map, MapType, Program, ProgramType, R0, R1, R2, R3, R4, R5, R6, R7, R8,
    R9, R10, Size, TcxDirection, TcxLink, helper, skb, verdict,
};
use crate::error::{Error, Result};

/// Most (source address, port) entries the program's map holds.
pub const MAX_SOURCES: u32 = 65_536;

/// `BPF_ADJ_ROOM_MAC`: room made in front of the network header.
const ADJ_ROOM_MAC: i32 = 1;
/// `BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4`: keep the
/// segment size (the TUN's MTU already left room for the outer header) and
/// mark the packet IP-in-IP for GSO.
const ADJ_ROOM_FLAGS: i32 = 0x1 | 0x2;
/// Outer IPv4 header length.
const OUTER: i32 = 20;
/// An Ethernet header's length.
const ETH_HLEN: i32 = 14;

/// What the offload carried: packets (superpackets) and inner bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OffloadStats {
    /// Superpackets encapsulated and sent by the kernel.
    pub packets: u64,
    /// Their bytes before encapsulation.
    pub bytes: u64,
}

/// The program on a TUN's egress and its two maps; detached when dropped.
#[derive(Debug)]
pub struct IpipOffload {
    sources: Map,
    stats: Map,
    _program: Program,
    _link: TcxLink,
}

/// Map key: source address and TCP source port (0: any port), as they are in
/// the packet (network order), and two bytes of padding.
fn key(address: Ipv4Addr, port: Option<u16>) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&address.octets());
    k[4..6].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    k
}

impl IpipOffload {
    /// Loads the program and attaches it to the egress of the TUN with index
    /// `tun_ifindex` (whose MTU is `tun_mtu`); encapsulated packets leave
    /// through the device with index `underlay_ifindex`. Needs root and Linux
    /// 6.6+ (tcx); an error says why it could not be done.
    pub fn attach(tun_ifindex: u32, tun_mtu: u16, underlay_ifindex: u32) -> Result<IpipOffload> {
        let sources = Map::create(MapType::Hash, "realm_ipip_src", 8, 8, MAX_SOURCES)?;
        let stats = Map::create(MapType::Array, "realm_ipip_stat", 4, 16, 1)?;
        let insns = program(&sources, &stats, tun_mtu, underlay_ifindex)?;
        let program = Program::load(
            ProgramType::SchedCls,
            "realm_ipip_out",
            &insns,
            "Dual MIT/GPL",
        )?;
        let link = TcxLink::attach(&program, tun_ifindex, TcxDirection::Egress)?;
        Ok(IpipOffload {
            sources,
            stats,
            _program: program,
            _link: link,
        })
    }

    /// TCP superpackets from `address` (and source `port`, or any port when
    /// `None`) leave encapsulated from `outer_src` to `endpoint`.
    pub fn allow(
        &self,
        address: Ipv4Addr,
        port: Option<u16>,
        outer_src: Ipv4Addr,
        endpoint: Ipv4Addr,
    ) -> Result<()> {
        let mut value = [0u8; 8];
        value[..4].copy_from_slice(&endpoint.octets());
        value[4..].copy_from_slice(&outer_src.octets());
        self.sources.update(&key(address, port), &value)
    }

    /// Stops what [`IpipOffload::allow`] allowed; false if it was not.
    pub fn revoke(&self, address: Ipv4Addr, port: Option<u16>) -> Result<bool> {
        self.sources.delete(&key(address, port))
    }

    /// What the program carried so far.
    pub fn stats(&self) -> Result<OffloadStats> {
        let v = self
            .stats
            .lookup(&0u32.to_ne_bytes())?
            .ok_or_else(|| Error::Invalid("offload statistics missing".into()))?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[i..i + 8]);
            u64::from_ne_bytes(b)
        };
        Ok(OffloadStats {
            packets: word(0),
            bytes: word(8),
        })
    }
}

// Stack layout (offsets from the frame pointer R10; every access aligned).
/// The inner IPv4 header and the first 20 bytes of TCP: [-64, -24).
const HDR: i16 = -64;
/// The map key: [-8, 0).
const KEY: i16 = -8;
/// The outer header being built: [-88, -68).
const OUT: i16 = -88;
/// The statistics key: [-92, -88).
const STAT_KEY: i16 = -92;

/// The program (see the module documentation). Registers: R6 the packet
/// context, R7 its GSO size, R8 its length, R9 the map value found.
fn program(
    sources: &Map,
    stats: &Map,
    tun_mtu: u16,
    underlay_ifindex: u32,
) -> Result<Vec<bpf::Insn>> {
    let ifindex = i32::try_from(underlay_ifindex)
        .map_err(|_| Error::Invalid(format!("ifindex {underlay_ifindex}")))?;
    let mut a = Asm::new();
    let pass = a.label();
    let found = a.label();
    let shot = a.label();
    let redirect = a.label();

    a.mov(R6, R1);
    // Only GSO packets (superpackets); single packets go to the TUN's reader.
    a.load(Size::W, R7, R6, skb::GSO_SIZE);
    a.jump_imm(Cond::Eq, R7, 0, pass);
    // The outer header must fit the 16-bit total length.
    a.load(Size::W, R8, R6, skb::LEN);
    a.jump_imm(Cond::Gt, R8, 65_535 - OUTER, pass);
    // Copy the IPv4 header (no options) and 20 bytes of TCP to the stack.
    a.mov(R1, R6)
        .mov_imm(R2, 0)
        .mov(R3, R10)
        .alu_imm(Alu::Add, R3, HDR.into())
        .mov_imm(R4, 40);
    a.call(helper::SKB_LOAD_BYTES);
    a.jump_imm(Cond::Ne, R0, 0, pass);
    // Version 4, IHL 5.
    a.load(Size::B, R0, R10, HDR);
    a.jump_imm(Cond::Ne, R0, 0x45, pass);
    // Protocol TCP.
    a.load(Size::B, R0, R10, HDR + 9);
    a.jump_imm(Cond::Ne, R0, 6, pass);
    // Not a fragment: MF and the offset zero (bytes 6-7, read little-endian).
    a.load(Size::H, R0, R10, HDR + 6);
    a.alu_imm(Alu::And, R0, 0xff3f);
    a.jump_imm(Cond::Ne, R0, 0, pass);
    // Full-sized segments for the TUN's MTU: 20 + TCP header + GSO size.
    a.load(Size::B, R0, R10, HDR + 32);
    a.alu_imm(Alu::And, R0, 0xf0).alu_imm(Alu::Rsh, R0, 2);
    a.alu_imm(Alu::Add, R0, 20).alu_reg(Alu::Add, R0, R7);
    a.jump_imm(Cond::Ne, R0, i32::from(tun_mtu), pass);
    // Key: source address and port; then the same address with port 0.
    a.load(Size::W, R0, R10, HDR + 12)
        .store(Size::W, R10, KEY, R0);
    a.load(Size::H, R0, R10, HDR + 20)
        .store(Size::H, R10, KEY + 4, R0);
    a.store_imm(Size::H, R10, KEY + 6, 0);
    let lookup = |a: &mut Asm| {
        a.load_map(R1, sources)
            .mov(R2, R10)
            .alu_imm(Alu::Add, R2, KEY.into())
            .call(helper::MAP_LOOKUP_ELEM);
    };
    lookup(&mut a);
    a.jump_imm(Cond::Ne, R0, 0, found);
    a.store_imm(Size::H, R10, KEY + 4, 0);
    lookup(&mut a);
    a.jump_imm(Cond::Eq, R0, 0, pass);

    a.bind(found);
    a.mov(R9, R0);
    // The outer header (RFC 2003 s3.1).
    a.store_imm(Size::B, R10, OUT, 0x45);
    a.load(Size::B, R0, R10, HDR + 1)
        .store(Size::B, R10, OUT + 1, R0); // TOS copied
    a.mov(R0, R8).alu_imm(Alu::Add, R0, OUTER).be16(R0);
    a.store(Size::H, R10, OUT + 2, R0); // total length
    a.call(helper::GET_PRANDOM_U32);
    a.store(Size::H, R10, OUT + 4, R0); // identification
    a.load(Size::B, R0, R10, HDR + 6)
        .alu_imm(Alu::And, R0, 0x40);
    a.store(Size::B, R10, OUT + 6, R0); // DF copied, no offset
    a.store_imm(Size::B, R10, OUT + 7, 0);
    a.store_imm(Size::B, R10, OUT + 8, 64); // TTL
    a.store_imm(Size::B, R10, OUT + 9, 4); // IP-in-IP
    a.store_imm(Size::H, R10, OUT + 10, 0);
    a.load(Size::W, R0, R9, 4).store(Size::W, R10, OUT + 12, R0); // source
    a.load(Size::W, R0, R9, 0).store(Size::W, R10, OUT + 16, R0); // endpoint
    // Header checksum: the one's-complement sum of the 20 bytes, folded.
    a.mov_imm(R1, 0)
        .mov_imm(R2, 0)
        .mov(R3, R10)
        .alu_imm(Alu::Add, R3, OUT.into());
    a.mov_imm(R4, OUTER).mov_imm(R5, 0);
    a.call(helper::CSUM_DIFF);
    for _ in 0..2 {
        a.mov(R1, R0).alu_imm(Alu::Rsh, R1, 16);
        a.alu_imm(Alu::And, R0, 0xffff).alu_reg(Alu::Add, R0, R1);
    }
    a.alu_imm(Alu::Xor, R0, 0xffff);
    a.store(Size::H, R10, OUT + 10, R0);
    // Room for it, marked IP-in-IP for GSO; then write it.
    a.mov(R1, R6)
        .mov_imm(R2, OUTER)
        .mov_imm(R3, ADJ_ROOM_MAC)
        .mov_imm(R4, ADJ_ROOM_FLAGS);
    a.call(helper::SKB_ADJUST_ROOM);
    a.jump_imm(Cond::Ne, R0, 0, pass);
    a.mov(R1, R6)
        .mov_imm(R2, 0)
        .mov(R3, R10)
        .alu_imm(Alu::Add, R3, OUT.into());
    a.mov_imm(R4, OUTER).mov_imm(R5, 0);
    a.call(helper::SKB_STORE_BYTES);
    a.jump_imm(Cond::Ne, R0, 0, shot);
    // `bpf_redirect_neigh` expects a link-layer header to take off (it was
    // made for Ethernet devices): 14 zero bytes in front of the outer header,
    // which it removes before writing the real one for the neighbour.
    a.mov(R1, R6).mov_imm(R2, ETH_HLEN).mov_imm(R3, 0);
    a.call(helper::SKB_CHANGE_HEAD);
    a.jump_imm(Cond::Ne, R0, 0, shot);
    // Count it.
    a.store_imm(Size::W, R10, STAT_KEY, 0);
    a.load_map(R1, stats)
        .mov(R2, R10)
        .alu_imm(Alu::Add, R2, STAT_KEY.into());
    a.call(helper::MAP_LOOKUP_ELEM);
    a.jump_imm(Cond::Eq, R0, 0, redirect);
    a.mov_imm(R1, 1).atomic_add64(R0, 0, R1);
    a.atomic_add64(R0, 8, R8);
    // Out of the underlay device, towards the endpoint.
    a.bind(redirect);
    a.mov_imm(R1, ifindex)
        .mov_imm(R2, 0)
        .mov_imm(R3, 0)
        .mov_imm(R4, 0);
    a.call(helper::REDIRECT_NEIGH);
    a.exit();

    a.bind(shot);
    a.mov_imm(R0, verdict::SHOT).exit();
    a.bind(pass);
    a.mov_imm(R0, verdict::OK).exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_network_order() {
        assert_eq!(
            key(Ipv4Addr::new(192, 0, 2, 1), Some(20000)),
            [192, 0, 2, 1, 0x4e, 0x20, 0, 0]
        );
        assert_eq!(key(Ipv4Addr::new(192, 0, 2, 1), None)[4..], [0, 0, 0, 0]);
    }
}
