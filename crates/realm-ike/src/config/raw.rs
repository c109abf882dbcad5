//! The file as serde reads it: every key the configuration knows, unknown keys refused, values
//! kept with their spans so that the checks in the parent module can point at them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// A string with its span.
pub(super) type Text = Spanned<String>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) connections: BTreeMap<Text, RawConnection>,
    /// `secrets.<type><suffix>`: a table of `secret` and `id<suffix>` keys, checked by hand
    /// since the `id` keys are open-ended.
    #[serde(default)]
    pub(super) secrets: BTreeMap<Text, BTreeMap<Text, Text>>,
}

/// `[connections.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub(super) version: Option<Spanned<i64>>,
    pub(super) local_addrs: Option<Spanned<List>>,
    pub(super) remote_addrs: Option<Spanned<List>>,
    pub(super) local_port: Option<Spanned<i64>>,
    pub(super) remote_port: Option<Spanned<i64>>,
    pub(super) proposals: Option<Spanned<List>>,
    pub(super) aggressive: Option<bool>,
    pub(super) encap: Option<bool>,
    pub(super) dpd_delay: Option<Spanned<Time>>,
    pub(super) dpd_timeout: Option<Spanned<Time>>,
    pub(super) keyingtries: Option<Spanned<i64>>,
    pub(super) rekey_time: Option<Spanned<Time>>,
    pub(super) reauth_time: Option<Spanned<Time>>,
    pub(super) over_time: Option<Spanned<Time>>,
    pub(super) rand_time: Option<Spanned<Time>>,
    pub(super) allow_modp1024: Option<bool>,
    pub(super) local: Option<RawLocal>,
    pub(super) remote: Option<RawRemote>,
    #[serde(default)]
    pub(super) children: BTreeMap<Text, RawChild>,
}

/// `[connections.NAME.local]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    pub(super) auth: Option<Text>,
    pub(super) id: Option<Text>,
    pub(super) certs: Option<Spanned<List>>,
}

/// `[connections.NAME.remote]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    pub(super) auth: Option<Text>,
    pub(super) id: Option<Text>,
    pub(super) certs: Option<Spanned<List>>,
    pub(super) cacerts: Option<Spanned<List>>,
}

/// `[connections.NAME.children.CHILD]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChild {
    pub(super) local_ts: Option<Spanned<List>>,
    pub(super) remote_ts: Option<Spanned<List>>,
    pub(super) esp_proposals: Option<Spanned<List>>,
    pub(super) mode: Option<Text>,
    pub(super) start_action: Option<Text>,
    pub(super) dpd_action: Option<Text>,
    pub(super) close_action: Option<Text>,
    pub(super) rekey_time: Option<Spanned<Time>>,
    pub(super) life_time: Option<Spanned<Time>>,
    pub(super) rand_time: Option<Spanned<Time>>,
}

/// A swanctl.conf list: one string with comma-separated items, or a TOML array of strings
/// (each of which may itself hold commas).
#[derive(Debug)]
pub(super) enum List {
    /// `"a, b"`.
    One(String),
    /// `["a", "b"]`.
    Many(Vec<Text>),
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (items separated by commas) or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
                Ok(List::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Text>()? {
                    items.push(item);
                }
                Ok(List::Many(items))
            }
        }
        d.deserialize_any(ListVisitor)
    }
}

/// A time value as written: seconds as an integer, or a string with a unit.
#[derive(Debug)]
pub(super) enum Time {
    /// `30`.
    Seconds(i64),
    /// `"30s"`.
    Text(String),
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds, or a string such as \"30s\", \"5m\", \"4h\", \"1d\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Time, E> {
                Ok(Time::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Time, E> {
                Ok(Time::Seconds(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                Ok(Time::Text(v.to_string()))
            }
        }
        d.deserialize_any(TimeVisitor)
    }
}
