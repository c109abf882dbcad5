//! The control socket: a daemon answers JSON-lines requests on a Unix stream
//! socket and `realm ctl` asks them. This module owns the protocol and both
//! ends; it knows no daemon's commands. Reference: `docs/ctl.md`.
//!
//! ```text
//! -> {"command":"bindings","args":{}}
//! <- {"ok":true,"result":[{"bind":1, ...}]}
//! -> {"command":"nope"}
//! <- {"ok":false,"error":"unknown command \"nope\" (try \"help\")"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) mod client;
pub(crate) mod server;
pub(crate) mod text;
pub(crate) mod views;

/// The daemons that answer on a control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `realm gateway`.
    Gateway,
    /// `realm host`.
    Host,
    /// `realm peer`.
    Peer,
}

/// Where a daemon's control socket is when its configuration names none
/// (the gateway's `control.socket`, the host's and peer's
/// `daemon.control_socket`).
pub(crate) const fn default_socket(role: Role) -> &'static str {
    match role {
        Role::Gateway => "/run/realm/gateway.sock",
        Role::Host => "/run/realm/host.sock",
        Role::Peer => "/run/realm/peer.sock",
    }
}

/// Version of the control protocol, reported by the built-in `help`.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Longest request line in bytes.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Connections served at once; more wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// A connection idle this long (no complete request) is closed.
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The argument name of a bare value (`realm ctl free 7`).
pub(crate) const ARG: &str = "arg";

/// One request: a command name and named arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The command, e.g. `"status"`.
    pub(crate) command: String,
    /// Named arguments; absent is the same as `{}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) args: Map<String, Value>,
}

/// One response: `result` when `ok`, `error` otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response {
    /// Whether the command succeeded.
    pub(crate) ok: bool,
    /// The command's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Value>,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Which daemon answered (`"gateway"`, `"host"`, `"peer"`): `realm ctl`
    /// picks its text view by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) daemon: Option<String>,
}

impl Response {
    pub(crate) fn ok(result: Value) -> Response {
        Response {
            ok: true,
            result: Some(result),
            error: None,
            daemon: None,
        }
    }

    /// The same, naming the daemon that answered.
    pub(crate) fn answered_by(mut self, daemon: &str) -> Response {
        self.daemon = Some(daemon.to_owned());
        self
    }

    pub(crate) fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(message.into()),
            daemon: None,
        }
    }
}

/// A command a daemon answers, for the built-in `help`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandInfo {
    /// Name, as sent in `command`.
    pub(crate) name: &'static str,
    /// Arguments it takes, e.g. `"bind=ID"` (empty: none).
    pub(crate) args: &'static str,
    /// One line on what it returns.
    pub(crate) summary: &'static str,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// The daemon does not know the command.
    #[error("unknown command {0:?} (try \"help\")")]
    UnknownCommand(String),
    /// Missing, unknown or ill-typed arguments.
    #[error("bad arguments: {0}")]
    BadArgs(String),
    /// The command ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// The built-in `help` answer.
pub(crate) fn help(daemon: &str, commands: &[CommandInfo]) -> Value {
    let mut list = vec![serde_json::json!({"command": "help", "args": "", "summary": "this list"})];
    list.extend(
        commands
            .iter()
            .map(|c| serde_json::json!({"command": c.name, "args": c.args, "summary": c.summary})),
    );
    serde_json::json!({ "daemon": daemon, "protocol": PROTOCOL_VERSION, "commands": list })
}

/// Fails with [`CtlError::BadArgs`] if `args` holds a key not in `allowed`.
pub(crate) fn expect_args(args: &Map<String, Value>, allowed: &[&str]) -> Result<(), CtlError> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(CtlError::BadArgs(format!(
            "unknown argument {k:?} (takes: {})",
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

/// A daemon whose commands are answered synchronously on its own loop,
/// between packet batches, with exclusive access to its state (`realm peer`).
/// Answers must be quick (they delay packets); no I/O. A daemon that must
/// defer an answer (the gateway answers `free` only once it is durable) keeps
/// the [`server::Incoming`] and replies later instead.
pub(crate) trait Handler {
    /// Name reported by `help` (`"peer"`).
    fn daemon(&self) -> &'static str;
    /// The commands [`Handler::handle`] answers.
    fn commands(&self) -> &'static [CommandInfo];
    /// Answers one command. `help` never reaches it.
    fn handle(&mut self, command: &str, args: &Map<String, Value>) -> Result<Value, CtlError>;
}

/// Answers one incoming request with `handler`, adding the built-in `help`.
pub(crate) fn answer<H: Handler + ?Sized>(handler: &mut H, incoming: server::Incoming) {
    let response = if incoming.command == "help" {
        Response::ok(help(handler.daemon(), handler.commands()))
    } else {
        match handler.handle(&incoming.command, &incoming.args) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::error(e.to_string()),
        }
    };
    // The client may have gone: nothing to do then.
    let _ = incoming.reply.send(response.answered_by(handler.daemon()));
}
