//! Time values as swanctl.conf writes them: `30s`, `5m`, `4h`, `1d`, or plain seconds.

use std::fmt;
use std::str::FromStr;

/// A relative time in whole seconds, as swanctl.conf's time values (`rekey_time`, `dpd_delay`,
/// ...). Read from a TOML integer (seconds) or a string: decimal digits, optional spaces, then
/// an optional unit `s`, `m`, `h` or `d` in either case (strongSwan's `parse_time` in
/// `vici_config.c`; Realm takes decimal only where strongSwan's `strtoul(.., 0)` would also
/// read `0x10` as hex and `010` as octal). At most `u32::MAX` seconds (136 years), so every
/// value fits the 32-bit lifetimes IKE carries.
///
/// Printed with the largest unit that divides it exactly (`14400` prints `4h`, `90` prints
/// `90s`, zero prints `0s`), and what is printed parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeValue(u32);

impl TimeValue {
    /// Zero: "off" for most keys.
    pub const ZERO: Self = Self(0);

    /// A time of `secs` seconds.
    pub const fn from_secs(secs: u32) -> Self {
        Self(secs)
    }

    /// The time in seconds.
    pub const fn as_secs(self) -> u32 {
        self.0
    }

    /// The time as a [`std::time::Duration`].
    pub const fn to_duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0 as u64)
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// A value from a TOML integer (seconds).
    pub fn from_integer(secs: i64) -> Result<Self, TimeError> {
        if secs < 0 {
            return Err(TimeError::Negative);
        }
        u32::try_from(secs)
            .map(Self)
            .map_err(|_| TimeError::TooLong)
    }
}

/// A time value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Nothing given.
    #[error("empty time value (write seconds, or a number with s, m, h or d)")]
    Empty,
    /// No digits where the number should be.
    #[error(
        "'{0}' is not a time: write seconds, or a number with s, m, h \
         or d (\"30s\", \"5m\", \"4h\", \"1d\")"
    )]
    NotATime(String),
    /// A unit strongSwan does not know.
    #[error("unknown time unit '{unit}' in '{text}': use s, m, h or d")]
    UnknownUnit {
        /// The whole value.
        text: String,
        /// What follows the number.
        unit: String,
    },
    /// Below zero.
    #[error("a time cannot be negative")]
    Negative,
    /// Beyond `u32::MAX` seconds.
    #[error("time too long: at most {} seconds (about 136 years)", u32::MAX)]
    TooLong,
}

impl FromStr for TimeValue {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, TimeError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(TimeError::Empty);
        }
        if text.starts_with('-') {
            return Err(TimeError::Negative);
        }
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(TimeError::NotATime(text.to_string()));
        }
        let (number, rest) = text.split_at(digits);
        let unit = rest.trim_start_matches(' ');
        let factor: u64 = match unit {
            "" | "s" | "S" => 1,
            "m" | "M" => 60,
            "h" | "H" => 3600,
            "d" | "D" => 86_400,
            _ => {
                return Err(TimeError::UnknownUnit {
                    text: text.to_string(),
                    unit: unit.to_string(),
                });
            }
        };
        let number: u64 = number.parse().map_err(|_| TimeError::TooLong)?;
        number
            .checked_mul(factor)
            .and_then(|secs| u32::try_from(secs).ok())
            .map(Self)
            .ok_or(TimeError::TooLong)
    }
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0;
        for (factor, unit) in [(86_400, "d"), (3600, "h"), (60, "m")] {
            if secs != 0 && secs.is_multiple_of(factor) {
                return write!(f, "{}{unit}", secs / factor);
            }
        }
        write!(f, "{secs}s")
    }
}
