//! Configuration errors that name the file, line, column and key path, and the conversion of
//! TOML byte spans into them.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not TOML.
    Syntax,
    /// A key or section that does not exist, or that Realm does not support.
    UnknownKey,
    /// A value of the wrong type, or one that does not read (a time, a traffic selector, an
    /// identity, an address, an action).
    InvalidValue,
    /// A value strongSwan takes but Realm does not (yet): IKEv2, IPv6, DNS names, ...
    Unsupported,
    /// A proposal list that does not read, including `modp1024` without `allow_modp1024`.
    Proposal,
    /// A pre-shared-key connection that no `[secrets.ike*]` entry matches.
    MissingSecret,
    /// A required key is absent.
    Missing,
    /// Values that do not fit together (the authentication of the two sides, transport mode
    /// with subnets, a lifetime shorter than the rekey time, ...).
    Inconsistent,
}

/// A mistake in the configuration, printed as `file:line:column: key.path: message` (1-based
/// line and column, the column in characters), or without the line and column when the
/// mistake has no single place (`file: key.path: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    location: Option<(usize, usize)>,
    path: String,
    kind: ErrorKind,
    message: String,
}

impl ConfigError {
    pub(super) fn new(
        file: &str,
        location: Option<(usize, usize)>,
        path: String,
        kind: ErrorKind,
        message: String,
    ) -> Self {
        Self {
            file: file.to_string(),
            location,
            path,
            kind,
            message,
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, 1-based, when the error has a place.
    pub fn line(&self) -> Option<usize> {
        self.location.map(|(line, _)| line)
    }

    /// The column in characters, 1-based, when the error has a place.
    pub fn column(&self) -> Option<usize> {
        self.location.map(|(_, column)| column)
    }

    /// The key path, `connections.home.proposals`; empty for a syntax error.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What kind of mistake it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without file, place or key.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line and character column of byte `offset` in `text` (clamped to the text, and
/// down to a character boundary).
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Appends a key to a dotted path, quoting it when it is not a bare TOML key.
pub(super) fn push_key(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// The key path of the innermost key or value of `root` whose span holds `span`: where a
/// serde error happened (toml only keeps the path privately). Tables are searched whatever
/// their own span (a `[header]` table's span does not cover its keys).
pub(super) fn path_at(root: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
        outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
    }
    fn in_table(table: &DeTable<'_>, span: &Range<usize>, path: &str) -> Option<String> {
        for (key, value) in table.iter() {
            let here = push_key(path, key.get_ref());
            if holds(&key.span(), span) {
                return Some(here);
            }
            if let Some(found) = in_value(value.get_ref(), &value.span(), span, &here) {
                return Some(found);
            }
        }
        None
    }
    fn in_value(
        value: &DeValue<'_>,
        own: &Range<usize>,
        span: &Range<usize>,
        path: &str,
    ) -> Option<String> {
        match value {
            DeValue::Table(table) => {
                in_table(table, span, path).or_else(|| holds(own, span).then(|| path.to_string()))
            }
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    if let Some(found) = in_value(item.get_ref(), &item.span(), span, &here) {
                        return Some(found);
                    }
                }
                holds(own, span).then(|| path.to_string())
            }
            _ => holds(own, span).then(|| path.to_string()),
        }
    }
    in_table(root, span, "")
}
