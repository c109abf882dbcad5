//! The allocation log: an append-only text file, one line per grant,
//! extension, free and expiry, so that an operator can trace traffic from a
//! public address, port or SPI at a given time back to the private host.
//!
//! It owns formatting and appending; it never reads the clock (each event
//! carries its time) and never decides what to log (the daemon does).
//!
//! # Format
//!
//! [logfmt](https://brandur.org/logfmt): `key=value` pairs separated by one
//! space, one event per line, keys always present and always in this order.
//! Values never contain spaces or quotes, so no quoting is needed; an empty
//! value means "none" or "unknown".
//!
//! ```text
//! time=2026-11-22T15:01:03.250Z event=grant client=0x5eed1234 private=10.0.0.2 public=192.0.2.1 ports=40000-40007 spis= lease=3600 bind=7 method=rsap-ip
//! ```
//!
//! | key | value |
//! | --- | --- |
//! | `time` | RFC 3339, UTC, milliseconds: `2026-11-22T15:01:03.250Z` |
//! | `event` | `grant`, `extend`, `free` (host freed or de-registered) or `expire` (lease lapsed) |
//! | `client` | RSIP client ID, hex: `0x5eed1234` |
//! | `private` | the host's private address (empty if unknown) |
//! | `public` | the leased public address |
//! | `ports` | comma-separated inclusive ranges: `40000-40007,40100` (empty: none, i.e. RSA-IP or "don't need") |
//! | `spis` | likewise, hex: `0x00001000-0x00001003` (empty unless RSIPSEC) |
//! | `lease` | lease granted, whole seconds, rounded up (empty for `free`/`expire`) |
//! | `bind` | RSIP bind ID, decimal |
//! | `method` | `rsa-ip`, `rsap-ip` or `rsipsec` |
//!
//! New keys are only ever appended at the end of a line.
//!
//! # Buffering and durability
//!
//! [`AllocLog`] buffers lines in memory; [`AllocLog::flush`] hands them to the
//! OS (they then survive a crash of the process) and [`AllocLog::sync`] also
//! fsyncs (they survive a power loss). A [`crate::Store`] with a log writes
//! each batch's lines after the batch's transaction commits and flushes them
//! before acknowledging the batch: every acknowledged grant has its line, and
//! it survives `kill -9`. It fsyncs the log at most
//! [`crate::Options::alloc_log_sync`] later (default 1 s; zero: before each
//! acknowledgement), and at reopen and close: a power loss can lose up to that
//! much of the log's tail even with [`crate::Durability::Full`]. A crash
//! between a commit and its flush can lose lines of batches that were never
//! acknowledged.
//! [`AllocLog::reopen`] (via [`crate::Store::reopen_alloc_log`] on SIGHUP)
//! starts a new file at the same path after a log rotator moved the old one.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use realm_lease::{BindId, ClientId, Method, PortSet, SpiSet, Timestamp};

use crate::StoreError;

/// What happened to a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocEventKind {
    /// ASSIGN granted.
    Grant,
    /// EXTEND granted.
    Extend,
    /// FREE by the host, or the binding ended with a DE-REGISTER.
    Free,
    /// The lease lapsed.
    Expire,
}

impl AllocEventKind {
    /// The `event=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocEventKind::Grant => "grant",
            AllocEventKind::Extend => "extend",
            AllocEventKind::Free => "free",
            AllocEventKind::Expire => "expire",
        }
    }
}

/// One allocation log line, as plain values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocEvent {
    /// When it happened (milliseconds since the UNIX epoch).
    pub time: Timestamp,
    /// What happened.
    pub event: AllocEventKind,
    /// The host.
    pub client: ClientId,
    /// The host's private address, if the caller knows it.
    pub private: Option<Ipv4Addr>,
    /// The public address.
    pub public: Ipv4Addr,
    /// The ports.
    pub ports: PortSet,
    /// The SPIs.
    pub spis: SpiSet,
    /// The lease granted (grant and extend).
    pub lease: Option<Duration>,
    /// The binding.
    pub bind: BindId,
    /// The RSIP method.
    pub method: Method,
}

impl fmt::Display for AllocEvent {
    /// The log line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "time={} event={} client={:#010x} private=",
            Rfc3339(self.time),
            self.event.as_str(),
            self.client.0
        )?;
        if let Some(p) = self.private {
            write!(f, "{p}")?;
        }
        write!(f, " public={} ports=", self.public)?;
        write_runs(f, self.ports.iter().map(u32::from), false)?;
        f.write_str(" spis=")?;
        write_runs(f, self.spis.iter().map(|s| s.0), true)?;
        f.write_str(" lease=")?;
        if let Some(lease) = self.lease {
            let secs = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
            write!(f, "{secs}")?;
        }
        write!(f, " bind={} method={}", self.bind.0, self.method.name())
    }
}

/// Writes ascending values as comma-separated inclusive ranges.
fn write_runs(
    f: &mut fmt::Formatter<'_>,
    values: impl Iterator<Item = u32>,
    hex: bool,
) -> fmt::Result {
    let mut run: Option<(u32, u32)> = None;
    let mut first = true;
    let mut emit = |f: &mut fmt::Formatter<'_>, (a, b): (u32, u32)| -> fmt::Result {
        if !first {
            f.write_char(',')?;
        }
        first = false;
        match (hex, a == b) {
            (false, true) => write!(f, "{a}"),
            (false, false) => write!(f, "{a}-{b}"),
            (true, true) => write!(f, "{a:#010x}"),
            (true, false) => write!(f, "{a:#010x}-{b:#010x}"),
        }
    };
    for v in values {
        run = match run {
            Some((a, b)) if u64::from(b) + 1 == u64::from(v) => Some((a, v)),
            Some(r) => {
                emit(f, r)?;
                Some((v, v))
            }
            None => Some((v, v)),
        };
    }
    match run {
        Some(r) => emit(f, r),
        None => Ok(()),
    }
}

/// A [`Timestamp`] (milliseconds since the UNIX epoch) as RFC 3339 UTC with
/// milliseconds: `2026-11-22T15:01:03.250Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let days = ms / 86_400_000;
        let in_day = ms % 86_400_000;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000
        )
    }
}

/// The proleptic Gregorian (year, month, day) of `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// An open allocation log file.
#[derive(Debug)]
pub struct AllocLog {
    path: PathBuf,
    out: BufWriter<File>,
    line: String,
}

impl AllocLog {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<AllocLog, StoreError> {
        let path = path.as_ref().to_path_buf();
        let file = open_append(&path)?;
        Ok(AllocLog {
            path,
            out: BufWriter::with_capacity(64 * 1024, file),
            line: String::with_capacity(256),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Buffers one line (written to the file when the buffer fills or at
    /// [`AllocLog::flush`]).
    pub fn append(&mut self, event: &AllocEvent) -> Result<(), StoreError> {
        self.line.clear();
        // Writing into a String cannot fail.
        let _ = writeln!(self.line, "{event}");
        self.out
            .write_all(self.line.as_bytes())
            .map_err(StoreError::io("writing allocation log", &self.path))
    }

    /// Hands buffered lines to the OS: they survive a crash of the process.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.out
            .flush()
            .map_err(StoreError::io("flushing allocation log", &self.path))
    }

    /// Flushes and fsyncs: the lines survive a power loss.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(StoreError::io("syncing allocation log", &self.path))
    }

    /// Flushes and syncs the current file, then opens the path anew (a log
    /// rotator renamed the old file: new lines go to a new file). If the new
    /// file cannot be opened, lines keep going to the old one and the error is
    /// returned.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        let file = open_append(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(StoreError::io("opening allocation log", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use realm_lease::Spi;

    fn event() -> AllocEvent {
        AllocEvent {
            time: Timestamp::from_millis(1_795_359_663_250),
            event: AllocEventKind::Grant,
            client: ClientId(0x5eed_1234),
            private: Some(Ipv4Addr::new(10, 0, 0, 2)),
            public: Ipv4Addr::new(192, 0, 2, 1),
            ports: PortSet::Range {
                first: 40000,
                count: 8,
            },
            spis: SpiSet::None,
            lease: Some(Duration::from_secs(3600)),
            bind: BindId(7),
            method: Method::RsapIp,
        }
    }

    #[test]
    fn rfc3339() {
        let t = |ms| Rfc3339(Timestamp::from_millis(ms)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(t(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(t(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(t(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(t(1_795_359_663_250), "2026-11-22T15:01:03.250Z");
        // Never panics, even far out.
        assert!(!t(u64::MAX).is_empty());
    }

    #[test]
    fn line_format() {
        assert_eq!(
            event().to_string(),
            "time=2026-11-22T15:01:03.250Z event=grant client=0x5eed1234 private=10.0.0.2 \
             public=192.0.2.1 ports=40000-40007 spis= lease=3600 bind=7 method=rsap-ip"
        );
        let e = AllocEvent {
            event: AllocEventKind::Expire,
            private: None,
            ports: PortSet::List(vec![1000, 1001, 1002, 2000, 3000, 3001]),
            spis: SpiSet::List(vec![Spi(0x1000), Spi(0x1001), Spi(0xffff_ffff)]),
            lease: None,
            method: Method::Rsipsec,
            ..event()
        };
        assert_eq!(
            e.to_string(),
            "time=2026-11-22T15:01:03.250Z event=expire client=0x5eed1234 private= \
             public=192.0.2.1 ports=1000-1002,2000,3000-3001 \
             spis=0x00001000-0x00001001,0xffffffff lease= bind=7 method=rsipsec"
        );
        let e = AllocEvent {
            event: AllocEventKind::Extend,
            ports: PortSet::None,
            lease: Some(Duration::from_millis(1500)),
            method: Method::RsaIp,
            ..event()
        };
        assert!(
            e.to_string()
                .contains(" ports= spis= lease=2 bind=7 method=rsa-ip")
        );
    }

    #[test]
    fn append_flush_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alloc.log");
        let mut log = AllocLog::open(&path).unwrap();
        log.append(&event()).unwrap();
        // Buffered until flushed.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        log.flush().unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first, format!("{}\n", event()));

        // Rotation: the rotator renames the file, then reopen starts anew.
        let rotated = dir.path().join("alloc.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.append(&event()).unwrap();
        log.reopen().unwrap();
        log.append(&AllocEvent {
            event: AllocEventKind::Free,
            lease: None,
            ..event()
        })
        .unwrap();
        log.sync().unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap().lines().count(),
            2
        );
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.contains("event=free") && new.lines().count() == 1);

        // Appending to an existing file keeps what it had.
        drop(log);
        let mut log = AllocLog::open(&path).unwrap();
        log.append(&event()).unwrap();
        log.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
