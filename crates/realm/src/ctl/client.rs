//! The client side, `realm ctl`: sends one request, prints the answer as a
//! table (lists of objects), as `key: value` lines (objects), or as JSON
//! (`--json`). It knows no daemon's commands, so a new command needs no
//! change here.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::{Request, Response};

/// Longest answer `realm ctl` reads (a big SAD is a few hundred bytes per SA).
const MAX_RESPONSE: u64 = 16 << 20;

/// Default control socket of `realm peer` (its `control_socket` setting).
pub(crate) const DEFAULT_SOCKET: &str = "/run/realm/peer.sock";

/// How long `realm ctl` waits for the daemon.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `realm ctl`: ask a running daemon.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The daemon's control socket.
    #[arg(long, short = 's', default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Command (`help` lists what the daemon answers), e.g. `sas`, `status`.
    command: String,
    /// Arguments as KEY=VALUE; VALUE is read as JSON when it parses (numbers,
    /// true/false), as a string otherwise.
    #[arg(value_name = "KEY=VALUE")]
    args: Vec<String>,
}

/// Sends one request on a fresh connection and reads the response.
pub(crate) fn request(
    socket: &Path,
    command: &str,
    args: Map<String, Value>,
) -> anyhow::Result<Response> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connect to {} (is the daemon running?)", socket.display()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(&Request {
        command: command.to_string(),
        args,
    })?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = Vec::new();
    BufReader::new(&stream)
        .take(MAX_RESPONSE)
        .read_until(b'\n', &mut answer)
        .context("read the daemon's answer")?;
    if answer.is_empty() {
        bail!("the daemon closed the connection without answering");
    }
    serde_json::from_slice(&answer).context("the daemon's answer is not a control response")
}

fn parse_args(args: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            bail!("argument {a:?} is not KEY=VALUE");
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(map)
}

/// Runs `realm ctl`. `Ok(false)` when the daemon answered with an error.
pub(crate) fn run(args: &CtlArgs) -> anyhow::Result<bool> {
    let response = request(&args.socket, &args.command, parse_args(&args.args)?)?;
    if !response.ok {
        eprintln!(
            "realm ctl: {}",
            response.error.as_deref().unwrap_or("failed")
        );
        return Ok(false);
    }
    let result = response.result.unwrap_or(Value::Null);
    let text = if args.json {
        serde_json::to_string_pretty(&result)? + "\n"
    } else {
        render(&result)
    };
    print!("{text}");
    Ok(true)
}

/// Readable text for any result: a table for a list of objects (nested
/// objects shown as `key=value` pairs, zero and null members left out),
/// indented `key: value` lines for an object, the value itself otherwise.
pub(crate) fn render(v: &Value) -> String {
    match v {
        Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => table(rows),
        Value::Array(rows) if rows.is_empty() => "(none)\n".to_string(),
        Value::Object(_) => {
            let mut out = String::new();
            lines(v, 0, &mut out);
            out
        }
        other => format!("{}\n", cell(other)),
    }
}

fn lines(v: &Value, indent: usize, out: &mut String) {
    let Value::Object(m) = v else { return };
    for (k, x) in m {
        match x {
            Value::Object(_) => {
                out.push_str(&format!("{:indent$}{k}:\n", ""));
                lines(x, indent + 2, out);
            }
            Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => {
                out.push_str(&format!("{:indent$}{k}:\n", ""));
                for l in table(rows).lines() {
                    out.push_str(&format!("{:w$}{l}\n", "", w = indent + 2));
                }
            }
            _ => out.push_str(&format!("{:indent$}{k}: {}\n", "", cell(x))),
        }
    }
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_u64() == Some(0)
}

/// One table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(cell).collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(",")
            }
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .filter(|(_, x)| !is_blank(x))
                .map(|(k, x)| format!("{k}={}", cell(x)))
                .collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(" ")
            }
        }
        other => other.to_string(),
    }
}

fn table(rows: &[Value]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !columns.contains(&k.as_str()) {
                    columns.push(k);
                }
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.get(c).map_or_else(|| "-".to_string(), cell))
                .collect()
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn args_are_json_or_strings() {
        let m = parse_args(&["n=5".into(), "on=true".into(), "name=realm0".into()]).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"n": 5, "on": true, "name": "realm0"})
        );
        assert!(parse_args(&["oops".into()]).is_err());
    }

    #[test]
    fn tables_keep_column_order_and_compact_nested_objects() {
        let v = json!([
            {"spi": "0x1001", "packets": 12, "drops": {"replay": 0, "icv_mismatch": 2}},
            {"spi": "0x1002", "packets": 0, "drops": {"replay": 0}, "extra": null},
        ]);
        let t = render(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "SPI     PACKETS  DROPS           EXTRA");
        assert_eq!(lines[1], "0x1001  12       icv_mismatch=2  -");
        assert_eq!(lines[2], "0x1002  0        -               -");
        assert_eq!(render(&json!([])), "(none)\n");
    }

    #[test]
    fn objects_become_indented_lines() {
        let v = json!({"uptime_seconds": 3, "tun": {"name": "realm0"}, "list": [{"a": 1}]});
        assert_eq!(
            render(&v),
            "uptime_seconds: 3\ntun:\n  name: realm0\nlist:\n  A\n  1\n"
        );
    }
}
