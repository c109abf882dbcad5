//! The host data plane (realm-rsip `host::dataplane`): arbitrary grants and
//! revocations, then arbitrary bytes both ways (from the TUN, whole and
//! split, and from the tunnel sockets). Nothing may panic, and every packet
//! is counted exactly once.
#![no_main]
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use realm_rsip::host::dataplane::{HostDataPlane, Lease};
use realm_wire::rsip::{BindId, TunnelType};

const UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Six bytes make one grant: bind ID, address, flags, first port (2), count.
fn lease(b: &[u8]) -> (BindId, Lease) {
    let flags = b[2];
    let first = u16::from_be_bytes([b[3], b[4]]);
    let ports = (flags & 1 == 0).then(|| {
        let mut p: Vec<u16> = (0..u16::from(b[5] % 16))
            .map(|i| first.wrapping_add(i))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    });
    let lease = Lease {
        address: Ipv4Addr::new(192, 0, 2, b[1] % 4),
        ports,
        ipsec: flags & 2 != 0,
        endpoint: Ipv4Addr::new(10, 0, 0, 1 + (flags >> 2) % 2),
        tunnel: TunnelType::from((flags >> 3) % 4),
    };
    (BindId(u32::from(b[0] % 8)), lease)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    let Some((grants, rest)) = rest.split_at_checked(6 * n) else {
        return;
    };
    let mut dp = HostDataPlane::new(UNDERLAY, GATEWAY);
    for g in grants.chunks_exact(6) {
        let (id, l) = lease(g);
        // A flag bit turns some grants into revocations.
        if g[2] & 0x80 != 0 {
            let _ = dp.revoked(id);
        } else {
            let _ = dp.grant(id, l);
        }
    }
    let _ = (dp.ephemeral_range(), dp.ipip_sources(), dp.holds_gre());
    let Some((&gso, packet)) = rest.split_first() else {
        return;
    };
    let mut out = Vec::new();
    let _ = dp.outbound(packet, &mut out);
    let _ = dp.keeps_whole(packet, u16::from(gso) * 8, 1400);
    let _ = dp.outbound_whole(packet);
    let _ = dp.inbound(packet);
    let c = dp.counters();
    assert_eq!(
        c.tunnelled + c.drop_not_leased + c.drop_malformed + c.delivered + c.drop_bad_outer,
        3
    );
});
