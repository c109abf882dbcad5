//! The gateway's control commands (`realm ctl`, `docs/ctl.md`): a plain
//! function of the engine state, called on the engine task between inputs.
//! Admin operations produce events like any request: the engine task
//! persists them before it answers (and before the host's asynchronous
//! FREE_RESPONSE / DE-REGISTER_RESPONSE leaves).

use realm_lease::{BindId, ClientId, Timestamp};
use realm_rsip::gateway::Gateway;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use crate::ctl::{ARG, CommandInfo, CtlError, expect_args};

/// A control request queued for the engine task.
#[derive(Debug)]
pub(crate) struct CtlRequest {
    pub(crate) command: String,
    pub(crate) args: Map<String, Value>,
    pub(crate) reply: oneshot::Sender<Result<Value, String>>,
}

/// The gateway's commands, for `help`.
pub(crate) const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "status",
        args: "",
        summary: "hosts, bindings, pool use and counters",
    },
    CommandInfo {
        name: "hosts",
        args: "",
        summary: "registered hosts with their usage and bindings",
    },
    CommandInfo {
        name: "bindings",
        args: "",
        summary: "live bindings (public address, ports, SPIs, lease end)",
    },
    CommandInfo {
        name: "dataplane",
        args: "",
        summary: "data plane counters: packets, bytes and drops per direction and reason",
    },
    CommandInfo {
        name: "free",
        args: "bind=ID",
        summary: "ends a binding; its host gets FREE_RESPONSE",
    },
    CommandInfo {
        name: "deregister",
        args: "client=ID",
        summary: "ends a registration and its bindings; its host gets DE-REGISTER_RESPONSE",
    },
];

/// Answers one command.
pub(crate) fn handle(
    gw: &mut Gateway,
    data_plane: Option<&super::dataplane::Shared>,
    now: Timestamp,
    command: &str,
    args: &Map<String, Value>,
) -> Result<Value, CtlError> {
    match command {
        "status" => {
            expect_args(args, &[])?;
            Ok(to_json(&gw.status()))
        }
        "hosts" => {
            expect_args(args, &[])?;
            Ok(to_json(&gw.hosts()))
        }
        "bindings" => {
            expect_args(args, &[])?;
            Ok(to_json(&gw.bindings()))
        }
        "dataplane" => {
            expect_args(args, &[])?;
            match data_plane {
                Some(d) => Ok(to_json(&d.snapshot())),
                None => Err(CtlError::Failed(
                    "no data plane: data_plane.public_interface is not set".into(),
                )),
            }
        }
        "free" => {
            expect_args(args, &["bind", ARG])?;
            let bind = BindId(id_arg(args, "bind")?);
            gw.admin_free(now, bind)
                .map_err(|e| CtlError::Failed(e.to_string()))?;
            Ok(json!({ "freed": bind.0 }))
        }
        "deregister" => {
            expect_args(args, &["client", ARG])?;
            let client = ClientId(id_arg(args, "client")?);
            gw.admin_deregister(now, client)
                .map_err(|e| CtlError::Failed(e.to_string()))?;
            Ok(json!({ "deregistered": format!("{:#010x}", client.0) }))
        }
        other => Err(CtlError::UnknownCommand(other.to_owned())),
    }
}

/// A 32-bit ID given as a number, a decimal string or `0x` hex, named `key`
/// or given bare (`realm ctl free 7`).
fn id_arg(args: &Map<String, Value>, key: &str) -> Result<u32, CtlError> {
    let bad = || CtlError::BadArgs(format!("{key} must be a 32-bit ID (decimal or 0x hex)"));
    match args.get(key).or_else(|| args.get(ARG)) {
        None => Err(CtlError::BadArgs(format!("missing {key}=ID"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad),
        Some(Value::String(s)) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| bad()),
                None => s.parse().map_err(|_| bad()),
            }
        }
        Some(_) => Err(bad()),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_decimal_or_hex() {
        let mut a = Map::new();
        a.insert("client".into(), json!("0x5eed1234"));
        assert_eq!(id_arg(&a, "client").unwrap(), 0x5eed_1234);
        a.insert("client".into(), json!(7));
        assert_eq!(id_arg(&a, "client").unwrap(), 7);
        a.insert("client".into(), json!("12"));
        assert_eq!(id_arg(&a, "client").unwrap(), 12);
        a.insert("client".into(), json!("nope"));
        assert!(id_arg(&a, "client").is_err());
        assert!(id_arg(&Map::new(), "client").is_err());
    }

    #[test]
    fn commands_on_a_fresh_gateway() {
        let cfg: realm_rsip::gateway::GatewayConfig =
            serde_json::from_value(json!({"pool": [{"addresses": "192.0.2.1"}]})).unwrap();
        let mut gw = Gateway::new(cfg, [1; 32]).unwrap();
        let now = Timestamp::from_secs(1_700_000_000);
        let s = handle(&mut gw, None, now, "status", &Map::new()).unwrap();
        assert_eq!(s["hosts"], 0);
        assert_eq!(
            handle(&mut gw, None, now, "bindings", &Map::new()).unwrap(),
            json!([])
        );
        let mut a = Map::new();
        a.insert("bind".into(), json!(3));
        let e = handle(&mut gw, None, now, "free", &a).unwrap_err();
        assert!(e.to_string().contains("no such binding"));
        assert!(handle(&mut gw, None, now, "nope", &Map::new()).is_err());
        let e = handle(&mut gw, None, now, "dataplane", &Map::new()).unwrap_err();
        assert!(e.to_string().contains("no data plane"), "{e}");
    }
}
