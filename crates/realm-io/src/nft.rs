//! nftables tables owned by a process: installed from ruleset text through `nft -f -` (one atomic
//! transaction), deleted when the owner drops them.
//!
//! The gateway's data plane uses a `netdev` table on its public interface to steer the packets it
//! owns (leased ports, ESP, AH, IKE, ICMP, fragments) to its TUN before the local stack sees them
//! (`nft` `fwd to`, built into this kernel as `nft_fwd_netdev`). nftables has no stable library
//! API besides libnftables (C), so this module drives the `nft` command, as firewalld does through
//! libnftables: the ruleset text is the interface. `nft` comes from Debian's `nftables` package
//! (`scripts/install-deps` installs it when missing).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Whether the `nft` command is on `PATH`.
#[must_use]
pub fn available() -> bool {
    Command::new("nft")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `nft -f -` with `script` on stdin in the caller's network namespace.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    what: "the `nft` command (Debian package nftables) on PATH".into(),
                }
            } else {
                Error::Io {
                    what: "run `nft -f -`".into(),
                    source: e,
                }
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| Error::Io {
            what: "write the ruleset to `nft -f -`".into(),
            source: e,
        })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Io {
        what: "wait for `nft -f -`".into(),
        source: e,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: "nft -f -".into(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// An nftables table this process installed; deleted on drop (best effort, logged) or by
/// [`NftTable::remove`].
#[derive(Debug)]
pub struct NftTable {
    family: String,
    name: String,
    installed: bool,
}

impl NftTable {
    /// Installs `table FAMILY NAME { BODY }`, replacing a table of that name left behind by an
    /// earlier run (declare, delete and re-create in one transaction: nothing is half applied).
    pub fn install(family: &str, name: &str, body: &str) -> Result<NftTable> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !ok(family) || !ok(name) {
            return Err(Error::Invalid(format!(
                "nftables table name {family:?} {name:?}"
            )));
        }
        let script = format!(
            "table {family} {name}\ndelete table {family} {name}\ntable {family} {name} {{\n{body}\n}}\n"
        );
        apply(&script)?;
        Ok(NftTable {
            family: family.to_owned(),
            name: name.to_owned(),
            installed: true,
        })
    }

    /// The table's `family name`, as `nft list table` takes it.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{} {}", self.family, self.name)
    }

    /// Deletes the table now.
    pub fn remove(mut self) -> Result<()> {
        self.installed = false;
        apply(&format!("delete table {} {}\n", self.family, self.name))
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        if self.installed
            && let Err(e) = apply(&format!("delete table {} {}\n", self.family, self.name))
        {
            tracing::warn!(table = %self.id(), error = %e, "could not delete nftables table");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_nft_runs() {
        assert!(matches!(
            NftTable::install("netdev", "x; flush ruleset", ""),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            NftTable::install("", "realm", ""),
            Err(Error::Invalid(_))
        ));
    }
}
