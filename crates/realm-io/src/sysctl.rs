//! Sysctls of the CURRENT network namespace, through `/proc/sys`.
//!
//! `/proc/sys/net/*` shows the namespace of the thread that opens the file, so these helpers follow
//! [`crate::netns::enter`] per thread. Each call opens the file anew; nothing is cached.
//!
//! The ones Realm needs: `net.ipv4.ip_local_port_range` (a RSAP-IP host makes its leased port block
//! its ephemeral range so the kernel picks source ports inside the lease), `net.ipv4.ip_forward`
//! (the gateway forwards), and `net.ipv4.conf.*.rp_filter` (strict reverse-path filtering drops
//! packets whose source is routed via another device, as tunnelled public packets are).

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::error::{Error, IoContext, Result};

fn path(key: &str) -> Result<PathBuf> {
    if key.is_empty()
        || key.contains("..")
        || key.contains('/')
        || key.starts_with('.')
        || key.ends_with('.')
    {
        return Err(Error::Invalid(format!("sysctl key {key:?}")));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// Reads a sysctl by its dotted name (`"net.ipv4.ip_forward"`), trimmed.
///
/// Interface names with dots cannot be named this way; Realm's never have any.
pub fn read(key: &str) -> Result<String> {
    let p = path(key)?;
    let s = std::fs::read_to_string(&p).ctx(|| format!("read sysctl {key}"))?;
    Ok(s.trim().to_owned())
}

/// Writes a sysctl by its dotted name. Needs root (and, for `net.*`, CAP_NET_ADMIN in the
/// namespace's user namespace).
pub fn write(key: &str, value: &str) -> Result<()> {
    let p = path(key)?;
    std::fs::write(&p, value).ctx(|| format!("write sysctl {key} = {value:?}"))
}

fn parse<T: std::str::FromStr>(key: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| Error::Parse {
        what: format!("value of sysctl {key}"),
        value: s.to_owned(),
    })
}

const PORT_RANGE: &str = "net.ipv4.ip_local_port_range";

/// `net.ipv4.ip_local_port_range`: the ports the kernel picks for a socket bound to port 0 (and
/// for `connect` without `bind`).
pub fn ip_local_port_range() -> Result<RangeInclusive<u16>> {
    let s = read(PORT_RANGE)?;
    let mut it = s.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some(lo), Some(hi), None) => Ok(parse(PORT_RANGE, lo)?..=parse(PORT_RANGE, hi)?),
        _ => Err(Error::Parse {
            what: format!("value of sysctl {PORT_RANGE}"),
            value: s,
        }),
    }
}

/// Sets `net.ipv4.ip_local_port_range` to `range`.
///
/// The kernel wants `low <= high`. For TCP (Linux 4.6+), `connect()` without `bind()` tries ports
/// at even offsets from `low` first and `bind(0)` odd offsets, each falling back to the rest, so
/// a small block serves both; UDP `bind(0)` picks anywhere in the range. Ports listed in
/// `net.ipv4.ip_local_reserved_ports` are skipped.
pub fn set_ip_local_port_range(range: RangeInclusive<u16>) -> Result<()> {
    let (lo, hi) = (*range.start(), *range.end());
    if lo > hi || lo == 0 {
        return Err(Error::Invalid(format!("port range {lo}-{hi}")));
    }
    write(PORT_RANGE, &format!("{lo} {hi}"))
}

/// `net.ipv4.ip_forward`.
pub fn ip_forward() -> Result<bool> {
    Ok(read("net.ipv4.ip_forward")? != "0")
}

/// Sets `net.ipv4.ip_forward` (this also resets some per-device settings, as the kernel does).
pub fn set_ip_forward(on: bool) -> Result<()> {
    write("net.ipv4.ip_forward", if on { "1" } else { "0" })
}

/// Reverse-path filter modes (`net.ipv4.conf.<dev>.rp_filter`, RFC 3704).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpFilter {
    /// 0: no source validation.
    Off,
    /// 1: strict: the source must be reachable through the receiving device.
    Strict,
    /// 2: loose: the source must be reachable through some device.
    Loose,
}

impl RpFilter {
    fn code(self) -> &'static str {
        match self {
            RpFilter::Off => "0",
            RpFilter::Strict => "1",
            RpFilter::Loose => "2",
        }
    }
}

/// `net.ipv4.conf.<dev>.rp_filter`; `dev` may be `all` or `default`. The kernel applies the
/// maximum of `all` and the device's value.
pub fn rp_filter(dev: &str) -> Result<RpFilter> {
    let key = format!("net.ipv4.conf.{dev}.rp_filter");
    match read(&key)?.as_str() {
        "0" => Ok(RpFilter::Off),
        "1" => Ok(RpFilter::Strict),
        "2" => Ok(RpFilter::Loose),
        other => Err(Error::Parse {
            what: format!("value of sysctl {key}"),
            value: other.to_owned(),
        }),
    }
}

/// Sets `net.ipv4.conf.<dev>.rp_filter`.
pub fn set_rp_filter(dev: &str, mode: RpFilter) -> Result<()> {
    write(&format!("net.ipv4.conf.{dev}.rp_filter"), mode.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_paths() {
        assert_eq!(
            path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        for bad in ["", "net/ipv4", "net..x", ".net", "net."] {
            assert!(path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn read_port_range_of_this_namespace() {
        // Readable without privileges; every Linux has it.
        let r = ip_local_port_range().unwrap();
        assert!(r.start() <= r.end());
    }
}
