//! The store's tables: a [`Kind`] names one ID space of rows.

use std::fmt;

/// A table of the store: rows of one kind share an ID space. Kinds are numbers
/// so that a new kind needs no schema change; the three the gateway uses are
/// constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(pub u16);

impl Kind {
    /// Registrations (`realm_lease::RegistrationRecord`, or the engine's own
    /// record), keyed by client ID.
    pub const REGISTRATION: Kind = Kind(1);
    /// Live bindings (`realm_lease::BindingRecord`, or the engine's own
    /// record), keyed by bind ID.
    pub const BINDING: Kind = Kind(2);
    /// [`realm_lease::QuarantineRecord`]s, keyed by the ended binding's bind ID.
    pub const QUARANTINE: Kind = Kind(3);

    /// The kind's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::REGISTRATION => "registration",
            Kind::BINDING => "binding",
            Kind::QUARANTINE => "quarantine",
            _ => "other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "other" => write!(f, "kind {}", self.0),
            name => f.write_str(name),
        }
    }
}
