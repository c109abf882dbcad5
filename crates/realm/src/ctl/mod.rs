//! The control socket: a daemon (`realm peer`, later `realm gateway`) answers
//! JSON-lines requests on a Unix stream socket, and `realm ctl` asks them.
//! This module owns the protocol and both ends; it knows no daemon's
//! commands: each daemon implements [`Handler`]. Protocol reference:
//! `docs/ctl.md`.
//!
//! One request per line, one response per line, in order, on one connection:
//!
//! ```text
//! -> {"command":"sas","args":{}}
//! <- {"ok":true,"result":[{"spi":"0x00001001", ...}]}
//! -> {"command":"nope"}
//! <- {"ok":false,"error":"unknown command \"nope\" (try \"help\")"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) mod client;
pub(crate) mod server;

pub(crate) use client::CtlArgs;
pub(crate) use server::CtlServer;

/// Version of the control protocol, reported by the built-in `help`.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Longest request or response line in bytes (bounded work per connection).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Connections served at once; more wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// A connection idle this long (no complete request) is closed.
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One request: a command name and named arguments (JSON values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The command, e.g. `"sas"`.
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
    /// The command's answer (any JSON value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Value>,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

impl Response {
    pub(crate) fn ok(result: Value) -> Self {
        Response {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub(crate) fn error(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}

/// A command a daemon answers, for the built-in `help`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandInfo {
    /// Name, as sent in `command`.
    pub(crate) name: &'static str,
    /// Arguments it takes, e.g. `"client=ID"` (empty: none).
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
    #[allow(dead_code)] // The peer's commands cannot fail; the gateway's (`deregister`) can.
    #[error("{0}")]
    Failed(String),
}

/// A daemon's side of the protocol: it is called on the daemon's own loop,
/// between packet batches, with exclusive access to the daemon's state.
/// Answers must be quick (they delay packets); no I/O.
pub(crate) trait Handler {
    /// Name reported by `help` (`"peer"`, `"gateway"`).
    fn daemon(&self) -> &'static str;
    /// The commands [`Handler::handle`] answers.
    fn commands(&self) -> &'static [CommandInfo];
    /// Answers one command. `help` never reaches it.
    fn handle(&mut self, command: &str, args: &Map<String, Value>) -> Result<Value, CtlError>;
}

/// Answers `request` with `handler`, adding the built-in `help`.
pub(crate) fn dispatch<H: Handler + ?Sized>(handler: &mut H, request: &Request) -> Response {
    if request.command == "help" {
        let mut commands: Vec<Value> = vec![serde_json::json!({
            "command": "help",
            "args": "",
            "summary": "this list",
        })];
        commands.extend(
            handler.commands().iter().map(
                |c| serde_json::json!({"command": c.name, "args": c.args, "summary": c.summary}),
            ),
        );
        return Response::ok(serde_json::json!({
            "daemon": handler.daemon(),
            "protocol": PROTOCOL_VERSION,
            "commands": commands,
        }));
    }
    match handler.handle(&request.command, &request.args) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::error(e.to_string()),
    }
}

/// Fails with [`CtlError::BadArgs`] if `args` holds a key not in `allowed`.
pub(crate) fn expect_args(args: &Map<String, Value>, allowed: &[&str]) -> Result<(), CtlError> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(CtlError::BadArgs(format!(
            "unknown argument {k:?} (takes: {})",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}
