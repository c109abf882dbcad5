//! The signalling link to the gateway: a TCP connection (framed by
//! `StreamDecoder`, reconnected with exponential backoff) or a connected UDP
//! socket (one datagram, one message). It tells the loop when a TCP
//! connection comes up or goes down; it never interprets a message.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context as _;
use realm_rsip::host::{HostConfig, Transport};
use realm_wire::rsip::StreamDecoder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
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
    /// The namespace's ephemeral port range as the daemon found it. The data
    /// plane later sets `ip_local_port_range` to the leased block, which is
    /// for applications: a reconnection binds a port from this range,
    /// outside the one in force, so the daemon's own signalling socket never
    /// takes a leased port.
    ephemeral: Option<RangeInclusive<u16>>,
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
                // Read before the data plane makes a leased block the
                // ephemeral range (see `TcpLink::ephemeral`).
                let ephemeral = realm_io::sysctl::ip_local_port_range().ok();
                Ok(Link::Tcp(Box::new(TcpLink {
                    gateway: host.gateway,
                    ephemeral,
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
                let avoid = realm_io::sysctl::ip_local_port_range().ok();
                let ports = signalling_ports(self.ephemeral.clone(), avoid);
                self.connecting.insert(tokio::spawn(async move {
                    tokio::time::timeout(limit, connect_from(gateway, ports))
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

/// How many ports a reconnection tries before it fails (and backs off).
const PORT_TRIES: usize = 32;

/// Candidate local ports for the signalling connection: from the original
/// ephemeral range, starting at a random place, skipping `avoid` (the range
/// in force, a leased block once the data plane set it). Empty when the
/// range in force is the original one (the kernel then picks, as usual) or
/// when either range is unknown.
fn signalling_ports(
    original: Option<RangeInclusive<u16>>,
    avoid: Option<RangeInclusive<u16>>,
) -> Vec<u16> {
    let (Some(original), Some(avoid)) = (original, avoid) else {
        return Vec::new();
    };
    if original == avoid || original.is_empty() {
        return Vec::new();
    }
    let (first, last) = (u32::from(*original.start()), u32::from(*original.end()));
    let span = last - first + 1;
    let mut seed = [0u8; 4];
    let start = match getrandom::fill(&mut seed) {
        Ok(()) => u32::from_be_bytes(seed) % span,
        Err(_) => 0,
    };
    (0..span)
        .map(|i| first + (start + i) % span)
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| !avoid.contains(p))
        .take(PORT_TRIES)
        .collect()
}

/// Connects to `gateway` from the first of `ports` that can be bound (any
/// port when `ports` is empty).
async fn connect_from(gateway: SocketAddr, ports: Vec<u16>) -> io::Result<TcpStream> {
    if ports.is_empty() {
        return TcpStream::connect(gateway).await;
    }
    let unspecified: IpAddr = if gateway.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free signalling port");
    for port in ports {
        let socket = if gateway.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        match socket.bind(SocketAddr::new(unspecified, port)) {
            Ok(()) => return socket.connect(gateway).await,
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signalling_ports_stay_out_of_the_leased_block() {
        let ports = signalling_ports(Some(32768..=60999), Some(40000..=40007));
        assert_eq!(ports.len(), PORT_TRIES);
        assert!(ports.iter().all(|p| (32768..=60999).contains(p)));
        assert!(ports.iter().all(|p| !(40000..=40007).contains(p)));
        // A block that covers the start of the range: the candidates skip it.
        let ports = signalling_ports(Some(1000..=1010), Some(1000..=1007));
        assert_eq!(
            ports
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            (1008..=1010).collect()
        );
    }

    #[test]
    fn the_kernel_picks_while_the_range_is_untouched() {
        assert!(signalling_ports(Some(32768..=60999), Some(32768..=60999)).is_empty());
        assert!(signalling_ports(None, Some(1..=2)).is_empty());
        assert!(signalling_ports(Some(1..=2), None).is_empty());
    }
}
