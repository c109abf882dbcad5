//! IKE connections configured the way strongSwan's swanctl.conf configures them, written in
//! TOML, so that a strongSwan user can read and translate a file key by key (issue 12, section
//! 6). `docs/ike-config.md` is the reference: every key, its default, and swanctl.conf beside
//! the Realm file for a site-to-site and a host-to-host setup.
//!
//! This module owns the data model ([`IkeConfig`], [`Connection`], [`Child`], [`IkeSecret`])
//! and its checks; it never reads a file (the caller passes the text and the file name for
//! messages) and never panics on any text. Every error names the file, the line and column,
//! and the key path: `peer.toml:12:15: connections.home.proposals: unknown algorithm 'aes129'
//! in proposal 'aes129-sha256-modp2048'` ([`ConfigError`]).
//!
//! ## The shape
//! swanctl.conf's sections become TOML tables: `connections { home { children { net {..} } } }`
//! is `[connections.home]` and `[connections.home.children.net]`, `local {..}` and `remote {..}`
//! are `[connections.home.local]` and `[connections.home.remote]`, `secrets { ike-home {..} }`
//! is `[secrets.ike-home]`. Key names are strongSwan's, values its spellings: `yes`/`no`
//! become TOML booleans, a comma-separated list may be one string (`"a, b"`) or a TOML array,
//! and times are `"30s"`, `"5m"`, `"4h"`, `"1d"` or plain seconds ([`TimeValue`]).
//!
//! Keys and defaults (strongSwan's unless said otherwise; each also on the field it fills):
//!
//! | key | default | |
//! |---|---|---|
//! | `version` | 1 | only 1 (strongSwan's default 0 initiates IKEv2; 0 and 2 are refused) |
//! | `local_addrs`, `remote_addrs` | `%any` | IPv4 addresses, subnets, ranges ([`AddrSpec`]) |
//! | `local_port`, `remote_port` | 500 | |
//! | `proposals` | `default` | [`IkeProposals`] spelling |
//! | `aggressive`, `encap` | false | |
//! | `dpd_delay`, `dpd_timeout` | 0s | DPD off; 0s timeout: the retransmission schedule's |
//! | `keyingtries` | 1 | 0: forever |
//! | `rekey_time` | 4h | 0 when only `reauth_time` is set |
//! | `reauth_time` | 0s | |
//! | `over_time` | 10% of the longer of rekey/reauth time | |
//! | `rand_time` | `over_time`, at most half the rekey/reauth time | |
//! | `allow_modp1024` | false | Realm's own: accept DH group 2 in `proposals` and `esp_proposals` |
//! | `local.auth`, `remote.auth` | `pubkey` | `psk` or `pubkey`, the same on both sides |
//! | `local.id` | the local IKE address (pubkey: the certificate subject) | [`Identity`] |
//! | `remote.id` | `%any` | |
//! | `local.certs`, `remote.certs`, `remote.cacerts` | none | file names, stored only |
//! | `children.C.local_ts`, `remote_ts` | `dynamic` | one [`TrafficSelector`] each |
//! | `children.C.esp_proposals` | `default` | [`EspProposals`] spelling |
//! | `children.C.mode` | `tunnel` | or `transport` |
//! | `children.C.start_action` | `none` | `start`, `trap`, `none` ([`Action`]) |
//! | `children.C.dpd_action` | `clear` | `clear` (= `none`), `trap`, `restart` (= `start`) |
//! | `children.C.close_action` | `none` | |
//! | `children.C.rekey_time` | 1h | |
//! | `children.C.life_time` | `rekey_time` + 10% | |
//! | `children.C.rand_time` | `life_time` - `rekey_time` | |
//! | `secrets.ikeX.id`, `id<suffix>` | none: any identity | |
//! | `secrets.ikeX.secret` | required | `0x` hex, `0s` base64, or the text |
//!
//! ## Checks beyond each value
//! - Unknown keys are errors; a swanctl.conf key Realm does not support says so.
//! - `local.auth` and `remote.auth` are equal (IKEv1 negotiates one method, RFC 2409 section 5);
//!   `pubkey` needs `local.certs`; `certs` and `cacerts` go with `pubkey` only.
//! - A `psk` connection needs a secret that strongSwan's rules would find for it
//!   ([`IkeConfig::ike_secret`]), by its identities or its addresses.
//! - `modp1024` (group 2) in a proposal needs `allow_modp1024 = true` on the connection.
//! - One traffic selector per side: an IKEv1 Quick Mode carries one IDci/IDcr pair (RFC 2409
//!   section 5.5); strongSwan silently uses the first, Realm refuses the others.
//! - Transport mode only between hosts: each selector `dynamic` or one address, equal to the
//!   connection's address on that side when it has exactly one (strongSwan falls back to tunnel
//!   mode at run time, RFC 4301 section 4.1).
//! - `start_action = start` or `trap` needs a single remote address to initiate to.
//! - `dpd_timeout` only with `dpd_delay`, and longer than it (strongSwan counts it from the
//!   last message received, so a shorter one would declare every peer dead at once).
//! - A child's `life_time` exceeds its `rekey_time`; `rand_time` is shorter than `rekey_time`.
//! - Child names are unique across connections (`realm ctl initiate CHILD` names one).
//!
//! ## Example
//! A whole file (the tests parse exactly this text, `src/config/example.toml`):
//! ```toml
#![doc = include_str!("example.toml")]
//! ```

mod error;
mod identity;
mod net;
mod raw;
mod time;
mod ts;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::str::FromStr;

use base64::Engine as _;
use toml::Spanned;
use toml::de::DeTable;
use zeroize::Zeroize;

pub use error::{ConfigError, ErrorKind};
pub use identity::{DistinguishedName, DnAttribute, IdMatch, Identity, IdentityError, Rdn};
pub use net::{AddrSpec, AddressError, Ipv4Subnet};
pub use time::{TimeError, TimeValue};
pub use ts::{TrafficSelector, TsAddrs, TsError};

use crate::proposal::{AuthMethod, EspProposals, IkeProposals, SpellError, SpellOptions};
use error::{line_column, path_at, push_key};
use raw::{List, RawChild, RawConnection, RawFile, RawLocal, RawRemote, Text, Time};

/// swanctl.conf `connections.<conn>.local_port` / `remote_port` default.
pub const DEFAULT_IKE_PORT: u16 = 500;
/// swanctl.conf `connections.<conn>.rekey_time` default: 4 hours.
pub const DEFAULT_IKE_REKEY_TIME: TimeValue = TimeValue::from_secs(4 * 3600);
/// swanctl.conf `connections.<conn>.children.<child>.rekey_time` default: 1 hour.
pub const DEFAULT_CHILD_REKEY_TIME: TimeValue = TimeValue::from_secs(3600);
/// swanctl.conf `connections.<conn>.keyingtries` default.
pub const DEFAULT_KEYINGTRIES: u32 = 1;

/// The IKE connections and their secrets: the whole file, checked.
#[derive(Debug, Clone)]
pub struct IkeConfig {
    /// `[connections.NAME]`, in file order.
    pub connections: Vec<Connection>,
    /// `[secrets.ikeNAME]`, in file order.
    pub secrets: Vec<IkeSecret>,
    /// `[secrets.privateNAME]` / `[secrets.rsaNAME]`: private key files (for `auth = "pubkey"`).
    pub private_keys: Vec<PrivateKeyFile>,
}

/// `[secrets.private<suffix>]` or `[secrets.rsa<suffix>]`: a private key in a file (PEM or DER,
/// PKCS#1 or PKCS#8, unencrypted), as swanctl's `secrets.private<suffix> { file = ... }`. The
/// file is the caller's to read; Realm uses the key whose public half matches a connection's
/// `local.certs` certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyFile {
    /// The table name.
    pub name: String,
    /// `file`: the path.
    pub file: String,
}

/// The IKE major version (swanctl.conf `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IkeVersion {
    /// IKEv1 (ISAKMP, RFC 2408/2409): `version = 1`.
    V1,
}

/// `[connections.NAME]`: one IKE (ISAKMP) SA's configuration and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The table name.
    pub name: String,
    /// `version`: 1, the default (Realm speaks IKEv1 only; strongSwan's default 0 would
    /// initiate IKEv2, so Realm refuses 0 instead of reading it differently).
    pub version: IkeVersion,
    /// `local_addrs`, default `%any`: the addresses to use locally; as initiator the first
    /// single address is the source.
    pub local_addrs: Vec<AddrSpec>,
    /// `remote_addrs`, default `%any`: the peer's addresses; as initiator the first single
    /// address is the destination, as responder the peer's address must match one.
    pub remote_addrs: Vec<AddrSpec>,
    /// `local_port`, default 500.
    pub local_port: u16,
    /// `remote_port`, default 500.
    pub remote_port: u16,
    /// `proposals`, default `default` ([`IkeProposals::default_set`]).
    pub proposals: IkeProposals,
    /// `aggressive`, default false: Aggressive Mode instead of Main Mode (RFC 2409 section
    /// 5; the identities then travel in the clear).
    pub aggressive: bool,
    /// `encap`, default false: force UDP encapsulation by faking the NAT-D payloads (RFC 3947
    /// section 3.2), as strongSwan's `encap = yes`.
    pub encap: bool,
    /// `dpd_delay`, default 0s (off): send an R_U_THERE (RFC 3706) when nothing came from the
    /// peer for this long.
    pub dpd_delay: TimeValue,
    /// `dpd_timeout`, default 0s: declare the peer dead when nothing came from it for this
    /// long; 0s: when an R_U_THERE's retransmissions give up, as strongSwan does.
    pub dpd_timeout: TimeValue,
    /// `keyingtries`, default 1: retransmission sequences for the first exchange; 0 forever.
    pub keyingtries: u32,
    /// `rekey_time`, default 4h (0s when only `reauth_time` is set). IKEv1 cannot rekey an
    /// ISAKMP SA in place: both times start a new Main or Aggressive Mode.
    pub rekey_time: TimeValue,
    /// `reauth_time`, default 0s (off).
    pub reauth_time: TimeValue,
    /// `over_time`, default 10% of the longer of `rekey_time` and `reauth_time`: how long the
    /// SA may outlive a failing rekey.
    pub over_time: TimeValue,
    /// `rand_time`, default `over_time`, but at most half of the rekey or reauth time: the
    /// range of the random time subtracted from them.
    pub rand_time: TimeValue,
    /// `allow_modp1024` (Realm's own key), default false: accept DH group 2 in `proposals` and
    /// in the children's `esp_proposals`.
    pub allow_modp1024: bool,
    /// `[connections.NAME.local]`.
    pub local: LocalAuth,
    /// `[connections.NAME.remote]`.
    pub remote: RemoteAuth,
    /// `[connections.NAME.children.CHILD]`, in file order.
    pub children: Vec<Child>,
}

impl Connection {
    /// The lifetime the phase 1 proposals carry: `reauth_time` (or `rekey_time` when that is
    /// 0) plus `over_time`, as strongSwan's IKEv1 `phase1.c` computes it; 0 when both are 0.
    pub fn phase1_lifetime(&self) -> TimeValue {
        let base = if self.reauth_time.is_zero() {
            self.rekey_time
        } else {
            self.reauth_time
        };
        if base.is_zero() {
            return TimeValue::ZERO;
        }
        TimeValue::from_secs(base.as_secs().saturating_add(self.over_time.as_secs()))
    }

    /// The child named `name`.
    pub fn child(&self, name: &str) -> Option<&Child> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first single local address, the source as initiator.
    pub fn local_host(&self) -> Option<Ipv4Addr> {
        self.local_addrs.iter().find_map(AddrSpec::host)
    }

    /// The first single remote address, the destination as initiator.
    pub fn remote_host(&self) -> Option<Ipv4Addr> {
        self.remote_addrs.iter().find_map(AddrSpec::host)
    }
}

/// An authentication class (`local.auth`, `remote.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthClass {
    /// `psk`: pre-shared key.
    Psk,
    /// `pubkey`: RSA signatures with X.509 certificates (RFC 2409 section 5.1).
    Pubkey,
}

impl AuthClass {
    /// The phase 1 Authentication Method attribute it is negotiated as.
    pub const fn method(self) -> AuthMethod {
        match self {
            Self::Psk => AuthMethod::PreSharedKey,
            Self::Pubkey => AuthMethod::RsaSignatures,
        }
    }
}

impl fmt::Display for AuthClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Psk => "psk",
            Self::Pubkey => "pubkey",
        })
    }
}

/// `[connections.NAME.local]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAuth {
    /// `auth`, default `pubkey`.
    pub auth: AuthClass,
    /// `id`; `None` (the default) means the local IKE address, or with `pubkey` the
    /// certificate's subject, as strongSwan does.
    pub id: Option<Identity>,
    /// `certs`: certificate file names (stored; loading them is the caller's). Required with
    /// `pubkey`.
    pub certs: Vec<String>,
}

/// `[connections.NAME.remote]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAuth {
    /// `auth`, default `pubkey`; equal to `local.auth`.
    pub auth: AuthClass,
    /// `id`, default `%any`: the identity the peer must prove (a pattern: `*@example.org`).
    pub id: Identity,
    /// `certs`: certificate file names the peer's must be one of (stored only).
    pub certs: Vec<String>,
    /// `cacerts`: CA certificate file names the peer's certificate must chain to (stored only).
    pub cacerts: Vec<String>,
}

/// `mode` of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `tunnel` (the default).
    Tunnel,
    /// `transport`: host to host only.
    Transport,
}

/// What to do: swanctl.conf's `start_action`, `dpd_action` and `close_action` values, read as
/// strongSwan's `parse_action` reads them (`start`/`restart`, `trap`/`route`, `none`/`clear`,
/// without regard to case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `none` or `clear`: nothing (the SA goes away).
    None,
    /// `trap` or `route`: install a trap policy; matching traffic starts a negotiation.
    Trap,
    /// `start` or `restart`: negotiate at once.
    Start,
}

impl FromStr for Action {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let is = |a: &str| s.eq_ignore_ascii_case(a);
        if is("none") || is("clear") {
            Ok(Self::None)
        } else if is("trap") || is("route") {
            Ok(Self::Trap)
        } else if is("start") || is("restart") {
            Ok(Self::Start)
        } else {
            Err(())
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Trap => "trap",
            Self::Start => "start",
        })
    }
}

/// `[connections.NAME.children.CHILD]`: one pair of IPsec SAs (a CHILD_SA in strongSwan's
/// words) negotiated by Quick Mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The table name.
    pub name: String,
    /// `local_ts`, default `dynamic`.
    pub local_ts: TrafficSelector,
    /// `remote_ts`, default `dynamic`.
    pub remote_ts: TrafficSelector,
    /// `esp_proposals`, default `default` ([`EspProposals::default_set`]: no PFS).
    pub esp_proposals: EspProposals,
    /// `mode`, default `tunnel`.
    pub mode: Mode,
    /// `start_action`, default `none`: `start` negotiates when the configuration is loaded,
    /// `trap` when traffic matches the selectors.
    pub start_action: Action,
    /// `dpd_action`, default `clear` ([`Action::None`]): what to do when DPD declares the peer
    /// dead.
    pub dpd_action: Action,
    /// `close_action`, default `none`: what to do when the peer deletes the SA.
    pub close_action: Action,
    /// `rekey_time`, default 1h: start a new Quick Mode this long after the SA was made.
    pub rekey_time: TimeValue,
    /// `life_time`, default `rekey_time` + 10%: the SA's hard lifetime, the one Quick Mode
    /// proposes (RFC 2407 section 4.5 SA Life Duration).
    pub life_time: TimeValue,
    /// `rand_time`, default `life_time` - `rekey_time`: the range of the random time
    /// subtracted from `rekey_time`.
    pub rand_time: TimeValue,
}

secret_bytes!(
    /// A pre-shared key as configured (`secret` of a `[secrets.ike*]` section), decoded.
    PreSharedKey,
    pub(crate)
);

/// `[secrets.ikeNAME]`: a pre-shared key and the identities it belongs to (swanctl.conf's
/// `secrets.ike<suffix>`).
#[derive(Debug, Clone)]
pub struct IkeSecret {
    /// The table name (starting with `ike`).
    pub name: String,
    /// `id` and `id<suffix>` keys, in key order; empty means any identity (`%any`).
    pub ids: Vec<Identity>,
    /// `secret`: `0x` and hex, `0s` and base64, or the text's bytes (swanctl's `load_creds.c`).
    pub secret: PreSharedKey,
}

impl IkeSecret {
    /// The identities it belongs to: its ids, or `%any` when it has none (as swanctl loads it).
    pub fn owners(&self) -> &[Identity] {
        const ANY: &[Identity] = &[Identity::Any];
        if self.ids.is_empty() { ANY } else { &self.ids }
    }
}

impl IkeConfig {
    /// Reads and checks a file holding only `[connections.*]` and `[secrets.*]`; `file` names
    /// it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Loader { text, file }.load(false)
    }

    /// Reads and checks the `[connections.*]` and `[secrets.*]` of a file that also holds
    /// other sections (which the caller checks), such as a `realm peer` configuration.
    pub fn parse_sections(text: &str, file: &str) -> Result<Self, ConfigError> {
        Loader { text, file }.load(true)
    }

    /// The connection named `name`.
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The child named `name` and its connection.
    pub fn child(&self, name: &str) -> Option<(&Connection, &Child)> {
        self.connections
            .iter()
            .find_map(|c| c.child(name).map(|child| (c, child)))
    }

    /// The pre-shared key for local identity `me` and remote identity `other`, chosen as
    /// strongSwan's credential manager chooses (`get_shared`): every secret one of whose owners
    /// `me` or `other` matches ([`Identity::matches`]) is a candidate; the best match on `other`
    /// wins, then the best on `me`, then the first in the file.
    pub fn ike_secret(&self, me: &Identity, other: &Identity) -> Option<&IkeSecret> {
        let mut best: Option<(&IkeSecret, IdMatch, IdMatch)> = None;
        for secret in &self.secrets {
            let score = |id: &Identity| {
                secret
                    .owners()
                    .iter()
                    .map(|owner| id.matches(owner))
                    .max()
                    .unwrap_or(IdMatch::NONE)
            };
            let (mine, theirs) = (score(me), score(other));
            if !mine.is_match() && !theirs.is_match() {
                continue;
            }
            let better = best.is_none_or(|(_, best_mine, best_theirs)| {
                theirs > best_theirs || (theirs == best_theirs && mine > best_mine)
            });
            if better {
                best = Some((secret, mine, theirs));
            }
        }
        best.map(|(secret, _, _)| secret)
    }
}

/// swanctl.conf keys Realm does not take, per section, so that an unknown-key error can tell
/// a strongSwan user "not supported" rather than "unknown".
const UNSUPPORTED_TOP: &[&str] = &["authorities", "pools", "include"];
const UNSUPPORTED_CONNECTION: &[&str] = &[
    "vips",
    "pull",
    "dscp",
    "mobike",
    "fragmentation",
    "childless",
    "send_certreq",
    "send_cert",
    "ppk_id",
    "ppk_required",
    "unique",
    "pools",
    "if_id_in",
    "if_id_out",
    "mediation",
    "mediated_by",
    "mediation_peer",
];
const UNSUPPORTED_AUTH: &[&str] = &[
    "round",
    "pubkeys",
    "eap_id",
    "aaa_id",
    "xauth_id",
    "groups",
    "cert_policy",
    "ca_id",
    "revocation",
];
const UNSUPPORTED_CHILD: &[&str] = &[
    "ah_proposals",
    "sha256_96",
    "rekey_bytes",
    "life_bytes",
    "rand_bytes",
    "rekey_packets",
    "life_packets",
    "rand_packets",
    "updown",
    "hostaccess",
    "policies",
    "policies_fwd_out",
    "ipcomp",
    "inactivity",
    "reqid",
    "priority",
    "interface",
    "mark_in",
    "mark_in_sa",
    "mark_out",
    "set_mark_in",
    "set_mark_out",
    "if_id_in",
    "if_id_out",
    "label",
    "label_mode",
    "tfc_padding",
    "replay_window",
    "hw_offload",
    "copy_df",
    "copy_ecn",
    "copy_dscp",
];
/// swanctl.conf secret types other than `ike`.
const OTHER_SECRET_TYPES: &[&str] = &[
    "eap", "xauth", "ntlm", "ppk", "ecdsa", "bliss", "pkcs8", "pkcs12", "token",
];

/// One item of a list, with where it is.
struct Item {
    text: String,
    pos: usize,
    path: String,
}

/// What a connection's checks need later: where its name is.
struct Placed {
    name_span: Range<usize>,
}

struct Loader<'a> {
    text: &'a str,
    file: &'a str,
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl Loader<'_> {
    fn error(
        &self,
        pos: Option<usize>,
        path: &str,
        kind: ErrorKind,
        message: String,
    ) -> ConfigError {
        ConfigError::new(
            self.file,
            pos.map(|p| line_column(self.text, p)),
            path.to_string(),
            kind,
            message,
        )
    }

    fn at<T>(&self, span: Range<usize>, path: &str, kind: ErrorKind, message: String) -> Result<T> {
        Err(self.error(Some(span.start), path, kind, message))
    }

    /// The byte position of `offset` within the string `value` whose TOML value is at `span`:
    /// exact when the value is written as a one-line string without escapes, else the value's
    /// start.
    fn inner(&self, span: &Range<usize>, value: &str, offset: usize) -> usize {
        match self.text.get(span.clone()) {
            Some(raw)
                if raw.len() >= 2
                    && (raw.starts_with('"') || raw.starts_with('\''))
                    && raw.get(1..raw.len() - 1) == Some(value) =>
            {
                span.start + 1 + offset.min(value.len())
            }
            _ => span.start,
        }
    }

    fn load(&self, sections_only: bool) -> Result<IkeConfig> {
        let mut root = DeTable::parse(self.text).map_err(|e| self.syntax(&e))?;
        if sections_only {
            let others: Vec<String> = root
                .get_ref()
                .iter()
                .map(|(k, _)| k.get_ref().to_string())
                .filter(|k| k != "connections" && k != "secrets")
                .collect();
            for k in others {
                root.get_mut().remove(k.as_str());
            }
        }
        let raw: RawFile = serde::Deserialize::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| self.serde(&e))?;

        let mut secrets: Vec<(Text, BTreeMap<Text, Text>)> = raw.secrets.into_iter().collect();
        secrets.sort_by_key(|(name, _)| name.span().start);
        let mut private_keys = Vec::new();
        let mut ike_secrets = Vec::new();
        for (name, table) in secrets {
            let lower = name.get_ref().to_ascii_lowercase();
            if lower.starts_with("private") || lower.starts_with("rsa") {
                private_keys.push(self.private_key(&name, table)?);
            } else {
                ike_secrets.push(self.secret(&name, table)?);
            }
        }
        let secrets = ike_secrets;

        let mut raw_connections: Vec<(Text, RawConnection)> = raw.connections.into_iter().collect();
        raw_connections.sort_by_key(|(name, _)| name.span().start);
        let mut connections = Vec::new();
        let mut placed = Vec::new();
        let mut child_names: BTreeMap<String, String> = BTreeMap::new();
        for (name, raw) in raw_connections {
            let (connection, child_spans) = self.connection(&name, raw)?;
            for (child, span) in connection.children.iter().zip(child_spans) {
                if let Some(other) = child_names.insert(child.name.clone(), connection.name.clone())
                {
                    let path = push_key(
                        &push_key(&push_key("connections", &connection.name), "children"),
                        &child.name,
                    );
                    return self.at(
                        span,
                        &path,
                        ErrorKind::Inconsistent,
                        format!(
                            "child '{}' is also defined in connection '{other}': child \
                             names must be unique across connections, as `realm ctl \
                             initiate` names a child alone",
                            child.name
                        ),
                    );
                }
            }
            placed.push(Placed {
                name_span: name.span(),
            });
            connections.push(connection);
        }
        let config = IkeConfig {
            connections,
            secrets,
            private_keys,
        };
        for (connection, placed) in config.connections.iter().zip(&placed) {
            self.check_psk(&config, connection, placed)?;
        }
        Ok(config)
    }

    fn syntax(&self, e: &toml::de::Error) -> ConfigError {
        let pos = e.span().map(|s| s.start);
        self.error(pos, "", ErrorKind::Syntax, e.message().to_string())
    }

    /// A serde error (unknown key, wrong type): placed by its span, its key path found in the
    /// document.
    fn serde(&self, e: &toml::de::Error) -> ConfigError {
        let Some(span) = e.span() else {
            return self.error(None, "", ErrorKind::InvalidValue, e.message().to_string());
        };
        let path = DeTable::parse(self.text)
            .ok()
            .and_then(|root| path_at(root.get_ref(), &span))
            .unwrap_or_default();
        let message = e.message();
        let Some(rest) = message.strip_prefix("unknown field `") else {
            // Name tables as TOML does, not as the structs that read them.
            let message = match message
                .find("expected struct ")
                .or_else(|| message.find("expected a map"))
            {
                Some(i) => format!("{}expected a table", &message[..i]),
                None => message.to_string(),
            };
            return self.error(Some(span.start), &path, ErrorKind::InvalidValue, message);
        };
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let message = unknown_key_message(&path, key, expected);
        self.error(Some(span.start), &path, ErrorKind::UnknownKey, message)
    }

    fn private_key(&self, name: &Text, table: BTreeMap<Text, Text>) -> Result<PrivateKeyFile> {
        let path = push_key("secrets", name.get_ref());
        let mut file = None;
        for (key, value) in table {
            let key_path = push_key(&path, key.get_ref());
            match key.get_ref().as_str() {
                "file" => file = Some(value.get_ref().clone()),
                "secret" => {
                    return self.at(
                        key.span(),
                        &key_path,
                        ErrorKind::Unsupported,
                        "encrypted private keys are not supported: give an unencrypted key file"
                            .to_string(),
                    );
                }
                other => {
                    return self.at(
                        key.span(),
                        &key_path,
                        ErrorKind::UnknownKey,
                        format!("unknown key '{other}' (a private key secret has `file`)"),
                    );
                }
            }
        }
        let Some(file) = file else {
            return self.at(
                name.span(),
                &push_key(&path, "file"),
                ErrorKind::Missing,
                "a private key secret needs `file`".to_string(),
            );
        };
        Ok(PrivateKeyFile {
            name: name.get_ref().clone(),
            file,
        })
    }

    fn secret(&self, name: &Text, table: BTreeMap<Text, Text>) -> Result<IkeSecret> {
        let path = push_key("secrets", name.get_ref());
        let lower = name.get_ref().to_ascii_lowercase();
        if !lower.starts_with("ike") {
            let (kind, message) = match OTHER_SECRET_TYPES.iter().find(|t| lower.starts_with(*t)) {
                Some(t) => (
                    ErrorKind::Unsupported,
                    format!(
                        "'{t}' secrets are not supported: Realm takes IKE pre-shared \
                         keys, in sections named ike<suffix> as in swanctl.conf (e.g. \
                         [secrets.ike-home])"
                    ),
                ),
                None => (
                    ErrorKind::UnknownKey,
                    "secret sections are named by their type as in swanctl.conf: \
                     ike<suffix> for an IKE pre-shared key (e.g. \
                     [secrets.ike-home])"
                        .to_string(),
                ),
            };
            return self.at(name.span(), &path, kind, message);
        }
        let mut entries: Vec<(Text, Text)> = table.into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut ids = Vec::new();
        let mut secret = None;
        for (key, mut value) in entries {
            let key_path = push_key(&path, key.get_ref());
            if key.get_ref() == "secret" {
                let decoded = self.decode_secret(&value, &key_path);
                value.get_mut().zeroize();
                secret = Some(decoded?);
            } else if key.get_ref().starts_with("id") {
                let id = value.get_ref().parse::<Identity>().or_else(|e| {
                    self.at(
                        value.span(),
                        &key_path,
                        invalid_or_unsupported_id(&e),
                        e.to_string(),
                    )
                })?;
                ids.push(id);
            } else {
                let hint = if key.get_ref() == "file" || key.get_ref() == "handle" {
                    ": key files are not supported"
                } else {
                    " (an IKE secret has `secret` and `id`, `id<suffix>` keys)"
                };
                return self.at(
                    key.span(),
                    &key_path,
                    ErrorKind::UnknownKey,
                    format!("unknown key '{}'{hint}", key.get_ref()),
                );
            }
        }
        let Some(secret) = secret else {
            return self.at(
                name.span(),
                &push_key(&path, "secret"),
                ErrorKind::Missing,
                "an IKE secret needs `secret`".to_string(),
            );
        };
        Ok(IkeSecret {
            name: name.get_ref().clone(),
            ids,
            secret,
        })
    }

    /// swanctl's `load_creds.c`: `0x` hex, `0s` base64 (prefixes in either case), else the
    /// string's bytes.
    fn decode_secret(&self, value: &Text, path: &str) -> Result<PreSharedKey> {
        let text = value.get_ref();
        let prefix = text.get(..2).map(str::to_ascii_lowercase);
        let bytes = match prefix.as_deref() {
            Some("0x") => hex::decode(&text[2..]).or_else(|_| {
                self.at(
                    value.span(),
                    path,
                    ErrorKind::InvalidValue,
                    "the secret after 0x is not hexadecimal".to_string(),
                )
            })?,
            Some("0s") => base64::engine::general_purpose::STANDARD
                .decode(&text[2..])
                .or_else(|_| {
                    self.at(
                        value.span(),
                        path,
                        ErrorKind::InvalidValue,
                        "the secret after 0s is not base64".to_string(),
                    )
                })?,
            _ => text.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return self.at(
                value.span(),
                path,
                ErrorKind::InvalidValue,
                "empty secret".to_string(),
            );
        }
        Ok(PreSharedKey::from_bytes(bytes))
    }

    fn connection(
        &self,
        name: &Text,
        raw: RawConnection,
    ) -> Result<(Connection, Vec<Range<usize>>)> {
        let path = push_key("connections", name.get_ref());
        let key = |k: &str| push_key(&path, k);
        let version = match &raw.version {
            None => IkeVersion::V1,
            Some(v) => match *v.get_ref() {
                1 => IkeVersion::V1,
                2 => {
                    return self.at(
                        v.span(),
                        &key("version"),
                        ErrorKind::Unsupported,
                        "IKEv2 is not supported yet: Realm speaks IKEv1 (version = 1)".to_string(),
                    );
                }
                0 => {
                    return self.at(
                        v.span(),
                        &key("version"),
                        ErrorKind::Unsupported,
                        "version 0 (strongSwan's default) initiates IKEv2, which \
                         Realm does not speak yet: write version = 1"
                            .to_string(),
                    );
                }
                n => {
                    return self.at(
                        v.span(),
                        &key("version"),
                        ErrorKind::InvalidValue,
                        format!("version {n}: IKE versions are 1 and 2, and Realm speaks 1"),
                    );
                }
            },
        };
        let local_addrs = self.addrs(raw.local_addrs.as_ref(), &key("local_addrs"))?;
        let remote_addrs = self.addrs(raw.remote_addrs.as_ref(), &key("remote_addrs"))?;
        let local_port = self.port(raw.local_port.as_ref(), &key("local_port"))?;
        let remote_port = self.port(raw.remote_port.as_ref(), &key("remote_port"))?;
        let allow_modp1024 = raw.allow_modp1024.unwrap_or(false);
        let options = SpellOptions { allow_modp1024 };
        let proposals = match &raw.proposals {
            None => IkeProposals::default_set(),
            Some(list) => {
                let parsed =
                    self.proposals(list, &key("proposals"), |s| IkeProposals::parse(s, options))?;
                let all = parsed
                    .iter()
                    .flat_map(|p| p.as_slice().iter().copied())
                    .collect();
                IkeProposals::new(all).unwrap_or_else(IkeProposals::default_set)
            }
        };
        let dpd_delay = self
            .time(raw.dpd_delay.as_ref(), &key("dpd_delay"))?
            .unwrap_or(TimeValue::ZERO);
        let dpd_timeout = self
            .time(raw.dpd_timeout.as_ref(), &key("dpd_timeout"))?
            .unwrap_or(TimeValue::ZERO);
        if let Some(raw_timeout) = &raw.dpd_timeout {
            if !dpd_timeout.is_zero() && dpd_delay.is_zero() {
                return self.at(
                    raw_timeout.span(),
                    &key("dpd_timeout"),
                    ErrorKind::Inconsistent,
                    "dpd_timeout has no effect without dpd_delay (DPD is off)".to_string(),
                );
            }
            if !dpd_timeout.is_zero() && dpd_timeout <= dpd_delay {
                return self.at(
                    raw_timeout.span(),
                    &key("dpd_timeout"),
                    ErrorKind::Inconsistent,
                    format!(
                        "dpd_timeout ({dpd_timeout}) must be longer than dpd_delay \
                         ({dpd_delay}): it counts from the last message received"
                    ),
                );
            }
        }
        let keyingtries = match &raw.keyingtries {
            None => DEFAULT_KEYINGTRIES,
            Some(k) => u32::try_from(*k.get_ref()).or_else(|_| {
                self.at(
                    k.span(),
                    &key("keyingtries"),
                    ErrorKind::InvalidValue,
                    "keyingtries must be 0 (forever) or a positive count".to_string(),
                )
            })?,
        };
        let rekey = self.time(raw.rekey_time.as_ref(), &key("rekey_time"))?;
        let reauth = self.time(raw.reauth_time.as_ref(), &key("reauth_time"))?;
        // vici_config.c: the 4h default applies when neither is set.
        let (rekey_time, reauth_time) = match (rekey, reauth) {
            (None, None) => (DEFAULT_IKE_REKEY_TIME, TimeValue::ZERO),
            (rekey, reauth) => (rekey.unwrap_or_default(), reauth.unwrap_or_default()),
        };
        let longer = rekey_time.max(reauth_time);
        let over_time = self
            .time(raw.over_time.as_ref(), &key("over_time"))?
            .unwrap_or(TimeValue::from_secs(longer.as_secs() / 10));
        let shorter_nonzero = if !rekey_time.is_zero() && !reauth_time.is_zero() {
            rekey_time.min(reauth_time)
        } else {
            longer
        };
        let rand_time = match &raw.rand_time {
            None => over_time.min(TimeValue::from_secs(shorter_nonzero.as_secs() / 2)),
            Some(raw_rand) => {
                let rand = self
                    .time(Some(raw_rand), &key("rand_time"))?
                    .unwrap_or_default();
                if !shorter_nonzero.is_zero() && rand >= shorter_nonzero {
                    return self.at(
                        raw_rand.span(),
                        &key("rand_time"),
                        ErrorKind::Inconsistent,
                        format!(
                            "rand_time ({rand}) must be shorter than the rekey/reauth \
                             time ({shorter_nonzero})"
                        ),
                    );
                }
                rand
            }
        };
        let (local, remote) = self.auth(name, raw.local, raw.remote, &path)?;
        let mut children = Vec::new();
        let mut child_spans = Vec::new();
        let mut raw_children: Vec<(Text, RawChild)> = raw.children.into_iter().collect();
        raw_children.sort_by_key(|(child, _)| child.span().start);
        let partial = Connection {
            name: name.get_ref().clone(),
            version,
            local_addrs,
            remote_addrs,
            local_port,
            remote_port,
            proposals,
            aggressive: raw.aggressive.unwrap_or(false),
            encap: raw.encap.unwrap_or(false),
            dpd_delay,
            dpd_timeout,
            keyingtries,
            rekey_time,
            reauth_time,
            over_time,
            rand_time,
            allow_modp1024,
            local,
            remote,
            children: Vec::new(),
        };
        for (child_name, raw_child) in raw_children {
            children.push(self.child(&partial, &child_name, raw_child, options, &path)?);
            child_spans.push(child_name.span());
        }
        Ok((
            Connection {
                children,
                ..partial
            },
            child_spans,
        ))
    }

    fn auth(
        &self,
        name: &Text,
        local: Option<RawLocal>,
        remote: Option<RawRemote>,
        path: &str,
    ) -> Result<(LocalAuth, RemoteAuth)> {
        let local_path = push_key(path, "local");
        let remote_path = push_key(path, "remote");
        let local = local.unwrap_or(RawLocal {
            auth: None,
            id: None,
            certs: None,
        });
        let remote = remote.unwrap_or(RawRemote {
            auth: None,
            id: None,
            certs: None,
            cacerts: None,
        });
        let local_auth = self.auth_class(local.auth.as_ref(), &push_key(&local_path, "auth"))?;
        let remote_auth = self.auth_class(remote.auth.as_ref(), &push_key(&remote_path, "auth"))?;
        let local_id = match &local.id {
            None => None,
            Some(id) => Some(self.identity(id, &push_key(&local_path, "id"))?),
        };
        let remote_id = match &remote.id {
            None => Identity::Any,
            Some(id) => self.identity(id, &push_key(&remote_path, "id"))?,
        };
        let local_certs = self.strings(local.certs.as_ref(), &push_key(&local_path, "certs"))?;
        let remote_certs = self.strings(remote.certs.as_ref(), &push_key(&remote_path, "certs"))?;
        let remote_cacerts =
            self.strings(remote.cacerts.as_ref(), &push_key(&remote_path, "cacerts"))?;
        if local_auth != remote_auth {
            let span = remote
                .auth
                .as_ref()
                .or(local.auth.as_ref())
                .map_or_else(|| name.span(), Spanned::span);
            return self.at(
                span,
                &push_key(&remote_path, "auth"),
                ErrorKind::Inconsistent,
                format!(
                    "local.auth is {local_auth} but remote.auth is {remote_auth}: \
                     IKEv1 authenticates both sides with one method (RFC 2409 \
                     section 5), so set both (the default is pubkey)"
                ),
            );
        }
        match local_auth {
            AuthClass::Pubkey if local_certs.is_empty() => {
                let span = local
                    .auth
                    .as_ref()
                    .map_or_else(|| name.span(), Spanned::span);
                return self.at(
                    span,
                    &push_key(&local_path, "certs"),
                    ErrorKind::Missing,
                    "pubkey authentication needs local.certs (the certificate \
                     file names); for a pre-shared key set local.auth and \
                     remote.auth to \"psk\""
                        .to_string(),
                );
            }
            AuthClass::Psk => {
                for (list, list_path) in [
                    (&local.certs, push_key(&local_path, "certs")),
                    (&remote.certs, push_key(&remote_path, "certs")),
                    (&remote.cacerts, push_key(&remote_path, "cacerts")),
                ] {
                    if let Some(list) = list {
                        return self.at(
                            list.span(),
                            &list_path,
                            ErrorKind::Inconsistent,
                            "certificates are used only with auth = \"pubkey\"".to_string(),
                        );
                    }
                }
            }
            AuthClass::Pubkey => {}
        }
        Ok((
            LocalAuth {
                auth: local_auth,
                id: local_id,
                certs: local_certs,
            },
            RemoteAuth {
                auth: remote_auth,
                id: remote_id,
                certs: remote_certs,
                cacerts: remote_cacerts,
            },
        ))
    }

    fn child(
        &self,
        connection: &Connection,
        name: &Text,
        raw: RawChild,
        options: SpellOptions,
        connection_path: &str,
    ) -> Result<Child> {
        let path = push_key(&push_key(connection_path, "children"), name.get_ref());
        let key = |k: &str| push_key(&path, k);
        let local_ts = self.selector(raw.local_ts.as_ref(), &key("local_ts"))?;
        let remote_ts = self.selector(raw.remote_ts.as_ref(), &key("remote_ts"))?;
        let esp_proposals = match &raw.esp_proposals {
            None => EspProposals::default_set(),
            Some(list) => {
                let parsed = self.proposals(list, &key("esp_proposals"), |s| {
                    EspProposals::parse(s, options)
                })?;
                let all = parsed
                    .iter()
                    .flat_map(|p| p.as_slice().iter().copied())
                    .collect();
                EspProposals::new(all).unwrap_or_else(EspProposals::default_set)
            }
        };
        let mode = match &raw.mode {
            None => Mode::Tunnel,
            Some(m) => match m.get_ref().to_ascii_lowercase().as_str() {
                "tunnel" => Mode::Tunnel,
                "transport" => Mode::Transport,
                "beet" | "pass" | "drop" => {
                    return self.at(
                        m.span(),
                        &key("mode"),
                        ErrorKind::Unsupported,
                        format!(
                            "mode '{}' is not supported: tunnel or transport",
                            m.get_ref()
                        ),
                    );
                }
                _ => {
                    return self.at(
                        m.span(),
                        &key("mode"),
                        ErrorKind::InvalidValue,
                        format!("unknown mode '{}': tunnel or transport", m.get_ref()),
                    );
                }
            },
        };
        if mode == Mode::Transport {
            let sides = [
                (
                    &local_ts,
                    &raw.local_ts,
                    "local_ts",
                    connection.local_addrs.as_slice(),
                ),
                (
                    &remote_ts,
                    &raw.remote_ts,
                    "remote_ts",
                    connection.remote_addrs.as_slice(),
                ),
            ];
            for (ts, raw_ts, ts_key, addrs) in sides {
                let span = raw_ts.as_ref().map_or_else(|| name.span(), Spanned::span);
                if !ts.is_host() {
                    return self.at(
                        span,
                        &key(ts_key),
                        ErrorKind::Inconsistent,
                        format!(
                            "transport mode protects traffic between the two hosts only \
                             (RFC 4301 section 4.1): {ts_key} {ts} is not a single \
                             address; use dynamic or tunnel mode"
                        ),
                    );
                }
                let single: Vec<Ipv4Addr> = addrs.iter().filter_map(AddrSpec::host).collect();
                if let (Some(addr), [only]) = (ts.host_addr(), single.as_slice())
                    && addr != *only
                {
                    return self.at(
                        span,
                        &key(ts_key),
                        ErrorKind::Inconsistent,
                        format!(
                            "transport mode: {ts_key} {ts} is not this side's IKE address \
                                 {only}; use dynamic"
                        ),
                    );
                }
            }
        }
        let start_action = self.action(raw.start_action.as_ref(), &key("start_action"))?;
        if let (Action::Start | Action::Trap, Some(raw_action)) = (start_action, &raw.start_action)
            && connection.remote_host().is_none()
        {
            return self.at(
                raw_action.span(),
                &key("start_action"),
                ErrorKind::Inconsistent,
                format!(
                    "start_action = {start_action} needs an address to initiate \
                         to, but remote_addrs has no single address"
                ),
            );
        }
        let dpd_action = self.action(raw.dpd_action.as_ref(), &key("dpd_action"))?;
        let close_action = self.action(raw.close_action.as_ref(), &key("close_action"))?;
        let rekey_time = self
            .time(raw.rekey_time.as_ref(), &key("rekey_time"))?
            .unwrap_or(DEFAULT_CHILD_REKEY_TIME);
        // vici_config.c check_lifetimes: life = rekey + 10%, rand = life - rekey.
        let life_time = match &raw.life_time {
            None => {
                let secs = u64::from(rekey_time.as_secs()) * 110 / 100;
                TimeValue::from_secs(u32::try_from(secs).unwrap_or(u32::MAX))
            }
            Some(raw_life) => {
                let life = self
                    .time(Some(raw_life), &key("life_time"))?
                    .unwrap_or_default();
                if !rekey_time.is_zero() && life <= rekey_time {
                    return self.at(
                        raw_life.span(),
                        &key("life_time"),
                        ErrorKind::Inconsistent,
                        format!(
                            "life_time ({life}) must be longer than rekey_time \
                             ({rekey_time}), or the SA expires before it is rekeyed"
                        ),
                    );
                }
                life
            }
        };
        let rand_time = match &raw.rand_time {
            None => TimeValue::from_secs(life_time.as_secs() - life_time.min(rekey_time).as_secs()),
            Some(raw_rand) => {
                let rand = self
                    .time(Some(raw_rand), &key("rand_time"))?
                    .unwrap_or_default();
                if !rekey_time.is_zero() && rand >= rekey_time {
                    return self.at(
                        raw_rand.span(),
                        &key("rand_time"),
                        ErrorKind::Inconsistent,
                        format!(
                            "rand_time ({rand}) must be shorter than rekey_time ({rekey_time})"
                        ),
                    );
                }
                rand
            }
        };
        Ok(Child {
            name: name.get_ref().clone(),
            local_ts,
            remote_ts,
            esp_proposals,
            mode,
            start_action,
            dpd_action,
            close_action,
            rekey_time,
            life_time,
            rand_time,
        })
    }

    /// A psk connection needs a secret strongSwan would find for it: by its identities
    /// (`local.id`, or its single local addresses; `remote.id`), or by its addresses (the
    /// Main Mode responder's fallback in strongSwan's `phase1.c`). Where an address is only
    /// known at run time (`%any`, a subnet), a secret for any IPv4 address may match it.
    fn check_psk(&self, config: &IkeConfig, c: &Connection, placed: &Placed) -> Result<()> {
        if c.local.auth != AuthClass::Psk {
            return Ok(());
        }
        let hosts = |addrs: &[AddrSpec]| -> Vec<Identity> {
            addrs
                .iter()
                .filter_map(AddrSpec::host)
                .map(Identity::Ipv4)
                .collect()
        };
        let mut mine = hosts(&c.local_addrs);
        mine.extend(c.local.id.clone());
        let mut theirs = hosts(&c.remote_addrs);
        theirs.push(c.remote.id.clone());
        let runtime_local = c.local_addrs.iter().any(|a| a.host().is_none());
        let runtime_remote = c.remote_addrs.iter().any(|a| a.host().is_none());
        let found = config.secrets.iter().any(|secret| {
            let owners = secret.owners();
            let ip_owner = owners
                .iter()
                .any(|o| matches!(o, Identity::Ipv4(_) | Identity::Ipv4Subnet(_)));
            let side = |ids: &[Identity], runtime: bool| {
                (runtime && ip_owner)
                    || ids
                        .iter()
                        .any(|id| owners.iter().any(|o| id.matches(o).is_match()))
            };
            side(&mine, runtime_local) || side(&theirs, runtime_remote)
        });
        if found {
            return Ok(());
        }
        let local = c.local.id.as_ref().map_or_else(
            || "the local address".to_string(),
            |id| format!("local id '{id}'"),
        );
        let example = c
            .local
            .id
            .as_ref()
            .filter(|_| c.remote.id == Identity::Any)
            .unwrap_or(&c.remote.id);
        Err(self.error(
            Some(placed.name_span.start),
            &push_key("connections", &c.name),
            ErrorKind::MissingSecret,
            format!(
                "psk authentication, but no [secrets.ike*] entry matches \
                 {local} or remote id '{}', nor the connection's addresses: \
                 add e.g. [secrets.ike-{}] with id = \"{example}\" and secret \
                 = \"...\"",
                c.remote.id, c.name
            ),
        ))
    }

    /// The items of a list, split at commas, each with its place.
    fn items(&self, list: &Spanned<List>, path: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut push_split = |value: &str, span: &Range<usize>, item_path: &str| -> Result<()> {
            let mut start = 0;
            for piece in value.split(',') {
                let trimmed = piece.trim();
                let lead = piece.len() - piece.trim_start().len();
                let pos = self.inner(span, value, start + lead);
                if trimmed.is_empty() {
                    return Err(self.error(
                        Some(pos),
                        item_path,
                        ErrorKind::InvalidValue,
                        "empty list item (a comma too many?)".to_string(),
                    ));
                }
                out.push(Item {
                    text: trimmed.to_string(),
                    pos,
                    path: item_path.to_string(),
                });
                start += piece.len() + 1;
            }
            Ok(())
        };
        match list.get_ref() {
            List::One(value) => push_split(value, &list.span(), path)?,
            List::Many(values) => {
                for (i, value) in values.iter().enumerate() {
                    push_split(value.get_ref(), &value.span(), &format!("{path}[{i}]"))?;
                }
            }
        }
        Ok(out)
    }

    /// Proposal lists: each string parsed whole so that the spelling's errors keep their
    /// offsets.
    fn proposals<T>(
        &self,
        list: &Spanned<List>,
        path: &str,
        parse: impl Fn(&str) -> Result<T, SpellError>,
    ) -> Result<Vec<T>> {
        let strings: Vec<(&str, Range<usize>, String)> = match list.get_ref() {
            List::One(value) => vec![(value.as_str(), list.span(), path.to_string())],
            List::Many(values) if values.is_empty() => {
                return self.at(
                    list.span(),
                    path,
                    ErrorKind::Proposal,
                    "no proposals given".to_string(),
                );
            }
            List::Many(values) => values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.get_ref().as_str(), v.span(), format!("{path}[{i}]")))
                .collect(),
        };
        strings
            .into_iter()
            .map(|(value, span, item_path)| {
                parse(value).map_err(|e| {
                    let pos = e
                        .offset()
                        .map_or(span.start, |o| self.inner(&span, value, o));
                    let mut message = e.to_string();
                    if matches!(e, SpellError::Modp1024NotAllowed { .. }) {
                        message.push_str(" (allow_modp1024 = true in the connection)");
                    }
                    self.error(Some(pos), &item_path, ErrorKind::Proposal, message)
                })
            })
            .collect()
    }

    fn addrs(&self, list: Option<&Spanned<List>>, path: &str) -> Result<Vec<AddrSpec>> {
        let Some(list) = list else {
            return Ok(vec![AddrSpec::Any]);
        };
        self.items(list, path)?
            .into_iter()
            .map(|item| {
                item.text.parse::<AddrSpec>().map_err(|e| {
                    let kind = match e {
                        AddressError::Ipv6(_) | AddressError::DnsName(_) => ErrorKind::Unsupported,
                        _ => ErrorKind::InvalidValue,
                    };
                    self.error(Some(item.pos), &item.path, kind, e.to_string())
                })
            })
            .collect()
    }

    fn strings(&self, list: Option<&Spanned<List>>, path: &str) -> Result<Vec<String>> {
        match list {
            None => Ok(Vec::new()),
            Some(list) => Ok(self
                .items(list, path)?
                .into_iter()
                .map(|i| i.text)
                .collect()),
        }
    }

    fn selector(&self, list: Option<&Spanned<List>>, path: &str) -> Result<TrafficSelector> {
        let Some(list) = list else {
            return Ok(TrafficSelector::DYNAMIC);
        };
        let items = self.items(list, path)?;
        if let Some(extra) = items.get(1) {
            return Err(self.error(
                Some(extra.pos),
                &extra.path,
                ErrorKind::Unsupported,
                "IKEv1 negotiates one traffic selector per side (Quick Mode \
                 IDci/IDcr, RFC 2409 section 5.5): put each further selector \
                 in a child of its own"
                    .to_string(),
            ));
        }
        let Some(item) = items.first() else {
            return self.at(
                list.span(),
                path,
                ErrorKind::InvalidValue,
                "no traffic selector given".to_string(),
            );
        };
        item.text.parse::<TrafficSelector>().map_err(|e| {
            let kind = match e {
                TsError::Address(AddressError::Ipv6(_) | AddressError::DnsName(_))
                | TsError::PortRange(_)
                | TsError::Opaque => ErrorKind::Unsupported,
                _ => ErrorKind::InvalidValue,
            };
            self.error(Some(item.pos), &item.path, kind, e.to_string())
        })
    }

    fn time(&self, value: Option<&Spanned<Time>>, path: &str) -> Result<Option<TimeValue>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let parsed = match value.get_ref() {
            Time::Seconds(secs) => TimeValue::from_integer(*secs),
            Time::Text(text) => text.parse(),
        };
        parsed
            .map(Some)
            .or_else(|e| self.at(value.span(), path, ErrorKind::InvalidValue, e.to_string()))
    }

    fn port(&self, value: Option<&Spanned<i64>>, path: &str) -> Result<u16> {
        let Some(value) = value else {
            return Ok(DEFAULT_IKE_PORT);
        };
        u16::try_from(*value.get_ref())
            .ok()
            .filter(|p| *p != 0)
            .map_or_else(
                || {
                    self.at(
                        value.span(),
                        path,
                        ErrorKind::InvalidValue,
                        "a port is 1 to 65535".to_string(),
                    )
                },
                Ok,
            )
    }

    fn auth_class(&self, value: Option<&Text>, path: &str) -> Result<AuthClass> {
        let Some(value) = value else {
            return Ok(AuthClass::Pubkey);
        };
        let v = value.get_ref().to_ascii_lowercase();
        match v.as_str() {
            "psk" => Ok(AuthClass::Psk),
            "pubkey" => Ok(AuthClass::Pubkey),
            _ if v.starts_with("rsa")
                || v.starts_with("ecdsa")
                || v.starts_with("bliss")
                || v.starts_with("xauth")
                || v.starts_with("eap")
                || v.starts_with("pubkey-") =>
            {
                self.at(
                    value.span(),
                    path,
                    ErrorKind::Unsupported,
                    format!(
                        "auth = \"{}\" is not supported: psk or pubkey (RSA signatures)",
                        value.get_ref()
                    ),
                )
            }
            _ => self.at(
                value.span(),
                path,
                ErrorKind::InvalidValue,
                format!("unknown auth '{}': psk or pubkey", value.get_ref()),
            ),
        }
    }

    fn identity(&self, value: &Text, path: &str) -> Result<Identity> {
        value.get_ref().parse().or_else(|e| {
            self.at(
                value.span(),
                path,
                invalid_or_unsupported_id(&e),
                e.to_string(),
            )
        })
    }

    fn action(&self, value: Option<&Text>, path: &str) -> Result<Action> {
        let Some(value) = value else {
            return Ok(Action::None);
        };
        value.get_ref().parse().or_else(|()| {
            self.at(
                value.span(),
                path,
                ErrorKind::InvalidValue,
                format!(
                    "unknown action '{}': start, trap or none (also restart, route, clear)",
                    value.get_ref()
                ),
            )
        })
    }
}

fn invalid_or_unsupported_id(e: &IdentityError) -> ErrorKind {
    match e {
        IdentityError::Unsupported(..) | IdentityError::Address(AddressError::Ipv6(_)) => {
            ErrorKind::Unsupported
        }
        _ => ErrorKind::InvalidValue,
    }
}

/// The message for an unknown key at `path` (which ends with the key): whether swanctl.conf
/// has it, else serde's list of what is expected there.
fn unknown_key_message(path: &str, key: &str, expected: &str) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    let depth = segments.len();
    let section = match (segments.first(), depth) {
        (_, 1) => Some(UNSUPPORTED_TOP),
        (Some(&"connections"), 3) => Some(UNSUPPORTED_CONNECTION),
        (Some(&"connections"), 4) => Some(UNSUPPORTED_AUTH),
        (Some(&"connections"), 5) => Some(UNSUPPORTED_CHILD),
        _ => None,
    };
    let round_suffix = key
        .strip_prefix("local")
        .or_else(|| key.strip_prefix("remote"))
        .and_then(|rest| rest.chars().next());
    let is_auth_round =
        depth == 3 && round_suffix.is_some_and(|c| c == '-' || c == '_' || c.is_ascii_digit());
    if is_auth_round {
        return format!(
            "unknown key '{key}': Realm takes one authentication round \
             per side, in sections named exactly `local` and `remote`"
        );
    }
    if section.is_some_and(|keys| keys.contains(&key)) {
        return format!("'{key}' is a swanctl.conf key that Realm does not support");
    }
    let expected = expected.trim_start_matches(", ");
    if expected.is_empty() {
        format!("unknown key '{key}'")
    } else {
        format!("unknown key '{key}', {expected}")
    }
}
