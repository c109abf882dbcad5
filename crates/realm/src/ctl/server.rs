//! The daemon side: a tokio Unix-socket listener whose connection tasks
//! parse requests and queue them for the daemon's loop, which answers them
//! with its [`Handler`](super::Handler) between packet batches. Nothing here
//! touches daemon state, so a slow or hostile client can delay no packet.
//!
//! Limits (bounded work): at most [`MAX_CONNECTIONS`] connections at once,
//! lines of at most [`MAX_LINE`] bytes, one outstanding request per
//! connection, connections idle for [`IDLE_TIMEOUT`] closed.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Handler, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_LINE, Request, Response, dispatch};

/// A request waiting for the daemon's answer.
#[derive(Debug)]
pub(crate) struct Pending {
    request: Request,
    reply: oneshot::Sender<Response>,
}

impl Pending {
    /// Answers with `handler` (plus the built-in `help`) and sends the
    /// response back to the connection.
    pub(crate) fn answer<H: Handler + ?Sized>(self, handler: &mut H) {
        let response = dispatch(handler, &self.request);
        // The client may have gone: nothing to do then.
        let _ = self.reply.send(response);
    }
}

/// The listening control socket. Dropping it stops accepting, ends the
/// connection tasks and removes the socket file.
#[derive(Debug)]
pub(crate) struct CtlServer {
    path: PathBuf,
    requests: mpsc::Receiver<Pending>,
    accept: JoinHandle<()>,
}

impl CtlServer {
    /// Listens on `path` (mode 0600; its directory is created if missing).
    /// A leftover socket file nobody answers on is replaced; one a live
    /// daemon answers on is an error. Needs a tokio runtime.
    pub(crate) fn bind(path: &Path) -> io::Result<CtlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running daemon", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let (tx, requests) = mpsc::channel(MAX_CONNECTIONS);
        let accept = tokio::spawn(accept_loop(listener, tx));
        tracing::debug!(socket = %path.display(), "control socket listening");
        Ok(CtlServer {
            path: path.to_owned(),
            requests,
            accept,
        })
    }

    /// The next request (cancel-safe: use it in `select!`).
    pub(crate) async fn recv(&mut self) -> Option<Pending> {
        self.requests.recv().await
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                connections.spawn(async move {
                    if let Err(e) = serve(stream, tx).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        // Reap finished connection tasks (JoinSet aborts the rest on drop).
        while connections.try_join_next().is_some() {}
    }
}

async fn write_line(w: &mut (impl AsyncWriteExt + Unpin), response: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

async fn serve(stream: UnixStream, tx: mpsc::Sender<Pending>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let mut limited = (&mut r).take(MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut line);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(n) => n?,
            Err(_) => return Ok(()), // idle
        };
        if n == 0 {
            return Ok(()); // EOF
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                let e = format!("request longer than {MAX_LINE} bytes");
                write_line(&mut w, &Response::error(e)).await?;
            }
            return Ok(()); // too long, or EOF inside a line
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_slice(text) {
            Ok(r) => r,
            Err(e) => {
                write_line(&mut w, &Response::error(format!("bad request: {e}"))).await?;
                continue;
            }
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(Pending { request, reply }).await.is_err() {
            return Ok(()); // the daemon is shutting down
        }
        let response = answer
            .await
            .unwrap_or_else(|_| Response::error("daemon shutting down"));
        write_line(&mut w, &response).await?;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::ctl::{CommandInfo, CtlError, client};

    struct Echo(u32);

    impl Handler for Echo {
        fn daemon(&self) -> &'static str {
            "echo"
        }
        fn commands(&self) -> &'static [CommandInfo] {
            &[CommandInfo {
                name: "count",
                args: "add=N",
                summary: "adds N, returns the total",
            }]
        }
        fn handle(&mut self, command: &str, args: &Map<String, Value>) -> Result<Value, CtlError> {
            match command {
                "count" => {
                    crate::ctl::expect_args(args, &["add"])?;
                    let add = args.get("add").and_then(Value::as_u64).unwrap_or(1);
                    self.0 += add as u32;
                    Ok(json!({ "total": self.0 }))
                }
                other => Err(CtlError::UnknownCommand(other.to_string())),
            }
        }
    }

    /// The daemon loop in miniature: answer requests until the test is done.
    async fn run_daemon(mut server: CtlServer, mut handler: Echo, stop: oneshot::Receiver<()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                p = server.recv() => match p {
                    Some(p) => p.answer(&mut handler),
                    None => return,
                },
                _ = &mut stop => return,
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn requests_answered_in_order_with_errors_and_help() {
        let dir = std::env::temp_dir().join(format!("realm-ctl-test-{}", std::process::id()));
        let path = dir.join("sub").join("ctl.sock");
        let server = CtlServer::bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A second daemon on the same path is refused.
        assert_eq!(
            CtlServer::bind(&path).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        let (stop_tx, stop) = oneshot::channel();
        let daemon = tokio::spawn(run_daemon(server, Echo(0), stop));

        let p = path.clone();
        let client_side = tokio::task::spawn_blocking(move || {
            let mut args = Map::new();
            args.insert("add".into(), json!(5));
            let r = client::request(&p, "count", args.clone()).unwrap();
            assert_eq!(r, Response::ok(json!({"total": 5})));
            let r = client::request(&p, "count", args).unwrap();
            assert_eq!(r.result, Some(json!({"total": 10})));
            let r = client::request(&p, "nope", Map::new()).unwrap();
            assert!(!r.ok);
            assert!(r.error.unwrap().contains("unknown command"));
            let mut bad = Map::new();
            bad.insert("bogus".into(), json!(1));
            let r = client::request(&p, "count", bad).unwrap();
            assert!(r.error.unwrap().contains("unknown argument \"bogus\""));
            let r = client::request(&p, "help", Map::new()).unwrap();
            let help = r.result.unwrap();
            assert_eq!(help["daemon"], "echo");
            assert_eq!(help["commands"][1]["command"], "count");

            // Raw protocol: several requests on one connection, garbage, a blank line.
            use std::io::{BufRead, BufReader, Write};
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"command\":\"count\"}\n\nnot json\n{\"command\":\"count\",\"args\":{\"add\":2}}\n")
                .unwrap();
            let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
            let first: Response = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert_eq!(first.result, Some(json!({"total": 11})));
            let second: Response = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert!(second.error.unwrap().starts_with("bad request"));
            let third: Response = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert_eq!(third.result, Some(json!({"total": 13})));
            // An over-long line is refused and the connection closed.
            s.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
            let last: Response = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert!(last.error.unwrap().contains("longer than"));
            assert!(lines.next().is_none());
        });
        client_side.await.unwrap();
        stop_tx.send(()).unwrap();
        daemon.await.unwrap();
        // The server was dropped with the daemon: the socket file is gone.
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stale_socket_file_is_replaced() {
        let path =
            std::env::temp_dir().join(format!("realm-ctl-stale-{}.sock", std::process::id()));
        // A socket file left by a dead daemon: bound, then the listener dropped.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = CtlServer::bind(&path).unwrap();
        assert_eq!(server.path(), path);
        drop(server);
        assert!(!path.exists());
    }
}
