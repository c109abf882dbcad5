//! The signalling link to the gateway: a TCP connection (framed by
//! `StreamDecoder`, reconnected with exponential backoff) or a connected UDP
//! socket (one datagram, one message). It tells the loop when a TCP
//! connection comes up or goes down; it never interprets a message.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use realm_rsip::host::{HostConfig, Transport};
use realm_wire::rsip::StreamDecoder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::config::DaemonSettings;

/// Most messages handed to the engine per wake-up (STYLE 9); the rest stay
/// in the framing buffer for the next one.
const MAX_FRAMES_PER_WAKE: usize = 64;

/// What one `recv` produced.
#[derive(Debug)]
pub(super) enum Incoming {
    /// A TCP connection came up.
    Connected,
    /// The TCP connection was lost.
    Disconnected,
    /// Whole RSIP messages.
    Messages(Vec<Vec<u8>>),
    /// Nothing for the engine (a failed connection attempt, a UDP error).
    Nothing,
}

#[derive(Debug)]
pub(super) enum Link {
    Tcp(Box<TcpLink>),
    Udp(UdpSocket),
}

#[derive(Debug)]
pub(super) struct TcpLink {
    gateway: SocketAddr,
    stream: Option<TcpStream>,
    decoder: StreamDecoder,
    max_message_len: usize,
    next_attempt: Instant,
    backoff: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    connect_timeout: Duration,
    /// The connection attempt in progress. A task, so that `select!`
    /// cancelling `recv` never abandons a half-made connection the gateway
    /// may already have accepted.
    connecting: Option<tokio::task::JoinHandle<io::Result<TcpStream>>>,
    buf: Vec<u8>,
}

impl Link {
    pub(super) async fn open(host: &HostConfig, daemon: &DaemonSettings) -> anyhow::Result<Link> {
        match host.transport {
            Transport::Udp => {
                let any: SocketAddr = if host.gateway.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)
                    .await
                    .context("binding the UDP socket")?;
                socket
                    .connect(host.gateway)
                    .await
                    .with_context(|| format!("UDP socket to {}", host.gateway))?;
                Ok(Link::Udp(socket))
            }
            Transport::Tcp => {
                let min_backoff = Duration::from_millis(daemon.reconnect_min_ms);
                Ok(Link::Tcp(Box::new(TcpLink {
                    gateway: host.gateway,
                    stream: None,
                    decoder: StreamDecoder::new(daemon.max_message_len),
                    max_message_len: daemon.max_message_len,
                    next_attempt: Instant::now(),
                    backoff: min_backoff,
                    min_backoff,
                    max_backoff: Duration::from_millis(daemon.reconnect_max_ms),
                    connect_timeout: Duration::from_millis(daemon.connect_timeout_ms),
                    connecting: None,
                    buf: vec![0; 65536],
                })))
            }
        }
    }

    /// Sends one message. Over TCP without a connection the message is
    /// dropped: the engine sends its outstanding request again once
    /// `handle_connected` is called.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp(socket) => match socket.send(bytes).await {
                Ok(_) => Ok(()),
                // ICMP errors from an earlier datagram: the engine retransmits.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    debug!("UDP: gateway port unreachable");
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Link::Tcp(tcp) => match &mut tcp.stream {
                Some(stream) => stream.write_all(bytes).await,
                None => {
                    debug!("TCP: not connected, message left to the engine's re-send");
                    Ok(())
                }
            },
        }
    }

    /// Drops the TCP connection (to reconnect after the backoff); true if
    /// there was one. No-op over UDP.
    pub(super) fn reset(&mut self) -> bool {
        match self {
            Link::Udp(_) => false,
            Link::Tcp(tcp) => tcp.drop_connection(),
        }
    }

    /// Waits for something from the link. Cancel-safe enough for `select!`:
    /// a cancelled connection attempt is simply made again.
    pub(super) async fn recv(&mut self) -> Incoming {
        match self {
            Link::Udp(socket) => {
                let mut buf = [0u8; 65536];
                match socket.recv(&mut buf).await {
                    Ok(n) => Incoming::Messages(vec![buf.get(..n).unwrap_or(&[]).to_vec()]),
                    Err(e) => {
                        debug!(error = %e, "UDP receive error");
                        Incoming::Nothing
                    }
                }
            }
            Link::Tcp(tcp) => tcp.recv().await,
        }
    }
}

impl TcpLink {
    fn drop_connection(&mut self) -> bool {
        let had = self.stream.take().is_some();
        if had {
            self.decoder = StreamDecoder::new(self.max_message_len);
            self.next_attempt = Instant::now() + self.backoff;
        }
        had
    }

    async fn recv(&mut self) -> Incoming {
        // Frames already buffered (more than one wake-up's worth) first.
        let frames = self.frames();
        match frames {
            Err(()) => return Incoming::Disconnected,
            Ok(frames) if !frames.is_empty() => return Incoming::Messages(frames),
            Ok(_) => {}
        }
        let Some(stream) = &mut self.stream else {
            return self.connect().await;
        };
        match stream.read(&mut self.buf).await {
            Ok(0) => {
                info!("TCP: gateway closed the connection");
                self.lost();
                Incoming::Disconnected
            }
            Ok(n) => {
                let data = self.buf.get(..n).unwrap_or(&[]).to_vec();
                let mut rest = data.as_slice();
                let mut out = Vec::new();
                while !rest.is_empty() {
                    let took = self.decoder.push(rest);
                    rest = rest.get(took..).unwrap_or(&[]);
                    match self.frames_unbounded() {
                        Ok(mut f) => out.append(&mut f),
                        Err(()) => return Incoming::Disconnected,
                    }
                    if took == 0 && !rest.is_empty() {
                        // Cannot happen: next_frame drains a full buffer or fails.
                        break;
                    }
                }
                Incoming::Messages(out)
            }
            Err(e) => {
                warn!(error = %e, "TCP: connection lost");
                self.lost();
                Incoming::Disconnected
            }
        }
    }

    fn frames(&mut self) -> Result<Vec<Vec<u8>>, ()> {
        let mut out = Vec::new();
        while out.len() < MAX_FRAMES_PER_WAKE {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => out.push(frame.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    warn!(error = ?e, "TCP: bad framing from the gateway; reconnecting");
                    self.lost();
                    return Err(());
                }
            }
        }
        Ok(out)
    }

    fn frames_unbounded(&mut self) -> Result<Vec<Vec<u8>>, ()> {
        let mut out = Vec::new();
        loop {
            let mut more = self.frames()?;
            if more.is_empty() {
                return Ok(out);
            }
            out.append(&mut more);
        }
    }

    fn lost(&mut self) {
        self.stream = None;
        self.decoder = StreamDecoder::new(self.max_message_len);
        self.next_attempt = Instant::now() + self.backoff;
    }

    async fn connect(&mut self) -> Incoming {
        let handle = match &mut self.connecting {
            Some(handle) => handle,
            None => {
                tokio::time::sleep_until(self.next_attempt).await;
                let (gateway, limit) = (self.gateway, self.connect_timeout);
                self.connecting.insert(tokio::spawn(async move {
                    tokio::time::timeout(limit, TcpStream::connect(gateway))
                        .await
                        .unwrap_or_else(|_| {
                            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
                        })
                }))
            }
        };
        let result = handle.await;
        self.connecting = None;
        match result {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                info!(gateway = %self.gateway, "TCP: connected");
                self.stream = Some(stream);
                self.backoff = self.min_backoff;
                Incoming::Connected
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(e) => self.failed(&e.to_string()),
        }
    }

    fn failed(&mut self, why: &str) -> Incoming {
        warn!(gateway = %self.gateway, error = why, retry_in_ms = self.backoff.as_millis() as u64, "TCP: connect failed");
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        Incoming::Nothing
    }
}
