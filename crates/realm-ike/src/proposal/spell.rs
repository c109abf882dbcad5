//! Proposals spelled the way strongSwan spells them in swanctl.conf (`proposals` for IKE,
//! `esp_proposals` for ESP; <https://docs.strongswan.org/docs/latest/config/proposals.html>,
//! keywords from strongSwan's `proposal_keywords_static.txt`), so that a strongSwan user can copy
//! a configuration over.
//!
//! A proposal is algorithm keywords joined by dashes, a list is proposals joined by commas:
//! `aes256-sha384-ecp384,aes128-sha256-modp2048`. In IKEv1 a proposal takes one algorithm of
//! each kind (strongSwan silently drops extra ones; Realm refuses them, naming them, so nothing
//! configured is ignored). Keywords are matched without regard to ASCII case and printed in
//! lower case; spaces around commas are ignored.
//!
//! | kind | keywords Realm accepts (aliases) | canonical |
//! |---|---|---|
//! | encryption | `aes128` (`aes`), `aes256` | AES-CBC |
//! | AEAD, ESP only | `aes128gcm16` (`aes128gcm128`, `aes128gcm`), same for 256 | AES-GCM-16 |
//! | integrity | `sha1` (`sha`), `sha256` (`sha2_256`), `sha384` (`sha2_384`) | in IKE the hash |
//! | PRF, IKE only | `prfsha1`, `prfsha256`, `prfsha384`: only the HMAC of the hash (RFC 2409 section 4), so it is redundant and not printed | |
//! | DH group | `modp2048`, `ecp256`, `ecp384`; `modp1024` only with [`SpellOptions::allow_modp1024`] | in ESP: PFS |
//! | ESN, ESP only | `noesn` (IKEv1 negotiates no ESN, so it is what every SA gets; not printed) | |
//!
//! Other strongSwan keywords (`3des`, `aes192`, `sha512`, `modp3072`, `x25519`, ...) are
//! refused as unsupported, everything else as unknown, each error naming the keyword, its
//! proposal and its byte offset in the configured string.
//!
//! `default` (alone as a proposal, possibly among others) expands to Realm's default set,
//! every combination of the safe algorithms above, AES-128 first as in strongSwan's default:
//! - IKE ([`IkeProposals::default_set`]): aes128 and aes256, each with sha256 then sha384, each
//!   with ecp256, modp2048, ecp384 (12 proposals; no SHA-1, no group 2);
//! - ESP ([`EspProposals::default_set`]): aes128gcm16, aes256gcm16, then aes128 and aes256 each
//!   with sha256 and sha384, without PFS, as strongSwan's default ESP proposal has no DH group.
//!
//! Printing gives the canonical form (defaults expanded, aliases and redundant keywords
//! dropped, duplicates removed keeping the first), and parsing it back gives the same list:
//! `print(parse(s)) == canonical(s)` and `parse(print(l)) == l`.

use std::fmt;
use std::str::FromStr;

use realm_wire::isakmp::{
    AttributeValue, IkeAttributeType, IpsecAttributeType, KEY_IKE, ProtocolId, Transform,
};

use super::{AesKeySize, EspCipher, EspIntegrity, EspProposal, IkeProposal, attribute_value_text};
use crate::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm};

/// Choices the spelling does not make on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpellOptions {
    /// Accept `modp1024` (DH group 2, RFC 2409 section 6.2). Its 1024-bit prime is within reach
    /// of well-funded attackers, so it is refused unless the configuration opts in explicitly
    /// (issue 12: "group 2 only when configured"). The default expansion never contains it.
    pub allow_modp1024: bool,
}

impl SpellOptions {
    /// Options that accept group 2.
    pub const fn allowing_modp1024() -> Self {
        Self {
            allow_modp1024: true,
        }
    }
}

/// A proposal list that could not be read. Offsets are bytes from the start of the configured
/// string, so a configuration error can point at the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpellError {
    /// The string holds no proposal at all.
    #[error("no proposals given")]
    Empty,
    /// Two commas in a row, or a comma at either end.
    #[error("empty proposal at offset {offset} (a comma too many?)")]
    EmptyProposal {
        /// Where the empty proposal is.
        offset: usize,
    },
    /// Two dashes in a row, or a dash at either end of a proposal.
    #[error("empty algorithm in proposal '{proposal}' at offset {offset} (a dash too many?)")]
    EmptyKeyword {
        /// The proposal.
        proposal: String,
        /// Where the empty keyword is.
        offset: usize,
    },
    /// A keyword strongSwan would not know either.
    #[error("unknown algorithm '{keyword}' in proposal '{proposal}'")]
    UnknownAlgorithm {
        /// The keyword as written.
        keyword: String,
        /// The proposal it is in.
        proposal: String,
        /// Where the keyword starts.
        offset: usize,
    },
    /// A strongSwan keyword for an algorithm Realm does not implement.
    #[error("algorithm '{keyword}' in proposal '{proposal}' is not supported by Realm ({hint})")]
    UnsupportedAlgorithm {
        /// The keyword as written.
        keyword: String,
        /// The proposal it is in.
        proposal: String,
        /// Where the keyword starts.
        offset: usize,
        /// What Realm supports instead.
        hint: &'static str,
    },
    /// A keyword that exists but does not belong in this kind of proposal.
    #[error("'{keyword}' cannot be used in {context} ('{proposal}'): {why}")]
    NotAllowedHere {
        /// The keyword as written.
        keyword: String,
        /// The proposal it is in.
        proposal: String,
        /// Where the keyword starts.
        offset: usize,
        /// "an IKE proposal" or "an ESP proposal".
        context: &'static str,
        /// Why.
        why: &'static str,
    },
    /// Two algorithms of the same kind in one proposal.
    #[error(
        "proposal '{proposal}' names two {kind} algorithms, '{first}' and '{keyword}': IKEv1 takes one of each kind per proposal, so list the alternatives as separate proposals separated by commas"
    )]
    TwoOfAKind {
        /// "encryption", "integrity", "PRF" or "DH group".
        kind: &'static str,
        /// The first one, as written.
        first: String,
        /// The second one, as written.
        keyword: String,
        /// The proposal.
        proposal: String,
        /// Where the second one starts.
        offset: usize,
    },
    /// A kind of algorithm the proposal needs is missing.
    #[error("proposal '{proposal}' has no {kind} algorithm ({hint})")]
    Missing {
        /// "encryption", "integrity" or "DH group".
        kind: &'static str,
        /// The proposal.
        proposal: String,
        /// Where the proposal starts.
        offset: usize,
        /// What to add.
        hint: &'static str,
    },
    /// An integrity algorithm with AES-GCM.
    #[error(
        "'{keyword}' cannot go with '{aead}' in proposal '{proposal}': AES-GCM authenticates by itself; put AES-CBC with integrity in a proposal of its own"
    )]
    IntegrityWithAead {
        /// The integrity keyword as written.
        keyword: String,
        /// The AES-GCM keyword as written.
        aead: String,
        /// The proposal.
        proposal: String,
        /// Where the integrity keyword starts.
        offset: usize,
    },
    /// A PRF other than the HMAC of the proposal's hash.
    #[error(
        "'{keyword}' in proposal '{proposal}' differs from the hash '{hash}': IKEv1 uses the HMAC of the hash as PRF (RFC 2409 section 4)"
    )]
    PrfMismatch {
        /// The PRF keyword as written.
        keyword: String,
        /// The hash keyword as written.
        hash: String,
        /// The proposal.
        proposal: String,
        /// Where the PRF keyword starts.
        offset: usize,
    },
    /// `modp1024` without [`SpellOptions::allow_modp1024`].
    #[error(
        "'{keyword}' (DH group 2) in proposal '{proposal}' is weak and refused unless the configuration allows it explicitly"
    )]
    Modp1024NotAllowed {
        /// The keyword as written.
        keyword: String,
        /// The proposal.
        proposal: String,
        /// Where the keyword starts.
        offset: usize,
    },
    /// `default` combined with algorithms in one proposal.
    #[error("'default' must be a proposal of its own, not part of '{proposal}'")]
    DefaultNotAlone {
        /// The proposal.
        proposal: String,
        /// Where `default` starts.
        offset: usize,
    },
}

impl SpellError {
    /// The byte offset in the configured string the error points at, if any.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Self::Empty => None,
            Self::EmptyProposal { offset }
            | Self::EmptyKeyword { offset, .. }
            | Self::UnknownAlgorithm { offset, .. }
            | Self::UnsupportedAlgorithm { offset, .. }
            | Self::NotAllowedHere { offset, .. }
            | Self::TwoOfAKind { offset, .. }
            | Self::Missing { offset, .. }
            | Self::IntegrityWithAead { offset, .. }
            | Self::PrfMismatch { offset, .. }
            | Self::Modp1024NotAllowed { offset, .. }
            | Self::DefaultNotAlone { offset, .. } => Some(*offset),
        }
    }
}

/// A non-empty list of phase 1 proposals in preference order, as `proposals = ...` spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IkeProposals(Vec<IkeProposal>);

/// A non-empty list of ESP proposals in preference order, as `esp_proposals = ...` spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EspProposals(Vec<EspProposal>);

impl IkeProposals {
    /// Reads a comma-separated list (see the [module docs](self)).
    pub fn parse(s: &str, options: SpellOptions) -> Result<Self, SpellError> {
        let mut out = Vec::new();
        for item in split_list(s)? {
            if is_default(&item)? {
                out.extend_from_slice(Self::default_set().as_slice());
                continue;
            }
            out.push(ike_proposal(&item, options)?);
        }
        Ok(Self(dedup(out)))
    }

    /// A list from proposals already built (duplicates removed, the first kept); `None` when
    /// empty. No group 2 check: that is for configuration text ([`SpellOptions`]).
    pub fn new(proposals: Vec<IkeProposal>) -> Option<Self> {
        (!proposals.is_empty()).then(|| Self(dedup(proposals)))
    }

    /// What `default` expands to (see the [module docs](self)).
    pub fn default_set() -> Self {
        let mut out = Vec::new();
        for cipher in [CipherAlgorithm::Aes128Cbc, CipherAlgorithm::Aes256Cbc] {
            for hash in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
                for group in [DhGroup::Ecp256, DhGroup::Modp2048, DhGroup::Ecp384] {
                    out.push(IkeProposal::new(cipher, hash, group));
                }
            }
        }
        Self(out)
    }

    /// The proposals, most preferred first.
    pub fn as_slice(&self) -> &[IkeProposal] {
        &self.0
    }
}

impl EspProposals {
    /// Reads a comma-separated list (see the [module docs](self)).
    pub fn parse(s: &str, options: SpellOptions) -> Result<Self, SpellError> {
        let mut out = Vec::new();
        for item in split_list(s)? {
            if is_default(&item)? {
                out.extend_from_slice(Self::default_set().as_slice());
                continue;
            }
            out.push(esp_proposal(&item, options)?);
        }
        Ok(Self(dedup(out)))
    }

    /// A list from proposals already built (duplicates removed, the first kept); `None` when
    /// empty. No group 2 check: that is for configuration text ([`SpellOptions`]).
    pub fn new(proposals: Vec<EspProposal>) -> Option<Self> {
        (!proposals.is_empty()).then(|| Self(dedup(proposals)))
    }

    /// What `default` expands to (see the [module docs](self)).
    pub fn default_set() -> Self {
        let mut out = Vec::new();
        for size in [AesKeySize::Bits128, AesKeySize::Bits256] {
            out.push(EspProposal::new(EspCipher::AesGcm16(size), None));
        }
        for size in [AesKeySize::Bits128, AesKeySize::Bits256] {
            for integrity in [EspIntegrity::HmacSha256_128, EspIntegrity::HmacSha384_192] {
                out.push(EspProposal::new(EspCipher::AesCbc(size, integrity), None));
            }
        }
        Self(out)
    }

    /// The proposals, most preferred first.
    pub fn as_slice(&self) -> &[EspProposal] {
        &self.0
    }
}

impl FromStr for IkeProposals {
    type Err = SpellError;

    /// Parses with [`SpellOptions::default`] (group 2 refused).
    fn from_str(s: &str) -> Result<Self, SpellError> {
        Self::parse(s, SpellOptions::default())
    }
}

impl FromStr for EspProposals {
    type Err = SpellError;

    /// Parses with [`SpellOptions::default`] (group 2 refused).
    fn from_str(s: &str) -> Result<Self, SpellError> {
        Self::parse(s, SpellOptions::default())
    }
}

impl fmt::Display for IkeProposals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}

impl fmt::Display for EspProposals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for IkeProposal {
    /// The canonical spelling: `encryption-hash-group`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cipher = match self.cipher {
            CipherAlgorithm::Aes128Cbc => "aes128",
            CipherAlgorithm::Aes256Cbc => "aes256",
        };
        let hash = match self.hash {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
        };
        write!(f, "{cipher}-{hash}-{}", group_keyword(self.group))
    }
}

impl fmt::Display for EspProposal {
    /// The canonical spelling: `encryption[-integrity][-group]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.cipher.key_size().bits();
        match self.cipher {
            EspCipher::AesCbc(_, integrity) => {
                let integrity = match integrity {
                    EspIntegrity::HmacSha1_96 => "sha1",
                    EspIntegrity::HmacSha256_128 => "sha256",
                    EspIntegrity::HmacSha384_192 => "sha384",
                };
                write!(f, "aes{bits}-{integrity}")?;
            }
            EspCipher::AesGcm16(_) => write!(f, "aes{bits}gcm16")?,
        }
        if let Some(group) = self.pfs {
            write!(f, "-{}", group_keyword(group))?;
        }
        Ok(())
    }
}

fn group_keyword(group: DhGroup) -> &'static str {
    match group {
        DhGroup::Modp1024 => "modp1024",
        DhGroup::Modp2048 => "modp2048",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
    }
}

fn dedup<T: PartialEq + Copy>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// One proposal of a list: its text and where it starts in the configured string.
struct Item<'a> {
    text: &'a str,
    offset: usize,
}

impl Item<'_> {
    /// The proposal's keywords with their offsets.
    fn keywords(&self) -> Result<Vec<Item<'_>>, SpellError> {
        let mut out = Vec::new();
        let mut offset = self.offset;
        for keyword in self.text.split('-') {
            if keyword.is_empty() {
                return Err(SpellError::EmptyKeyword {
                    proposal: self.text.to_string(),
                    offset,
                });
            }
            out.push(Item {
                text: keyword,
                offset,
            });
            offset += keyword.len() + 1;
        }
        Ok(out)
    }
}

fn split_list(s: &str) -> Result<Vec<Item<'_>>, SpellError> {
    if s.trim().is_empty() {
        return Err(SpellError::Empty);
    }
    let mut out = Vec::new();
    let mut start = 0;
    for piece in s.split(',') {
        let leading = piece.len() - piece.trim_start().len();
        let text = piece.trim();
        if text.is_empty() {
            return Err(SpellError::EmptyProposal {
                offset: start + leading,
            });
        }
        out.push(Item {
            text,
            offset: start + leading,
        });
        start += piece.len() + 1;
    }
    Ok(out)
}

/// Whether the item is `default`; an error when `default` is combined with other keywords.
fn is_default(item: &Item<'_>) -> Result<bool, SpellError> {
    let keywords = item.keywords()?;
    match keywords
        .iter()
        .position(|k| k.text.eq_ignore_ascii_case("default"))
    {
        None => Ok(false),
        Some(_) if keywords.len() == 1 => Ok(true),
        Some(i) => Err(SpellError::DefaultNotAlone {
            proposal: item.text.to_string(),
            offset: keywords.get(i).map_or(item.offset, |k| k.offset),
        }),
    }
}

/// What a keyword Realm accepts stands for.
#[derive(Clone, Copy)]
enum Token {
    Cbc(AesKeySize),
    Gcm16(AesKeySize),
    Integrity(HashAlgorithm),
    Prf(HashAlgorithm),
    Group(DhGroup),
    NoEsn,
}

fn token(keyword: &str) -> Option<Token> {
    let k = keyword.to_ascii_lowercase();
    Some(match k.as_str() {
        "aes" | "aes128" => Token::Cbc(AesKeySize::Bits128),
        "aes256" => Token::Cbc(AesKeySize::Bits256),
        "aes128gcm16" | "aes128gcm128" | "aes128gcm" => Token::Gcm16(AesKeySize::Bits128),
        "aes256gcm16" | "aes256gcm128" | "aes256gcm" => Token::Gcm16(AesKeySize::Bits256),
        "sha" | "sha1" => Token::Integrity(HashAlgorithm::Sha1),
        "sha256" | "sha2_256" => Token::Integrity(HashAlgorithm::Sha256),
        "sha384" | "sha2_384" => Token::Integrity(HashAlgorithm::Sha384),
        "prfsha1" => Token::Prf(HashAlgorithm::Sha1),
        "prfsha256" => Token::Prf(HashAlgorithm::Sha256),
        "prfsha384" => Token::Prf(HashAlgorithm::Sha384),
        "modp1024" => Token::Group(DhGroup::Modp1024),
        "modp2048" => Token::Group(DhGroup::Modp2048),
        "ecp256" => Token::Group(DhGroup::Ecp256),
        "ecp384" => Token::Group(DhGroup::Ecp384),
        "noesn" => Token::NoEsn,
        _ => return None,
    })
}

const ENCRYPTION_HINT: &str = "encryption: aes128, aes256, and for ESP aes128gcm16, aes256gcm16";
const INTEGRITY_HINT: &str = "integrity: sha1, sha256, sha384";
const PRF_HINT: &str = "IKEv1's PRF is the HMAC of the hash: prfsha1, prfsha256, prfsha384";
const GROUP_HINT: &str = "DH groups: modp2048, ecp256, ecp384, and modp1024 when allowed";

/// The hint for a strongSwan keyword Realm does not implement, `None` for an unknown keyword.
fn unsupported_hint(keyword: &str) -> Option<&'static str> {
    let k = keyword.to_ascii_lowercase();
    let k = k.as_str();
    const INTEGRITY: &[&str] = &[
        "sha1_160",
        "sha256_96",
        "sha2_256_96",
        "sha512",
        "sha2_512",
        "md5",
        "md5_128",
        "aesxcbc",
        "camelliaxcbc",
        "aescmac",
    ];
    const PRF: &[&str] = &[
        "prfsha512",
        "prfmd5",
        "prfaesxcbc",
        "prfcamelliaxcbc",
        "prfaescmac",
    ];
    const GROUPS: &[&str] = &[
        "modpnull",
        "modp768",
        "modp1536",
        "modp3072",
        "modp4096",
        "modp6144",
        "modp8192",
        "ecp192",
        "ecp224",
        "ecp521",
        "modp1024s160",
        "modp2048s224",
        "modp2048s256",
        "ecp224bp",
        "ecp256bp",
        "ecp384bp",
        "ecp512bp",
        "curve25519",
        "x25519",
        "curve448",
        "x448",
    ];
    if INTEGRITY.contains(&k) {
        return Some(INTEGRITY_HINT);
    }
    if PRF.contains(&k) {
        return Some(PRF_HINT);
    }
    if GROUPS.contains(&k) {
        return Some(GROUP_HINT);
    }
    match k {
        "none" | "modpnone" => {
            return Some("for an ESP proposal without PFS leave the DH group out");
        }
        "esn" => {
            return Some("IKEv1 negotiates no extended sequence numbers; use noesn or nothing");
        }
        "null" | "des" | "3des" | "cast128" | "chacha20poly1305" | "chacha20poly1305compat" => {
            return Some(ENCRYPTION_HINT);
        }
        _ => {}
    }
    known_cipher_family(k).then_some(ENCRYPTION_HINT)
}

/// strongSwan's AES, Camellia, Blowfish, Serpent and Twofish keywords: the family name alone or
/// with a key size, optionally followed by a mode and ICV length (`aes192`, `aes256ctr`,
/// `aes128ccm12`, `camellia256`, `aes128gmac`). Anything else (`aes129`) is unknown.
fn known_cipher_family(k: &str) -> bool {
    const FAMILIES: &[(&str, &[&str])] = &[
        ("aes", &["ctr", "ccm", "gcm", "gmac"]),
        ("camellia", &["ctr", "ccm"]),
        ("blowfish", &[]),
        ("serpent", &[]),
        ("twofish", &[]),
    ];
    const ICVS: &[&str] = &["", "8", "64", "12", "96", "16", "128"];
    FAMILIES.iter().any(|(family, modes)| {
        let Some(rest) = k.strip_prefix(family) else {
            return false;
        };
        if rest.is_empty() {
            return true;
        }
        ["128", "192", "256"].iter().any(|size| {
            let Some(mode) = rest.strip_prefix(size) else {
                return false;
            };
            mode.is_empty()
                || modes.iter().any(|m| match mode.strip_prefix(m) {
                    Some(icv) if *m == "ccm" || *m == "gcm" => ICVS.contains(&icv),
                    Some(tail) => tail.is_empty(),
                    None => false,
                })
        })
    })
}

fn classify(keyword: &Item<'_>, proposal: &Item<'_>) -> Result<Token, SpellError> {
    if let Some(token) = token(keyword.text) {
        return Ok(token);
    }
    let (kw, prop, offset) = (
        keyword.text.to_string(),
        proposal.text.to_string(),
        keyword.offset,
    );
    Err(match unsupported_hint(keyword.text) {
        Some(hint) => SpellError::UnsupportedAlgorithm {
            keyword: kw,
            proposal: prop,
            offset,
            hint,
        },
        None => SpellError::UnknownAlgorithm {
            keyword: kw,
            proposal: prop,
            offset,
        },
    })
}

/// A slot for one algorithm of a kind, remembering the keyword that filled it.
struct Slot<'a, T> {
    kind: &'static str,
    value: Option<(T, &'a Item<'a>)>,
}

impl<'a, T> Slot<'a, T> {
    const fn new(kind: &'static str) -> Self {
        Self { kind, value: None }
    }

    fn fill(
        &mut self,
        value: T,
        keyword: &'a Item<'a>,
        proposal: &Item<'_>,
    ) -> Result<(), SpellError> {
        if let Some((_, first)) = &self.value {
            return Err(SpellError::TwoOfAKind {
                kind: self.kind,
                first: first.text.to_string(),
                keyword: keyword.text.to_string(),
                proposal: proposal.text.to_string(),
                offset: keyword.offset,
            });
        }
        self.value = Some((value, keyword));
        Ok(())
    }
}

fn check_group(
    group: DhGroup,
    keyword: &Item<'_>,
    proposal: &Item<'_>,
    options: SpellOptions,
) -> Result<DhGroup, SpellError> {
    if group == DhGroup::Modp1024 && !options.allow_modp1024 {
        return Err(SpellError::Modp1024NotAllowed {
            keyword: keyword.text.to_string(),
            proposal: proposal.text.to_string(),
            offset: keyword.offset,
        });
    }
    Ok(group)
}

fn not_here(keyword: &Item<'_>, proposal: &Item<'_>, ike: bool, why: &'static str) -> SpellError {
    SpellError::NotAllowedHere {
        keyword: keyword.text.to_string(),
        proposal: proposal.text.to_string(),
        offset: keyword.offset,
        context: if ike {
            "an IKE proposal"
        } else {
            "an ESP proposal"
        },
        why,
    }
}

fn missing(proposal: &Item<'_>, kind: &'static str, hint: &'static str) -> SpellError {
    SpellError::Missing {
        kind,
        proposal: proposal.text.to_string(),
        offset: proposal.offset,
        hint,
    }
}

fn ike_proposal(item: &Item<'_>, options: SpellOptions) -> Result<IkeProposal, SpellError> {
    let keywords = item.keywords()?;
    let mut cipher = Slot::new("encryption");
    let mut hash = Slot::new("integrity");
    let mut prf = Slot::new("PRF");
    let mut group = Slot::new("DH group");
    for keyword in &keywords {
        match classify(keyword, item)? {
            Token::Cbc(AesKeySize::Bits128) => {
                cipher.fill(CipherAlgorithm::Aes128Cbc, keyword, item)?
            }
            Token::Cbc(AesKeySize::Bits256) => {
                cipher.fill(CipherAlgorithm::Aes256Cbc, keyword, item)?
            }
            Token::Gcm16(_) => {
                return Err(not_here(
                    keyword,
                    item,
                    true,
                    "IKEv1 phase 1 has no AEAD ciphers; use aes128 or aes256 with a hash",
                ));
            }
            Token::Integrity(h) => hash.fill(h, keyword, item)?,
            Token::Prf(h) => prf.fill(h, keyword, item)?,
            Token::Group(g) => {
                group.fill(check_group(g, keyword, item, options)?, keyword, item)?
            }
            Token::NoEsn => {
                return Err(not_here(
                    keyword,
                    item,
                    true,
                    "extended sequence numbers concern ESP only",
                ));
            }
        }
    }
    let (cipher, _) = cipher
        .value
        .ok_or_else(|| missing(item, "encryption", "add aes128 or aes256"))?;
    let (hash, hash_keyword) = hash.value.ok_or_else(|| {
        missing(
            item,
            "integrity",
            "IKEv1 phase 1 needs a hash: add sha256, for instance",
        )
    })?;
    let (group, _) = group.value.ok_or_else(|| {
        missing(
            item,
            "DH group",
            "IKEv1 phase 1 needs one: add modp2048, for instance",
        )
    })?;
    if let Some((prf, prf_keyword)) = prf.value
        && prf != hash
    {
        return Err(SpellError::PrfMismatch {
            keyword: prf_keyword.text.to_string(),
            hash: hash_keyword.text.to_string(),
            proposal: item.text.to_string(),
            offset: prf_keyword.offset,
        });
    }
    Ok(IkeProposal::new(cipher, hash, group))
}

fn esp_proposal(item: &Item<'_>, options: SpellOptions) -> Result<EspProposal, SpellError> {
    let keywords = item.keywords()?;
    let mut encryption = Slot::new("encryption");
    let mut integrity = Slot::new("integrity");
    let mut group = Slot::new("DH group");
    for keyword in &keywords {
        match classify(keyword, item)? {
            Token::Cbc(size) => encryption.fill((size, false), keyword, item)?,
            Token::Gcm16(size) => encryption.fill((size, true), keyword, item)?,
            Token::Integrity(h) => {
                let esp = match h {
                    HashAlgorithm::Sha1 => EspIntegrity::HmacSha1_96,
                    HashAlgorithm::Sha256 => EspIntegrity::HmacSha256_128,
                    HashAlgorithm::Sha384 => EspIntegrity::HmacSha384_192,
                };
                integrity.fill(esp, keyword, item)?
            }
            Token::Prf(_) => {
                return Err(not_here(
                    keyword,
                    item,
                    false,
                    "a PRF belongs in IKE proposals",
                ));
            }
            Token::Group(g) => {
                group.fill(check_group(g, keyword, item, options)?, keyword, item)?
            }
            Token::NoEsn => {}
        }
    }
    let ((size, aead), aead_keyword) = encryption.value.ok_or_else(|| {
        missing(
            item,
            "encryption",
            "add aes128gcm16, or aes128 with sha256, for instance",
        )
    })?;
    let cipher = match (aead, integrity.value) {
        (true, None) => EspCipher::AesGcm16(size),
        (true, Some((_, keyword))) => {
            return Err(SpellError::IntegrityWithAead {
                keyword: keyword.text.to_string(),
                aead: aead_keyword.text.to_string(),
                proposal: item.text.to_string(),
                offset: keyword.offset,
            });
        }
        (false, Some((integrity, _))) => EspCipher::AesCbc(size, integrity),
        (false, None) => {
            return Err(missing(
                item,
                "integrity",
                "AES-CBC needs one: add sha256, for instance",
            ));
        }
    };
    Ok(EspProposal::new(cipher, group.value.map(|(g, _)| g)))
}

// ---------------------------------------------------------------------------------------------
// Names for what a peer sends, in strongSwan's keywords where it has one, for logs.

/// A phase 1 Encryption Algorithm value (with its Key Length) as a keyword.
pub fn ike_encryption_name(value: u16, key_length: Option<u16>) -> String {
    let bits = key_length.map(|k| k.to_string()).unwrap_or_default();
    match value {
        1 => "des".to_string(),
        2 => "idea".to_string(),
        3 => format!("blowfish{bits}"),
        4 => "rc5".to_string(),
        5 => "3des".to_string(),
        6 => "cast128".to_string(),
        7 => format!("aes{bits}"),
        8 => format!("camellia{bits}"),
        other => format!("encryption{other}"),
    }
}

/// A phase 1 Hash Algorithm value as a keyword.
pub fn ike_hash_name(value: u16) -> String {
    match value {
        1 => "md5".to_string(),
        2 => "sha1".to_string(),
        3 => "tiger".to_string(),
        4 => "sha256".to_string(),
        5 => "sha384".to_string(),
        6 => "sha512".to_string(),
        other => format!("hash{other}"),
    }
}

/// A Group Description value (phase 1 or PFS) as a keyword.
pub fn group_name(value: u16) -> String {
    let name = match value {
        1 => "modp768",
        2 => "modp1024",
        5 => "modp1536",
        14 => "modp2048",
        15 => "modp3072",
        16 => "modp4096",
        17 => "modp6144",
        18 => "modp8192",
        19 => "ecp256",
        20 => "ecp384",
        21 => "ecp521",
        22 => "modp1024s160",
        23 => "modp2048s224",
        24 => "modp2048s256",
        25 => "ecp192",
        26 => "ecp224",
        27 => "ecp224bp",
        28 => "ecp256bp",
        29 => "ecp384bp",
        30 => "ecp512bp",
        31 => "curve25519",
        32 => "curve448",
        other => return format!("group{other}"),
    };
    name.to_string()
}

/// A phase 1 Authentication Method value, briefly.
pub fn auth_method_name(value: u16) -> String {
    let name = match value {
        1 => "psk",
        2 => "dss",
        3 => "rsasig",
        4 => "rsaenc",
        5 => "rsaencrev",
        9 => "ecdsa256",
        10 => "ecdsa384",
        11 => "ecdsa521",
        64221..=64224 => "hybrid",
        65001 | 65002 => "xauthpsk",
        65003 | 65004 => "xauthdss",
        65005 | 65006 => "xauthrsasig",
        65007..=65010 => "xauthrsaenc",
        other => return format!("auth{other}"),
    };
    name.to_string()
}

/// An ESP transform ID (with its Key Length) as a keyword.
pub fn esp_transform_name(id: u8, key_length: Option<u16>) -> String {
    let bits = key_length.map(|k| k.to_string()).unwrap_or_default();
    match id {
        1 | 2 | 9 => "des".to_string(),
        3 => "3des".to_string(),
        7 => format!("blowfish{bits}"),
        11 => "null".to_string(),
        12 => format!("aes{bits}"),
        13 => format!("aes{bits}ctr"),
        14 => format!("aes{bits}ccm8"),
        15 => format!("aes{bits}ccm12"),
        16 => format!("aes{bits}ccm16"),
        18 => format!("aes{bits}gcm8"),
        19 => format!("aes{bits}gcm12"),
        20 => format!("aes{bits}gcm16"),
        22 => format!("camellia{bits}"),
        23 => format!("aes{bits}gmac"),
        other => format!("esp{other}"),
    }
}

/// An IPsec DOI Authentication Algorithm value as a keyword.
pub fn esp_auth_name(value: u16) -> String {
    let name = match value {
        1 => "md5",
        2 => "sha1",
        3 => "desmac",
        4 => "kpdk",
        5 => "sha256",
        6 => "sha384",
        7 => "sha512",
        8 => "ripemd",
        9 => "aesxcbc",
        11 => "aes128gmac",
        12 => "aes192gmac",
        13 => "aes256gmac",
        other => return format!("integrity{other}"),
    };
    name.to_string()
}

/// An Encapsulation Mode value, briefly.
pub fn encapsulation_name(value: u16) -> String {
    let name = match value {
        1 => "tunnel",
        2 => "transport",
        3 => "udp-tunnel",
        4 => "udp-transport",
        super::ENCAPSULATION_UDP_TUNNEL_DRAFT => "udp-tunnel(draft)",
        super::ENCAPSULATION_UDP_TRANSPORT_DRAFT => "udp-transport(draft)",
        other => return format!("mode{other}"),
    };
    name.to_string()
}

/// A peer's transform, whatever it holds, in one line for the log: the algorithms spelled as a
/// strongSwan proposal, then authentication, mode and lifetimes, then any attribute not covered
/// (`class=value`). Never fails.
pub fn describe_transform(protocol: ProtocolId, t: &Transform) -> String {
    match protocol {
        ProtocolId::Isakmp => describe_phase1(t),
        ProtocolId::IpsecEsp => describe_esp(t),
        other => format!(
            "{} transform {} ({} attributes)",
            protocol_name(other),
            t.transform_id,
            t.attributes.len()
        ),
    }
}

/// A protocol ID's name.
pub fn protocol_name(protocol: ProtocolId) -> String {
    match protocol {
        ProtocolId::Isakmp => "ISAKMP".to_string(),
        ProtocolId::IpsecAh => "AH".to_string(),
        ProtocolId::IpsecEsp => "ESP".to_string(),
        ProtocolId::Ipcomp => "IPComp".to_string(),
        ProtocolId::Unknown(n) => format!("protocol {n}"),
    }
}

fn basic(t: &Transform, class: u16) -> Option<u16> {
    t.attributes
        .iter()
        .find(|a| a.attribute_type == class)
        .and_then(|a| match a.value {
            AttributeValue::Basic(v) => Some(v),
            AttributeValue::Variable(_) => None,
        })
}

/// Lifetimes as "28800s" / "4608000KB", in the order given; other classes as `class=value`.
fn tail(t: &Transform, life_type: u16, life_duration: u16, known: &[u16]) -> String {
    let mut out = String::new();
    let mut unit = "";
    for attr in &t.attributes {
        let class = attr.attribute_type;
        if class == life_type {
            unit = match attr.basic_value() {
                Some(1) => "s",
                Some(2) => "KB",
                _ => "(unknown unit)",
            };
        } else if class == life_duration {
            out.push_str(&format!(" {}{unit}", attribute_value_text(attr)));
        } else if !known.contains(&class) {
            out.push_str(&format!(" {class}={}", attribute_value_text(attr)));
        }
    }
    out
}

fn describe_phase1(t: &Transform) -> String {
    use IkeAttributeType as T;
    let class = |c: T| u16::from(c);
    let encryption = basic(t, class(T::EncryptionAlgorithm))
        .map(|e| ike_encryption_name(e, basic(t, class(T::KeyLength))))
        .unwrap_or_else(|| "?".to_string());
    let hash = basic(t, class(T::HashAlgorithm)).map_or_else(|| "?".to_string(), ike_hash_name);
    let group = basic(t, class(T::GroupDescription)).map_or_else(|| "?".to_string(), group_name);
    let auth =
        basic(t, class(T::AuthenticationMethod)).map_or_else(|| "?".to_string(), auth_method_name);
    let id = if t.transform_id == KEY_IKE {
        String::new()
    } else {
        format!("transform ID {} ", t.transform_id)
    };
    let known = [
        T::EncryptionAlgorithm,
        T::KeyLength,
        T::HashAlgorithm,
        T::GroupDescription,
        T::AuthenticationMethod,
    ]
    .map(class);
    format!(
        "{id}{encryption}-{hash}-{group} {auth}{}",
        tail(t, class(T::LifeType), class(T::LifeDuration), &known)
    )
}

fn describe_esp(t: &Transform) -> String {
    use IpsecAttributeType as T;
    let class = |c: T| u16::from(c);
    let mut name = esp_transform_name(t.transform_id, basic(t, class(T::KeyLength)));
    if let Some(auth) = basic(t, class(T::AuthenticationAlgorithm)) {
        name = format!("{name}-{}", esp_auth_name(auth));
    }
    if let Some(group) = basic(t, class(T::GroupDescription)) {
        name = format!("{name}-{}", group_name(group));
    }
    let mode = basic(t, class(T::EncapsulationMode))
        .map_or_else(|| "tunnel(default)".to_string(), encapsulation_name);
    let known = [
        T::KeyLength,
        T::AuthenticationAlgorithm,
        T::GroupDescription,
        T::EncapsulationMode,
    ]
    .map(class);
    format!(
        "{name} {mode}{}",
        tail(t, class(T::SaLifeType), class(T::SaLifeDuration), &known)
    )
}
