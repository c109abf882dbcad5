//! The sans-IO IPsec engine: SAD + SPD + timers + events.
//!
//! Packets in and out are whole IPv4 datagrams. The engine never reads the
//! clock (every entry point takes `now`), never touches a socket, and does
//! bounded work per call: at most [`MAX_LAYERS`] nested IPsec headers per
//! inbound packet, and timer handling proportional to the timers due.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::crypto::{RandomSource, SystemRandomSource};
use crate::error::{ConfigError, DropReason, SealError};
use crate::sa::{
    IpsecProtocol, Mode, SaConfig, SaCounters, SaId, SadKey, SecurityAssociation, Spi, UdpEncap,
};
use crate::selector::{Direction, PacketSelector};
use crate::spd::{PolicyAction, PolicyId, SaTemplate, Spd};
use crate::wire;
use realm_wire::{ah, esp, ipv4, udp, udp_encap};

/// Most nested IPsec headers processed for one inbound packet (bounded work).
pub const MAX_LAYERS: usize = 4;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// RFC 3948 s4: send a NAT keepalive on a UDP-encapsulating outbound SA
    /// idle for this long (default 20 s). `None` disables keepalives.
    pub keepalive_interval: Option<Duration>,
    /// Local UDP port on which ESP-in-UDP / IKE NAT-T arrives (RFC 3948: 4500).
    pub nat_t_port: u16,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            keepalive_interval: Some(Duration::from_secs(20)),
            nat_t_port: 4500,
        }
    }
}

/// Which lifetime limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeKind {
    /// Seconds.
    Time,
    /// Bytes.
    Bytes,
    /// Packets.
    Packets,
}

/// Something the engine tells its driver (IKE, the daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Soft lifetime reached: negotiate a replacement SA ("rekey").
    SoftLifetimeExpired {
        /// The SA.
        sa: SaId,
        /// Its SAD key.
        key: SadKey,
        /// Which limit.
        kind: LifetimeKind,
    },
    /// Hard lifetime reached: the SA has been deleted.
    HardLifetimeExpired {
        /// The (now deleted) SA.
        sa: SaId,
        /// Its SAD key.
        key: SadKey,
        /// Which limit.
        kind: LifetimeKind,
    },
    /// RFC 4303 s3.3.3: the sequence counter would cycle; the SA refuses to
    /// send and a new SA must be established.
    SequenceExhausted {
        /// The SA.
        sa: SaId,
        /// Its SAD key.
        key: SadKey,
    },
    /// An APPLY policy matched but no outbound SA is bound: IKE must
    /// negotiate one (RFC 2401 s5.1.1).
    Acquire {
        /// The policy.
        policy: PolicyId,
        /// The packet that triggered it.
        selector: PacketSelector,
        /// What to negotiate.
        templates: Vec<SaTemplate>,
    },
}

/// A datagram the engine wants sent (NAT keepalives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// A whole IPv4 datagram.
    pub packet: Vec<u8>,
}

/// Outcome of outbound policy processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Send the original packet as it is.
    Bypass,
    /// Drop it (policy DISCARD, or no policy: RFC 2401 default).
    Discard,
    /// Send this protected datagram instead.
    Protected(Vec<u8>),
    /// No SA yet; an [`Event::Acquire`] was queued. The packet is dropped.
    Acquire(PolicyId),
}

/// Outcome of [`Ipsec::outbound_in_place`]: where the packet to send now lies
/// in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundInPlace {
    /// Send the original packet, still at the offset given, unchanged.
    Bypass,
    /// Drop it (policy DISCARD, or no policy: RFC 2401 default).
    Discard,
    /// The protected datagram is `buf[start..]`.
    Protected {
        /// Where the protected datagram starts in the buffer.
        start: usize,
    },
    /// No SA yet; an [`Event::Acquire`] was queued. The packet is dropped.
    Acquire(PolicyId),
}

/// A decapsulated packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPacket {
    /// The IPv4 datagram after removing the IPsec layer(s).
    pub packet: Vec<u8>,
    /// The SAs that were removed, outermost first.
    pub sas: Vec<SaId>,
    /// RFC 3948: outer source address and UDP port, when the packet came
    /// UDP-encapsulated (lets IKE notice a NAT mapping change).
    pub encap_source: Option<(Ipv4Addr, u16)>,
}

/// An IKE message received on the NAT-T port after a non-ESP marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeDatagram {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The IKE message (after the 4-byte non-ESP marker).
    pub payload: Vec<u8>,
}

/// Outcome of inbound processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Decapsulated (and policy-checked) packet to deliver.
    Packet(InboundPacket),
    /// Cleartext packet allowed by a BYPASS policy: deliver the original.
    Bypass,
    /// IKE on the NAT-T port (RFC 3948 s2.2): hand to IKE.
    Ike(IkeDatagram),
    /// RFC 3948 s2.3 NAT keepalive: nothing to do.
    NatKeepalive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    SaSoftLifetime(SaId),
    SaHardLifetime(SaId),
    NatKeepalive(SaId),
}

/// Every clock of the engine in one typed table (STYLE s6).
#[derive(Debug, Default)]
struct TimerTable {
    ordered: BTreeSet<(Instant, Timer)>,
    deadlines: HashMap<Timer, Instant>,
}

impl TimerTable {
    fn set(&mut self, t: Timer, at: Instant) {
        self.cancel(t);
        self.ordered.insert((at, t));
        self.deadlines.insert(t, at);
    }
    fn cancel(&mut self, t: Timer) {
        if let Some(at) = self.deadlines.remove(&t) {
            self.ordered.remove(&(at, t));
        }
    }
    fn next(&self) -> Option<Instant> {
        self.ordered.first().map(|(at, _)| *at)
    }
    fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(at, t) = self.ordered.first()?;
        if at > now {
            return None;
        }
        self.ordered.remove(&(at, t));
        self.deadlines.remove(&t);
        Some(t)
    }
}

/// The IPsec engine (SAD, SPD, timers, events).
pub struct Ipsec {
    config: EngineConfig,
    spd: Spd,
    sas: HashMap<SaId, SecurityAssociation>,
    inbound: HashMap<SadKey, SaId>,
    inbound_by_spi: HashMap<(Spi, IpsecProtocol), SaId>,
    outbound: HashMap<SadKey, SaId>,
    encap_ports: HashSet<u16>,
    timers: TimerTable,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
    rng: Box<dyn RandomSource>,
    drops: [u64; DropReason::COUNT],
    next_id: u64,
}

impl std::fmt::Debug for Ipsec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipsec")
            .field("config", &self.config)
            .field("sas", &self.sas.len())
            .field("spd", &self.spd)
            .finish_non_exhaustive()
    }
}

impl Default for Ipsec {
    fn default() -> Self {
        Self::new(EngineConfig::default())
    }
}

impl Ipsec {
    /// An engine drawing CBC IVs from the system generator.
    pub fn new(config: EngineConfig) -> Self {
        Self::with_random(config, Box::new(SystemRandomSource::default()))
    }

    /// An engine with an injected random source (deterministic tests).
    pub fn with_random(config: EngineConfig, rng: Box<dyn RandomSource>) -> Self {
        let mut encap_ports = HashSet::new();
        encap_ports.insert(config.nat_t_port);
        Self {
            config,
            spd: Spd::new(),
            sas: HashMap::new(),
            inbound: HashMap::new(),
            inbound_by_spi: HashMap::new(),
            outbound: HashMap::new(),
            encap_ports,
            timers: TimerTable::default(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            rng,
            drops: [0; DropReason::COUNT],
            next_id: 0,
        }
    }

    /// The SPD.
    pub fn spd(&self) -> &Spd {
        &self.spd
    }

    /// The SPD, to add or bind policies.
    pub fn spd_mut(&mut self) -> &mut Spd {
        &mut self.spd
    }

    /// Installs an SA; arms its lifetime and keepalive timers.
    pub fn add_sa(&mut self, now: Instant, config: SaConfig) -> Result<SaId, ConfigError> {
        let key = config.key();
        let map = match config.direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        if map.contains_key(&key) {
            return Err(ConfigError::DuplicateSa(key.spi.0));
        }
        self.next_id += 1;
        let id = SaId(self.next_id);
        let sa = SecurityAssociation::new(id, config, now)?;
        let c = sa.config();
        if let Some(s) = c.lifetime.soft.seconds {
            self.timers
                .set(Timer::SaSoftLifetime(id), now + Duration::from_secs(s));
        }
        if let Some(s) = c.lifetime.hard.seconds {
            self.timers
                .set(Timer::SaHardLifetime(id), now + Duration::from_secs(s));
        }
        match c.direction {
            Direction::Inbound => {
                self.inbound.insert(key, id);
                self.inbound_by_spi.insert((key.spi, key.protocol), id);
                if let Some(UdpEncap { dst_port, .. }) = c.udp_encap {
                    self.encap_ports.insert(dst_port);
                }
            }
            Direction::Outbound => {
                self.outbound.insert(key, id);
                if let (Some(_), Some(iv)) = (c.udp_encap, self.config.keepalive_interval) {
                    self.timers.set(Timer::NatKeepalive(id), now + iv);
                }
            }
        }
        self.sas.insert(id, sa);
        Ok(id)
    }

    /// Deletes an SA and its timers.
    pub fn remove_sa(&mut self, id: SaId) -> Option<SaConfig> {
        let sa = self.sas.remove(&id)?;
        let key = sa.key();
        match sa.config().direction {
            Direction::Inbound => {
                self.inbound.remove(&key);
                if self.inbound_by_spi.get(&(key.spi, key.protocol)) == Some(&id) {
                    self.inbound_by_spi.remove(&(key.spi, key.protocol));
                }
            }
            Direction::Outbound => {
                self.outbound.remove(&key);
            }
        }
        for t in [
            Timer::SaSoftLifetime(id),
            Timer::SaHardLifetime(id),
            Timer::NatKeepalive(id),
        ] {
            self.timers.cancel(t);
        }
        Some(sa.config.clone())
    }

    /// An SA by id.
    pub fn sa(&self, id: SaId) -> Option<&SecurityAssociation> {
        self.sas.get(&id)
    }

    /// An SA by id, mutable (path MTU updates, tests setting the counter).
    pub fn sa_mut(&mut self, id: SaId) -> Option<&mut SecurityAssociation> {
        self.sas.get_mut(&id)
    }

    /// Looks an SA up by SAD key and direction.
    pub fn find_sa(&self, direction: Direction, key: &SadKey) -> Option<SaId> {
        match direction {
            Direction::Inbound => self.inbound.get(key).copied(),
            Direction::Outbound => self.outbound.get(key).copied(),
        }
    }

    /// All SAs.
    pub fn sas(&self) -> impl Iterator<Item = &SecurityAssociation> {
        self.sas.values()
    }

    /// Drops counted before any SA was identified (unknown SPI, malformed, policy).
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Counters of one SA.
    pub fn counters(&self, id: SaId) -> Option<SaCounters> {
        self.sas.get(&id).map(|s| s.counters)
    }

    /// Protects `packet` with the outbound SA `id`.
    pub fn seal(&mut self, now: Instant, id: SaId, packet: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::new();
        self.seal_into(now, id, packet, &mut out)?;
        Ok(out)
    }

    /// Protects `packet` with SA `id` into `out` (cleared; reuse it to avoid
    /// allocations: one copy of the packet, then encrypted in place).
    pub fn seal_into(
        &mut self,
        now: Instant,
        id: SaId,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        self.seal_with(now, id, |sa, rng| sa.seal_into(packet, out, rng))
    }

    /// Protects, without copying it, the IPv4 packet at `buf[offset..]`
    /// (`offset` >= [`crate::sa::MAX_HEADROOM`] always suffices): headers
    /// go into the headroom, trailer and ICV are appended, the payload is
    /// encrypted where it lies. Returns the offset of the protected packet,
    /// which is `buf[returned..]`.
    pub fn seal_in_place(
        &mut self,
        now: Instant,
        id: SaId,
        buf: &mut Vec<u8>,
        offset: usize,
    ) -> Result<usize, SealError> {
        let mut start = 0;
        self.seal_with(now, id, |sa, rng| {
            let (s, bytes) = sa.seal_in_place(buf, offset, rng)?;
            start = s;
            Ok(bytes)
        })?;
        Ok(start)
    }

    fn seal_with(
        &mut self,
        now: Instant,
        id: SaId,
        f: impl FnOnce(&mut SecurityAssociation, &mut dyn RandomSource) -> Result<usize, SealError>,
    ) -> Result<(), SealError> {
        // One SAD lookup on the fast path; expiry and volume checks only
        // when the SA has such limits.
        let sa = self.sas.get_mut(&id).ok_or(SealError::UnknownSa)?;
        if sa.hard_time_passed(now) {
            self.expire_by_time(id, now);
            return Err(SealError::LifetimeExpired);
        }
        match f(sa, self.rng.as_mut()) {
            Ok(bytes) => {
                sa.counters.packets += 1;
                sa.counters.bytes += bytes as u64;
                sa.last_sent = now;
                if sa.has_volume_limits() {
                    self.after_traffic(id);
                }
                Ok(())
            }
            Err(SealError::SequenceExhausted) => {
                if !sa.exhausted_fired {
                    sa.exhausted_fired = true;
                    let key = sa.key();
                    self.events
                        .push_back(Event::SequenceExhausted { sa: id, key });
                }
                Err(SealError::SequenceExhausted)
            }
            Err(e) => Err(e),
        }
    }

    /// Outbound processing (RFC 2401 s5.1.1): SPD lookup, then BYPASS,
    /// DISCARD, or the bound SA bundle applied innermost first.
    pub fn outbound(&mut self, now: Instant, packet: &[u8]) -> Result<Outbound, SealError> {
        let sel = PacketSelector::from_packet(packet).ok_or(SealError::Malformed)?;
        let Some((pid, entry)) = self.spd.lookup(Direction::Outbound, &sel) else {
            return Ok(Outbound::Discard);
        };
        let spec = match &entry.action {
            PolicyAction::Bypass => return Ok(Outbound::Bypass),
            PolicyAction::Discard => return Ok(Outbound::Discard),
            PolicyAction::Apply(spec) => spec,
        };
        let ids: Option<Vec<SaId>> = spec
            .sas
            .iter()
            .map(|k| self.outbound.get(k).copied())
            .collect();
        let ids = match ids {
            Some(ids) if !ids.is_empty() && ids.len() >= spec.templates.len() => ids,
            _ => {
                let templates = spec.templates.clone();
                self.events.push_back(Event::Acquire {
                    policy: pid,
                    selector: sel,
                    templates,
                });
                return Ok(Outbound::Acquire(pid));
            }
        };
        let mut cur = packet.to_vec();
        let mut out = Vec::new();
        for id in ids {
            self.seal_into(now, id, &cur, &mut out)?;
            std::mem::swap(&mut cur, &mut out);
        }
        Ok(Outbound::Protected(cur))
    }

    /// [`Ipsec::outbound`] without copying the packet: `buf[offset..]` is
    /// exactly the IPv4 packet; the SA bundle is applied in place with
    /// [`Ipsec::seal_in_place`] (innermost first), so with `offset` >=
    /// [`crate::sa::MAX_HEADROOM`] a one-SA policy moves no payload byte.
    /// A bundle whose next SA finds too little headroom gets it by moving
    /// the packet up once. Same SPD decisions, events and errors as
    /// [`Ipsec::outbound`].
    pub fn outbound_in_place(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        offset: usize,
    ) -> Result<OutboundInPlace, SealError> {
        let packet = buf.get(offset..).ok_or(SealError::Malformed)?;
        let sel = PacketSelector::from_packet(packet).ok_or(SealError::Malformed)?;
        let Some((pid, entry)) = self.spd.lookup(Direction::Outbound, &sel) else {
            return Ok(OutboundInPlace::Discard);
        };
        let spec = match &entry.action {
            PolicyAction::Bypass => return Ok(OutboundInPlace::Bypass),
            PolicyAction::Discard => return Ok(OutboundInPlace::Discard),
            PolicyAction::Apply(spec) => spec,
        };
        let n = spec.sas.len();
        if n > MAX_LAYERS {
            // Deeper than any receiver opens (MAX_LAYERS): not worth a fast
            // path; the copying one decides exactly as `outbound`.
            let packet = buf[offset..].to_vec();
            return Ok(match self.outbound(now, &packet)? {
                Outbound::Protected(p) => {
                    buf.truncate(offset);
                    buf.extend_from_slice(&p);
                    OutboundInPlace::Protected { start: offset }
                }
                Outbound::Bypass => OutboundInPlace::Bypass,
                Outbound::Discard => OutboundInPlace::Discard,
                Outbound::Acquire(p) => OutboundInPlace::Acquire(p),
            });
        }
        // No allocation on this path: the bundle fits a fixed array.
        let mut ids = [SaId(0); MAX_LAYERS];
        let mut complete = n > 0 && n >= spec.templates.len();
        if complete {
            for (slot, k) in ids.iter_mut().zip(&spec.sas) {
                match self.outbound.get(k) {
                    Some(id) => *slot = *id,
                    None => complete = false,
                }
            }
        }
        if !complete {
            let templates = spec.templates.clone();
            self.events.push_back(Event::Acquire {
                policy: pid,
                selector: sel,
                templates,
            });
            return Ok(OutboundInPlace::Acquire(pid));
        }
        let mut start = offset;
        for &id in &ids[..n] {
            if start < crate::sa::MAX_HEADROOM {
                let need = crate::sa::MAX_HEADROOM - start;
                let len = buf.len();
                buf.resize(len + need, 0);
                buf.copy_within(start..len, start + need);
                start += need;
            }
            start = self.seal_in_place(now, id, buf, start)?;
        }
        Ok(OutboundInPlace::Protected { start })
    }

    fn count(&mut self, sa: Option<SaId>, reason: DropReason) -> DropReason {
        match sa.and_then(|id| self.sas.get_mut(&id)) {
            Some(s) => s.counters.drops[reason.index()] += 1,
            None => self.drops[reason.index()] += 1,
        }
        reason
    }

    /// Removes ONE IPsec layer (ESP, AH, or ESP-in-UDP) from an IPv4
    /// datagram, checks the result against the SA's selectors (RFC 2401
    /// s5.2.1 step 4), or classifies a NAT-T datagram (IKE, keepalive).
    /// Does not consult the SPD: see [`Ipsec::inbound`].
    pub fn open(&mut self, now: Instant, packet: &[u8]) -> Result<Inbound, DropReason> {
        let mut buf = packet.to_vec();
        self.open_in_place(now, &mut buf)
    }

    /// [`Ipsec::open`] on an owned buffer, decapsulating in place.
    pub fn open_in_place(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Inbound, DropReason> {
        let Some(ip) = wire::parse_ipv4(buf) else {
            return Err(self.count(None, DropReason::Malformed));
        };
        self.open_parsed(now, buf, ip)
    }

    /// [`Ipsec::open_in_place`] on `buf` whose IPv4 header has been parsed
    /// into `ip` (by [`wire::parse_ipv4`]): the one parse of that header.
    fn open_parsed(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        mut ip: ipv4::Repr,
    ) -> Result<Inbound, DropReason> {
        // RFC 4303 s3.4.1: reassemble before IPsec processing.
        if ip.is_fragment() {
            return Err(self.count(None, DropReason::Fragment));
        }
        let header_len = ip.buffer_len();
        let (protocol, off, encap) = match u8::from(ip.protocol) {
            wire::PROTO_ESP => (IpsecProtocol::Esp, header_len, None),
            wire::PROTO_AH => (IpsecProtocol::Ah, header_len, None),
            wire::PROTO_UDP => {
                let datagram = buf.get(header_len..ip.total_len()).unwrap_or_default();
                let Ok(u) = udp::Packet::new_checked(datagram) else {
                    return Err(self.count(None, DropReason::Malformed));
                };
                let (sport, dport) = (u.src_port(), u.dst_port());
                if !self.encap_ports.contains(&dport) {
                    return Err(self.count(None, DropReason::Malformed));
                }
                // RFC 3948 s2.2, s2.3: keepalive, non-ESP marker + IKE, or ESP.
                match udp_encap::classify(u.payload()) {
                    Ok(udp_encap::Classified::Keepalive) => return Ok(Inbound::NatKeepalive),
                    Ok(udp_encap::Classified::Ike(ike)) => {
                        return Ok(Inbound::Ike(IkeDatagram {
                            src: ip.src_addr,
                            dst: ip.dst_addr,
                            src_port: sport,
                            dst_port: dport,
                            payload: ike.to_vec(),
                        }));
                    }
                    Ok(udp_encap::Classified::Esp(_)) => {}
                    Err(_) => return Err(self.count(None, DropReason::Malformed)),
                }
                // Trim to the UDP length so the ESP ends where UDP says.
                let udp_len = usize::from(u.len());
                if header_len + udp_len < ip.total_len() {
                    ip.payload_len = udp_len;
                    buf.truncate(header_len + udp_len);
                    ipv4::Packet::new_unchecked(&mut buf[..]).set_total_len(ip.total_len() as u16);
                }
                (
                    IpsecProtocol::Esp,
                    header_len + wire::UDP_HEADER,
                    Some((ip.src_addr, sport)),
                )
            }
            _ => return Err(self.count(None, DropReason::Malformed)),
        };
        let hdr = buf.get(off..off + 8).ok_or(DropReason::Malformed);
        let hdr = match hdr {
            Ok(h) => h,
            Err(e) => return Err(self.count(None, e)),
        };
        let spi = Spi(match protocol {
            IpsecProtocol::Esp => esp::Packet::new_unchecked(hdr).spi(),
            IpsecProtocol::Ah => ah::Packet::new_unchecked(hdr).spi(),
        });
        let key = SadKey {
            spi,
            dst: ip.dst_addr,
            protocol,
        };
        // RFC 2401 s5.2.1 step 2: (SPI, destination, protocol); behind a NAT the
        // destination may differ, so fall back to (SPI, protocol).
        let id = self
            .inbound
            .get(&key)
            .or_else(|| self.inbound_by_spi.get(&(spi, protocol)))
            .copied();
        let Some(id) = id else {
            return Err(self.count(None, DropReason::UnknownSpi));
        };
        let Some(sa) = self.sas.get_mut(&id) else {
            return Err(self.count(None, DropReason::UnknownSpi));
        };
        if sa.hard_time_passed(now) {
            self.expire_by_time(id, now);
            return Err(self.count(None, DropReason::LifetimeExpired));
        }
        let res = match protocol {
            IpsecProtocol::Esp => sa.esp_open(buf, &ip, off),
            IpsecProtocol::Ah => sa.ah_open(buf, &ip),
        };
        let opened = match res {
            Ok(o) => o,
            Err(r) => return Err(self.count(Some(id), r)),
        };
        // RFC 2401 s5.2.1 step 4: the decapsulated packet must match the SA's selectors.
        let sel = PacketSelector::from_packet(buf);
        let ok = sel.is_some_and(|s| sa.config.selector.matches(&s));
        if !ok {
            return Err(self.count(Some(id), DropReason::PolicyMismatch));
        }
        sa.counters.packets += 1;
        sa.counters.bytes += opened.inner_len as u64;
        let _ = opened.seq;
        if sa.has_volume_limits() {
            self.after_traffic(id);
        }
        Ok(Inbound::Packet(InboundPacket {
            packet: std::mem::take(buf),
            sas: vec![id],
            encap_source: encap,
        }))
    }

    /// Inbound processing (RFC 2401 s5.2): removes every IPsec layer (at
    /// most [`MAX_LAYERS`]), then checks the inbound SPD: the packet must
    /// have arrived through the SAs its policy requires; cleartext is
    /// accepted only under BYPASS.
    pub fn inbound(&mut self, now: Instant, packet: &[u8]) -> Result<Inbound, DropReason> {
        let mut buf = packet.to_vec();
        self.inbound_in_place(now, &mut buf)
    }

    /// [`Ipsec::inbound`] on an owned buffer holding one IPv4 datagram,
    /// decapsulated in place. On `Ok(Inbound::Packet(p))`, `p.packet` IS the
    /// buffer (moved out; `buf` is left empty): hand it back to your pool.
    /// On any other outcome `buf` keeps its allocation (contents unspecified).
    pub fn inbound_in_place(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Inbound, DropReason> {
        let mut sas = Vec::new();
        let mut encap_source = None;
        for _ in 0..=MAX_LAYERS {
            let Some(ip) = wire::parse_ipv4(buf) else {
                return Err(self.count(None, DropReason::Malformed));
            };
            let is_ipsec = match u8::from(ip.protocol) {
                wire::PROTO_ESP | wire::PROTO_AH => true,
                wire::PROTO_UDP => {
                    wire::ports(&ip, buf).is_some_and(|(_, d)| self.encap_ports.contains(&d))
                }
                _ => false,
            };
            if !is_ipsec {
                return self.inbound_policy(buf, sas, encap_source);
            }
            if sas.len() == MAX_LAYERS {
                return Err(self.count(None, DropReason::TooDeep));
            }
            match self.open_parsed(now, buf, ip)? {
                Inbound::Packet(p) => {
                    sas.extend(p.sas);
                    encap_source = encap_source.or(p.encap_source);
                    *buf = p.packet;
                }
                other => return Ok(other),
            }
        }
        Err(self.count(None, DropReason::TooDeep))
    }

    fn inbound_policy(
        &mut self,
        buf: &mut Vec<u8>,
        sas: Vec<SaId>,
        encap_source: Option<(Ipv4Addr, u16)>,
    ) -> Result<Inbound, DropReason> {
        let last = sas.last().copied();
        let Some(sel) = PacketSelector::from_packet(buf) else {
            return Err(self.count(last, DropReason::Malformed));
        };
        let action = self
            .spd
            .lookup(Direction::Inbound, &sel)
            .map(|(_, e)| e.action.clone());
        match action {
            None => Err(self.count(last, DropReason::PolicyMismatch)),
            Some(PolicyAction::Discard) => Err(self.count(last, DropReason::PolicyDiscard)),
            Some(PolicyAction::Bypass) if sas.is_empty() => Ok(Inbound::Bypass),
            Some(PolicyAction::Bypass) => Ok(Inbound::Packet(InboundPacket {
                packet: std::mem::take(buf),
                sas,
                encap_source,
            })),
            Some(PolicyAction::Apply(spec)) => {
                // Applied innermost first outbound, so removed outermost first.
                let used: Vec<&SecurityAssociation> =
                    sas.iter().rev().filter_map(|id| self.sas.get(id)).collect();
                let ok = if !spec.sas.is_empty() {
                    spec.sas.len() == used.len()
                        && spec.sas.iter().zip(&used).all(|(k, s)| *k == s.key())
                } else {
                    spec.templates.len() == used.len()
                        && spec.templates.iter().zip(&used).all(|(t, s)| {
                            t.protocol == s.config.protocol && t.mode == s.config.mode
                        })
                };
                if ok {
                    Ok(Inbound::Packet(InboundPacket {
                        packet: std::mem::take(buf),
                        sas,
                        encap_source,
                    }))
                } else {
                    Err(self.count(last, DropReason::PolicyMismatch))
                }
            }
        }
    }

    /// Wraps an IKE message for NAT-T (RFC 3948 s2.2: non-ESP marker) in
    /// UDP and IPv4.
    pub fn encapsulate_ike(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
        ike: &[u8],
    ) -> Vec<u8> {
        let udp_payload = 4 + ike.len();
        let udp = udp::Repr::without_checksum(src_port, dst_port, udp_payload);
        let ip = ipv4::Repr::new(src, dst, ipv4::IpProtocol::Udp, udp.buffer_len());
        let mut out = Vec::with_capacity(ip.total_len());
        ip.push_header(&mut out);
        udp.push_header(&mut out);
        // Infallible for a non-empty message; an empty one gets the bare marker.
        if udp_encap::emit_ike(ike, &mut out).is_err() {
            out.extend_from_slice(&udp_encap::NON_ESP_MARKER);
        }
        out
    }

    /// Deletes `id` if its hard time lifetime has passed (even if the driver
    /// has not called `handle_timeout` yet). True if it did.
    fn expire_by_time(&mut self, id: SaId, now: Instant) -> bool {
        let Some(sa) = self.sas.get(&id) else {
            return false;
        };
        let Some(secs) = sa.config.lifetime.hard.seconds else {
            return false;
        };
        if now < sa.created + Duration::from_secs(secs) {
            return false;
        }
        if let Some(cfg) = self.remove_sa(id) {
            let key = cfg.key();
            self.events.push_back(Event::HardLifetimeExpired {
                sa: id,
                key,
                kind: LifetimeKind::Time,
            });
        }
        true
    }

    /// Checks volume lifetimes after traffic on `id`.
    fn after_traffic(&mut self, id: SaId) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let c = sa.counters;
        let lt = sa.config.lifetime;
        let reached = |l: &crate::sa::LifetimeLimits| {
            if l.bytes.is_some_and(|b| c.bytes >= b) {
                Some(LifetimeKind::Bytes)
            } else if l.packets.is_some_and(|p| c.packets >= p) {
                Some(LifetimeKind::Packets)
            } else {
                None
            }
        };
        let key = sa.key();
        if let Some(kind) = reached(&lt.hard) {
            self.remove_sa(id);
            self.events
                .push_back(Event::HardLifetimeExpired { sa: id, key, kind });
        } else if let Some(kind) = reached(&lt.soft).filter(|_| !sa.soft_fired) {
            sa.soft_fired = true;
            self.events
                .push_back(Event::SoftLifetimeExpired { sa: id, key, kind });
        }
    }

    /// When [`Ipsec::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`: lifetimes and NAT keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::SaSoftLifetime(id) => {
                    if let Some(sa) = self.sas.get_mut(&id).filter(|s| !s.soft_fired) {
                        sa.soft_fired = true;
                        let key = sa.key();
                        self.events.push_back(Event::SoftLifetimeExpired {
                            sa: id,
                            key,
                            kind: LifetimeKind::Time,
                        });
                    }
                }
                Timer::SaHardLifetime(id) => {
                    if let Some(cfg) = self.remove_sa(id) {
                        let key = cfg.key();
                        self.events.push_back(Event::HardLifetimeExpired {
                            sa: id,
                            key,
                            kind: LifetimeKind::Time,
                        });
                    }
                }
                Timer::NatKeepalive(id) => {
                    let Some(interval) = self.config.keepalive_interval else {
                        continue;
                    };
                    let Some(sa) = self.sas.get_mut(&id) else {
                        continue;
                    };
                    let Some(u) = sa.config.udp_encap else {
                        continue;
                    };
                    let due = sa.last_sent + interval;
                    if due > now {
                        // Traffic went out since: keepalives are only for idle SAs.
                        self.timers.set(t, due);
                        continue;
                    }
                    // RFC 3948 s2.3: a one-octet 0xFF UDP payload.
                    let ka = udp_encap::keepalive();
                    let udp = udp::Repr::without_checksum(u.src_port, u.dst_port, ka.len());
                    let ip = ipv4::Repr::new(
                        sa.config.src,
                        sa.config.dst,
                        ipv4::IpProtocol::Udp,
                        udp.buffer_len(),
                    )
                    .with_ttl(sa.config.ttl);
                    let mut p = Vec::with_capacity(ip.total_len());
                    ip.push_header(&mut p);
                    udp.push_header(&mut p);
                    p.extend_from_slice(&ka);
                    sa.last_sent = now;
                    self.transmits.push_back(Transmit { packet: p });
                    self.timers.set(t, now + interval);
                }
            }
        }
    }

    /// Next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Next datagram to send (NAT keepalives), if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The mode of an SA (convenience for drivers).
    pub fn mode(&self, id: SaId) -> Option<Mode> {
        self.sas.get(&id).map(|s| s.config.mode)
    }
}
