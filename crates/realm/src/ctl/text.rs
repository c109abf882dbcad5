//! How Realm prints things for people (`realm ctl`, `realm lab`): aligned
//! tables, durations relative to now (`in 9m58s`, `3m ago`), ports as
//! ranges (`20000-20007`), absent as `-`, RSIP names in the RFCs' spelling,
//! lower case (`rsap-ip`, `ip-ip`). Pure functions of their input and a
//! given `now`: nothing here reads a clock.

use std::fmt::Write as _;
use std::time::Duration;

/// What an absent value prints as.
pub(crate) const ABSENT: &str = "-";

/// A table: a header and rows of cells, printed in columns two spaces apart,
/// each as wide as its widest cell, trailing blanks trimmed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra ones are kept).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether it has no row.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The text, every line prefixed by `indent` spaces.
    pub(crate) fn render(&self, indent: usize) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut width = vec![0usize; columns];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(line) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = line.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(c.chars().count());
                let _ = write!(s, "{c}{:pad$}  ", "");
            }
            let _ = writeln!(out, "{:indent$}{}", "", s.trim_end());
        }
        out
    }
}

/// `key: value` lines with the values aligned, prefixed by `indent` spaces.
pub(crate) fn fields(pairs: &[(&str, String)], indent: usize) -> String {
    let w = pairs
        .iter()
        .map(|(k, _)| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let key = format!("{k}:");
        let _ = writeln!(out, "{:indent$}{}", "", format!("{key:w$} {v}").trim_end());
    }
    out
}

/// A span for people: `0s`, `45s`, `9m58s`, `2h05m`, `3d04h` (the two
/// largest units, rounded down).
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if s >= 3600 {
        format!("{hours}h{mins:02}m")
    } else if s >= 60 {
        format!("{mins}m{secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// A span in whole seconds, as [`duration`].
pub(crate) fn seconds(s: u64) -> String {
    duration(Duration::from_secs(s))
}

/// A moment relative to `now` (both milliseconds since the UNIX epoch):
/// `in 9m58s`, `3m00s ago`, `now`.
pub(crate) fn relative_ms(at: u64, now: u64) -> String {
    let (ahead, d) = if at >= now {
        (true, at - now)
    } else {
        (false, now - at)
    };
    let d = Duration::from_millis(d);
    if d < Duration::from_secs(1) {
        "now".to_owned()
    } else if ahead {
        format!("in {}", duration(d))
    } else {
        format!("{} ago", duration(d))
    }
}

/// Ascending numbers as runs: `20000-20007`, `80,443`, `-` for none.
/// `show` prints one value (decimal ports, hex SPIs).
pub(crate) fn runs(values: &[u64], show: impl Fn(u64) -> String) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&first) = sorted.get(i) {
        let mut last = first;
        while sorted.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        parts.push(if first == last {
            show(first)
        } else {
            format!("{}-{}", show(first), show(last))
        });
        i += 1;
    }
    if parts.is_empty() {
        ABSENT.to_owned()
    } else {
        parts.join(",")
    }
}

/// Ports as runs ([`runs`], decimal).
pub(crate) fn ports(values: &[u64]) -> String {
    runs(values, |p| p.to_string())
}

/// A 32-bit identifier the RFCs print in hex (client IDs, SPIs):
/// `0x5eed1234`.
pub(crate) fn hex32(v: u64) -> String {
    format!("{v:#010x}")
}

/// `yes` or `no`.
pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// An RSIP method or tunnel type in the RFCs' spelling, lower case (RFC
/// 3103 8.6, 8.7; RFC 3104): `rsa-ip`, `rsap-ip`, `rsipsec`, `ip-ip`, `gre`,
/// `l2tp`, whichever way the daemon spelt it (`RsapIp`, `RSAP-IP`,
/// `rsap-ip`). Other names are only lower-cased.
pub(crate) fn rsip_name(name: &str) -> String {
    let key: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match key.as_str() {
        "rsaip" => "rsa-ip",
        "rsapip" => "rsap-ip",
        "rsipsec" => "rsipsec",
        "ipip" => "ip-ip",
        "gre" => "gre",
        "l2tp" => "l2tp",
        _ => return name.to_ascii_lowercase(),
    }
    .to_owned()
}

/// Counters as `name=value` pairs, the non-zero ones only; `none` when all
/// are zero.
pub(crate) fn nonzero<'a>(counters: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = counters
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim() {
        let mut t = Table::new(&["bind", "public", "ports"]);
        t.row(vec!["1".into(), "192.0.2.1".into(), "20000-20007".into()]);
        t.row(vec!["22".into(), "-".into(), String::new()]);
        assert_eq!(
            t.render(2),
            "  bind  public     ports\n  1     192.0.2.1  20000-20007\n  22    -\n"
        );
        assert!(!t.is_empty());
        assert!(Table::new(&["x"]).is_empty());
    }

    #[test]
    fn fields_align_values() {
        assert_eq!(
            fields(
                &[("hosts", "2".into()), ("next timeout", "in 5s".into())],
                0
            ),
            "hosts:        2\nnext timeout: in 5s\n"
        );
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(seconds(0), "0s");
        assert_eq!(seconds(45), "45s");
        assert_eq!(seconds(598), "9m58s");
        assert_eq!(seconds(3600 + 5 * 60 + 9), "1h05m");
        assert_eq!(seconds(3 * 86_400 + 4 * 3600), "3d04h");
        let now = 1_700_000_000_000;
        assert_eq!(relative_ms(now + 598_400, now), "in 9m58s");
        assert_eq!(relative_ms(now - 180_000, now), "3m00s ago");
        assert_eq!(relative_ms(now + 300, now), "now");
    }

    #[test]
    fn ports_and_spis_as_runs() {
        assert_eq!(ports(&(20000..=20007).collect::<Vec<_>>()), "20000-20007");
        assert_eq!(ports(&[443, 80]), "80,443");
        assert_eq!(ports(&[1000, 1001, 1002, 2000]), "1000-1002,2000");
        assert_eq!(ports(&[]), "-");
        assert_eq!(runs(&[256, 257], hex32), "0x00000100-0x00000101");
    }

    #[test]
    fn rsip_names_in_rfc_spelling() {
        for (given, want) in [
            ("RsapIp", "rsap-ip"),
            ("RSA-IP", "rsa-ip"),
            ("rsipsec", "rsipsec"),
            ("Rsipsec", "rsipsec"),
            ("IpIp", "ip-ip"),
            ("ip-ip", "ip-ip"),
            ("GRE", "gre"),
            ("Listen", "listen"),
        ] {
            assert_eq!(rsip_name(given), want, "{given}");
        }
        assert_eq!(nonzero([("a", 0), ("b", 2)]), "b=2");
        assert_eq!(nonzero([("a", 0)]), "none");
    }
}
