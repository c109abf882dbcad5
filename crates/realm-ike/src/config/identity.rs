//! IKE identities written as strongSwan writes them (`local.id`, `remote.id`, the `id` keys of
//! secrets), and strongSwan's rules for matching one against another.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use realm_wire::isakmp::{IdType, Identification};

use super::net::{AddressError, Ipv4Subnet, parse_v4};

/// An IKE identity (RFC 2407 section 4.6.2.1 ID types), read the way strongSwan reads a
/// string (`identification_create_from_string` in `identification.c`), in this order:
///
/// 1. a type prefix: `ipv4:`, `ipv4net:`, `fqdn:` or `dns:`, `email:` or `rfc822:` or
///    `userfqdn:`, `asn1dn:`, `keyid:` (then `#` and hex for binary key IDs);
/// 2. anything with `=` is a distinguished name, `C=CH, O=strongSwan, CN=moon` (or
///    `/C=CH/O=strongSwan/CN=moon`), see [`DistinguishedName`];
/// 3. without `@`: `%any`, `%any6`, `*`, `0.0.0.0` and the empty string are [`Identity::Any`];
///    an IPv4 address is ID_IPV4_ADDR, `a.b.c.d/len` ID_IPV4_ADDR_SUBNET, anything else an
///    FQDN (`moon.strongswan.org`);
/// 4. with `@`: `@#hex` is a key ID, `@@user@x` a user FQDN, `@moon.strongswan.org` an FQDN
///    (the `@` keeps it from being read as an address), `user@x` a user FQDN (email).
///
/// Deviations, each refused with an error rather than read differently: IPv6 identities;
/// address ranges and `{n}:` numeric types; DN attributes outside the table of
/// [`DnAttribute`] (strongSwan makes those a key ID); and `asn1dn:#hex` (raw DER).
/// `ipv4:1.2.3.4` is read as the address (strongSwan would keep the text as the ID's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// `%any`: matches every identity (ID_ANY, strongSwan's wildcard).
    Any,
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV4_ADDR_SUBNET: as a pattern, matches the addresses in it.
    Ipv4Subnet(Ipv4Subnet),
    /// ID_FQDN. A leading `*` makes it a pattern matching any name ending in the rest.
    Fqdn(String),
    /// ID_USER_FQDN (RFC 822 address). A leading `*` makes it a pattern (`*@example.org`).
    UserFqdn(String),
    /// ID_DER_ASN1_DN. An attribute value `*` makes it a pattern.
    Dn(DistinguishedName),
    /// ID_KEY_ID: opaque bytes.
    KeyId(Vec<u8>),
}

/// An identity that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A bad address in an address identity.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A type strongSwan has that Realm does not.
    #[error("'{0}': {1}")]
    Unsupported(String, &'static str),
    /// Hex that is not hex.
    #[error("'{0}': the key ID is not hexadecimal")]
    BadHex(String),
    /// A name with nothing in it.
    #[error("'{0}': empty name")]
    EmptyName(String),
    /// A distinguished name that could not be read.
    #[error("'{text}': {why}")]
    Dn {
        /// As written.
        text: String,
        /// What is wrong.
        why: String,
    },
}

/// How well an identity matches a pattern, strongSwan's `id_match_t` scale: higher is better,
/// [`IdMatch::NONE`] is no match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdMatch(u8);

impl IdMatch {
    /// No match.
    pub const NONE: Self = Self(0);
    /// Matched by `%any` (or a lone `*`).
    pub const ANY: Self = Self(1);
    /// The weakest wildcard match (a `/0` subnet, many wildcards in a DN).
    pub const MAX_WILDCARDS: Self = Self(2);
    /// Matched by a pattern with one wildcard (`*@example.org`, an address in a subnet).
    pub const ONE_WILDCARD: Self = Self(19);
    /// Equal.
    pub const PERFECT: Self = Self(20);

    /// True for anything but [`IdMatch::NONE`].
    pub const fn is_match(self) -> bool {
        self.0 > 0
    }
}

impl Identity {
    /// How well `self` matches `pattern`, as strongSwan's `this->matches(this, other)`:
    /// `%any` as pattern matches everything ([`IdMatch::ANY`]); equal identities of the same
    /// type match perfectly (FQDNs and emails without regard to ASCII case); a name pattern
    /// starting with `*` matches names ending in the rest; an address pattern subnet matches the
    /// addresses in it; a DN pattern matches DNs with the same attributes in the same order,
    /// where `*` values match any value (each wildcard lowering the match by one). `%any` itself
    /// matches only the `%any` pattern.
    pub fn matches(&self, pattern: &Identity) -> IdMatch {
        if *pattern == Identity::Any {
            return IdMatch::ANY;
        }
        match (self, pattern) {
            (Identity::Ipv4(a), Identity::Ipv4(b)) if a == b => IdMatch::PERFECT,
            (Identity::Ipv4(a), Identity::Ipv4Subnet(s)) => match s.prefix_len() {
                0 => IdMatch::MAX_WILDCARDS,
                32 if s.addr() == *a => IdMatch::PERFECT,
                _ if s.prefix_len() < 32 && s.contains(*a) => IdMatch::ONE_WILDCARD,
                _ => IdMatch::NONE,
            },
            (Identity::Ipv4Subnet(a), Identity::Ipv4Subnet(b)) if a == b => IdMatch::PERFECT,
            (Identity::Fqdn(a), Identity::Fqdn(b))
            | (Identity::UserFqdn(a), Identity::UserFqdn(b)) => match_string(a, b),
            (Identity::Dn(a), Identity::Dn(b)) => a.matches(b),
            (Identity::KeyId(a), Identity::KeyId(b)) if a == b => IdMatch::PERFECT,
            _ => IdMatch::NONE,
        }
    }

    /// The ID payload (RFC 2407 section 4.6.2) for this identity, with protocol and port 0;
    /// `None` for `%any`, which cannot be sent, and for a distinguished name, whose DER
    /// encoding comes with certificate support.
    pub fn to_identification(&self) -> Option<Identification> {
        Some(match self {
            Identity::Any | Identity::Dn(_) => return None,
            Identity::Ipv4(a) => Identification::ipv4(*a),
            Identity::Ipv4Subnet(s) => Identification::ipv4_subnet(s.addr(), s.mask()),
            Identity::Fqdn(name) => Identification::fqdn(name),
            Identity::UserFqdn(name) => Identification::user_fqdn(name),
            Identity::KeyId(key) => Identification::key_id(key.clone()),
        })
    }

    /// The identity a received ID payload states, for matching it against `remote.id`;
    /// `None` for the types Realm does not configure (IPv6, ranges, DER names until
    /// certificates are supported, ID_DER_ASN1_GN) and for malformed data.
    pub fn from_identification(id: &Identification) -> Option<Identity> {
        use realm_wire::isakmp::IdValue;
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        Some(match id.value()? {
            IdValue::Ipv4Addr(a) => Identity::Ipv4(a),
            IdValue::Ipv4Subnet { addr, mask } => {
                let len = u32::from(mask).leading_ones();
                if u32::from(mask) != u32::MAX.checked_shl(32 - len).unwrap_or(0) {
                    return None;
                }
                Identity::Ipv4Subnet(Ipv4Subnet::new(addr, u8::try_from(len).ok()?)?)
            }
            IdValue::Fqdn(b) => Identity::Fqdn(text(b)?),
            IdValue::UserFqdn(b) => Identity::UserFqdn(text(b)?),
            IdValue::KeyId(b) => Identity::KeyId(b.to_vec()),
            _ => return None,
        })
    }

    /// The ID type this identity is sent as; `None` for `%any`.
    pub fn id_type(&self) -> Option<IdType> {
        Some(match self {
            Identity::Any => return None,
            Identity::Ipv4(_) => IdType::Ipv4Addr,
            Identity::Ipv4Subnet(_) => IdType::Ipv4AddrSubnet,
            Identity::Fqdn(_) => IdType::Fqdn,
            Identity::UserFqdn(_) => IdType::UserFqdn,
            Identity::Dn(_) => IdType::DerAsn1Dn,
            Identity::KeyId(_) => IdType::KeyId,
        })
    }
}

/// strongSwan's `matches_string`: equal without regard to case, or a leading `*` wildcard.
fn match_string(this: &str, pattern: &str) -> IdMatch {
    if this.eq_ignore_ascii_case(pattern) {
        return IdMatch::PERFECT;
    }
    match pattern.strip_prefix('*') {
        Some("") => IdMatch::ANY,
        Some(suffix)
            if this.len() >= suffix.len()
                && this.as_bytes()[this.len() - suffix.len()..]
                    .eq_ignore_ascii_case(suffix.as_bytes()) =>
        {
            IdMatch::ONE_WILDCARD
        }
        _ => IdMatch::NONE,
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, IdentityError> {
        if let Some(id) = with_prefix(s)? {
            return Ok(id);
        }
        if s.starts_with('{') && s.contains("}:") {
            return Err(IdentityError::Unsupported(
                s.to_string(),
                "numeric ID types are not supported",
            ));
        }
        if s.contains('=') {
            return s.parse().map(Identity::Dn);
        }
        if let Some(rest) = s.strip_prefix('@') {
            if let Some(hex) = rest.strip_prefix('#') {
                return key_id(s, hex);
            }
            if let Some(user) = rest.strip_prefix('@') {
                return name(s, user).map(Identity::UserFqdn);
            }
            return name(s, rest).map(Identity::Fqdn);
        }
        if s.contains('@') {
            return Ok(Identity::UserFqdn(s.to_string()));
        }
        if matches!(s, "" | "%any" | "%any6" | "0.0.0.0" | "*" | "::" | "0::0") {
            return Ok(Identity::Any);
        }
        if s.contains(':') {
            return Err(IdentityError::Address(AddressError::Ipv6(s.to_string())));
        }
        if let Ok(addr) = s.parse::<Ipv4Addr>() {
            return Ok(Identity::Ipv4(addr));
        }
        if s.contains('/') {
            return Ok(Identity::Ipv4Subnet(s.parse()?));
        }
        if is_ipv4_range(s) {
            return Err(IdentityError::Unsupported(
                s.to_string(),
                "address range identities are not supported",
            ));
        }
        Ok(Identity::Fqdn(s.to_string()))
    }
}

fn is_ipv4_range(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        a.trim().parse::<Ipv4Addr>().is_ok() && b.trim().parse::<Ipv4Addr>().is_ok()
    })
}

fn name(whole: &str, name: &str) -> Result<String, IdentityError> {
    if name.is_empty() {
        return Err(IdentityError::EmptyName(whole.to_string()));
    }
    Ok(name.to_string())
}

fn key_id(whole: &str, hex: &str) -> Result<Identity, IdentityError> {
    let bytes = hex::decode(hex).map_err(|_| IdentityError::BadHex(whole.to_string()))?;
    if bytes.is_empty() {
        return Err(IdentityError::EmptyName(whole.to_string()));
    }
    Ok(Identity::KeyId(bytes))
}

/// strongSwan's `create_from_string_with_prefix_type`, prefixes matched without regard to case.
fn with_prefix(s: &str) -> Result<Option<Identity>, IdentityError> {
    let Some((prefix, rest)) = s.split_once(':') else {
        return Ok(None);
    };
    let id = match prefix.to_ascii_lowercase().as_str() {
        "ipv4" => match rest.strip_prefix('#') {
            Some(hex) => {
                let bytes = <[u8; 4]>::try_from(
                    hex::decode(hex)
                        .map_err(|_| IdentityError::BadHex(s.to_string()))?
                        .as_slice(),
                )
                .map_err(|_| IdentityError::BadHex(s.to_string()))?;
                Identity::Ipv4(Ipv4Addr::from(bytes))
            }
            None => Identity::Ipv4(parse_v4(rest)?),
        },
        "ipv4net" => Identity::Ipv4Subnet(rest.parse()?),
        "fqdn" | "dns" => Identity::Fqdn(name(s, rest)?),
        "email" | "rfc822" | "userfqdn" => Identity::UserFqdn(name(s, rest)?),
        "asn1dn" if rest.starts_with('#') => {
            return Err(IdentityError::Unsupported(
                s.to_string(),
                "binary DNs are not supported: write the DN as text",
            ));
        }
        "asn1dn" => Identity::Dn(rest.parse()?),
        "keyid" => match rest.strip_prefix('#') {
            Some(hex) => key_id(s, hex)?,
            None if rest.is_empty() => return Err(IdentityError::EmptyName(s.to_string())),
            None => Identity::KeyId(rest.as_bytes().to_vec()),
        },
        "ipv6" | "ipv6net" | "ipv6range" => {
            return Err(IdentityError::Address(AddressError::Ipv6(s.to_string())));
        }
        "ipv4range" => {
            return Err(IdentityError::Unsupported(
                s.to_string(),
                "address range identities are not supported",
            ));
        }
        "asn1gn" | "xmppaddr" => {
            return Err(IdentityError::Unsupported(
                s.to_string(),
                "GeneralName identities are not supported",
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some(id))
}

impl fmt::Display for Identity {
    /// strongSwan's spelling, with a type prefix where the bare text would read back as
    /// another type (so that printing then parsing gives the same identity).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Any => f.write_str("%any"),
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv4Subnet(s) => write!(f, "{s}"),
            Identity::Fqdn(name) => {
                if name.parse::<Identity>().as_ref() == Ok(self) {
                    f.write_str(name)
                } else {
                    write!(f, "fqdn:{name}")
                }
            }
            Identity::UserFqdn(name) => {
                if name.parse::<Identity>().as_ref() == Ok(self) {
                    f.write_str(name)
                } else {
                    write!(f, "email:{name}")
                }
            }
            Identity::Dn(dn) => write!(f, "{dn}"),
            Identity::KeyId(key) => write!(f, "@#{}", hex::encode(key)),
        }
    }
}

/// A distinguished name written as text, `C=CH, O=strongSwan, CN=moon.strongswan.org`, read as
/// strongSwan's `atodn` reads it: relative distinguished names separated by `,` (or by `/` when
/// the string starts with `/`, OpenSSL's `-subject` style), each `type=value`, spaces around
/// both trimmed, attribute types matched without regard to case. Unlike strongSwan, an
/// attribute type it does not know and an empty value are errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistinguishedName(Vec<Rdn>);

/// One `type=value` of a [`DistinguishedName`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rdn {
    /// The attribute type.
    pub attribute: DnAttribute,
    /// The value as written.
    pub value: String,
}

macro_rules! dn_attributes {
    ($($variant:ident, $oid:literal, [$($name:literal),+];)+) => {
        /// An attribute type of a distinguished name: those of strongSwan's `x501rdns` table
        /// that Realm knows the OID of (the names are strongSwan's, first one canonical).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DnAttribute {
            $(
                #[doc = concat!($("`", $name, "` "),+, "(OID ", $oid, ")")]
                $variant,
            )+
        }

        impl DnAttribute {
            /// The attribute's OID, dotted.
            pub const fn oid(self) -> &'static str {
                match self {
                    $(Self::$variant => $oid,)+
                }
            }

            /// The canonical name, as printed.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => dn_attributes!(@first $($name),+),)+
                }
            }

            /// The attribute for a dotted OID (as a certificate's subject names it).
            pub fn from_oid(oid: &str) -> Option<Self> {
                match oid {
                    $($oid => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The attribute for a name, without regard to ASCII case.
            pub fn from_name(name: &str) -> Option<Self> {
                $(
                    if [$($name),+].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                        return Some(Self::$variant);
                    }
                )+
                None
            }
        }
    };
    (@first $first:literal $(, $rest:literal)*) => { $first };
}

dn_attributes! {
    Country, "2.5.4.6", ["C"];
    StateOrProvince, "2.5.4.8", ["ST"];
    Locality, "2.5.4.7", ["L"];
    Street, "2.5.4.9", ["STREET"];
    Organization, "2.5.4.10", ["O"];
    OrganizationalUnit, "2.5.4.11", ["OU"];
    CommonName, "2.5.4.3", ["CN"];
    Surname, "2.5.4.4", ["SN"];
    SerialNumber, "2.5.4.5", ["serialNumber"];
    Title, "2.5.4.12", ["T"];
    Description, "2.5.4.13", ["D"];
    PostalCode, "2.5.4.17", ["postalCode"];
    Name, "2.5.4.41", ["N"];
    GivenName, "2.5.4.42", ["G"];
    Initials, "2.5.4.43", ["I"];
    DnQualifier, "2.5.4.46", ["dnQualifier"];
    Pseudonym, "2.5.4.65", ["pseudonym"];
    UserId, "0.9.2342.19200300.100.1.1", ["UID"];
    DomainComponent, "0.9.2342.19200300.100.1.25", ["DC"];
    EmailAddress, "1.2.840.113549.1.9.1", ["E", "Email", "emailAddress"];
    UnstructuredName, "1.2.840.113549.1.9.2", ["UN", "unstructuredName"];
}

impl DistinguishedName {
    /// A DN from its attributes in order (as read from a certificate's subject); `None` when
    /// there are none.
    pub fn from_rdns(rdns: Vec<Rdn>) -> Option<Self> {
        (!rdns.is_empty()).then_some(Self(rdns))
    }

    /// The relative distinguished names, in order.
    pub fn rdns(&self) -> &[Rdn] {
        &self.0
    }

    /// strongSwan's `compare_dn` with wildcards: same attributes in the same order, values
    /// equal without regard to ASCII case or `*` in the pattern.
    pub fn matches(&self, pattern: &DistinguishedName) -> IdMatch {
        if self.0.len() != pattern.0.len() {
            return IdMatch::NONE;
        }
        let mut wildcards: u8 = 0;
        for (a, p) in self.0.iter().zip(&pattern.0) {
            if a.attribute.oid() != p.attribute.oid() {
                return IdMatch::NONE;
            }
            if p.value == "*" {
                wildcards = wildcards.saturating_add(1);
            } else if !a.value.eq_ignore_ascii_case(&p.value) {
                return IdMatch::NONE;
            }
        }
        let most = IdMatch::ONE_WILDCARD.0 - IdMatch::MAX_WILDCARDS.0;
        IdMatch(IdMatch::PERFECT.0 - wildcards.min(most))
    }
}

impl FromStr for DistinguishedName {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, IdentityError> {
        let bad = |why: String| IdentityError::Dn {
            text: s.to_string(),
            why,
        };
        let (separator, body) = match s.trim_start_matches(' ').strip_prefix('/') {
            Some(rest) => ('/', rest),
            None => (',', s),
        };
        let mut rdns = Vec::new();
        for part in body.split(separator) {
            let part = part.trim_matches(' ');
            if part.is_empty() && separator == '/' && rdns.is_empty() {
                continue;
            }
            let (attribute, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not type=value")))?;
            let attribute = attribute.trim_matches(' ');
            let value = value.trim_start_matches([' ', '=']).trim_end_matches(' ');
            let attribute = DnAttribute::from_name(attribute).ok_or_else(|| {
                bad(format!(
                    "unknown DN attribute '{attribute}' (C, ST, L, O, OU, CN, E, \
                     DC, UID, serialNumber, ...)"
                ))
            })?;
            if value.is_empty() {
                return Err(bad(format!("{} has an empty value", attribute.name())));
            }
            rdns.push(Rdn {
                attribute,
                value: value.to_string(),
            });
        }
        if rdns.is_empty() {
            return Err(bad("no attributes".to_string()));
        }
        Ok(Self(rdns))
    }
}

impl fmt::Display for DistinguishedName {
    /// `C=CH, O=strongSwan, CN=moon`; in `/C=CH/O=..` form when a value holds a comma.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slash = self.0.iter().any(|r| r.value.contains(','));
        for (i, rdn) in self.0.iter().enumerate() {
            match (slash, i) {
                (true, _) => f.write_str("/")?,
                (false, 0) => {}
                (false, _) => f.write_str(", ")?,
            }
            write!(f, "{}={}", rdn.attribute.name(), rdn.value)?;
        }
        Ok(())
    }
}
