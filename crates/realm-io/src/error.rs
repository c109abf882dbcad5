//! The crate's error type: each variant says which OS operation failed and on what.

use std::io;
use std::process::ExitStatus;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An OS operation failed. The `what` strings name the object (device, namespace, sysctl key) so a
/// log line is enough to find the culprit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `"open raw socket for protocol 4"`.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a netlink request (or the netlink connection failed).
    #[error("netlink {what}: {source}")]
    Netlink {
        /// The request, e.g. `"add address 192.0.2.10/24 on rtun0"`.
        what: String,
        /// rtnetlink's error, which carries the kernel's errno.
        #[source]
        source: rtnetlink::Error,
    },
    /// A named object (interface, namespace) does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// An external command (`ip`, a lab process) exited unsuccessfully.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A value read from the OS (sysctl, command output) did not have the expected shape.
    #[error("unexpected {what}: {value:?}")]
    Parse {
        /// What was parsed.
        what: String,
        /// The text that did not parse.
        value: String,
    },
    /// An argument cannot be used (interface name too long, empty batch, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The operation needs root (CAP_NET_ADMIN / CAP_NET_RAW / CAP_SYS_ADMIN).
    #[error("{0} needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN)")]
    NotRoot(&'static str),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn netlink(what: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink {
            what: what.into(),
            source,
        }
    }
}

/// For the hot-path calls that return `io::Result` (recv/send): the operation is implied.
impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::io("packet I/O", source)
    }
}

/// `.ctx("what")` turns an `io::Result` into a [`Result`] that names the operation.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(what(), source))
    }
}
