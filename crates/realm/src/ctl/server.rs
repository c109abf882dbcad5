//! The daemon side: a Unix-socket listener whose connection tasks parse
//! requests and queue them for the daemon's own loop, which answers them
//! between inputs. Nothing here touches daemon state.
//!
//! Limits: at most [`MAX_CONNECTIONS`] connections at once, lines of at most
//! [`MAX_LINE`] bytes, one outstanding request per connection, connections
//! idle for [`IDLE_TIMEOUT`] closed.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_LINE, Request, Response};

/// A request for the daemon: answer it through `reply`.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) command: String,
    pub(crate) args: Map<String, Value>,
    pub(crate) reply: oneshot::Sender<Response>,
}

/// The listening control socket. Dropping it stops accepting and removes the
/// socket file.
#[derive(Debug)]
pub(crate) struct CtlServer {
    path: PathBuf,
    accept: JoinHandle<()>,
}

impl CtlServer {
    /// Listens on `path` (mode 0600; its directory is created if missing) and
    /// queues requests on `tx`. A leftover socket file nobody answers on is
    /// replaced; one a live daemon answers on is an error.
    pub(crate) fn bind(path: &Path, tx: mpsc::Sender<Incoming>) -> io::Result<CtlServer> {
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
        let accept = tokio::spawn(accept_loop(listener, tx));
        Ok(CtlServer {
            path: path.to_owned(),
            accept,
        })
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
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
        while connections.try_join_next().is_some() {}
    }
}

async fn write_line(w: &mut (impl AsyncWriteExt + Unpin), response: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

async fn serve(stream: UnixStream, tx: mpsc::Sender<Incoming>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let mut limited = (&mut r).take(MAX_LINE as u64 + 1);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await
        {
            Ok(n) => n?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                let e = format!("request longer than {MAX_LINE} bytes");
                write_line(&mut w, &Response::error(e)).await?;
            }
            return Ok(());
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
        let incoming = Incoming {
            command: request.command,
            args: request.args,
            reply,
        };
        if tx.send(incoming).await.is_err() {
            return Ok(());
        }
        let response = answer
            .await
            .unwrap_or_else(|_| Response::error("daemon shutting down"));
        write_line(&mut w, &response).await?;
    }
}
