//! Opening the SQLite file: create it, check it, or move a corrupt one aside
//! and start empty, and say which in an [`OpenReport`].
//!
//! It never deletes a file and never moves a store it could read: a lock held
//! by another process, a permission or I/O error is returned as an error, and
//! only a file SQLite calls corrupt or not a database, one that fails
//! `PRAGMA quick_check`, or one with an unknown schema is moved aside.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use realm_lease::Timestamp;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::alloclog::Rfc3339;
use crate::{Kind, StoreError};

/// What an acknowledged commit survives. Both modes use SQLite's WAL journal:
/// a crash at any moment leaves the store consistent (a transaction is in it
/// whole or not at all), and an acknowledged batch is never partly applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit is written to the WAL file
    /// (handed to the OS) before it is acknowledged, but not fsynced; the WAL
    /// is fsynced only at checkpoints. An acknowledged batch survives a crash
    /// or `kill -9` of the gateway process, not an OS crash or power loss
    /// (which can roll back the most recent acknowledged commits, never
    /// corrupt the store). Several times faster than `Full` per commit.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: the WAL file is fsynced before each
    /// commit is acknowledged (and the allocation log with it). An
    /// acknowledged batch also survives an OS crash or power loss, provided
    /// the disk honours flushes (no volatile write cache that lies).
    Full,
}

impl Durability {
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// The schema this code reads and writes (`meta.schema_version`).
pub const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id` of a Realm store ("RLMS"), so that `file(1)` and
/// the open check can tell it from other SQLite files.
pub const APPLICATION_ID: i32 = 0x524c_4d53;

const SCHEMA: &str = "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE records (
        kind       INTEGER NOT NULL,
        id         INTEGER NOT NULL,
        value      BLOB    NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
";

/// How the store was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenStatus {
    /// There was no store (or an empty SQLite file): a new, empty one was
    /// created. Hosts that think they are registered resync (RFC 3103 10.2.2).
    New,
    /// An existing store was opened and passed its checks.
    Existing,
    /// The file was unusable: it was moved aside ([`OpenReport::moved_aside`])
    /// and a new, empty store created. Hosts resync (RFC 3103 10.2.2).
    Recovered {
        /// What was wrong.
        reason: CorruptReason,
    },
}

/// Why a store file was moved aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// SQLite could not read it: not a database, or a malformed one.
    Unreadable(String),
    /// `PRAGMA quick_check` found problems (its first lines).
    QuickCheck(Vec<String>),
    /// A SQLite database of another application (`PRAGMA application_id`).
    Foreign {
        /// The file's application ID.
        application_id: i32,
    },
    /// A Realm store whose schema this code does not know (from a newer
    /// release, or its meta table is missing or damaged).
    UnknownSchema {
        /// The schema version found, if any.
        found: Option<i64>,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::Unreadable(e) => write!(f, "unreadable ({e})"),
            CorruptReason::QuickCheck(lines) => {
                write!(f, "failed quick_check ({})", lines.join("; "))
            }
            CorruptReason::Foreign { application_id } => {
                write!(f, "not a Realm store (application_id {application_id:#x})")
            }
            CorruptReason::UnknownSchema { found: Some(v) } => {
                write!(
                    f,
                    "unknown schema version {v} (this build knows {SCHEMA_VERSION})"
                )
            }
            CorruptReason::UnknownSchema { found: None } => write!(f, "no schema version"),
        }
    }
}

/// How the previous gateway run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviousShutdown {
    /// No previous run (new or recovered store).
    None,
    /// [`crate::Store::close`] (or drop) completed at this time.
    Clean(Timestamp),
    /// The process died (crash, `kill -9`, power loss) or could not finish
    /// closing. Acknowledged batches are still there (see [`Durability`]).
    Unclean,
}

/// Rows of one kind found at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCount {
    /// Rows (after pruning, if pruned).
    pub rows: u64,
    /// Rows whose expiry was at or before [`OpenReport::now`]. They are still
    /// in `rows` unless [`crate::Options::prune_expired`] deleted them.
    pub expired: u64,
}

/// What [`crate::Store::open`] found and did: the daemon logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The store file.
    pub path: PathBuf,
    /// New, existing or recovered.
    pub status: OpenStatus,
    /// Files renamed out of the way (a corrupt store and its `-wal`/`-shm`,
    /// or a `-wal` left without its database).
    pub moved_aside: Vec<PathBuf>,
    /// The gateway instance ID: random, chosen when the store was created,
    /// stable across restarts (changes when the store starts empty).
    pub instance_id: u64,
    /// How many times this store has been opened (1 for a new one).
    pub generation: u64,
    /// How the previous run ended.
    pub previous_shutdown: PreviousShutdown,
    /// The time expiry was counted against.
    pub now: Timestamp,
    /// Rows per kind.
    pub kinds: BTreeMap<Kind, KindCount>,
    /// Whether expired rows were deleted.
    pub pruned: bool,
}

impl OpenReport {
    /// Whether the store started empty although the gateway may have had
    /// hosts (new or recovered): hosts must resync.
    pub fn started_empty(&self) -> bool {
        !matches!(self.status, OpenStatus::Existing)
    }
}

impl fmt::Display for OpenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.status {
            OpenStatus::New => write!(f, "new store {path}")?,
            OpenStatus::Existing => write!(f, "opened store {path}")?,
            OpenStatus::Recovered { reason } => write!(
                f,
                "store {path} was {reason}: moved aside, started a new empty store"
            )?,
        }
        if !self.moved_aside.is_empty() {
            let moved: Vec<String> = self
                .moved_aside
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            write!(f, "; moved aside: {}", moved.join(", "))?;
        }
        write!(
            f,
            "; instance {:#018x}, generation {}",
            self.instance_id, self.generation
        )?;
        match self.previous_shutdown {
            PreviousShutdown::None => {}
            PreviousShutdown::Clean(t) => write!(f, "; previous shutdown clean at {}", Rfc3339(t))?,
            PreviousShutdown::Unclean => write!(f, "; previous shutdown unclean")?,
        }
        for (kind, c) in &self.kinds {
            write!(f, "; {kind}: {} rows, {} expired", c.rows, c.expired)?;
        }
        if self.pruned {
            write!(f, " (expired rows pruned)")?;
        }
        Ok(())
    }
}

/// Why an existing file could not be opened as it is.
enum Bad {
    /// Move it aside and start anew.
    Corrupt(CorruptReason),
    /// Give up: the store may be fine.
    Fatal(StoreError),
}

/// Maps an error while reading an existing file: only SQLite's "not a
/// database" and "malformed" mean corrupt.
fn classify(path: &Path, context: &'static str) -> impl FnOnce(rusqlite::Error) -> Bad {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            Bad::Corrupt(CorruptReason::Unreadable(e.to_string()))
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            Bad::Fatal(StoreError::Locked {
                path: path.to_path_buf(),
            })
        }
        _ => Bad::Fatal(StoreError::Sqlite { context, source: e }),
    }
}

/// Maps an error on a store this code opened: busy means another process.
fn fatal(path: &Path, context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_path_buf(),
        },
        _ => StoreError::Sqlite { context, source: e },
    }
}

/// Opens (or creates, or replaces) the store at `path`, ready for the writer:
/// exclusive lock held, WAL mode, the durability's `synchronous`.
pub(crate) fn open(
    path: &Path,
    durability: Durability,
    now: Timestamp,
    prune_expired: bool,
) -> Result<(Connection, OpenReport), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(StoreError::MissingDirectory { dir });
    }
    let mut moved_aside = Vec::new();
    let (conn, status) = match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A -wal without its database must not be replayed into a new one.
            moved_aside = move_aside(path, "orphan", now, false, &dir)?;
            (create(path, durability, &dir)?, OpenStatus::New)
        }
        Err(e) => return Err(StoreError::io("reading", path)(e)),
        Ok(m) if !m.is_file() => {
            return Err(StoreError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => match check(path, durability) {
            Ok(Some(conn)) => (conn, OpenStatus::Existing),
            Ok(None) => (create(path, durability, &dir)?, OpenStatus::New),
            Err(Bad::Fatal(e)) => return Err(e),
            Err(Bad::Corrupt(reason)) => {
                tracing::warn!(path = %path.display(), %reason, "store unusable: moving it aside");
                moved_aside = move_aside(path, "corrupt", now, true, &dir)?;
                (
                    create(path, durability, &dir)?,
                    OpenStatus::Recovered { reason },
                )
            }
        },
    };
    let report = start(conn, path, status, moved_aside, now, prune_expired)?;
    Ok(report)
}

/// Exclusive locking: one gateway per store, no `-shm` file. Set before the
/// first read; changes nothing on disk.
fn lock(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
}

/// The cap on SQLite's page cache, KiB (`PRAGMA cache_size = -512`; SQLite's
/// own default is 2000 KiB). The writer appends rows and deletes a few per
/// commit: its working set is the B-tree's rightmost path and the pages of
/// the rows being freed, so pages beyond it are re-read from the OS page
/// cache at little cost, while a full default cache costs the gateway ~20
/// bytes per binding at 100,000 bindings (the `gateway_grants` bench).
pub const PAGE_CACHE_KIB: u32 = 512;

/// Sets the connection up: WAL, the durability's `synchronous` and the page
/// cache cap ([`PAGE_CACHE_KIB`]). Switching to WAL rewrites the header: only
/// on a file known to be ours.
fn configure(conn: &Connection, durability: Durability) -> Result<(), rusqlite::Error> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("journal_mode is {mode}, not wal")),
        ));
    }
    conn.pragma_update(None, "synchronous", durability.synchronous())?;
    conn.pragma_update(None, "trusted_schema", false)?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -i64::from(PAGE_CACHE_KIB))?;
    Ok(())
}

/// Checks an existing file. `Ok(None)`: a SQLite file with no tables (an
/// empty file, or a crash while creating): safe to set up anew.
fn check(path: &Path, durability: Durability) -> Result<Option<Connection>, Bad> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(classify(path, "opening"))?;
    lock(&conn).map_err(classify(path, "locking"))?;

    let mut problems = Vec::new();
    {
        let mut stmt = conn
            .prepare("PRAGMA quick_check(10)")
            .map_err(classify(path, "quick_check"))?;
        let mut rows = stmt.query([]).map_err(classify(path, "quick_check"))?;
        while let Some(row) = rows.next().map_err(classify(path, "quick_check"))? {
            let line: String = row.get(0).map_err(classify(path, "quick_check"))?;
            problems.push(line);
        }
    }
    if problems != ["ok"] {
        return Err(Bad::Corrupt(CorruptReason::QuickCheck(problems)));
    }

    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(classify(path, "reading schema"))?;
    if tables == 0 {
        drop(conn);
        return Ok(None);
    }
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(classify(path, "reading application_id"))?;
    if application_id != APPLICATION_ID {
        return Err(Bad::Corrupt(CorruptReason::Foreign { application_id }));
    }
    let ours: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema
             WHERE type = 'table' AND name IN ('meta', 'records')",
            [],
            |r| r.get(0),
        )
        .map_err(classify(path, "reading schema"))?;
    if ours != 2 {
        return Err(Bad::Corrupt(CorruptReason::UnknownSchema { found: None }));
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(classify(path, "reading schema version"))?
        .flatten();
    if version != Some(SCHEMA_VERSION) {
        return Err(Bad::Corrupt(CorruptReason::UnknownSchema {
            found: version,
        }));
    }
    configure(&conn, durability).map_err(classify(path, "configuring"))?;
    Ok(Some(conn))
}

/// Creates the schema in a new (or empty) file and syncs the directory so the
/// file itself survives a power loss.
fn create(path: &Path, durability: Durability, dir: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(fatal(path, "creating store"))?;
    lock(&conn).map_err(fatal(path, "locking new store"))?;
    configure(&conn, durability).map_err(fatal(path, "configuring new store"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fatal(path, "creating schema"))?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(fatal(path, "creating schema"))?;
    tx.execute_batch(SCHEMA)
        .map_err(fatal(path, "creating schema"))?;
    let now = crate::clock::unix_now();
    let mut insert = tx
        .prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
        .map_err(fatal(path, "creating schema"))?;
    for (key, value) in [
        ("schema_version", Some(SCHEMA_VERSION)),
        ("instance_id", Some(random_u64(path, now).cast_signed())),
        ("created_at", Some(millis(now))),
        ("generation", Some(0)),
        ("clean_shutdown_at", None),
    ] {
        insert
            .execute(rusqlite::params![key, value])
            .map_err(fatal(path, "creating schema"))?;
    }
    drop(insert);
    tx.commit().map_err(fatal(path, "creating schema"))?;
    sync_dir(dir)?;
    Ok(conn)
}

/// Reads the meta data, counts rows, optionally prunes, marks the run as
/// started (not cleanly shut down) and takes the exclusive lock for good.
fn start(
    mut conn: Connection,
    path: &Path,
    status: OpenStatus,
    moved_aside: Vec<PathBuf>,
    now: Timestamp,
    prune_expired: bool,
) -> Result<(Connection, OpenReport), StoreError> {
    let f = || fatal(path, "starting");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(f())?;
    let meta = |key: &str| -> Result<Option<i64>, StoreError> {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(f())
    };
    let instance_id = meta("instance_id")?.unwrap_or(0).cast_unsigned();
    let generation = meta("generation")?.unwrap_or(0).cast_unsigned() + 1;
    let previous_shutdown = match (&status, meta("clean_shutdown_at")?) {
        (OpenStatus::Existing, Some(ms)) => {
            PreviousShutdown::Clean(Timestamp::from_millis(ms.cast_unsigned()))
        }
        (OpenStatus::Existing, None) => PreviousShutdown::Unclean,
        _ => PreviousShutdown::None,
    };
    let mut kinds: BTreeMap<Kind, KindCount> = BTreeMap::new();
    {
        let mut stmt = tx
            .prepare(
                "SELECT kind, count(*), count(CASE WHEN expires_at <= ?1 THEN 1 END)
                 FROM records GROUP BY kind",
            )
            .map_err(f())?;
        let mut rows = stmt.query([millis(now)]).map_err(f())?;
        while let Some(row) = rows.next().map_err(f())? {
            let kind = Kind(row.get(0).map_err(f())?);
            let rows: i64 = row.get(1).map_err(f())?;
            let expired: i64 = row.get(2).map_err(f())?;
            kinds.insert(
                kind,
                KindCount {
                    rows: rows.cast_unsigned(),
                    expired: expired.cast_unsigned(),
                },
            );
        }
    }
    if prune_expired {
        tx.execute("DELETE FROM records WHERE expires_at <= ?1", [millis(now)])
            .map_err(f())?;
        for c in kinds.values_mut() {
            c.rows -= c.expired;
        }
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'generation'",
        [generation.cast_signed()],
    )
    .map_err(f())?;
    tx.execute(
        "UPDATE meta SET value = NULL WHERE key = 'clean_shutdown_at'",
        [],
    )
    .map_err(f())?;
    tx.commit().map_err(f())?;
    let report = OpenReport {
        path: path.to_path_buf(),
        status,
        moved_aside,
        instance_id,
        generation,
        previous_shutdown,
        now,
        kinds,
        pruned: prune_expired,
    };
    Ok((conn, report))
}

/// Milliseconds as stored: SQLite integers are `i64`; later than `i64::MAX`
/// ms (292 million years) is stored as `i64::MAX`.
pub(crate) fn millis(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// Renames `path` (if `with_db`) and its `-wal`, `-shm` and `-journal` files
/// to `<path>.<tag>-<unix ms>` (plus the same suffixes, so SQLite still pairs
/// them), then syncs the directory. Returns the new names.
fn move_aside(
    path: &Path,
    tag: &str,
    now: Timestamp,
    with_db: bool,
    dir: &Path,
) -> Result<Vec<PathBuf>, StoreError> {
    let with_suffix = |p: &Path, suffix: &str| {
        let mut s: OsString = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut base = with_suffix(path, &format!(".{tag}-{}", now.as_millis()));
    let mut n = 1;
    while fs::symlink_metadata(&base).is_ok() {
        base = with_suffix(path, &format!(".{tag}-{}.{n}", now.as_millis()));
        n += 1;
    }
    let mut moved = Vec::new();
    let mut pairs = vec![];
    if with_db {
        pairs.push((path.to_path_buf(), base.clone()));
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        pairs.push((with_suffix(path, suffix), with_suffix(&base, suffix)));
    }
    for (from, to) in pairs {
        match fs::rename(&from, &to) {
            Ok(()) => moved.push(to),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("moving aside", from)(e)),
        }
    }
    if !moved.is_empty() {
        sync_dir(dir)?;
    }
    Ok(moved)
}

/// Makes renames and file creations in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("syncing directory", dir))
}

/// 64 unpredictable-enough bits for an instance ID, without a dependency:
/// std's per-process random hash keys, mixed with the time and the path.
fn random_u64(path: &Path, now: Timestamp) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    now.hash(&mut h);
    path.hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cache_is_capped() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let conn = create(&dir.path().join("s.db"), Durability::Normal, dir.path())?;
        let size: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        assert_eq!(size, -i64::from(PAGE_CACHE_KIB));
        Ok(())
    }
}
