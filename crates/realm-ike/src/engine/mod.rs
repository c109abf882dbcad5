//! The IKEv1 engine: ISAKMP SAs and their child SAs driven by datagrams and time, sans-IO.
//!
//! ```text
//!  datagrams in ─ handle_datagram(now, local, remote, bytes) ─┐
//!  time in ────── handle_timeout(now) ────────────────────────┤   Ike
//!  commands ───── initiate(now, child) / terminate(now, conn) ┘    ├─ poll_transmit() -> Transmit (UDP payload, from, to)
//!                                                                  ├─ poll_timeout()  -> next Instant to call handle_timeout
//!                                                                  └─ poll_event()    -> Event (IKE SA up/down, child SA up/down)
//! ```
//!
//! The engine owns the exchanges: it finds the ISAKMP SA a datagram belongs to by its cookies,
//! drives the typed Main Mode and Quick Mode states of [`crate::ikev1`] with it, sends what they
//! answer, retransmits what is not answered ([`RetransmitConfig`]), answers an exact duplicate
//! of a message it already answered with the stored answer (RFC 2408 section 5 leaves the
//! handling of retransmissions to the implementation; re-running an exchange step would fork
//! its state), and reports in [`Event`]s what the daemon must install into the IPsec SAD/SPD:
//! [`ChildSaUp`] carries both directions' SPIs, keys, the mode and encapsulation and the
//! negotiated selectors.
//!
//! Bounded state before the peer proves its address: a Main Mode message 1 costs the responder
//! one entry and no Diffie-Hellman work (RFC 2408 section 2.5.3: the DH exponentiation happens on
//! message 3, which must carry the responder cookie computed from a local secret and the
//! peer's address and port); at most [`EngineConfig::max_half_open`] such entries exist, the
//! oldest evicted first, each forgotten after [`EngineConfig::half_open_timeout`].
//!
//! The engine reads no clock, opens no socket and never panics on input. The caller adds and
//! removes the UDP encapsulation's non-ESP marker? No: datagrams in and out are whole UDP
//! payloads; on the NAT-T port ([`EngineConfig::nat_t_port`]) they carry the 4-byte non-ESP
//! marker (RFC 3948 section 2.2), which the engine strips and adds itself.

mod retransmit;
mod selectors;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use realm_wire::isakmp::{
    Cookie, ExchangeType, HEADER_LEN, Identification, Message, NotifyMessageType, Padding,
    PayloadBody, ProtocolId,
};

use crate::config::{AuthClass, Child, Connection, Identity, IkeConfig, Mode, PreSharedKey};
use crate::crypto::{Crypto, CryptoError};
use crate::ikev1::aggressive_mode::{self as am, AggrReplied, AggrSentFirst};
use crate::ikev1::dpd::{Dpd, DpdAction};
use crate::ikev1::informational::{self, DpdMessage};
use crate::ikev1::main_mode::{
    self as mm, IsakmpSa, MainModeConfig, MainModeError, Phase1Credentials, RepliedKe, RepliedSa,
    RsaCredentials, SentId, SentKe, SentSa,
};
use crate::ikev1::nat_t::{Endpoints, NatTConfig};
use crate::ikev1::quick_mode::{self as qm, ChildSaPair, QuickModeConfig};
use crate::isakmp::checks::{self, Context, IKEV1_EXCHANGES, SaState};
use crate::isakmp::cookie::{CookieJar, CookieSecret};
use crate::isakmp::notify;
use crate::proposal::{IpsecMode, Preference};
use retransmit::{Due, Retransmit};

pub use retransmit::RetransmitConfig;
pub use selectors::TrafficRange;

/// RFC 3948 section 2.2: the four zero octets before an IKE message on the NAT-T port.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// How many answered messages an ISAKMP SA remembers, to answer their retransmissions.
const ANSWERED: usize = 8;

/// DPD's timeout when `dpd_timeout` is 0s: strongSwan's IKEv1 default (150 s).
const DEFAULT_DPD_TIMEOUT: Duration = Duration::from_secs(150);

/// The engine's own settings (the connections come from [`IkeConfig`]).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The local address used as initiator when a connection's `local_addrs` names none.
    pub local_addr: Ipv4Addr,
    /// The NAT-T port (RFC 3947 section 4), normally 4500.
    pub nat_t_port: u16,
    /// Retransmission schedule.
    pub retransmit: RetransmitConfig,
    /// The most responder exchanges kept before the peer echoed our cookie (message 3).
    pub max_half_open: usize,
    /// How long such an exchange is kept.
    pub half_open_timeout: Duration,
    /// How long a Quick Mode responder waits for HASH(3) before forgetting the exchange.
    pub exchange_timeout: Duration,
    /// How often the cookie secret is replaced (RFC 2408 section 2.5.3).
    pub cookie_period: Duration,
    /// RSA signature credentials (`local.auth = "pubkey"`) by connection name: our key and
    /// certificates, the peer's CAs and identity. Loaded from files by the caller.
    pub credentials: HashMap<String, Arc<RsaCredentials>>,
}

impl EngineConfig {
    /// strongSwan-like defaults for a host whose IKE address is `local_addr`.
    pub fn new(local_addr: Ipv4Addr) -> EngineConfig {
        EngineConfig {
            local_addr,
            nat_t_port: 4500,
            retransmit: RetransmitConfig::default(),
            max_half_open: 1024,
            half_open_timeout: Duration::from_secs(30),
            exchange_timeout: Duration::from_secs(60),
            cookie_period: Duration::from_secs(60),
            credentials: HashMap::new(),
        }
    }
}

/// An ISAKMP SA's handle, unique for the engine's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A datagram to send: a UDP payload from `local` to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address and port to send from.
    pub local: SocketAddr,
    /// The peer's address and port (always the port its message came from).
    pub remote: SocketAddr,
    /// The UDP payload (with the non-ESP marker on the NAT-T port).
    pub bytes: Vec<u8>,
}

/// A negotiated pair of child SAs, ready to install.
#[derive(Debug, Clone)]
pub struct ChildSaUp {
    /// The ISAKMP SA it was negotiated under.
    pub ike: IkeSaId,
    /// `[connections.NAME]`.
    pub connection: String,
    /// `[connections.NAME.children.CHILD]`.
    pub child: String,
    /// Our IKE address and port as the exchange used them.
    pub local: SocketAddr,
    /// The peer's IKE address and port.
    pub remote: SocketAddr,
    /// Our side's traffic.
    pub local_ts: TrafficRange,
    /// The peer's side's traffic.
    pub remote_ts: TrafficRange,
    /// SPIs, keys, algorithms, mode, encapsulation and lifetime.
    pub pair: ChildSaPair,
    /// The inbound SPI of the child SA this one replaces (a rekey), if any.
    pub replaces: Option<u32>,
}

/// Why a child SA went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildDownReason {
    /// Replaced by a newer SA for the same child (rekeyed, make-before-break).
    Rekeyed,
    /// Its hard lifetime ran out.
    Expired,
    /// The peer deleted it.
    DeletedByPeer,
    /// Closed locally (`terminate`, shutdown).
    Closed,
    /// Its ISAKMP SA went away with it.
    IkeSaGone,
    /// Dead Peer Detection declared the peer dead (RFC 3706).
    PeerDead,
}

/// A child SA pair to remove from the SAD/SPD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaDown {
    /// The ISAKMP SA it belonged to.
    pub ike: IkeSaId,
    /// The connection.
    pub connection: String,
    /// The child.
    pub child: String,
    /// Our SPI (the inbound SA).
    pub inbound_spi: u32,
    /// The peer's SPI (the outbound SA).
    pub outbound_spi: u32,
    /// Why.
    pub reason: ChildDownReason,
}

/// What the daemon learns from the engine.
#[derive(Debug, Clone)]
pub enum Event {
    /// Phase 1 completed: the ISAKMP SA is established and the peer authenticated.
    IkeSaUp {
        /// The SA.
        id: IkeSaId,
        /// Its connection.
        connection: String,
        /// Our address and port.
        local: SocketAddr,
        /// The peer's.
        remote: SocketAddr,
        /// The identity the peer proved.
        peer_id: Identification,
    },
    /// An ISAKMP SA (or a phase 1 exchange) ended.
    IkeSaDown {
        /// The SA.
        id: IkeSaId,
        /// Its connection.
        connection: String,
        /// Why, for the log.
        reason: String,
    },
    /// Dead Peer Detection declared the peer dead (RFC 3706): its SAs are closed (and the
    /// children whose `dpd_action` is `restart` negotiated again).
    PeerDead {
        /// The ISAKMP SA.
        id: IkeSaId,
        /// Its connection.
        connection: String,
        /// The peer.
        remote: SocketAddr,
    },
    /// A child SA pair to install.
    ChildSaUp(Box<ChildSaUp>),
    /// A child SA pair to remove.
    ChildSaDown(ChildSaDown),
    /// Something the operator should read: why a message was refused, why no proposal
    /// matched, a peer's Notify. The engine does no logging of its own; the daemon writes
    /// these to its log.
    Log {
        /// How important.
        level: LogLevel,
        /// The line.
        message: String,
    },
    /// A child could not be negotiated (the log says why in detail).
    ChildFailed {
        /// The connection.
        connection: String,
        /// The child.
        child: String,
        /// Why.
        reason: String,
    },
}

/// How important a [`Event::Log`] line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Normal operation worth a line: a refused message, a peer's refusal.
    Info,
    /// Something configured wrongly or failing.
    Warn,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No child or connection of that name.
    #[error("no connection or child named {0:?}")]
    Unknown(String),
    /// The connection names no single remote address to initiate to.
    #[error("connection {0:?} has no remote address to initiate to (remote_addrs)")]
    NoRemote(String),
    /// The connection's settings cannot be negotiated.
    #[error("connection {connection:?}: {reason}")]
    Config {
        /// The connection.
        connection: String,
        /// What is wrong.
        reason: String,
    },
    /// The crypto provider failed.
    #[error("crypto provider: {0}")]
    Crypto(#[from] CryptoError),
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams taken.
    pub received: u64,
    /// Datagrams sent (first sends and answers).
    pub sent: u64,
    /// Retransmissions sent.
    pub retransmitted: u64,
    /// Duplicates answered from the stored answer.
    pub duplicates_answered: u64,
    /// Datagrams dropped (not IKE, unknown SA, failed a check or a step).
    pub dropped: u64,
    /// Half-open responder exchanges evicted to keep the table bounded.
    pub half_open_evicted: u64,
}

/// The engine. `C` is the crypto provider.
pub struct Ike<C: Crypto> {
    crypto: C,
    config: EngineConfig,
    ike: IkeConfig,
    cookies: CookieJar,
    /// `ike.connections`, each shared (handlers hold one while they change the engine).
    connections: Vec<Arc<Connection>>,
    sas: BTreeMap<IkeSaId, IkeSa<C::KeyPair>>,
    /// The SAs by CKY-I (several peers may pick the same one).
    by_cookie: HashMap<Cookie, Vec<IkeSaId>>,
    /// Responder exchanges in creation order, for eviction (entries of exchanges that have
    /// since moved on or gone are skipped; the queue never holds more than `max_half_open`).
    half_open: VecDeque<IkeSaId>,
    next_id: u64,
    inbound_spis: HashSet<u32>,
    /// The wall-clock time at an instant (certificates are valid between dates): the wall
    /// time of any later `now` is derived from it, so the engine reads no clock.
    wall_epoch: (Instant, SystemTime),
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl<C: Crypto> fmt::Debug for Ike<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ike")
            .field("sas", &self.sas.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Where one phase 1 exchange is.
enum Phase1<K> {
    InitSa(mm::Initiator<SentSa>),
    InitKe(mm::Initiator<SentKe<K>>),
    InitId(mm::Initiator<SentId>),
    RespSa(mm::Responder<RepliedSa>),
    RespKe(mm::Responder<RepliedKe>),
    /// Aggressive Mode initiator: message 1 sent.
    AggrInit(am::Initiator<AggrSentFirst<K>>),
    /// Aggressive Mode responder: message 2 sent, awaiting message 3.
    AggrResp(am::Responder<AggrReplied>),
    Established(Box<IsakmpSa>),
    /// Only while a step runs (the typed states consume themselves).
    Stepping,
}

impl<K> Phase1<K> {
    fn name(&self) -> &'static str {
        match self {
            Phase1::InitSa(_) => "MM_SA_I",
            Phase1::InitKe(_) => "MM_KE_I",
            Phase1::InitId(_) => "MM_AUTH_I",
            Phase1::RespSa(_) => "MM_SA_R",
            Phase1::RespKe(_) => "MM_KE_R",
            Phase1::AggrInit(_) => "AM_I",
            Phase1::AggrResp(_) => "AM_R",
            Phase1::Established(_) => "ESTABLISHED",
            Phase1::Stepping => "STEPPING",
        }
    }

    fn sa_state(&self) -> SaState {
        match self {
            Phase1::InitSa(_) | Phase1::RespSa(_) | Phase1::Stepping => SaState::Phase1 {
                exchange: ExchangeType::IdentityProtection,
                keyed: false,
            },
            Phase1::InitKe(_) | Phase1::InitId(_) | Phase1::RespKe(_) => SaState::Phase1 {
                exchange: ExchangeType::IdentityProtection,
                keyed: true,
            },
            Phase1::AggrInit(_) => SaState::Phase1 {
                exchange: ExchangeType::Aggressive,
                keyed: false,
            },
            Phase1::AggrResp(_) => SaState::Phase1 {
                exchange: ExchangeType::Aggressive,
                keyed: true,
            },
            Phase1::Established(_) => SaState::Established,
        }
    }
}

/// A Quick Mode exchange in progress.
enum Quick<K> {
    Initiator {
        child: String,
        exchange: qm::Initiator<K>,
        retransmit: Retransmit,
        replaces: Option<u32>,
    },
    Responder {
        child: String,
        exchange: qm::Responder,
        expires: Instant,
    },
}

impl<K: crate::crypto::DhKeyPair> Quick<K> {
    fn message_id(&self) -> u32 {
        match self {
            Quick::Initiator { exchange, .. } => exchange.message_id(),
            Quick::Responder { exchange, .. } => exchange.message_id(),
        }
    }
}

/// An installed child SA pair, as the engine tracks it.
#[derive(Debug, Clone)]
struct ChildSa {
    child: String,
    inbound_spi: u32,
    outbound_spi: u32,
    description: String,
    local_ts: TrafficRange,
    remote_ts: TrafficRange,
    established: Instant,
    /// When to start a replacement (only the side that began the exchange, as strongSwan's
    /// IKEv1 rekeys from the original initiator by default; `None` once begun).
    rekey_at: Option<Instant>,
    expires: Instant,
}

/// One ISAKMP SA (or phase 1 exchange) and its Quick Mode exchanges and child SAs.
struct IkeSa<K> {
    id: IkeSaId,
    connection: usize,
    local: SocketAddr,
    remote: SocketAddr,
    initiator: bool,
    cky_i: Cookie,
    cky_r: Cookie,
    phase1: Phase1<K>,
    created: Instant,
    /// Phase 1 not done: when it is given up. Established: when the ISAKMP SA expires.
    expires: Instant,
    retransmit: Option<Retransmit>,
    /// (received message, answer) of the last messages answered, both without the non-ESP
    /// marker: an answer is put on the wire for the port it is sent from when it is sent again
    /// (the SA may have moved to the NAT-T port since, RFC 3948 section 2.2).
    answered: VecDeque<(Vec<u8>, Vec<u8>)>,
    quick: Vec<Quick<K>>,
    children: Vec<ChildSa>,
    /// Children to negotiate once phase 1 completes.
    pending: Vec<String>,
    /// The peer sent the DPD Vendor ID (RFC 3706 section 5.1) in message 1 or 2.
    peer_dpd: bool,
    /// Dead Peer Detection, once established when configured and the peer supports it.
    dpd: Option<Dpd>,
    /// Message IDs of the protected Informationals taken (a replay is dropped).
    informational_ids: VecDeque<u32>,
    /// When to replace this ISAKMP SA by a new Main Mode (the original initiator only).
    rekey_at: Option<Instant>,
    /// The ISAKMP SA this exchange replaces (a rekey): deleted once this one is up.
    replaces: Option<IkeSaId>,
}

/// What a new ISAKMP SA entry starts with; the rest starts empty.
struct NewSa<K> {
    id: IkeSaId,
    connection: usize,
    local: SocketAddr,
    remote: SocketAddr,
    initiator: bool,
    cookies: (Cookie, Cookie),
    phase1: Phase1<K>,
    now: Instant,
    expires: Instant,
    retransmit: Option<Retransmit>,
}

impl<K> IkeSa<K> {
    fn new(n: NewSa<K>) -> IkeSa<K> {
        IkeSa {
            id: n.id,
            connection: n.connection,
            local: n.local,
            remote: n.remote,
            initiator: n.initiator,
            cky_i: n.cookies.0,
            cky_r: n.cookies.1,
            phase1: n.phase1,
            created: n.now,
            expires: n.expires,
            retransmit: n.retransmit,
            answered: VecDeque::new(),
            quick: Vec::new(),
            children: Vec::new(),
            pending: Vec::new(),
            peer_dpd: false,
            dpd: None,
            informational_ids: VecDeque::new(),
            rekey_at: None,
            replaces: None,
        }
    }

    fn remember(&mut self, received: &[u8], answer: &[u8]) {
        if self.answered.len() == ANSWERED {
            self.answered.pop_front();
        }
        self.answered
            .push_back((received.to_vec(), answer.to_vec()));
    }

    /// The earliest of its timers: expiry, DPD, rekey, retransmissions, Quick Mode exchanges
    /// and its children's rekeys and expiries.
    fn next_deadline(&self) -> Instant {
        let quick = self.quick.iter().map(|q| match q {
            Quick::Initiator { retransmit, .. } => retransmit.next,
            Quick::Responder { expires, .. } => *expires,
        });
        let children = self
            .children
            .iter()
            .flat_map(|c| [Some(c.expires), c.rekey_at]);
        [
            self.dpd.as_ref().and_then(Dpd::poll_timeout),
            self.rekey_at,
            self.retransmit.as_ref().map(|r| r.next),
        ]
        .into_iter()
        .chain(children)
        .flatten()
        .chain(quick)
        .fold(self.expires, Instant::min)
    }

    fn isakmp(&self) -> Option<&IsakmpSa> {
        match &self.phase1 {
            Phase1::Established(sa) => Some(sa),
            _ => None,
        }
    }
}

/// A snapshot of one ISAKMP SA for `realm ctl ike`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaView {
    /// The handle.
    pub id: IkeSaId,
    /// The connection.
    pub connection: String,
    /// `ESTABLISHED`, or the Main Mode step (`MM_KE_I`, ...).
    pub state: String,
    /// True on the side that began phase 1.
    pub initiator: bool,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// CKY-I, hex.
    pub initiator_cookie: String,
    /// CKY-R, hex (zeros until known).
    pub responder_cookie: String,
    /// The negotiated proposal (`aes128-sha256-modp2048`), once chosen.
    pub proposal: Option<String>,
    /// The peer's identity, once authenticated.
    pub peer_id: Option<String>,
    /// Seconds since the exchange began.
    pub age_secs: u64,
    /// Seconds until it expires.
    pub expires_in_secs: u64,
    /// Its installed child SA pairs.
    pub children: Vec<ChildSaView>,
}

/// A snapshot of one child SA pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaView {
    /// The child's name.
    pub name: String,
    /// Our SPI.
    pub inbound_spi: u32,
    /// The peer's SPI.
    pub outbound_spi: u32,
    /// Algorithms, mode, encapsulation (`aes128gcm16 tunnel udp-encap`).
    pub description: String,
    /// Our side's traffic.
    pub local_ts: String,
    /// The peer's side's traffic.
    pub remote_ts: String,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// Seconds until the replacement begins, if this side rekeys it.
    pub rekey_in_secs: Option<u64>,
    /// Seconds until it expires.
    pub expires_in_secs: u64,
}

impl<C: Crypto> Ike<C> {
    /// An engine for `ike`'s connections, its cookie secret drawn from `crypto`.
    pub fn new(
        crypto: C,
        config: EngineConfig,
        ike: IkeConfig,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Ike<C>, CommandError> {
        let secret = CookieSecret::generate(&crypto)?;
        let cookies = CookieJar::new(secret, config.cookie_period, now).map_err(|e| {
            CommandError::Config {
                connection: String::new(),
                reason: e.to_string(),
            }
        })?;
        Ok(Ike {
            crypto,
            config,
            connections: ike.connections.iter().cloned().map(Arc::new).collect(),
            ike,
            cookies,
            sas: BTreeMap::new(),
            by_cookie: HashMap::new(),
            half_open: VecDeque::new(),
            next_id: 1,
            inbound_spis: HashSet::new(),
            wall_epoch: (now, wall),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    /// The connections.
    pub fn ike_config(&self) -> &IkeConfig {
        &self.ike
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Ike::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas
            .values()
            .map(IkeSa::next_deadline)
            .chain([self.cookies.next_rotation()])
            .min()
    }

    /// Starts every child whose `start_action` is `start`.
    pub fn start(&mut self, now: Instant) -> Vec<(String, CommandError)> {
        let names: Vec<String> = self
            .ike
            .connections
            .iter()
            .flat_map(|c| c.children.iter())
            .filter(|c| c.start_action == crate::config::Action::Start)
            .map(|c| c.name.clone())
            .collect();
        names
            .into_iter()
            .filter_map(|n| self.initiate(now, &n).err().map(|e| (n, e)))
            .collect()
    }

    /// Negotiates child `child`: under its connection's established ISAKMP SA, or after a new
    /// Main Mode to the connection's remote address.
    pub fn initiate(&mut self, now: Instant, child: &str) -> Result<(), CommandError> {
        let Some(index) = self
            .ike
            .connections
            .iter()
            .position(|c| c.child(child).is_some())
        else {
            return Err(CommandError::Unknown(child.to_owned()));
        };
        let existing = self
            .sas
            .values()
            .filter(|sa| sa.connection == index)
            .max_by_key(|sa| matches!(sa.phase1, Phase1::Established(_)))
            .map(|sa| sa.id);
        if let Some(id) = existing
            && let Some(mut sa) = self.sas.remove(&id)
        {
            let result = if sa.isakmp().is_some() {
                self.start_quick_mode(now, &mut sa, child, None)
            } else {
                if !sa.pending.iter().any(|p| p == child) {
                    sa.pending.push(child.to_owned());
                }
                Ok(())
            };
            self.sas.insert(id, sa);
            return result;
        }
        self.start_main_mode(now, index, vec![child.to_owned()], None)
    }

    /// Closes connection `name`'s ISAKMP SAs and their children (the children's removal is
    /// reported as [`Event::ChildSaDown`] with [`ChildDownReason::Closed`]).
    pub fn terminate(&mut self, now: Instant, name: &str) -> Result<usize, CommandError> {
        let Some(index) = self.ike.connections.iter().position(|c| c.name == name) else {
            return Err(CommandError::Unknown(name.to_owned()));
        };
        let ids: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|sa| sa.connection == index)
            .map(|sa| sa.id)
            .collect();
        for id in &ids {
            self.close_sa(now, *id, ChildDownReason::Closed, "closed locally");
        }
        Ok(ids.len())
    }

    /// Closes everything (daemon shutdown).
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<IkeSaId> = self.sas.keys().copied().collect();
        for id in ids {
            self.close_sa(now, id, ChildDownReason::Closed, "shutting down");
        }
    }

    /// Snapshots of the ISAKMP SAs, for `realm ctl ike`.
    pub fn ike_sas(&self, now: Instant) -> Vec<IkeSaView> {
        let secs = |later: Instant| later.saturating_duration_since(now).as_secs();
        self.sas
            .values()
            .map(|sa| {
                let established = sa.isakmp();
                IkeSaView {
                    id: sa.id,
                    connection: self.connection(sa.connection).name.clone(),
                    state: sa.phase1.name().to_owned(),
                    initiator: sa.initiator,
                    local: sa.local,
                    remote: sa.remote,
                    initiator_cookie: hex::encode(sa.cky_i),
                    responder_cookie: hex::encode(sa.cky_r),
                    proposal: established.map(|s| s.choice.proposal.to_string()),
                    peer_id: established.map(|s| {
                        match s.peer_cert.as_ref().and_then(|c| c.subject()) {
                            // A DN identity (signatures): as strongSwan prints it.
                            Some(dn)
                                if s.peer_id.id_type == realm_wire::isakmp::IdType::DerAsn1Dn =>
                            {
                                dn.to_string()
                            }
                            _ => describe_id(&s.peer_id),
                        }
                    }),
                    age_secs: now.saturating_duration_since(sa.created).as_secs(),
                    expires_in_secs: secs(sa.expires),
                    children: sa
                        .children
                        .iter()
                        .map(|c| ChildSaView {
                            name: c.child.clone(),
                            inbound_spi: c.inbound_spi,
                            outbound_spi: c.outbound_spi,
                            description: c.description.clone(),
                            local_ts: c.local_ts.to_string(),
                            remote_ts: c.remote_ts.to_string(),
                            age_secs: now.saturating_duration_since(c.established).as_secs(),
                            rekey_in_secs: c.rekey_at.map(secs),
                            expires_in_secs: secs(c.expires),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The `ikev1_decryption_table` line (Wireshark) of an established ISAKMP SA, for the
    /// daemon's key export (off by default).
    pub fn ikev1_decryption_table_line(&self, id: IkeSaId) -> Option<String> {
        let sa = self.sas.get(&id)?.isakmp()?;
        Some(crate::export::ikev1_decryption_table_line(sa))
    }

    /// Takes one received UDP payload: `local` is the address and port it arrived on,
    /// `remote` where it came from. On the NAT-T port the payload starts with the non-ESP
    /// marker.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if local.port() == self.config.nat_t_port {
            // RFC 3948 section 2.2: IKE on the NAT-T port follows four zero octets; anything
            // else there is ESP or a keepalive, not ours.
            match bytes.strip_prefix(&NON_ESP_MARKER) {
                Some(rest) => self.handle_message(now, local, remote, rest),
                None => {
                    self.counters.received += 1;
                    self.drop_datagram("no non-ESP marker on the NAT-T port");
                }
            }
        } else {
            self.handle_message(now, local, remote, bytes);
        }
    }

    /// Takes one received IKE message without the non-ESP marker (the IPsec engine strips it
    /// from what arrives on the NAT-T port).
    pub fn handle_message(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.counters.received += 1;
        if bytes.len() < HEADER_LEN {
            return self.drop_datagram("shorter than an ISAKMP header");
        }
        let (cky_i, cky_r) = cookies_of(bytes);
        let exchange = ExchangeType::from(bytes[18]);

        let found = self.find_sa(cky_i, cky_r, remote);
        if let Some(id) = found
            && let Some(sa) = self.sas.get(&id)
            && let Some((_, answer)) = sa.answered.iter().find(|(r, _)| r == bytes)
        {
            let (l, r) = (sa.local, sa.remote);
            let bytes = self.wire(l, answer);
            self.counters.duplicates_answered += 1;
            self.transmits.push_back(Transmit {
                local: l,
                remote: r,
                bytes,
            });
            return;
        }
        match found {
            Some(id) => {
                let Some(mut sa) = self.sas.remove(&id) else {
                    return;
                };
                let keep = self.handle_for_sa(now, &mut sa, local, remote, bytes, exchange);
                if keep {
                    self.sas.insert(id, sa);
                } else {
                    self.unindex(&sa);
                }
            }
            None if cky_r == [0; 8] && exchange == ExchangeType::IdentityProtection => {
                self.respond_phase1(now, local, remote, bytes, cky_i, false);
            }
            None if cky_r == [0; 8] && exchange == ExchangeType::Aggressive => {
                self.respond_phase1(now, local, remote, bytes, cky_i, true);
            }
            None => {
                // RFC 2408 section 5.2: a cookie pair naming no SA.
                let verdict = checks::check(bytes, &Context::new(SaState::None, &IKEV1_EXCHANGES));
                self.answer_rejection(local, remote, verdict.rejection());
                self.drop_datagram("no ISAKMP SA for these cookies");
            }
        }
    }

    /// Acts on the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.cookies.next_rotation() {
            match CookieSecret::generate(&self.crypto) {
                Ok(secret) => self.cookies.rotate(now, secret),
                Err(e) => self.log(
                    LogLevel::Warn,
                    format!("cookie secret rotation failed: {e}"),
                ),
            }
        }
        // Only the SAs with a timer due: the others are not taken out of the table.
        let ids: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|sa| sa.next_deadline() <= now)
            .map(|sa| sa.id)
            .collect();
        for id in ids {
            let Some(mut sa) = self.sas.remove(&id) else {
                continue;
            };
            if self.sa_timers(now, &mut sa) {
                self.sas.insert(id, sa);
            } else {
                self.unindex(&sa);
            }
        }
    }

    // ---- internals ----

    /// Connection `index` (a position in `self.ike.connections`, which never changes), shared
    /// so that a handler can hold it while it changes the engine.
    fn connection(&self, index: usize) -> &Arc<Connection> {
        &self.connections[index.min(self.connections.len().saturating_sub(1))]
    }

    /// The wall-clock time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        let (epoch, wall) = self.wall_epoch;
        wall + now.saturating_duration_since(epoch)
    }

    fn log(&mut self, level: LogLevel, message: String) {
        self.events.push_back(Event::Log { level, message });
    }

    fn drop_datagram(&mut self, _why: &'static str) {
        self.counters.dropped += 1;
    }

    /// The SA a message with these cookies from `remote` belongs to: the one with both
    /// cookies; for our Main Mode message 1 still unanswered, the one with CKY-I (the answer
    /// brings CKY-R); for a retransmitted message 1 (CKY-R zero), the responder exchange it
    /// began with the same peer.
    fn find_sa(&self, cky_i: Cookie, cky_r: Cookie, remote: SocketAddr) -> Option<IkeSaId> {
        let candidates = || {
            self.by_cookie
                .get(&cky_i)
                .into_iter()
                .flatten()
                .filter_map(|id| self.sas.get(id))
        };
        let exact = candidates().find(|sa| sa.cky_r == cky_r && cky_r != [0; 8]);
        exact
            .or_else(|| {
                candidates().find(|sa| {
                    if cky_r == [0; 8] {
                        !sa.initiator && sa.remote == remote
                    } else {
                        sa.cky_r == [0; 8]
                            && matches!(sa.phase1, Phase1::InitSa(_) | Phase1::AggrInit(_))
                    }
                })
            })
            .map(|sa| sa.id)
    }

    /// Adds a new SA.
    fn insert_new(&mut self, sa: IkeSa<C::KeyPair>) {
        self.by_cookie.entry(sa.cky_i).or_default().push(sa.id);
        if matches!(sa.phase1, Phase1::RespSa(_) | Phase1::AggrResp(_)) {
            self.half_open.push_back(sa.id);
        }
        self.sas.insert(sa.id, sa);
    }

    /// Drops the index entry of an SA taken out of `sas` for good, and the inbound SPIs its
    /// unfinished Quick Modes had reserved.
    fn unindex(&mut self, sa: &IkeSa<C::KeyPair>) {
        for q in &sa.quick {
            let spi = match q {
                Quick::Initiator { exchange, .. } => exchange.our_spi(),
                Quick::Responder { exchange, .. } => exchange.our_spi(),
            };
            self.inbound_spis.remove(&spi);
        }
        if let Some(ids) = self.by_cookie.get_mut(&sa.cky_i) {
            ids.retain(|id| *id != sa.id);
            if ids.is_empty() {
                self.by_cookie.remove(&sa.cky_i);
            }
        }
    }

    /// The crypto provider.
    pub fn crypto(&self) -> &C {
        &self.crypto
    }

    fn new_id(&mut self) -> IkeSaId {
        let id = IkeSaId(self.next_id);
        self.next_id += 1;
        id
    }

    fn send(&mut self, local: SocketAddr, remote: SocketAddr, message: &[u8]) -> Vec<u8> {
        let bytes = self.wire(local, message);
        self.counters.sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote,
            bytes: bytes.clone(),
        });
        bytes
    }

    /// The UDP payload for an IKE message sent from `local`.
    fn wire(&self, local: SocketAddr, message: &[u8]) -> Vec<u8> {
        if local.port() == self.config.nat_t_port {
            let mut out = Vec::with_capacity(message.len() + 4);
            out.extend_from_slice(&NON_ESP_MARKER);
            out.extend_from_slice(message);
            out
        } else {
            message.to_vec()
        }
    }

    fn main_mode_config(&self, c: &Connection, local: Ipv4Addr) -> Result<MainModeConfig, String> {
        let lifetime = NonZeroU32::new(c.phase1_lifetime().as_secs())
            .or(NonZeroU32::new(
                crate::config::DEFAULT_IKE_REKEY_TIME.as_secs(),
            ))
            .ok_or("no lifetime")?;
        let (auth, local_id) = match c.local.auth {
            AuthClass::Psk => {
                let id = c.local.id.clone().unwrap_or(Identity::Ipv4(local));
                let local_id = id.to_identification().ok_or_else(|| {
                    format!("local.id {id:?} cannot be sent with pre-shared keys")
                })?;
                (Phase1Credentials::PreSharedKey, local_id)
            }
            AuthClass::Pubkey => {
                let creds = self.config.credentials.get(&c.name).ok_or_else(|| {
                    "auth = \"pubkey\" but no key and certificate were loaded".to_string()
                })?;
                // strongSwan's default: the certificate's subject DN.
                let local_id = match &c.local.id {
                    Some(id) => id.to_identification().unwrap_or_else(|| creds.default_id()),
                    None => creds.default_id(),
                };
                (Phase1Credentials::RsaSignature(creds.clone()), local_id)
            }
        };
        Ok(MainModeConfig {
            proposals: c.proposals.as_slice().to_vec(),
            lifetime,
            preference: Preference::Ours,
            local_id,
            auth,
            // NAT-T always offered (RFC 3947); `encap = yes` pretends a NAT (section 3.2).
            nat_t: NatTConfig {
                enabled: true,
                force_encap: c.encap,
            },
            // RFC 3706 section 5.1: we answer R-U-THERE, and probe peers that say they do.
            vendor_ids: vec![realm_wire::isakmp::DPD_VENDOR_ID.to_vec()],
        })
    }

    fn psk(&self, c: &Connection, local: Ipv4Addr, remote: Ipv4Addr) -> Option<PreSharedKey> {
        if c.local.auth == AuthClass::Pubkey {
            // Signatures: nothing is shared (SKEYID from the nonces and g^xy, RFC 2409 5.1).
            return Some(PreSharedKey::from_bytes(Vec::new()));
        }
        let me = c.local.id.clone().unwrap_or(Identity::Ipv4(local));
        let other = match &c.remote.id {
            Identity::Any => Identity::Ipv4(remote),
            id => id.clone(),
        };
        self.ike.ike_secret(&me, &other).map(|s| s.secret.clone())
    }

    fn start_main_mode(
        &mut self,
        now: Instant,
        index: usize,
        pending: Vec<String>,
        replaces: Option<IkeSaId>,
    ) -> Result<(), CommandError> {
        let c = self.connection(index).clone();
        let Some(remote_ip) = c.remote_host() else {
            return Err(CommandError::NoRemote(c.name.clone()));
        };
        let local_ip = c.local_host().unwrap_or(self.config.local_addr);
        let local = SocketAddr::new(IpAddr::V4(local_ip), c.local_port);
        let remote = SocketAddr::new(IpAddr::V4(remote_ip), c.remote_port);
        let config =
            self.main_mode_config(&c, local_ip)
                .map_err(|reason| CommandError::Config {
                    connection: c.name.clone(),
                    reason,
                })?;
        let endpoints = Endpoints { local, remote };
        let fail = |e: MainModeError| CommandError::Config {
            connection: c.name.clone(),
            reason: e.to_string(),
        };
        let (phase1, cky_i, message) = if c.aggressive {
            let (state, message) =
                am::Initiator::start(&self.crypto, config, endpoints).map_err(fail)?;
            let cky = state.initiator_cookie();
            (Phase1::AggrInit(state), cky, message)
        } else {
            let (state, message) =
                mm::Initiator::start(&self.crypto, config, endpoints).map_err(fail)?;
            let cky = state.initiator_cookie();
            (Phase1::InitSa(state), cky, message)
        };
        let id = self.new_id();
        let bytes = self.send(local, remote, &message);
        let mut sa = IkeSa::new(NewSa {
            id,
            connection: index,
            local,
            remote,
            initiator: true,
            cookies: (cky_i, [0; 8]),
            phase1,
            now,
            expires: now + self.config.half_open_timeout.max(Duration::from_secs(180)),
            retransmit: Some(Retransmit::new(
                &self.config.retransmit,
                now,
                local,
                remote,
                bytes,
            )),
        });
        sa.pending = pending;
        sa.replaces = replaces;
        self.insert_new(sa);
        Ok(())
    }

    /// The connection a Main Mode message 1 from `remote` to `local` is for.
    fn responder_connection(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        aggressive: bool,
    ) -> Option<usize> {
        let (IpAddr::V4(l), IpAddr::V4(r)) = (local.ip(), remote.ip()) else {
            return None;
        };
        self.ike.connections.iter().position(|c| {
            c.aggressive == aggressive
                && c.local_addrs.iter().any(|a| a.matches(l))
                && c.remote_addrs.iter().any(|a| a.matches(r))
        })
    }

    /// A first message of Main Mode or (`aggressive`) Aggressive Mode from a peer: the
    /// connection whose addresses and mode match answers it, with a responder cookie from the
    /// jar (RFC 2408 s2.5.3). Main Mode does no DH work until message 3 echoes that cookie;
    /// Aggressive Mode cannot wait (RFC 2409 s5.4: its message 2 carries KE and HASH_R) and
    /// chooses the pre-shared key by the initiator's identity. Either way the exchange takes
    /// one of the `max_half_open` places.
    fn respond_phase1(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        cky_i: Cookie,
        aggressive: bool,
    ) {
        let mode = if aggressive {
            "Aggressive Mode"
        } else {
            "Main Mode"
        };
        let Some(index) = self.responder_connection(local, remote, aggressive) else {
            let which = if aggressive {
                "no connection with aggressive = true matches"
            } else {
                "no connection matches these addresses"
            };
            self.log(
                LogLevel::Info,
                format!("{mode} from {remote} to {local}: {which}"),
            );
            // RFC 2408 section 5.4 / strongSwan: no configuration is NO-PROPOSAL-CHOSEN.
            self.notify_unprotected(
                local,
                remote,
                cky_i,
                [0; 8],
                NotifyMessageType::NoProposalChosen,
            );
            return self.drop_datagram("no connection");
        };
        let IpAddr::V4(local_ip) = local.ip() else {
            return self.drop_datagram("IPv6");
        };
        let c = self.connection(index).clone();
        let config = match self.main_mode_config(&c, local_ip) {
            Ok(config) => config,
            Err(reason) => {
                self.log(LogLevel::Warn, format!("connection {}: {reason}", c.name));
                return self.drop_datagram("connection unusable");
            }
        };
        let cky_r = self.cookies.cookie(now, remote, cky_i);
        let endpoints = Endpoints { local, remote };
        let step = if aggressive {
            am::Responder::handle_first(config, cky_r, endpoints, &self.crypto, bytes, |id| {
                self.psk_for_identity(&c, local_ip, id)
            })
            .map(|(state, answer)| (Phase1::AggrResp(state), answer))
            .map_err(|e| (e.to_string(), e.notify()))
        } else {
            mm::Responder::handle_sa(config, cky_r, endpoints, bytes)
                .map(|(state, answer)| (Phase1::RespSa(state), answer))
                .map_err(|e| (e.to_string(), e.notify()))
        };
        match step {
            Ok((phase1, answer)) => {
                self.bound_half_open();
                let id = self.new_id();
                let sent = self.send(local, remote, &answer);
                // Aggressive Mode's message 3 has no answer: message 2 is resent until it comes.
                let retransmit = aggressive
                    .then(|| Retransmit::new(&self.config.retransmit, now, local, remote, sent));
                let mut sa = IkeSa::new(NewSa {
                    id,
                    connection: index,
                    local,
                    remote,
                    initiator: false,
                    cookies: (cky_i, cky_r),
                    phase1,
                    now,
                    expires: now + self.config.half_open_timeout,
                    retransmit,
                });
                sa.peer_dpd = sends_dpd_vendor_id(bytes);
                sa.remember(bytes, &answer);
                self.insert_new(sa);
            }
            Err((why, notify)) => {
                self.log(
                    LogLevel::Info,
                    format!("{mode} from {remote} (connection {}): {why}", c.name),
                );
                if let Some(t) = notify {
                    self.notify_unprotected(local, remote, cky_i, [0; 8], t);
                }
                self.drop_datagram("first message refused");
            }
        }
    }

    /// Makes room for one more responder exchange not yet past its cookie echo: at most
    /// `max_half_open` are kept, the oldest evicted first.
    fn bound_half_open(&mut self) {
        let max = self.config.max_half_open.max(1);
        while self.half_open.len() >= max {
            let Some(id) = self.half_open.pop_front() else {
                return;
            };
            if self
                .sas
                .get(&id)
                .is_some_and(|sa| matches!(sa.phase1, Phase1::RespSa(_) | Phase1::AggrResp(_)))
                && let Some(sa) = self.sas.remove(&id)
            {
                self.unindex(&sa);
                self.counters.half_open_evicted += 1;
            }
        }
    }

    fn notify_unprotected(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        cky_i: Cookie,
        cky_r: Cookie,
        notify_type: NotifyMessageType,
    ) {
        let message_id = self.informational_message_id();
        if let Ok(bytes) = notify::unprotected(cky_i, cky_r, notify_type, message_id).to_bytes() {
            self.send(local, remote, &bytes);
        }
    }

    /// A Message ID for an unprotected Informational: random (RFC 2408 4.8: "independent of
    /// IVs of other on-going communication"); 0 if the RNG fails.
    fn informational_message_id(&self) -> u32 {
        let mut b = [0u8; 4];
        match self.crypto.fill_random(&mut b) {
            Ok(()) => u32::from_be_bytes(b),
            Err(_) => 0,
        }
    }

    fn answer_rejection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        rejection: Option<&checks::Rejection>,
    ) {
        if let Some(reply) =
            rejection.and_then(|r| notify::reply(r, self.informational_message_id()))
            && let Ok(bytes) = reply.to_bytes()
        {
            self.send(local, remote, &bytes);
        }
    }

    /// A datagram for an existing SA; false when the SA is to be forgotten.
    fn handle_for_sa(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        exchange: ExchangeType,
    ) -> bool {
        match (&sa.phase1, exchange) {
            (Phase1::Established(_), ExchangeType::QuickMode) => {
                self.quick_mode_message(now, sa, local, remote, bytes);
                true
            }
            (Phase1::Established(_), ExchangeType::Informational) => {
                self.informational(now, sa, bytes)
            }
            (_, ExchangeType::IdentityProtection)
                if !matches!(sa.phase1, Phase1::Established(_)) =>
            {
                self.main_mode_message(now, sa, local, remote, bytes)
            }
            (Phase1::AggrInit(_) | Phase1::AggrResp(_), ExchangeType::Aggressive) => {
                self.aggressive_mode_message(now, sa, local, remote, bytes)
            }
            (_, ExchangeType::Informational) => {
                // Before keys exist an Informational is unauthenticated: a Notify refusing
                // our offer ends the exchange the next retransmission would otherwise repeat.
                self.phase1_informational(sa, bytes)
            }
            _ => {
                let verdict =
                    checks::check(bytes, &Context::new(sa.phase1.sa_state(), &IKEV1_EXCHANGES));
                if verdict.rejection().is_some() {
                    self.answer_rejection(local, remote, verdict.rejection());
                }
                self.drop_datagram("unexpected exchange for this SA");
                true
            }
        }
    }

    fn phase1_informational(&mut self, sa: &IkeSa<C::KeyPair>, bytes: &[u8]) -> bool {
        let ctx = Context {
            padding: Padding::Any,
            ..Context::new(sa.phase1.sa_state(), &IKEV1_EXCHANGES)
        };
        if let checks::Verdict::Accept(m) = checks::check(bytes, &ctx) {
            for p in m.payloads() {
                if let realm_wire::isakmp::PayloadBody::Notification(n) = &p.body
                    && n.message_type.is_error()
                {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "{}: peer {} refused phase 1: {:?}",
                            self.connection(sa.connection).name,
                            sa.remote,
                            n.message_type
                        ),
                    );
                }
            }
        }
        self.drop_datagram("informational during phase 1");
        true
    }

    /// A Main Mode message for a phase 1 in progress; false when the SA is to be forgotten.
    fn main_mode_message(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        let c = self.connection(sa.connection).clone();
        let (IpAddr::V4(local_ip), IpAddr::V4(remote_ip)) = (sa.local.ip(), sa.remote.ip()) else {
            return false;
        };
        let wall = self.wall(now);
        let crypto = &self.crypto;
        let state = std::mem::replace(&mut sa.phase1, Phase1::Stepping);
        let mut answer = None;
        let mut established = None;
        let mut error: Option<MainModeError> = None;
        let mut float = false;
        match state {
            Phase1::InitSa(s) => match s.handle_sa(crypto, bytes) {
                Ok((next, out)) => {
                    sa.cky_r = cookies_of(bytes).1;
                    sa.peer_dpd = sends_dpd_vendor_id(bytes);
                    sa.phase1 = Phase1::InitKe(next);
                    answer = Some(out);
                }
                Err(f) => {
                    sa.phase1 = Phase1::InitSa(f.state);
                    error = Some(f.error);
                }
            },
            Phase1::InitKe(s) => match self.psk(&c, local_ip, remote_ip) {
                None => {
                    sa.phase1 = Phase1::InitKe(s);
                    self.log(
                        LogLevel::Warn,
                        format!("connection {}: no pre-shared key found", c.name),
                    );
                    return false;
                }
                Some(psk) => match s.handle_ke(crypto, bytes, psk.expose()) {
                    Ok((next, out)) => {
                        if next.nat().encapsulate() {
                            // RFC 3947 section 4: with a NAT on the path the initiator moves
                            // to port 4500 for message 5 on, both ends.
                            float = true;
                        }
                        sa.phase1 = Phase1::InitId(next);
                        answer = Some(out);
                    }
                    Err(f) => {
                        sa.phase1 = Phase1::InitKe(f.state);
                        error = Some(f.error);
                    }
                },
            },
            Phase1::InitId(s) => match s.handle_id(crypto, bytes, wall) {
                Ok(isakmp) => established = Some(isakmp),
                Err(f) => {
                    sa.phase1 = Phase1::InitId(f.state);
                    error = Some(f.error);
                }
            },
            Phase1::RespSa(s) => match self.psk(&c, local_ip, remote_ip) {
                None => {
                    self.log(
                        LogLevel::Warn,
                        format!("connection {}: no pre-shared key found", c.name),
                    );
                    return false;
                }
                Some(psk) => match s.handle_ke(crypto, bytes, psk.expose()) {
                    Ok((next, out)) => {
                        sa.phase1 = Phase1::RespKe(next);
                        answer = Some(out);
                        // The peer echoed our cookie: it is no longer half-open.
                        sa.expires = now + self.config.exchange_timeout;
                    }
                    Err(f) => {
                        sa.phase1 = Phase1::RespSa(f.state);
                        error = Some(f.error);
                    }
                },
            },
            Phase1::RespKe(s) => match s.handle_id(crypto, bytes, wall) {
                Ok((isakmp, out)) => {
                    established = Some(isakmp);
                    answer = Some(out);
                }
                Err(f) => {
                    sa.phase1 = Phase1::RespKe(f.state);
                    error = Some(f.error);
                }
            },
            other @ (Phase1::Established(_)
            | Phase1::Stepping
            | Phase1::AggrInit(_)
            | Phase1::AggrResp(_)) => {
                sa.phase1 = other;
                return true;
            }
        }
        if let Some(e) = error {
            self.log(
                LogLevel::Info,
                format!(
                    "connection {} ({} {}): Main Mode message refused: {e}",
                    c.name, sa.id, remote
                ),
            );
            self.drop_datagram("Main Mode step refused");
            // Only unprotected answers here; a keyed SA's Notify would need the phase 1 IV.
            if !sa.phase1.sa_state().keyed()
                && let Some(t) = e.notify()
                && !matches!(e, MainModeError::Rejected(_))
            {
                self.notify_unprotected(sa.local, sa.remote, sa.cky_i, sa.cky_r, t);
            }
            return true;
        }
        sa.retransmit = None;
        if float {
            let port = self.config.nat_t_port;
            sa.local.set_port(port);
            sa.remote.set_port(port);
        } else {
            // Answer where the message came from and arrived (RFC 3947 section 4: the
            // responder follows the initiator to port 4500; a NAT may change its port).
            sa.local = local;
            sa.remote = remote;
        }
        if let Some(out) = answer {
            let sent = self.send(sa.local, sa.remote, &out);
            if sa.initiator {
                sa.retransmit = Some(Retransmit::new(
                    &self.config.retransmit,
                    now,
                    sa.local,
                    sa.remote,
                    sent,
                ));
            } else {
                sa.remember(bytes, &out);
            }
        }
        if let Some(isakmp) = established {
            return self.established(now, sa, isakmp);
        }
        true
    }

    /// The pre-shared key for an Aggressive Mode initiator that says it is `peer` (RFC 2409
    /// section 5.4: Aggressive Mode sends the identity in the clear, so the key can be chosen
    /// by it).
    fn psk_for_identity(
        &self,
        c: &Connection,
        local: Ipv4Addr,
        peer: &Identification,
    ) -> Option<Vec<u8>> {
        let me = c.local.id.clone().unwrap_or(Identity::Ipv4(local));
        let other = Identity::from_identification(peer)?;
        if !other.matches(&c.remote.id).is_match() {
            return None;
        }
        self.ike
            .ike_secret(&me, &other)
            .map(|s| s.secret.expose().to_vec())
    }

    /// An Aggressive Mode message 2 (initiator) or 3 (responder); false when the SA is to be
    /// forgotten.
    fn aggressive_mode_message(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        let c = self.connection(sa.connection).clone();
        let (IpAddr::V4(local_ip), IpAddr::V4(remote_ip)) = (sa.local.ip(), sa.remote.ip()) else {
            return false;
        };
        let state = std::mem::replace(&mut sa.phase1, Phase1::Stepping);
        match state {
            Phase1::AggrInit(s) => {
                let Some(psk) = self.psk(&c, local_ip, remote_ip) else {
                    self.log(
                        LogLevel::Warn,
                        format!("connection {}: no pre-shared key found", c.name),
                    );
                    return false;
                };
                match s.handle_second(&self.crypto, bytes, psk.expose(), self.config.nat_t_port) {
                    Ok((isakmp, message3)) => {
                        sa.cky_r = cookies_of(bytes).1;
                        sa.peer_dpd = sends_dpd_vendor_id(bytes);
                        sa.retransmit = None;
                        if isakmp.nat.encapsulate() {
                            // RFC 3947 section 4: message 3 already goes between the NAT-T
                            // ports.
                            sa.local.set_port(self.config.nat_t_port);
                            sa.remote.set_port(self.config.nat_t_port);
                        }
                        let sent = self.send(sa.local, sa.remote, &message3);
                        // The responder resends message 2 until message 3 arrives: the stored
                        // answer goes back to it.
                        sa.remember(bytes, &sent);
                        self.established(now, sa, isakmp)
                    }
                    Err(f) => {
                        sa.phase1 = Phase1::AggrInit(f.state);
                        self.log(
                            LogLevel::Info,
                            format!(
                                "connection {} ({} {remote}): Aggressive Mode message 2 refused: {}",
                                c.name, sa.id, f.error
                            ),
                        );
                        self.drop_datagram("Aggressive Mode step refused");
                        true
                    }
                }
            }
            Phase1::AggrResp(s) => {
                match s.handle_third(&self.crypto, bytes, Endpoints { local, remote }) {
                    Ok(isakmp) => {
                        sa.retransmit = None;
                        sa.local = local;
                        sa.remote = remote;
                        self.established(now, sa, isakmp)
                    }
                    Err(f) => {
                        sa.phase1 = Phase1::AggrResp(f.state);
                        self.log(
                            LogLevel::Info,
                            format!(
                                "connection {} ({} {remote}): Aggressive Mode message 3 refused: {}",
                                c.name, sa.id, f.error
                            ),
                        );
                        self.drop_datagram("Aggressive Mode step refused");
                        true
                    }
                }
            }
            other => {
                sa.phase1 = other;
                true
            }
        }
    }

    /// Phase 1 done: check the peer's identity, report, start the pending children.
    fn established(&mut self, now: Instant, sa: &mut IkeSa<C::KeyPair>, isakmp: IsakmpSa) -> bool {
        let c = self.connection(sa.connection).clone();
        let proven = Identity::from_identification(&isakmp.peer_id);
        let accepted = match (&isakmp.peer_cert, &proven) {
            // Signatures: the certificate (already checked to carry the ID payload) must
            // match remote.id, as strongSwan checks it.
            (Some(cert), _) => cert.matches(&c.remote.id),
            (None, Some(id)) => id.matches(&c.remote.id).is_match(),
            (None, None) => c.remote.id == Identity::Any,
        };
        if !accepted {
            self.log(
                LogLevel::Warn,
                format!(
                    "connection {}: peer {} authenticated as {} but remote.id is {:?}: closing",
                    c.name,
                    sa.remote,
                    describe_id(&isakmp.peer_id),
                    c.remote.id
                ),
            );
            self.events.push_back(Event::IkeSaDown {
                id: sa.id,
                connection: c.name.clone(),
                reason: "peer identity does not match remote.id".into(),
            });
            return false;
        }
        let lifetime = Duration::from_secs(u64::from(isakmp.choice.lifetime.seconds.get()));
        sa.expires = now + lifetime;
        if !c.dpd_delay.is_zero() && sa.peer_dpd {
            let timeout = if c.dpd_timeout.is_zero() {
                DEFAULT_DPD_TIMEOUT
            } else {
                c.dpd_timeout.to_duration()
            };
            let mut seq = [0u8; 4];
            // RFC 3706 section 5.5: the first sequence number is random (a failed draw
            // starts at 1, which only makes it guessable).
            let first = match self.crypto.fill_random(&mut seq) {
                Ok(()) => u32::from_be_bytes(seq) & 0x7fff_ffff,
                Err(_) => 1,
            };
            sa.dpd = Some(Dpd::new(c.dpd_delay.to_duration(), timeout, now, first));
        }
        if sa.initiator && !c.rekey_time.is_zero() {
            // Before the lifetime runs out, whatever was configured or negotiated.
            let rekey = c.rekey_time.to_duration().min(lifetime - lifetime / 10);
            let jitter = self.jitter(c.rand_time.to_duration().min(rekey / 2));
            sa.rekey_at = Some(now + rekey.saturating_sub(jitter));
        }
        self.events.push_back(Event::IkeSaUp {
            id: sa.id,
            connection: c.name.clone(),
            local: sa.local,
            remote: sa.remote,
            peer_id: isakmp.peer_id.clone(),
        });
        // IKEv1 child SAs do not belong to the ISAKMP SA that made them: a new ISAKMP SA with
        // the same peer (a rekey or reauthentication, ours or the peer's) adopts the older
        // ones' children, so that their rekeys and Deletes go under the new one, as
        // strongSwan does ("adopting N children").
        let older: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|o| {
                o.connection == sa.connection
                    && o.remote.ip() == sa.remote.ip()
                    && o.isakmp().is_some_and(|i| i.peer_id == isakmp.peer_id)
            })
            .map(|o| o.id)
            .collect();
        for id in &older {
            if let Some(o) = self.sas.get_mut(id) {
                // A child rekey still under way there dies with the old SA: it begins again
                // under this one.
                let rekeying: Vec<u32> = o
                    .quick
                    .iter()
                    .filter_map(|q| match q {
                        Quick::Initiator { replaces, .. } => *replaces,
                        Quick::Responder { .. } => None,
                    })
                    .collect();
                for child in &mut o.children {
                    if rekeying.contains(&child.inbound_spi) {
                        child.rekey_at = Some(now);
                    }
                }
                sa.children.append(&mut o.children);
            }
        }
        sa.phase1 = Phase1::Established(Box::new(isakmp));
        if let Some(old) = sa.replaces.take() {
            // Our rekey is done: the old ISAKMP SA goes (its children live on under this one).
            self.close_sa(
                now,
                old,
                ChildDownReason::IkeSaGone,
                "replaced by a new ISAKMP SA",
            );
        }
        for child in std::mem::take(&mut sa.pending) {
            if let Err(e) = self.start_quick_mode(now, sa, &child, None) {
                self.events.push_back(Event::ChildFailed {
                    connection: c.name.clone(),
                    child,
                    reason: e.to_string(),
                });
            }
        }
        true
    }

    fn allocate_spi(&mut self) -> Result<u32, CryptoError> {
        loop {
            let mut b = [0u8; 4];
            self.crypto.fill_random(&mut b)?;
            let spi = u32::from_be_bytes(b);
            // RFC 4303 section 2.1: SPIs 1-255 are reserved, 0 is never sent.
            if spi > 255 && self.inbound_spis.insert(spi) {
                return Ok(spi);
            }
        }
    }

    fn quick_mode_config(
        c: &Connection,
        child: &Child,
        sa: &IkeSa<C::KeyPair>,
    ) -> Result<QuickModeConfig, String> {
        let (IpAddr::V4(l), IpAddr::V4(r)) = (sa.local.ip(), sa.remote.ip()) else {
            return Err("IPv6".into());
        };
        let _ = c;
        let lifetime =
            NonZeroU32::new(child.life_time.as_secs()).ok_or("life_time must not be 0s")?;
        let nat = sa.isakmp().map(|s| s.nat).unwrap_or_default();
        let mode = match child.mode {
            Mode::Tunnel => IpsecMode::Tunnel,
            Mode::Transport => IpsecMode::Transport,
        };
        Ok(QuickModeConfig {
            proposals: child.esp_proposals.as_slice().to_vec(),
            mode,
            // RFC 3947 section 5: UDP-encapsulated modes once a NAT was detected (or faked).
            udp: nat.udp_encapsulation(),
            // Section 5.1: NAT-OA in transport mode, our address and the peer's as we see them.
            original_addresses: (nat.encapsulate() && mode == IpsecMode::Transport)
                .then_some((IpAddr::V4(l), IpAddr::V4(r))),
            lifetime,
            preference: Preference::Ours,
            client_ids: Some((
                child.local_ts.to_identification(l),
                child.remote_ts.to_identification(r),
            )),
        })
    }

    fn start_quick_mode(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        child_name: &str,
        replaces: Option<u32>,
    ) -> Result<(), CommandError> {
        let c = self.connection(sa.connection).clone();
        let child = c
            .child(child_name)
            .ok_or_else(|| CommandError::Unknown(child_name.to_owned()))?;
        let config =
            Self::quick_mode_config(&c, child, sa).map_err(|reason| CommandError::Config {
                connection: c.name.clone(),
                reason,
            })?;
        let Some(isakmp) = sa.isakmp() else {
            return Ok(());
        };
        let isakmp = isakmp.clone();
        let spi = self.allocate_spi()?;
        let (exchange, message) = match qm::Initiator::start(&self.crypto, &isakmp, config, spi) {
            Ok(x) => x,
            Err(e) => {
                self.inbound_spis.remove(&spi);
                return Err(CommandError::Config {
                    connection: c.name.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let sent = self.send(sa.local, sa.remote, &message);
        sa.quick.push(Quick::Initiator {
            child: child_name.to_owned(),
            exchange,
            retransmit: Retransmit::new(&self.config.retransmit, now, sa.local, sa.remote, sent),
            replaces,
        });
        Ok(())
    }

    fn quick_mode_message(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if let Some(dpd) = &mut sa.dpd {
            // A Quick Mode message is authenticated by its HASH and cannot be replayed into a
            // new exchange; a stale one only costs a probe's delay.
            dpd.on_inbound(now);
        }
        let message_id = message_id_of(bytes);
        let _ = (local, remote);
        let Some(pos) = sa.quick.iter().position(|q| q.message_id() == message_id) else {
            return self.quick_mode_offer(now, sa, bytes);
        };
        let q = sa.quick.swap_remove(pos);
        match q {
            Quick::Initiator {
                child,
                exchange,
                retransmit,
                replaces,
            } => match exchange.handle_reply(&self.crypto, bytes) {
                Ok((pair, out)) => {
                    self.send(sa.local, sa.remote, &out);
                    sa.remember(bytes, &out);
                    self.child_up(now, sa, &child, pair, true, replaces);
                }
                Err(f) => {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "{} child {child}: Quick Mode answer refused: {}",
                            sa.id, f.error
                        ),
                    );
                    self.drop_datagram("Quick Mode answer refused");
                    sa.quick.push(Quick::Initiator {
                        child,
                        exchange: f.state,
                        retransmit,
                        replaces,
                    });
                }
            },
            Quick::Responder {
                child,
                exchange,
                expires,
            } => match exchange.handle_hash3(&self.crypto, bytes) {
                Ok(pair) => self.child_up(now, sa, &child, pair, false, None),
                Err(f) => {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "{} child {child}: Quick Mode HASH(3) refused: {}",
                            sa.id, f.error
                        ),
                    );
                    self.drop_datagram("Quick Mode HASH(3) refused");
                    sa.quick.push(Quick::Responder {
                        child,
                        exchange: f.state,
                        expires,
                    });
                }
            },
        }
    }

    /// A Quick Mode message 1 from the peer: the first child of the connection whose
    /// proposals and selectors accept it answers.
    fn quick_mode_offer(&mut self, now: Instant, sa: &mut IkeSa<C::KeyPair>, bytes: &[u8]) {
        let c = self.connection(sa.connection).clone();
        let Some(isakmp) = sa.isakmp().cloned() else {
            return;
        };
        let (IpAddr::V4(l), IpAddr::V4(r)) = (sa.local.ip(), sa.remote.ip()) else {
            return;
        };
        let mut last_error = String::from("the connection has no children");
        for child in &c.children {
            let config = match Self::quick_mode_config(&c, child, sa) {
                Ok(config) => config,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let spi = match self.allocate_spi() {
                Ok(spi) => spi,
                Err(e) => {
                    last_error = e.to_string();
                    break;
                }
            };
            match qm::Responder::handle_offer(&self.crypto, &isakmp, &config, spi, bytes) {
                Ok((exchange, answer)) => {
                    // The peer's IDs (IDci is its side, IDcr ours) must lie within the child's
                    // selectors: it may narrow them, never widen them.
                    let ours = TrafficRange::from_config(&child.local_ts, l);
                    let theirs = TrafficRange::from_config(&child.remote_ts, r);
                    let (their_id, our_id) = match exchange.client_ids() {
                        Some((i, r)) => (
                            TrafficRange::from_identification(i),
                            TrafficRange::from_identification(r),
                        ),
                        None => (Some(TrafficRange::host(r)), Some(TrafficRange::host(l))),
                    };
                    let fits = matches!((their_id, our_id), (Some(t), Some(o)) if theirs.contains(&t) && ours.contains(&o));
                    if !fits {
                        self.inbound_spis.remove(&spi);
                        last_error = format!(
                            "child {}: the peer's selectors {} === {} are not within {} === {}",
                            child.name,
                            their_id.map_or("?".into(), |t| t.to_string()),
                            our_id.map_or("?".into(), |t| t.to_string()),
                            theirs,
                            ours
                        );
                        continue;
                    }
                    self.send(sa.local, sa.remote, &answer);
                    sa.remember(bytes, &answer);
                    sa.quick.push(Quick::Responder {
                        child: child.name.clone(),
                        exchange,
                        expires: now + self.config.exchange_timeout,
                    });
                    return;
                }
                Err(e) => {
                    self.inbound_spis.remove(&spi);
                    last_error = format!("child {}: {e}", child.name);
                }
            }
        }
        self.log(
            LogLevel::Info,
            format!(
                "connection {} ({}): Quick Mode from {} refused: {last_error}",
                c.name, sa.id, sa.remote
            ),
        );
        self.drop_datagram("Quick Mode offer refused");
    }

    fn child_up(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<C::KeyPair>,
        child_name: &str,
        pair: ChildSaPair,
        initiator: bool,
        replaces: Option<u32>,
    ) {
        let c = self.connection(sa.connection).clone();
        let (IpAddr::V4(l), IpAddr::V4(r)) = (sa.local.ip(), sa.remote.ip()) else {
            return;
        };
        let (local_ts, remote_ts) = match &pair.client_ids {
            Some((i, rr)) => {
                let (ours, theirs) = if initiator { (i, rr) } else { (rr, i) };
                (
                    TrafficRange::from_identification(ours).unwrap_or(TrafficRange::host(l)),
                    TrafficRange::from_identification(theirs).unwrap_or(TrafficRange::host(r)),
                )
            }
            None => (TrafficRange::host(l), TrafficRange::host(r)),
        };
        let lifetime = Duration::from_secs(u64::from(pair.lifetime.seconds.get()));
        let rekey_at = c.child(child_name).and_then(|child| {
            if !initiator || child.rekey_time.is_zero() {
                return None;
            }
            let rekey = child.rekey_time.to_duration().min(lifetime);
            let jitter = self.jitter(child.rand_time.to_duration().min(rekey / 2));
            Some(now + rekey.saturating_sub(jitter))
        });
        let description = format!(
            "{} {}{}",
            pair.proposal,
            pair.encapsulation.mode,
            if pair.encapsulation.udp == crate::proposal::UdpEncapsulation::None {
                ""
            } else {
                " udp-encap"
            }
        );
        sa.children.push(ChildSa {
            child: child_name.to_owned(),
            inbound_spi: pair.inbound.spi,
            outbound_spi: pair.outbound.spi,
            description,
            local_ts,
            remote_ts,
            established: now,
            rekey_at,
            expires: now + lifetime,
        });
        self.events.push_back(Event::ChildSaUp(Box::new(ChildSaUp {
            ike: sa.id,
            connection: c.name.clone(),
            child: child_name.to_owned(),
            local: sa.local,
            remote: sa.remote,
            local_ts,
            remote_ts,
            pair,
            replaces,
        })));
        if let Some(old) = replaces {
            self.remove_child(sa, old, ChildDownReason::Rekeyed, true);
        }
    }

    /// A random duration below `max`.
    fn jitter(&self, max: Duration) -> Duration {
        let mut b = [0u8; 4];
        if max.is_zero() || self.crypto.fill_random(&mut b).is_err() {
            return Duration::ZERO;
        }
        let fraction = f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX);
        max.mul_f64(fraction)
    }

    /// Removes the child SA pair whose inbound SPI is `spi`, reporting it.
    fn remove_child(
        &mut self,
        sa: &mut IkeSa<C::KeyPair>,
        spi: u32,
        reason: ChildDownReason,
        tell_peer: bool,
    ) {
        let Some(pos) = sa.children.iter().position(|c| c.inbound_spi == spi) else {
            return;
        };
        let child = sa.children.remove(pos);
        if tell_peer {
            // RFC 2408 section 3.15 / RFC 2409 section 5.7: a Delete naming our inbound SPI.
            self.send_informational(sa, vec![informational::delete_esp(&[child.inbound_spi])]);
        }
        self.inbound_spis.remove(&child.inbound_spi);
        self.events.push_back(Event::ChildSaDown(ChildSaDown {
            ike: sa.id,
            connection: self.connection(sa.connection).name.clone(),
            child: child.child,
            inbound_spi: child.inbound_spi,
            outbound_spi: child.outbound_spi,
            reason,
        }));
    }

    fn close_sa(&mut self, _now: Instant, id: IkeSaId, reason: ChildDownReason, why: &str) {
        let Some(mut sa) = self.sas.remove(&id) else {
            return;
        };
        self.unindex(&sa);
        let tell = reason != ChildDownReason::PeerDead;
        let spis: Vec<u32> = sa.children.iter().map(|c| c.inbound_spi).collect();
        for spi in spis {
            self.remove_child(&mut sa, spi, reason, tell);
        }
        if tell && let Some(isakmp) = sa.isakmp() {
            let delete = informational::delete_isakmp_sa(isakmp);
            self.send_informational(&sa, vec![delete]);
        }
        self.events.push_back(Event::IkeSaDown {
            id,
            connection: self.connection(sa.connection).name.clone(),
            reason: why.to_owned(),
        });
    }

    /// Seals `payloads` in a protected Informational exchange (RFC 2409 section 5.7) and sends
    /// it to the peer.
    fn send_informational(&mut self, sa: &IkeSa<C::KeyPair>, payloads: Vec<PayloadBody>) {
        let Some(isakmp) = sa.isakmp() else {
            return;
        };
        match informational::seal(&self.crypto, isakmp, payloads) {
            Ok((_, bytes)) => {
                self.send(sa.local, sa.remote, &bytes);
            }
            Err(e) => self.log(
                LogLevel::Warn,
                format!("{}: Informational not sent: {e}", sa.id),
            ),
        }
    }

    /// A protected Informational under an established SA: Delete, DPD, INITIAL-CONTACT and
    /// error notifies. False when the SA is to be forgotten (the peer deleted it).
    fn informational(&mut self, now: Instant, sa: &mut IkeSa<C::KeyPair>, bytes: &[u8]) -> bool {
        let Some(isakmp) = sa.isakmp().cloned() else {
            return true;
        };
        let info = match informational::open(&self.crypto, &isakmp, bytes) {
            Ok(info) => info,
            Err(e) => {
                self.log(
                    LogLevel::Info,
                    format!("{} from {}: Informational refused: {e}", sa.id, sa.remote),
                );
                self.drop_datagram("Informational refused");
                return true;
            }
        };
        // RFC 2409 section 5.7: each Informational has its own Message ID; one already taken is
        // a replay (its Delete or R-U-THERE-ACK must not count twice).
        if sa.informational_ids.contains(&info.message_id) {
            self.drop_datagram("replayed Informational");
            return true;
        }
        if sa.informational_ids.len() == 64 {
            sa.informational_ids.pop_front();
        }
        sa.informational_ids.push_back(info.message_id);
        let name = self.connection(sa.connection).name.clone();
        for n in &info.notifications {
            match informational::dpd_message(&isakmp, n) {
                Some(DpdMessage::RuThere(seq)) => {
                    let ack = match &mut sa.dpd {
                        Some(dpd) => dpd.answer(now, seq),
                        None => seq,
                    };
                    let payload = informational::ru_there_ack(&isakmp, ack);
                    self.send_informational(sa, vec![payload]);
                }
                Some(DpdMessage::RuThereAck(seq)) => {
                    if let Some(dpd) = &mut sa.dpd {
                        dpd.handle_ack(now, seq);
                    }
                }
                None if n.message_type == NotifyMessageType::InitialContact => {
                    // RFC 2407 section 4.6.3.3: the peer has no other SA with us; ours with
                    // it from before (a reboot) are stale.
                    let stale: Vec<IkeSaId> = self
                        .sas
                        .values()
                        .filter(|o| {
                            o.connection == sa.connection && o.remote.ip() == sa.remote.ip()
                        })
                        .map(|o| o.id)
                        .collect();
                    for id in stale {
                        self.close_sa(
                            now,
                            id,
                            ChildDownReason::DeletedByPeer,
                            "INITIAL-CONTACT from the peer",
                        );
                    }
                }
                None => self.log(
                    LogLevel::Info,
                    format!(
                        "connection {name} ({}): peer {} notifies {:?}",
                        sa.id, sa.remote, n.message_type
                    ),
                ),
            }
        }
        for d in &info.deletes {
            match d.protocol_id {
                ProtocolId::Isakmp => {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "connection {name} ({}): the peer deleted the ISAKMP SA",
                            sa.id
                        ),
                    );
                    let spis: Vec<u32> = sa.children.iter().map(|c| c.inbound_spi).collect();
                    for spi in spis {
                        self.remove_child(sa, spi, ChildDownReason::IkeSaGone, false);
                    }
                    self.events.push_back(Event::IkeSaDown {
                        id: sa.id,
                        connection: name.clone(),
                        reason: "deleted by the peer".into(),
                    });
                    return false;
                }
                ProtocolId::IpsecEsp => {
                    for spi in &d.spis {
                        let Ok(spi) = <[u8; 4]>::try_from(spi.as_slice()) else {
                            continue;
                        };
                        let spi = u32::from_be_bytes(spi);
                        // The peer names its inbound SPI: our outbound SA (or, from some
                        // peers, ours).
                        let ours = sa
                            .children
                            .iter()
                            .find(|c| c.outbound_spi == spi || c.inbound_spi == spi)
                            .map(|c| c.inbound_spi);
                        if let Some(ours) = ours {
                            self.remove_child(sa, ours, ChildDownReason::DeletedByPeer, false);
                        }
                    }
                }
                other => self.log(
                    LogLevel::Info,
                    format!("{}: Delete for protocol {other:?} ignored", sa.id),
                ),
            }
        }
        true
    }

    /// DPD gave up on the peer: report it, remove the SA's children without telling the peer
    /// and restart those whose `dpd_action` is `restart`.
    fn peer_dead(&mut self, now: Instant, sa: &mut IkeSa<C::KeyPair>) {
        let c = self.connection(sa.connection).clone();
        self.log(
            LogLevel::Warn,
            format!(
                "connection {} ({}): peer {} is dead (DPD)",
                c.name, sa.id, sa.remote
            ),
        );
        self.events.push_back(Event::PeerDead {
            id: sa.id,
            connection: c.name.clone(),
            remote: sa.remote,
        });
        let children: Vec<(u32, String)> = sa
            .children
            .iter()
            .map(|ch| (ch.inbound_spi, ch.child.clone()))
            .collect();
        for (spi, _) in &children {
            self.remove_child(sa, *spi, ChildDownReason::PeerDead, false);
        }
        self.events.push_back(Event::IkeSaDown {
            id: sa.id,
            connection: c.name.clone(),
            reason: "peer dead (DPD)".into(),
        });
        let mut restart: Vec<String> = children
            .into_iter()
            .filter(|(_, name)| {
                c.child(name)
                    .is_some_and(|ch| ch.dpd_action == crate::config::Action::Start)
            })
            .map(|(_, name)| name)
            .collect();
        restart.dedup();
        if !restart.is_empty() {
            // The dead SA is already out of the table: a new Main Mode starts.
            if let Err(e) = self.start_main_mode(now, sa.connection, restart, None) {
                self.log(
                    LogLevel::Warn,
                    format!("connection {}: restart after DPD failed: {e}", c.name),
                );
            }
        }
    }

    /// Runs one SA's due timers; false when the SA is to be forgotten.
    fn sa_timers(&mut self, now: Instant, sa: &mut IkeSa<C::KeyPair>) -> bool {
        let name = self.connection(sa.connection).name.clone();
        if let Some(r) = &mut sa.retransmit
            && now >= r.next
        {
            match r.due(&self.config.retransmit, now) {
                Due::Resend => {
                    self.counters.retransmitted += 1;
                    self.transmits.push_back(Transmit {
                        local: r.local,
                        remote: r.remote,
                        bytes: r.bytes.clone(),
                    });
                }
                Due::GiveUp => {
                    self.log(
                        LogLevel::Info,
                        format!(
                            "connection {name} ({}): no answer from {}: giving up {}",
                            sa.id,
                            sa.remote,
                            sa.phase1.name()
                        ),
                    );
                    for child in std::mem::take(&mut sa.pending) {
                        self.events.push_back(Event::ChildFailed {
                            connection: name.clone(),
                            child,
                            reason: "phase 1 timed out".into(),
                        });
                    }
                    self.events.push_back(Event::IkeSaDown {
                        id: sa.id,
                        connection: name,
                        reason: "phase 1 retransmissions timed out".into(),
                    });
                    return false;
                }
            }
        }
        if sa.rekey_at.is_some_and(|t| now >= t) {
            sa.rekey_at = None;
            // IKEv1 has no in-place rekey of an ISAKMP SA: a new Main Mode (RFC 2409 section 5),
            // whose SA then adopts the children and deletes this one.
            if let Err(e) = self.start_main_mode(now, sa.connection, Vec::new(), Some(sa.id)) {
                self.log(
                    LogLevel::Warn,
                    format!("{name} ({}): ISAKMP SA rekey failed: {e}", sa.id),
                );
            }
        }
        if let Some(dpd) = &mut sa.dpd
            && dpd.poll_timeout().is_some_and(|t| now >= t)
        {
            match dpd.handle_timeout(now) {
                Some(DpdAction::SendRuThere { sequence }) => {
                    if let Some(isakmp) = sa.isakmp() {
                        let payload = informational::ru_there(isakmp, sequence);
                        self.send_informational(sa, vec![payload]);
                    }
                }
                Some(DpdAction::PeerDead) => {
                    self.peer_dead(now, sa);
                    return false;
                }
                None => {}
            }
        }
        if now >= sa.expires {
            let established = sa.isakmp().is_some();
            // A newer SA with the same peer takes the children over (IKEv1 child SAs outlive
            // the ISAKMP SA that made them): a rekey still under way adopts them now.
            if established
                && let Some(newer) = self
                    .sas
                    .values_mut()
                    .find(|o| o.connection == sa.connection && o.remote.ip() == sa.remote.ip())
            {
                newer.children.append(&mut sa.children);
            }
            let spis: Vec<u32> = sa.children.iter().map(|c| c.inbound_spi).collect();
            for spi in spis {
                self.remove_child(sa, spi, ChildDownReason::IkeSaGone, false);
            }
            for child in std::mem::take(&mut sa.pending) {
                self.events.push_back(Event::ChildFailed {
                    connection: name.clone(),
                    child,
                    reason: "phase 1 did not complete".into(),
                });
            }
            if established || sa.initiator || !matches!(sa.phase1, Phase1::RespSa(_)) {
                self.events.push_back(Event::IkeSaDown {
                    id: sa.id,
                    connection: name,
                    reason: if established {
                        "ISAKMP SA lifetime expired".into()
                    } else {
                        "phase 1 did not complete in time".into()
                    },
                });
            }
            return false;
        }
        // Quick Mode exchanges.
        let mut i = 0;
        while i < sa.quick.len() {
            let mut remove = false;
            match &mut sa.quick[i] {
                Quick::Initiator {
                    child, retransmit, ..
                } => {
                    if now >= retransmit.next {
                        match retransmit.due(&self.config.retransmit, now) {
                            Due::Resend => {
                                self.counters.retransmitted += 1;
                                self.transmits.push_back(Transmit {
                                    local: retransmit.local,
                                    remote: retransmit.remote,
                                    bytes: retransmit.bytes.clone(),
                                });
                            }
                            Due::GiveUp => {
                                self.events.push_back(Event::ChildFailed {
                                    connection: name.clone(),
                                    child: child.clone(),
                                    reason: "Quick Mode retransmissions timed out".into(),
                                });
                                remove = true;
                            }
                        }
                    }
                }
                Quick::Responder { expires, .. } => remove = now >= *expires,
            }
            if remove {
                let q = sa.quick.swap_remove(i);
                if let Quick::Initiator { exchange, .. } = &q {
                    self.inbound_spis.remove(&exchange.our_spi());
                }
                if let Quick::Responder { exchange, .. } = &q {
                    self.inbound_spis.remove(&exchange.our_spi());
                }
            } else {
                i += 1;
            }
        }
        // Child lifetimes: rekey make-before-break, expire.
        let due_rekey: Vec<(String, u32)> = sa
            .children
            .iter_mut()
            .filter(|c| c.rekey_at.is_some_and(|t| now >= t))
            .map(|c| {
                c.rekey_at = None;
                (c.child.clone(), c.inbound_spi)
            })
            .collect();
        for (child, spi) in due_rekey {
            if let Err(e) = self.start_quick_mode(now, sa, &child, Some(spi)) {
                self.log(
                    LogLevel::Warn,
                    format!("connection {name} child {child}: rekey failed: {e}"),
                );
            }
        }
        let expired: Vec<u32> = sa
            .children
            .iter()
            .filter(|c| now >= c.expires)
            .map(|c| c.inbound_spi)
            .collect();
        for spi in expired {
            self.remove_child(sa, spi, ChildDownReason::Expired, true);
        }
        true
    }
}

fn cookies_of(bytes: &[u8]) -> (Cookie, Cookie) {
    let mut i = [0u8; 8];
    let mut r = [0u8; 8];
    if let (Some(a), Some(b)) = (bytes.get(..8), bytes.get(8..16)) {
        i.copy_from_slice(a);
        r.copy_from_slice(b);
    }
    (i, r)
}

/// True when a plaintext Main Mode message 1 or 2 carries the DPD Vendor ID (RFC 3706 5.1).
fn sends_dpd_vendor_id(bytes: &[u8]) -> bool {
    Message::parse_with(bytes, Padding::Any).is_ok_and(|m| {
        m.payloads()
            .iter()
            .any(|p| matches!(&p.body, PayloadBody::VendorId(v) if v.is_dpd()))
    })
}

fn message_id_of(bytes: &[u8]) -> u32 {
    bytes
        .get(20..24)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

fn describe_id(id: &Identification) -> String {
    match Identity::from_identification(id) {
        Some(Identity::Ipv4(a)) => a.to_string(),
        Some(Identity::Fqdn(n)) | Some(Identity::UserFqdn(n)) => n,
        Some(other) => format!("{other:?}"),
        None => format!("{:?}:{}", id.id_type, hex::encode(&id.data)),
    }
}
