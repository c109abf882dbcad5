//! The IKE connection configuration (`realm_ike::config`): the documented example and the
//! Realm halves of docs/ike-config.md parse; strongSwan's defaults; every kind of error with its
//! key path, line and column; strongSwan's identity, traffic selector and time spellings and
//! their printing round trips; strongSwan's PSK lookup; and property tests (no text panics the
//! loader).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use proptest::prelude::*;
use realm_ike::DhGroup;
use realm_ike::config::{
    Action, AddrSpec, AuthClass, ConfigError, DnAttribute, ErrorKind, IdMatch, Identity, IkeConfig,
    Ipv4Subnet, Mode, TimeValue, TrafficSelector, TsAddrs,
};
use realm_ike::proposal::{AuthMethod, EspProposals, IkeProposals};
use realm_wire::isakmp::IdType;

const EXAMPLE: &str = include_str!("../src/config/example.toml");
const DOCS: &str = include_str!("../../../docs/ike-config.md");

fn parse(text: &str) -> Result<IkeConfig, ConfigError> {
    IkeConfig::parse(text, "peer.toml")
}

fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("accepted:\n{text}\n{c:?}"),
        Err(e) => e,
    }
}

/// 1-based line and character column of the `nth` (0-based) occurrence of `needle`.
fn place(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, column)
}

fn assert_error(e: &ConfigError, kind: ErrorKind, path: &str, at: (usize, usize), contains: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(e.path(), path, "{e}");
    assert_eq!((e.line(), e.column()), (Some(at.0), Some(at.1)), "{e}");
    assert!(
        e.message().contains(contains),
        "{e}\nshould contain {contains:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("peer.toml:{}:{}: {path}: {}", at.0, at.1, e.message())
    );
}

/// A minimal PSK connection and its secret; tests append to or edit it.
const PSK: &str = r#"[connections.home]
version = 1
remote_addrs = "198.51.100.2"
local.auth = "psk"
remote.auth = "psk"
remote.id = "@sun.example.org"

[connections.home.children.net]
local_ts = "10.1.0.0/16"
remote_ts = "10.2.0.0/16"

[secrets.ike-home]
id = "@sun.example.org"
secret = "s3cret"
"#;

fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from:?} not in the base text");
    base.replacen(from, to, 1)
}

#[test]
fn the_documented_example_parses_as_described() {
    let c = IkeConfig::parse(EXAMPLE, "example.toml").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["site", "host"], "file order");

    let site = c.connection("site").unwrap();
    assert_eq!(
        site.local_addrs,
        [AddrSpec::Host(Ipv4Addr::new(192, 0, 2, 1))]
    );
    assert_eq!(site.remote_host(), Some(Ipv4Addr::new(198, 51, 100, 2)));
    assert_eq!(
        site.proposals.to_string(),
        "aes128-sha256-modp2048,aes256-sha384-ecp384"
    );
    assert_eq!(
        (site.dpd_delay.as_secs(), site.dpd_timeout.as_secs()),
        (30, 150)
    );
    assert_eq!(site.local.auth, AuthClass::Psk);
    assert_eq!(site.local.auth.method(), AuthMethod::PreSharedKey);
    assert_eq!(
        site.local.id,
        Some(Identity::Fqdn("moon.example.org".into()))
    );
    assert_eq!(site.remote.id, Identity::Fqdn("sun.example.org".into()));
    let net = site.child("net").unwrap();
    assert_eq!(net.local_ts.to_string(), "10.1.0.0/16");
    assert_eq!(net.remote_ts.to_string(), "10.2.0.0/16");
    assert_eq!(
        net.esp_proposals.to_string(),
        "aes128gcm16-modp2048,aes128-sha256-modp2048"
    );
    assert_eq!(
        (net.start_action, net.dpd_action),
        (Action::Start, Action::Start)
    );
    assert_eq!(net.mode, Mode::Tunnel);

    let host = c.connection("host").unwrap();
    assert!(host.encap);
    assert_eq!(host.local.auth.method(), AuthMethod::RsaSignatures);
    assert_eq!(host.local.certs, ["moonCert.pem"]);
    assert_eq!(host.remote.cacerts, ["exampleCA.pem"]);
    let Some(Identity::Dn(dn)) = &host.local.id else {
        panic!("local.id is not a DN: {:?}", host.local.id)
    };
    let attributes: Vec<(DnAttribute, &str)> = dn
        .rdns()
        .iter()
        .map(|r| (r.attribute, r.value.as_str()))
        .collect();
    assert_eq!(
        attributes,
        [
            (DnAttribute::Country, "CH"),
            (DnAttribute::Organization, "Example"),
            (DnAttribute::CommonName, "moon.example.org"),
        ]
    );
    // The remote DN is a pattern that the local one matches with one wildcard.
    assert_eq!(
        host.local.id.as_ref().unwrap().matches(&host.remote.id),
        IdMatch::ONE_WILDCARD
    );
    let child = host.child("host").unwrap();
    assert_eq!(child.mode, Mode::Transport);
    assert_eq!(child.start_action, Action::Trap);
    assert_eq!(child.local_ts, TrafficSelector::DYNAMIC);

    assert_eq!(c.secrets.len(), 1);
    assert_eq!(
        hex::encode(c.secrets[0].secret.expose()),
        "8d5cce342174da772c8224a59885deaa118d",
        "0s is base64"
    );
    let found = c.ike_secret(site.local.id.as_ref().unwrap(), &site.remote.id);
    assert_eq!(found.map(|s| s.name.as_str()), Some("ike-site"));
}

/// Every ```toml block of docs/ike-config.md is a Realm file (swanctl.conf blocks are marked
/// ```text); each parses, and the reference names every key the example uses.
#[test]
fn the_docs_examples_parse() {
    let mut blocks = 0;
    let mut rest = DOCS;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("unterminated block");
        let block = &body[..end];
        IkeConfig::parse(block, "docs/ike-config.md")
            .unwrap_or_else(|e| panic!("{e}\nin block:\n{block}"));
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert!(
        blocks >= 3,
        "only {blocks} toml blocks in docs/ike-config.md"
    );
    assert!(
        DOCS.contains(EXAMPLE.trim()),
        "docs/ike-config.md carries the example verbatim"
    );
    for key in [
        "version",
        "local_addrs",
        "remote_addrs",
        "local_port",
        "remote_port",
        "proposals",
        "aggressive",
        "encap",
        "dpd_delay",
        "dpd_timeout",
        "keyingtries",
        "rekey_time",
        "reauth_time",
        "over_time",
        "rand_time",
        "allow_modp1024",
        "auth",
        "id",
        "certs",
        "cacerts",
        "local_ts",
        "remote_ts",
        "esp_proposals",
        "mode",
        "start_action",
        "dpd_action",
        "close_action",
        "life_time",
        "secret",
    ] {
        assert!(
            DOCS.contains(&format!("| `{key}`")),
            "docs/ike-config.md has no row for {key}"
        );
    }
}

#[test]
fn defaults_are_strongswans() {
    let c = parse(PSK).unwrap_or_else(|e| panic!("{e}"));
    let home = &c.connections[0];
    assert_eq!(home.local_addrs, [AddrSpec::Any]);
    assert_eq!((home.local_port, home.remote_port), (500, 500));
    assert_eq!(home.proposals, IkeProposals::default_set());
    assert!(!home.aggressive && !home.encap && !home.allow_modp1024);
    assert_eq!(
        (home.dpd_delay, home.dpd_timeout),
        (TimeValue::ZERO, TimeValue::ZERO)
    );
    assert_eq!(home.keyingtries, 1);
    assert_eq!(home.rekey_time.to_string(), "4h");
    assert_eq!(home.reauth_time, TimeValue::ZERO);
    assert_eq!(home.over_time.to_string(), "24m", "10% of 4h");
    assert_eq!(
        home.rand_time.to_string(),
        "24m",
        "over_time, below half of 4h"
    );
    assert_eq!(home.phase1_lifetime().as_secs(), 4 * 3600 + 24 * 60);
    assert_eq!(home.local.id, None);
    assert!(home.local.certs.is_empty());
    let net = &home.children[0];
    assert_eq!(net.esp_proposals, EspProposals::default_set());
    assert_eq!(net.mode, Mode::Tunnel);
    assert_eq!(
        (net.start_action, net.dpd_action, net.close_action),
        (Action::None, Action::None, Action::None)
    );
    assert_eq!(net.rekey_time.to_string(), "1h");
    assert_eq!(net.life_time.to_string(), "66m", "rekey_time + 10%");
    assert_eq!(net.rand_time.to_string(), "6m", "life_time - rekey_time");

    // A connection with nothing set: pubkey both sides (which then needs certs), %any ids.
    let bare = "[connections.c]\nlocal.certs = \"me.pem\"\n[connections.c.children.x]\n";
    let c = parse(bare).unwrap_or_else(|e| panic!("{e}"));
    let conn = &c.connections[0];
    assert_eq!(
        (conn.local.auth, conn.remote.auth),
        (AuthClass::Pubkey, AuthClass::Pubkey)
    );
    assert_eq!(conn.remote.id, Identity::Any);
    assert_eq!(conn.remote_addrs, [AddrSpec::Any]);
    assert_eq!(conn.children[0].local_ts, TrafficSelector::DYNAMIC);
    assert_eq!(conn.children[0].remote_ts, TrafficSelector::DYNAMIC);
}

#[test]
fn ike_lifetimes_follow_vici_config() {
    // Only reauth_time: rekeying off, over_time 10% of it, rand_time at most half.
    let c = parse(&with(
        PSK,
        "version = 1\n",
        "version = 1\nreauth_time = \"2h\"\n",
    ))
    .unwrap();
    let home = &c.connections[0];
    assert_eq!(
        (home.rekey_time, home.reauth_time.as_secs()),
        (TimeValue::ZERO, 7200)
    );
    assert_eq!(home.over_time.as_secs(), 720);
    assert_eq!(home.rand_time.as_secs(), 720);
    assert_eq!(
        home.phase1_lifetime().as_secs(),
        7200 + 720,
        "reauth + over"
    );
    // Both: over_time from the longer, rand_time at most half the shorter.
    let c = parse(&with(
        PSK,
        "version = 1\n",
        "version = 1\nrekey_time = 600\nreauth_time = \"1d\"\n",
    ))
    .unwrap();
    let home = &c.connections[0];
    assert_eq!(home.over_time.as_secs(), 8640);
    assert_eq!(home.rand_time.as_secs(), 300);
    // Explicit values stay.
    let c = parse(&with(
        PSK,
        "version = 1\n",
        "version = 1\nrekey_time = \"1h\"\nover_time = \"5m\"\nrand_time = \"1m\"\n",
    ))
    .unwrap();
    let home = &c.connections[0];
    assert_eq!(
        (home.over_time.as_secs(), home.rand_time.as_secs()),
        (300, 60)
    );
    assert_eq!(home.phase1_lifetime().as_secs(), 3900);
    // Rekeying off entirely.
    let c = parse(&with(PSK, "version = 1\n", "version = 1\nrekey_time = 0\n")).unwrap();
    assert_eq!(c.connections[0].phase1_lifetime(), TimeValue::ZERO);
}

#[test]
fn child_lifetimes() {
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nrekey_time = \"20m\"\n",
    );
    let c = parse(&text).unwrap();
    let net = &c.connections[0].children[0];
    assert_eq!(
        (
            net.rekey_time.as_secs(),
            net.life_time.as_secs(),
            net.rand_time.as_secs()
        ),
        (1200, 1320, 120)
    );

    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nlife_time = \"2h\"\n",
    );
    let net = &parse(&text).unwrap().connections[0].children[0];
    assert_eq!(
        (
            net.rekey_time.as_secs(),
            net.life_time.as_secs(),
            net.rand_time.as_secs()
        ),
        (3600, 7200, 3600)
    );

    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nlife_time = \"30m\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.children.net.life_time",
        place(&text, "\"30m\"", 0),
        "must be longer than rekey_time (1h)",
    );
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nrand_time = \"1h\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.children.net.rand_time",
        place(&text, "\"1h\"", 0),
        "must be shorter than rekey_time",
    );
}

#[test]
fn unknown_keys_are_named() {
    let text = with(PSK, "version = 1\n", "version = 1\nnmae = \"x\"\n");
    let e = error(&text);
    assert_error(
        &e,
        ErrorKind::UnknownKey,
        "connections.home.nmae",
        place(&text, "nmae", 0),
        "unknown key 'nmae'",
    );
    assert!(
        e.message().contains("`proposals`"),
        "lists what is expected: {e}"
    );

    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nupdown = \"/bin/true\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "connections.home.children.net.updown",
        place(&text, "updown", 0),
        "'updown' is a swanctl.conf key that Realm does not support",
    );

    let text = with(
        PSK,
        "remote.id =",
        "remote.revocation = \"strict\"\nremote.id =",
    );
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "connections.home.remote.revocation",
        place(&text, "revocation", 0),
        "swanctl.conf key that Realm does not support",
    );

    let text = format!("{PSK}[connections.home.local-2]\nauth = \"psk\"\n");
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "connections.home.local-2",
        place(&text, "local-2", 0),
        "one authentication round",
    );

    let text = format!("{PSK}[authorities.ca]\ncacert = \"ca.pem\"\n");
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "authorities",
        place(&text, "authorities", 0),
        "swanctl.conf key that Realm does not support",
    );

    let text = with(
        PSK,
        "secret = \"s3cret\"",
        "secret = \"s3cret\"\nfile = \"x\"",
    );
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "secrets.ike-home.file",
        place(&text, "file", 0),
        "unknown key 'file'",
    );
}

#[test]
fn wrong_types_are_named() {
    let text = with(PSK, "version = 1\n", "version = 1\naggressive = \"yes\"\n");
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.aggressive",
        place(&text, "\"yes\"", 0),
        "expected a boolean",
    );
    let text = with(
        PSK,
        "local_ts = \"10.1.0.0/16\"",
        "local_ts = [\"10.1.0.0/16\", 5]",
    );
    let e = error(&text);
    assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");
    assert_eq!(e.path(), "connections.home.children.net.local_ts[1]", "{e}");
    assert_eq!(
        (e.line(), e.column()),
        (Some(place(&text, "5]", 0).0), Some(place(&text, "5]", 0).1)),
        "{e}"
    );
}

#[test]
fn a_bad_proposal_points_at_the_algorithm() {
    let text = with(
        PSK,
        "version = 1\n",
        "version = 1\nproposals = \"aes128-sha256-modp2048, aes129-sha256-modp2048\"\n",
    );
    let e = error(&text);
    let at = place(&text, "aes129", 0);
    assert_error(
        &e,
        ErrorKind::Proposal,
        "connections.home.proposals",
        at,
        "unknown algorithm 'aes129' in proposal 'aes129-sha256-modp2048'",
    );
    assert_eq!(
        e.to_string(),
        format!(
            "peer.toml:{}:{}: connections.home.proposals: unknown algorithm 'aes129' in proposal 'aes129-sha256-modp2048'",
            at.0, at.1
        )
    );
    // The array form names the element.
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nesp_proposals = [\"aes128gcm16\", \"aes128-sha257\"]\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Proposal,
        "connections.home.children.net.esp_proposals[1]",
        place(&text, "sha257", 0),
        "sha257",
    );
    // An empty array is no proposal at all.
    let text = with(PSK, "version = 1\n", "version = 1\nproposals = []\n");
    assert_error(
        &error(&text),
        ErrorKind::Proposal,
        "connections.home.proposals",
        place(&text, "[]", 0),
        "no proposals",
    );
}

#[test]
fn proposals_as_list_or_string_and_default() {
    let text = with(
        PSK,
        "version = 1\n",
        "version = 1\nproposals = [\"aes128-sha1-modp2048, aes256-sha384-ecp384\", \"default\"]\n",
    );
    let home = &parse(&text).unwrap().connections[0];
    let list = home.proposals.as_slice();
    assert_eq!(list[0].to_string(), "aes128-sha1-modp2048");
    assert_eq!(list[1].to_string(), "aes256-sha384-ecp384");
    assert_eq!(
        list.len(),
        IkeProposals::default_set().as_slice().len() + 1,
        "defaults appended, the duplicate dropped"
    );
}

#[test]
fn modp1024_needs_the_opt_in() {
    let text = with(
        PSK,
        "version = 1\n",
        "version = 1\nproposals = \"aes128-sha1-modp1024\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Proposal,
        "connections.home.proposals",
        place(&text, "modp1024", 0),
        "allow_modp1024 = true",
    );
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nesp_proposals = \"aes128-sha1-modp1024\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Proposal,
        "connections.home.children.net.esp_proposals",
        place(&text, "modp1024", 0),
        "allow_modp1024",
    );

    let text = with(
        PSK,
        "version = 1\n",
        "version = 1\nallow_modp1024 = true\nproposals = \"aes128-sha1-modp1024\"\n",
    );
    let text = with(
        &text,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nesp_proposals = \"aes128-sha1-modp1024\"\n",
    );
    let home = &parse(&text).unwrap_or_else(|e| panic!("{e}")).connections[0];
    assert!(home.allow_modp1024);
    assert_eq!(home.proposals.as_slice()[0].group, DhGroup::Modp1024);
    assert_eq!(
        home.children[0].esp_proposals.as_slice()[0].pfs,
        Some(DhGroup::Modp1024)
    );
}

#[test]
fn versions() {
    let text = with(PSK, "version = 1", "version = 2");
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.version",
        place(&text, "2\n", 0),
        "IKEv2 is not supported yet",
    );
    let text = with(PSK, "version = 1", "version = 0");
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.version",
        place(&text, "0\n", 0),
        "initiates IKEv2",
    );
    let text = with(PSK, "version = 1", "version = 3");
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.version",
        place(&text, "3\n", 0),
        "version 3",
    );
    // Absent means 1.
    assert!(parse(&with(PSK, "version = 1\n", "")).is_ok());
}

#[test]
fn a_psk_connection_needs_a_matching_secret() {
    let text = with(
        PSK,
        "id = \"@sun.example.org\"\nsecret",
        "id = \"@moon.example.org\"\nsecret",
    );
    let e = error(&text);
    assert_error(
        &e,
        ErrorKind::MissingSecret,
        "connections.home",
        place(&text, "home", 0),
        "no [secrets.ike*] entry matches",
    );
    assert!(e.message().contains("remote id 'sun.example.org'"), "{e}");

    // Found by the local id instead.
    let by_local = with(
        &text,
        "remote.id =",
        "local.id = \"@moon.example.org\"\nremote.id =",
    );
    let c = parse(&by_local).unwrap_or_else(|e| panic!("{e}"));
    let home = &c.connections[0];
    assert_eq!(
        c.ike_secret(home.local.id.as_ref().unwrap(), &home.remote.id)
            .map(|s| s.name.as_str()),
        Some("ike-home")
    );
    // Found by the remote address (strongSwan's Main Mode responder fallback).
    let by_addr = with(
        &text,
        "id = \"@moon.example.org\"\nsecret",
        "id = \"198.51.100.2\"\nsecret",
    );
    assert!(parse(&by_addr).is_ok());
    // A wildcard id.
    let wildcard = with(
        &text,
        "id = \"@moon.example.org\"\nsecret",
        "id = \"*.example.org\"\nsecret",
    );
    assert!(parse(&wildcard).is_ok());
    // A secret without id belongs to everybody.
    let anyone = with(&text, "id = \"@moon.example.org\"\n", "");
    assert!(parse(&anyone).is_ok());
    // A remote %any with the local address unknown: a secret for some IPv4 address may match
    // the local address at run time, one for a name may not.
    let responder = "[connections.r]\nlocal.auth = \"psk\"\nremote.auth = \"psk\"\n[secrets.ike-1]\nid = \"192.0.2.1\"\nsecret = \"x\"\n";
    assert!(parse(responder).is_ok());
    let text = with(responder, "192.0.2.1", "@gw.example.org");
    assert_eq!(error(&text).kind(), ErrorKind::MissingSecret);
    // No secrets at all.
    let text = PSK.split("[secrets").next().unwrap();
    assert_eq!(error(text).kind(), ErrorKind::MissingSecret);
}

#[test]
fn secret_lookup_ranks_as_strongswan() {
    let text = r#"
[secrets.ike-any]
secret = "any"
[secrets.ike-domain]
id = "*.example.org"
secret = "domain"
[secrets.ike-sun]
id-a = "@sun.example.org"
id-b = "@moon.example.org"
secret = "sun"
[secrets.ike-moon]
id = "@moon.example.org"
secret = "moon"
"#;
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let id = |s: &str| s.parse::<Identity>().unwrap();
    let pick = |me: &str, other: &str| {
        c.ike_secret(&id(me), &id(other))
            .map(|s| String::from_utf8(s.secret.expose().to_vec()).unwrap())
    };
    // The best match on the remote side wins first...
    assert_eq!(
        pick("@moon.example.org", "@sun.example.org").as_deref(),
        Some("sun")
    );
    // A wildcard on the remote side beats the %any secret, whatever matches locally.
    assert_eq!(
        pick("@moon.example.org", "@other.example.org").as_deref(),
        Some("domain")
    );
    // With nothing specific, the secret without id (%any) is taken.
    assert_eq!(pick("@x.test", "@y.test").as_deref(), Some("any"));
    // A remote %any only matches the %any secret, which then wins over perfect local matches
    // (strongSwan ranks the remote side first).
    assert_eq!(pick("@moon.example.org", "%any").as_deref(), Some("any"));
    assert_eq!(
        c.secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["ike-any", "ike-domain", "ike-sun", "ike-moon"]
    );
    assert_eq!(c.secrets[2].ids.len(), 2);

    // Without it: the local side decides (perfect beats ike-domain's wildcard), and of equal
    // matches the first in the file wins.
    let text = text.replace("[secrets.ike-any]\nsecret = \"any\"\n", "");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let pick = |me: &str, other: &str| c.ike_secret(&id(me), &id(other)).map(|s| s.name.clone());
    assert_eq!(
        pick("@moon.example.org", "@x.test").as_deref(),
        Some("ike-sun")
    );
    assert_eq!(
        pick("@gw.example.org", "@x.test").as_deref(),
        Some("ike-domain")
    );
    assert_eq!(pick("@x.test", "@y.test"), None);
}

#[test]
fn secret_spellings() {
    let secret = |value: &str| {
        let text = with(PSK, "secret = \"s3cret\"", &format!("secret = \"{value}\""));
        parse(&text).map(|c| c.secrets[0].secret.expose().to_vec())
    };
    assert_eq!(secret("0x0102ff").unwrap(), [1, 2, 0xff]);
    assert_eq!(secret("0XABcd").unwrap(), [0xab, 0xcd]);
    assert_eq!(secret("0sAQID").unwrap(), [1, 2, 3]);
    assert_eq!(secret("plain text").unwrap(), b"plain text");
    assert_eq!(secret("0").unwrap(), b"0");
    let e = secret("0xnothex").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.path(), "secrets.ike-home.secret");
    assert!(e.message().contains("not hexadecimal"));
    assert!(secret("0s!!").unwrap_err().message().contains("not base64"));
    assert!(secret("").unwrap_err().message().contains("empty secret"));
    // Debug never shows the key.
    let c = parse(PSK).unwrap();
    let shown = format!("{:?}", c.secrets[0]);
    assert!(
        !shown.contains("s3cret") && shown.contains("redacted"),
        "{shown}"
    );
}

#[test]
fn secret_sections() {
    let text = with(PSK, "[secrets.ike-home]", "[secrets.home]");
    assert_error(
        &error(&text),
        ErrorKind::UnknownKey,
        "secrets.home",
        place(&text, "home]\nid", 0),
        "ike<suffix>",
    );
    let text = with(PSK, "[secrets.ike-home]", "[secrets.eap-home]");
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "secrets.eap-home",
        place(&text, "eap-home", 0),
        "'eap' secrets are not supported",
    );
    let text = with(PSK, "secret = \"s3cret\"\n", "");
    assert_error(
        &error(&text),
        ErrorKind::Missing,
        "secrets.ike-home.secret",
        place(&text, "ike-home", 0),
        "needs `secret`",
    );
    let text = with(
        PSK,
        "id = \"@sun.example.org\"\nsecret",
        "id = \"C=CH, XX=y\"\nsecret",
    );
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "secrets.ike-home.id",
        place(&text, "\"C=CH", 0),
        "unknown DN attribute 'XX'",
    );
}

#[test]
fn bad_durations() {
    for (value, contains) in [
        ("\"5x\"", "unknown time unit 'x'"),
        ("\"soon\"", "is not a time"),
        ("-5", "cannot be negative"),
        ("\"99999999999d\"", "too long"),
        ("4294967296", "too long"),
        ("1.5", "seconds, or a string"),
    ] {
        let text = with(
            PSK,
            "version = 1\n",
            &format!("version = 1\ndpd_delay = {value}\n"),
        );
        let e = error(&text);
        let kind = e.kind();
        assert_eq!(kind, ErrorKind::InvalidValue, "{e}");
        assert_eq!(e.path(), "connections.home.dpd_delay", "{e}");
        assert_eq!(
            (e.line(), e.column()),
            (
                Some(place(&text, value, 0).0),
                Some(place(&text, value, 0).1)
            ),
            "{e}"
        );
        assert!(e.message().contains(contains), "{e}");
    }
}

#[test]
fn time_values() {
    for (text, secs) in [
        ("0", 0),
        ("30", 30),
        ("30s", 30),
        ("5m", 300),
        ("5 M", 300),
        ("4h", 14_400),
        ("1d", 86_400),
        ("2D", 172_800),
        ("007s", 7),
    ] {
        assert_eq!(text.parse::<TimeValue>().unwrap().as_secs(), secs, "{text}");
    }
    for (secs, printed) in [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (90, "90s"),
        (3600, "1h"),
        (5400, "90m"),
        (86_400, "1d"),
        (90_000, "25h"),
    ] {
        assert_eq!(TimeValue::from_secs(secs).to_string(), printed);
    }
    for bad in ["", "m", "1 h m", "1hh", "0x10", "1.5h", "+1"] {
        assert!(bad.parse::<TimeValue>().is_err(), "{bad:?}");
    }
}

#[test]
fn bad_traffic_selectors() {
    let cases = [
        ("10.1.0.0/33", ErrorKind::InvalidValue, "prefix length"),
        (
            "10.1.0.1/16",
            ErrorKind::InvalidValue,
            "did you mean '10.1.0.0/16'",
        ),
        (
            "10.1.0.0/16[tcp/80-90]",
            ErrorKind::Unsupported,
            "single port",
        ),
        ("10.1.0.0/16[tcp/opaque]", ErrorKind::Unsupported, "OPAQUE"),
        (
            "10.1.0.0/16[/80]",
            ErrorKind::InvalidValue,
            "a port needs a protocol",
        ),
        (
            "10.1.0.0/16[tcp/http]",
            ErrorKind::InvalidValue,
            "write the number",
        ),
        (
            "10.1.0.0/16[foo]",
            ErrorKind::InvalidValue,
            "unknown protocol 'foo'",
        ),
        (
            "10.1.0.0/16[tcp",
            ErrorKind::InvalidValue,
            "[protocol/port]",
        ),
        ("fd00::/8", ErrorKind::Unsupported, "IPv6"),
        ("net.example.org", ErrorKind::Unsupported, "DNS names"),
        (
            "10.1.0.9-10.1.0.1",
            ErrorKind::InvalidValue,
            "ends before it starts",
        ),
    ];
    for (ts, kind, contains) in cases {
        let text = with(
            PSK,
            "local_ts = \"10.1.0.0/16\"",
            &format!("local_ts = \"{ts}\""),
        );
        assert_error(
            &error(&text),
            kind,
            "connections.home.children.net.local_ts",
            place(&text, ts, 0),
            contains,
        );
    }
    // A second selector per side, in either list form, points at the second one.
    let text = with(
        PSK,
        "local_ts = \"10.1.0.0/16\"",
        "local_ts = \"10.1.0.0/16, 10.3.0.0/16\"",
    );
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.children.net.local_ts",
        place(&text, "10.3.0.0", 0),
        "one traffic selector per side",
    );
    let text = with(
        PSK,
        "local_ts = \"10.1.0.0/16\"",
        "local_ts = [\"10.1.0.0/16\", \"10.3.0.0/16\"]",
    );
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.children.net.local_ts[1]",
        place(&text, "10.3.0.0", 0),
        "one traffic selector per side",
    );
    let text = with(
        PSK,
        "local_ts = \"10.1.0.0/16\"",
        "local_ts = \"10.1.0.0/16,\"",
    );
    let (line, comma) = place(&text, ",\"", 0);
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.children.net.local_ts",
        (line, comma + 1),
        "empty list item",
    );
}

#[test]
fn traffic_selector_spellings() {
    let ts = |s: &str| {
        s.parse::<TrafficSelector>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    };
    let t = ts("10.1.0.0/16[tcp/80]");
    assert_eq!(
        t.addrs,
        TsAddrs::Subnet(Ipv4Subnet::new(Ipv4Addr::new(10, 1, 0, 0), 16).unwrap())
    );
    assert_eq!((t.protocol, t.port), (6, Some(80)));
    assert_eq!(ts("10.1.0.5").to_string(), "10.1.0.5/32");
    assert!(ts("10.1.0.5").is_host() && !ts("10.1.0.0/24").is_host());
    assert_eq!(ts("dynamic[udp/1701]").to_string(), "dynamic[udp/1701]");
    assert_eq!(ts("DYNAMIC[UDP]").to_string(), "dynamic[udp]");
    assert_eq!(ts("0.0.0.0/0[icmp/8]").to_string(), "0.0.0.0/0[icmp/8]");
    assert_eq!(
        ts("10.0.0.0/8[any]").to_string(),
        "10.0.0.0/8",
        "any protocol"
    );
    assert_eq!(ts("10.0.0.0/8[tcp/any]").to_string(), "10.0.0.0/8[tcp]");
    assert_eq!(ts("10.0.0.0/8[50]").to_string(), "10.0.0.0/8[50]");
    assert_eq!(ts("10.0.0.1-10.0.0.9").to_string(), "10.0.0.1-10.0.0.9");

    // Quick Mode IDs.
    let id = ts("10.1.0.0/16[tcp/80]").to_identification(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        (id.id_type, id.protocol_id, id.port),
        (IdType::Ipv4AddrSubnet, 6, 80)
    );
    assert_eq!(id.data, [10, 1, 0, 0, 255, 255, 0, 0]);
    let id = TrafficSelector::DYNAMIC.to_identification(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        (id.id_type, id.data.as_slice()),
        (IdType::Ipv4Addr, &[192, 0, 2, 1][..])
    );
    let id = ts("10.0.0.1-10.0.0.9").to_identification(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        (id.id_type, id.data.as_slice()),
        (IdType::Ipv4AddrRange, &[10, 0, 0, 1, 10, 0, 0, 9][..])
    );
    let id = ts("10.0.0.7").to_identification(Ipv4Addr::UNSPECIFIED);
    assert_eq!(id.id_type, IdType::Ipv4Addr);
}

#[test]
fn identity_spellings() {
    let id = |s: &str| s.parse::<Identity>().unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(id("192.0.2.1"), Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(
        id("10.0.0.0/8"),
        Identity::Ipv4Subnet(Ipv4Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap())
    );
    assert_eq!(
        id("moon.example.org"),
        Identity::Fqdn("moon.example.org".into())
    );
    assert_eq!(
        id("@moon.example.org"),
        Identity::Fqdn("moon.example.org".into())
    );
    assert_eq!(
        id("@192.0.2.1"),
        Identity::Fqdn("192.0.2.1".into()),
        "@ keeps a name from being an address"
    );
    assert_eq!(
        id("carol@example.org"),
        Identity::UserFqdn("carol@example.org".into())
    );
    assert_eq!(id("@@carol"), Identity::UserFqdn("carol".into()));
    assert_eq!(id("@#0a0b"), Identity::KeyId(vec![10, 11]));
    assert_eq!(id("keyid:#0a0b"), Identity::KeyId(vec![10, 11]));
    assert_eq!(id("keyid:ab"), Identity::KeyId(b"ab".to_vec()));
    assert_eq!(id("FQDN:x"), Identity::Fqdn("x".into()));
    assert_eq!(id("email:carol"), Identity::UserFqdn("carol".into()));
    assert_eq!(
        id("ipv4:#c0000201"),
        Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
    );
    for any in ["%any", "", "*", "0.0.0.0", "%any6"] {
        assert_eq!(id(any), Identity::Any, "{any:?}");
    }
    let Identity::Dn(dn) = id("/C=CH/O=strongSwan, Inc./CN=moon") else {
        panic!()
    };
    assert_eq!(dn.rdns().len(), 3);
    assert_eq!(dn.rdns()[1].value, "strongSwan, Inc.");
    assert_eq!(dn.to_string(), "/C=CH/O=strongSwan, Inc./CN=moon");
    let Identity::Dn(dn) = id("c = CH,  emailAddress=a@b ,cn=moon") else {
        panic!()
    };
    assert_eq!(dn.to_string(), "C=CH, E=a@b, CN=moon");
    assert_eq!(dn.rdns()[1].attribute.oid(), "1.2.840.113549.1.9.1");

    for (bad, contains) in [
        ("fd00::1", "IPv6"),
        ("ipv6:fd00::1", "IPv6"),
        ("10.0.0.1-10.0.0.5", "range"),
        ("{1}:x", "numeric"),
        ("C=CH, CN=", "empty value"),
        ("C=CH, XYZ=1", "unknown DN attribute"),
        ("@#zz", "not hexadecimal"),
        ("@", "empty name"),
        ("asn1dn:#3000", "binary DNs"),
        ("10.0.0.1/8", "did you mean"),
    ] {
        let e = bad.parse::<Identity>().unwrap_err();
        assert!(e.to_string().contains(contains), "{bad}: {e}");
    }

    // ID payloads.
    assert_eq!(
        id("@moon").to_identification().unwrap().id_type,
        IdType::Fqdn
    );
    assert_eq!(id("a@b").to_identification().unwrap().data, b"a@b");
    assert_eq!(id("%any").to_identification(), None);
    assert_eq!(id("C=CH").id_type(), Some(IdType::DerAsn1Dn));
}

#[test]
fn identity_matching() {
    let id = |s: &str| s.parse::<Identity>().unwrap();
    let m = |this: &str, pattern: &str| id(this).matches(&id(pattern));
    assert_eq!(
        m("@moon.example.org", "@MOON.example.org"),
        IdMatch::PERFECT
    );
    assert_eq!(m("@moon.example.org", "%any"), IdMatch::ANY);
    assert_eq!(m("%any", "@moon"), IdMatch::NONE, "%any only matches %any");
    assert_eq!(
        m("@moon.example.org", "*.example.org"),
        IdMatch::ONE_WILDCARD
    );
    assert_eq!(
        m("carol@example.org", "*@example.org"),
        IdMatch::ONE_WILDCARD
    );
    assert_eq!(m("carol@example.org", "*@example.com"), IdMatch::NONE);
    assert_eq!(m("@moon", "carol@moon"), IdMatch::NONE, "types differ");
    assert_eq!(m("192.0.2.1", "192.0.2.1"), IdMatch::PERFECT);
    assert_eq!(m("192.0.2.1", "192.0.2.0/24"), IdMatch::ONE_WILDCARD);
    assert_eq!(m("192.0.2.1", "0.0.0.0/0"), IdMatch::MAX_WILDCARDS);
    assert_eq!(m("192.0.3.1", "192.0.2.0/24"), IdMatch::NONE);
    assert_eq!(
        m("C=CH, O=X, CN=moon", "C=CH, O=x, CN=moon"),
        IdMatch::PERFECT
    );
    assert_eq!(
        m("C=CH, O=X, CN=moon", "C=CH, O=*, CN=*").cmp(&IdMatch::ONE_WILDCARD),
        std::cmp::Ordering::Less
    );
    assert!(m("C=CH, O=X, CN=moon", "C=CH, O=*, CN=*").is_match());
    assert_eq!(
        m("C=CH, CN=moon", "CN=moon, C=CH"),
        IdMatch::NONE,
        "order matters"
    );
    assert_eq!(
        m("E=a@b", "emailAddress=a@b"),
        IdMatch::PERFECT,
        "aliases are one attribute"
    );
}

#[test]
fn addresses() {
    let text = with(
        PSK,
        "remote_addrs = \"198.51.100.2\"",
        "remote_addrs = [\"198.51.100.2\", \"10.0.0.0/8\", \"10.1.0.1-10.1.0.9\", \"%any\"]",
    );
    let home = &parse(&text).unwrap().connections[0];
    assert_eq!(home.remote_addrs.len(), 4);
    assert!(home.remote_addrs[1].matches(Ipv4Addr::new(10, 9, 9, 9)));
    assert!(
        home.remote_addrs[2].matches(Ipv4Addr::new(10, 1, 0, 5))
            && !home.remote_addrs[2].matches(Ipv4Addr::new(10, 1, 0, 10))
    );
    assert_eq!(
        home.remote_addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["198.51.100.2", "10.0.0.0/8", "10.1.0.1-10.1.0.9", "%any"]
    );
    for (value, kind, contains) in [
        ("gw.example.org", ErrorKind::Unsupported, "DNS names"),
        ("2001:db8::1", ErrorKind::Unsupported, "IPv6"),
        ("%any6", ErrorKind::Unsupported, "IPv6"),
        ("300.1.1.1", ErrorKind::InvalidValue, "not an IPv4 address"),
    ] {
        let text = with(
            PSK,
            "remote_addrs = \"198.51.100.2\"",
            &format!("remote_addrs = \"198.51.100.2, {value}\""),
        );
        assert_error(
            &error(&text),
            kind,
            "connections.home.remote_addrs",
            place(&text, value, 0),
            contains,
        );
    }
    let text = with(PSK, "version = 1\n", "version = 1\nlocal_port = 0\n");
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.local_port",
        place(&text, "0\n", 0),
        "1 to 65535",
    );
}

#[test]
fn authentication_checks() {
    let text = with(PSK, "remote.auth = \"psk\"\n", "");
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.remote.auth",
        place(&text, "\"psk\"", 0),
        "local.auth is psk but remote.auth is pubkey",
    );
    let text = with(
        PSK,
        "local.auth = \"psk\"\nremote.auth = \"psk\"\n",
        "local.auth = \"pubkey\"\nremote.auth = \"pubkey\"\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Missing,
        "connections.home.local.certs",
        place(&text, "\"pubkey\"", 0),
        "needs local.certs",
    );
    let text = with(
        PSK,
        "remote.auth = \"psk\"\n",
        "remote.auth = \"psk\"\nremote.cacerts = [\"ca.pem\"]\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.remote.cacerts",
        place(&text, "[\"ca.pem\"]", 0),
        "only with auth = \"pubkey\"",
    );
    let text = with(PSK, "local.auth = \"psk\"", "local.auth = \"eap-md5\"");
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.local.auth",
        place(&text, "\"eap-md5\"", 0),
        "not supported",
    );
    let text = with(PSK, "local.auth = \"psk\"", "local.auth = \"secret\"");
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.local.auth",
        place(&text, "\"secret\"", 0),
        "unknown auth",
    );
    let text = with(
        PSK,
        "remote.id = \"@sun.example.org\"",
        "remote.id = \"fd00::1\"",
    );
    assert_error(
        &error(&text),
        ErrorKind::Unsupported,
        "connections.home.remote.id",
        place(&text, "\"fd00::1\"", 0),
        "IPv6",
    );
}

#[test]
fn transport_mode_is_host_to_host() {
    let transport = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nmode = \"transport\"\n",
    );
    assert_error(
        &error(&transport),
        ErrorKind::Inconsistent,
        "connections.home.children.net.local_ts",
        place(&transport, "\"10.1.0.0/16\"", 0),
        "not a single address",
    );
    let hosts = with(
        &transport,
        "local_ts = \"10.1.0.0/16\"\nremote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"198.51.100.2\"\n",
    );
    let net = &parse(&hosts).unwrap_or_else(|e| panic!("{e}")).connections[0].children[0];
    assert_eq!(
        (net.mode, net.local_ts),
        (Mode::Transport, TrafficSelector::DYNAMIC)
    );
    let elsewhere = with(
        &hosts,
        "remote_ts = \"198.51.100.2\"",
        "remote_ts = \"198.51.100.3[tcp]\"",
    );
    assert_error(
        &error(&elsewhere),
        ErrorKind::Inconsistent,
        "connections.home.children.net.remote_ts",
        place(&elsewhere, "\"198.51.100.3", 0),
        "not this side's IKE address 198.51.100.2",
    );
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nmode = \"beet\"\n",
    );
    assert_eq!(error(&text).kind(), ErrorKind::Unsupported);
    let text = with(
        PSK,
        "remote_ts = \"10.2.0.0/16\"\n",
        "remote_ts = \"10.2.0.0/16\"\nmode = \"tunel\"\n",
    );
    assert_eq!(error(&text).kind(), ErrorKind::InvalidValue);
}

#[test]
fn actions() {
    let child = |extra: &str| {
        with(
            PSK,
            "remote_ts = \"10.2.0.0/16\"\n",
            &format!("remote_ts = \"10.2.0.0/16\"\n{extra}\n"),
        )
    };
    let net = &parse(&child(
        "start_action = \"ROUTE\"\ndpd_action = \"clear\"\nclose_action = \"restart\"",
    ))
    .unwrap()
    .connections[0]
        .children[0];
    assert_eq!(
        (net.start_action, net.dpd_action, net.close_action),
        (Action::Trap, Action::None, Action::Start)
    );
    let text = child("dpd_action = \"hold\"");
    assert_error(
        &error(&text),
        ErrorKind::InvalidValue,
        "connections.home.children.net.dpd_action",
        place(&text, "\"hold\"", 0),
        "unknown action 'hold'",
    );
    // Starting needs somewhere to go.
    let text = with(
        &child("start_action = \"start\""),
        "remote_addrs = \"198.51.100.2\"",
        "remote_addrs = \"198.51.100.0/24\"",
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.children.net.start_action",
        place(&text, "\"start\"", 0),
        "needs an address to initiate to",
    );
}

#[test]
fn dpd_checks() {
    let text = with(PSK, "version = 1\n", "version = 1\ndpd_timeout = \"2m\"\n");
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.dpd_timeout",
        place(&text, "\"2m\"", 0),
        "without dpd_delay",
    );
    let text = with(
        PSK,
        "version = 1\n",
        "version = 1\ndpd_delay = \"2m\"\ndpd_timeout = 120\n",
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.home.dpd_timeout",
        place(&text, "120", 0),
        "must be longer than dpd_delay (2m)",
    );
    let text = with(PSK, "version = 1\n", "version = 1\ndpd_delay = 10\n");
    let home = &parse(&text).unwrap().connections[0];
    assert_eq!(
        (home.dpd_delay.as_secs(), home.dpd_timeout),
        (10, TimeValue::ZERO)
    );
    let text = with(PSK, "version = 1\n", "version = 1\nkeyingtries = -1\n");
    assert_eq!(error(&text).path(), "connections.home.keyingtries");
}

#[test]
fn child_names_are_unique() {
    let text = format!(
        "{PSK}[connections.other]\nremote_addrs = \"198.51.100.9\"\nlocal.auth = \"psk\"\nremote.auth = \"psk\"\n[connections.other.children.net]\n"
    );
    assert_error(
        &error(&text),
        ErrorKind::Inconsistent,
        "connections.other.children.net",
        place(&text, "net]", 1),
        "also defined in connection 'home'",
    );
}

#[test]
fn syntax_errors_have_a_place() {
    let text = "[connections.home]\nversion = = 1\n";
    let e = error(text);
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().starts_with("peer.toml:2:"), "{e}");
}

#[test]
fn columns_count_characters() {
    let text = with(
        PSK,
        "remote.id = \"@sun.example.org\"",
        "remote.id = \"@sün.example.org\"",
    );
    let text = with(
        &text,
        "id = \"@sun.example.org\"\nsecret",
        "id = \"@sün.example.org\"\nsecret",
    );
    let text = with(
        &text,
        "version = 1\n",
        "version = 1\n# über\nproposals = \"ünknown\"\n",
    );
    let e = error(&text);
    assert_eq!(
        (e.line(), e.column()),
        (Some(place(&text, "ünknown", 0).0), Some(14)),
        "{e}"
    );
}

#[test]
fn sections_of_a_larger_file() {
    let text = format!("[tun]\nname = \"realm0\"\n[underlay]\naddress = \"192.0.2.1\"\n{PSK}");
    assert_eq!(
        error(&text).kind(),
        ErrorKind::UnknownKey,
        "a file of IKE sections alone"
    );
    let c = IkeConfig::parse_sections(&text, "peer.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections.len(), 1);
    // Errors still point into the whole file.
    let text = with(&text, "version = 1", "version = 2");
    let e = IkeConfig::parse_sections(&text, "peer.toml").unwrap_err();
    assert_eq!(e.line(), Some(place(&text, "version = 2", 0).0));
}

fn arb_ts() -> impl Strategy<Value = TrafficSelector> {
    let addrs = prop_oneof![
        Just(TsAddrs::Dynamic),
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            TsAddrs::Subnet(Ipv4Subnet::new(Ipv4Addr::from(a & mask), len).unwrap())
        }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| TsAddrs::Range(Ipv4Addr::from(a.min(b)), Ipv4Addr::from(a.max(b)))),
    ];
    (addrs, any::<u8>(), proptest::option::of(1u16..)).prop_map(|(addrs, protocol, port)| {
        TrafficSelector {
            addrs,
            protocol,
            port: if protocol == 0 { None } else { port },
        }
    })
}

/// Fragments that make TOML-ish text reaching deep into the loader.
fn toml_ish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("[connections.a]\n".to_string()),
        Just("[connections.a.children.c]\n".to_string()),
        Just("[connections.a.local]\n".to_string()),
        Just("[connections.a.remote]\n".to_string()),
        Just("[secrets.ike-a]\n".to_string()),
        Just("[secrets.a]\n".to_string()),
        Just("local.auth = \"psk\"\n".to_string()),
        Just("remote.auth = \"psk\"\n".to_string()),
        Just("mode = \"transport\"\n".to_string()),
        Just("start_action = \"start\"\n".to_string()),
        Just("remote_addrs = \"192.0.2.1\"\n".to_string()),
        Just("\"".to_string()),
        Just("[".to_string()),
        Just("=".to_string()),
        prop::sample::select(vec![
            "version",
            "local_addrs",
            "remote_addrs",
            "proposals",
            "esp_proposals",
            "local_ts",
            "remote_ts",
            "dpd_delay",
            "dpd_timeout",
            "rekey_time",
            "life_time",
            "rand_time",
            "over_time",
            "reauth_time",
            "id",
            "secret",
            "auth",
            "certs",
            "keyingtries",
            "local_port",
            "allow_modp1024",
            "mode",
            "dpd_action",
            "bogus",
        ])
        .prop_flat_map(|key| {
            prop_oneof![
                "[ -~]{0,24}".prop_map(move |v| format!("{key} = {v:?}\n")),
                any::<i64>().prop_map(move |v| format!("{key} = {v}\n")),
                "[ -~]{0,24}".prop_map(move |v| format!("{key} = [{v:?}, {v:?}]\n")),
                Just(format!("{key} = true\n")),
            ]
        }),
        "[ -~\\n]{0,16}",
    ];
    prop::collection::vec(fragment, 0..16).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = IkeConfig::parse(&text, "x.toml");
        let _ = IkeConfig::parse_sections(&text, "x.toml");
    }

    #[test]
    fn toml_ish_text_never_panics_and_errors_have_a_place(text in toml_ish()) {
        if let Err(e) = IkeConfig::parse(&text, "x.toml") {
            // Every error has a place in the text (a missing secret: the connection's name).
            let line = e.line().unwrap_or_else(|| panic!("no place: {e}"));
            prop_assert!(line <= text.lines().count().max(1) + 1, "{e}");
        }
    }

    #[test]
    fn time_values_round_trip(secs in any::<u32>()) {
        let t = TimeValue::from_secs(secs);
        prop_assert_eq!(t.to_string().parse::<TimeValue>(), Ok(t));
        prop_assert_eq!(TimeValue::from_integer(i64::from(secs)), Ok(t));
    }

    #[test]
    fn traffic_selectors_round_trip(ts in arb_ts()) {
        prop_assert_eq!(ts.to_string().parse::<TrafficSelector>(), Ok(ts));
    }

    #[test]
    fn identities_round_trip(text in "[@*a-zA-Z0-9.=, /#:%-]{0,30}") {
        if let Ok(id) = text.parse::<Identity>() {
            prop_assert_eq!(id.to_string().parse::<Identity>(), Ok(id.clone()), "{} printed {}", text, id);
        }
    }

    #[test]
    fn addr_specs_round_trip(a in any::<u32>(), b in any::<u32>(), len in 0u8..=32, pick in 0u8..4) {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let spec = match pick {
            0 => AddrSpec::Any,
            1 => AddrSpec::Host(Ipv4Addr::from(a)),
            2 => AddrSpec::Subnet(Ipv4Subnet::new(Ipv4Addr::from(a & mask), len).unwrap()),
            _ => AddrSpec::Range(Ipv4Addr::from(a.min(b)), Ipv4Addr::from(a.max(b))),
        };
        let back = spec.to_string().parse::<AddrSpec>();
        // 0.0.0.0 as a host reads as %any, as in strongSwan.
        if spec == AddrSpec::Host(Ipv4Addr::UNSPECIFIED) {
            prop_assert_eq!(back, Ok(AddrSpec::Any));
        } else {
            prop_assert_eq!(back, Ok(spec));
        }
    }
}
