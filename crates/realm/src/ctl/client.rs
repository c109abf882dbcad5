//! `realm ctl`: sends one request, prints the answer as JSON (`--json`) or
//! for people: the daemon's view of the command when [`super::views`] has
//! one, else a table (lists of objects) or `key: value` lines (objects).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::{ARG, Request, Response, text};

/// Longest answer read.
const MAX_RESPONSE: u64 = 64 << 20;

/// How long `realm ctl` waits for the daemon.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `realm ctl`: ask a running daemon.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The daemon's control socket (the gateway's `control.socket`).
    #[arg(long, short = 's', default_value = super::default_socket(super::Role::Gateway))]
    socket: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Command (`help` lists what the daemon answers), e.g. `status`.
    command: String,
    /// Arguments as KEY=VALUE (VALUE read as JSON when it parses), or one
    /// bare VALUE: the command's main argument (`realm ctl free 7`).
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
        command: command.to_owned(),
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
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, v),
            None if !map.contains_key(ARG) => (ARG, a.as_str()),
            None => bail!("argument {a:?} is not KEY=VALUE (only one bare value is allowed)"),
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        map.insert(k.to_owned(), value);
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
        let view = response
            .daemon
            .as_deref()
            .and_then(|d| super::views::render(d, &args.command, &result, wall_clock_ms()));
        view.unwrap_or_else(|| render(&result))
    };
    print!("{text}");
    Ok(true)
}

/// Now, in milliseconds since the UNIX epoch: what relative times in the
/// views count from (the gateway's lease times are wall-clock too).
fn wall_clock_ms() -> u64 {
    // `realm ctl` is a client, not an engine: it reads the wall clock once
    // to print "in 9m58s" rather than an epoch.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Readable text for any result: a table for a list of objects, indented
/// `key: value` lines for an object, the value itself otherwise.
pub(crate) fn render(v: &Value) -> String {
    match v {
        Value::Array(rows) if rows.is_empty() => "(none)\n".to_owned(),
        Value::Array(rows) if rows.iter().all(Value::is_object) => table(rows),
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
    let mut pending: Vec<(&str, String)> = Vec::new();
    for (k, x) in m {
        if let Value::Object(_) = x {
            out.push_str(&text::fields(&pending, indent));
            pending.clear();
            out.push_str(&format!("{:indent$}{k}:\n", ""));
            lines(x, indent + 2, out);
        } else {
            pending.push((k, cell(x)));
        }
    }
    out.push_str(&text::fields(&pending, indent));
}

/// One table cell: strings bare, absent as `-`, objects as `key=value`
/// pairs.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => text::ABSENT.to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| format!("{k}={}", cell(x)))
            .collect::<Vec<_>>()
            .join(" "),
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
    let mut t = text::Table::new(&columns);
    for r in rows {
        t.row(
            columns
                .iter()
                .map(|c| r.get(*c).map(cell).unwrap_or_default())
                .collect(),
        );
    }
    t.render(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn args_named_or_one_bare() {
        let m = parse_args(&["7".into()]).unwrap();
        assert_eq!(m.get(ARG), Some(&json!(7)));
        let m = parse_args(&["client=0x10".into()]).unwrap();
        assert_eq!(m.get("client"), Some(&json!("0x10")));
        assert!(parse_args(&["1".into(), "2".into()]).is_err());
    }

    #[test]
    fn renders_tables_and_objects() {
        let t = render(&json!([{"bind": 1, "public": "192.0.2.1"}, {"bind": 22}]));
        assert_eq!(t, "bind  public\n1     192.0.2.1\n22\n");
        assert_eq!(render(&json!({"hosts": 2})), "hosts: 2\n");
        assert_eq!(render(&json!([])), "(none)\n");
    }
}
