//! `realm host`: the RSIP host daemon. It drives the sans-IO host engine
//! (`realm_rsip::host::Host`) over a TCP connection or a UDP socket to the
//! gateway, logs what the engine reports, and de-registers on SIGTERM/SIGINT.
//! It holds no protocol logic of its own: every RSIP decision is the engine's.
//!
//! The loop is the thin one of STYLE 5: `select! { signalling socket, sleep
//! until the engine's next timeout, control socket, signals }`, flushing the
//! engine's transmissions and events after each wake-up. The control socket
//! (`realm ctl`, docs/ctl.md) drives the engine's library API: QUERY, ASSIGN,
//! LISTEN, EXTEND and FREE on demand, answered with the gateway's answer.

mod config;
mod control;
mod dataplane;
mod link;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use realm_rsip::host::{Host, HostEvent};
use realm_wire::rsip::TunnelType;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

use crate::ctl::server::{self, CtlServer};

pub(crate) use config::DaemonConfig;
use control::Control;
use dataplane::DataPlane;
use link::{Incoming, Link};

/// `realm host` arguments: a config file, or flags for the common case.
#[derive(Debug, Args)]
pub(crate) struct HostArgs {
    /// TOML config file (docs/host-config.md). Flags given with it override
    /// its values.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The gateway's signalling address, `IP` (port 4555) or `IP:PORT`.
    #[arg(long)]
    gateway: Option<String>,
    /// Signal over UDP instead of TCP.
    #[arg(long)]
    udp: bool,
    /// Hold an RSAP-IP binding of this many ports (1-255). Without a config
    /// file and without `--spis`, the default is 8.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    ports: Option<u8>,
    /// Hold an RSIPSEC binding of this many SPIs.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    spis: Option<u16>,
    /// Hold a LISTEN binding (RFC 3103 9.16) for this public port, for as
    /// long as the daemon runs. May be given more than once.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    listen: Vec<u16>,
    /// Lease time to suggest for the bindings, seconds.
    #[arg(long)]
    lease: Option<u32>,
    /// The control socket `realm ctl` talks to (default
    /// /run/realm/host.sock).
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// TUN device name (default realm0).
    #[arg(long)]
    tun: Option<String>,
    /// Signalling only: no TUN, routes, port range or tunnel.
    #[arg(long)]
    no_data_plane: bool,
    /// Tunnel every superpacket in this process, never through the kernel
    /// offload (`daemon.kernel_offload = false`).
    #[arg(long)]
    no_kernel_offload: bool,
    /// Log level (error, warn, info, debug, trace); `RUST_LOG` overrides it.
    #[arg(long)]
    log_level: Option<String>,
}

/// Runs the daemon until it is told to stop. `Ok(true)`: de-registered (or
/// gave up de-registering after the bounded wait) and exited cleanly.
pub(crate) fn run(args: &HostArgs) -> anyhow::Result<bool> {
    let config = DaemonConfig::from_args(args)?;
    init_logging(&config.daemon.log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(daemon(config))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // A second initialisation (never in the binary) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn daemon(config: DaemonConfig) -> anyhow::Result<bool> {
    let host_config = config.host.clone();
    let mut link = Link::open(&host_config, &config.daemon).await?;
    let mut dp = if config.daemon.data_plane {
        Some(DataPlane::open(host_config.gateway, &config.daemon).await?)
    } else {
        None
    };
    // After the set-up: the engine queues its REGISTER_REQUEST at once and
    // times its retransmission from `now`.
    let mut host = Host::new(host_config.clone(), realm_io::now()).context("host config")?;
    let mut bufs = Buffers::new();
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let socket = &config.daemon.control_socket;
    let (control_tx, mut control_rx) = tokio::sync::mpsc::channel::<server::Incoming>(16);
    // Dropped at return: removes the socket file.
    let _control_server = CtlServer::bind(socket, control_tx)
        .with_context(|| format!("control socket {}", socket.display()))?;
    let mut control = Control::new(realm_io::now());
    // The engine raises Closed by itself after shutdown_timeout_ms; this is
    // the daemon's own bound in case it never does.
    let shutdown_bound = Duration::from_millis(host_config.shutdown_timeout_ms)
        + Duration::from_millis(config.daemon.shutdown_grace_ms);
    let mut hard_deadline: Option<tokio::time::Instant> = None;
    info!(
        gateway = %host_config.gateway,
        transport = ?host_config.transport,
        control = %socket.display(),
        "realm host starting"
    );

    loop {
        while let Some(bytes) = host.poll_transmit() {
            if let Err(e) = link.send(&bytes).await {
                warn!(error = %e, "signalling send failed");
                if link.reset() {
                    host.handle_disconnected(realm_io::now());
                }
            }
        }
        while let Some(event) = host.poll_event() {
            control.on_event(&event, realm_io::now());
            if let Some(dp) = &mut dp {
                match &event {
                    HostEvent::BindingGranted(b) => dp.granted(b).await,
                    HostEvent::BindingRevoked { binding, .. } => dp.revoked(binding.bind_id).await,
                    HostEvent::Closed => dp.close(),
                    _ => {}
                }
            }
            if log_event(&event) {
                info!("realm host stopped");
                return Ok(true);
            }
            if let HostEvent::UseTcp = event {
                // The engine now says TCP: a TCP link, connected as usual.
                link = Link::open(host.config(), &config.daemon).await?;
            }
            if let HostEvent::GatewayUnreachable { .. } = event
                && link.reset()
            {
                // Over TCP the engine waits for a new connection.
                host.handle_disconnected(realm_io::now());
            }
        }
        let timeout = host.poll_timeout().map(tokio::time::Instant::from_std);
        let mut packet = Packet::None;
        tokio::select! {
            r = tun_recv(dp.as_ref(), &mut bufs.tun, &mut bufs.tun_lens, &mut bufs.whole) => {
                packet = Packet::Tun(r);
            }
            r = raw_recv(dp.as_ref(), &mut bufs.ipip, &mut bufs.gre, &mut bufs.raw_lens) => {
                packet = Packet::Raw(r);
            }
            incoming = link.recv() => match incoming {
                Incoming::Connected => host.handle_connected(realm_io::now()),
                Incoming::Disconnected => host.handle_disconnected(realm_io::now()),
                Incoming::Messages(frames) => {
                    let now = realm_io::now();
                    for frame in &frames {
                        host.handle_message(now, frame);
                    }
                }
                Incoming::Nothing => {}
            },
            () = sleep_until(timeout) => host.handle_timeout(realm_io::now()),
            Some(incoming) = control_rx.recv() => {
                let status = dp.as_ref().map(DataPlane::status_json);
                control.handle(&mut host, realm_io::now(), incoming, status);
            }
            _ = sigterm.recv(), if hard_deadline.is_none() => {
                info!("SIGTERM: de-registering");
                host.shutdown(realm_io::now());
                hard_deadline = Some(tokio::time::Instant::now() + shutdown_bound);
            }
            _ = sigint.recv(), if hard_deadline.is_none() => {
                info!("SIGINT: de-registering");
                host.shutdown(realm_io::now());
                hard_deadline = Some(tokio::time::Instant::now() + shutdown_bound);
            }
            () = sleep_until(hard_deadline), if hard_deadline.is_some() => {
                warn!("shutdown did not finish in time; exiting");
                if let Some(dp) = &mut dp {
                    dp.close();
                }
                return Ok(true);
            }
        }
        if let Some(dp) = &mut dp {
            match packet {
                Packet::Tun(Ok((n, whole))) => {
                    let packets: Vec<&[u8]> = bufs.tun[..n]
                        .iter()
                        .zip(&bufs.tun_lens[..n])
                        .map(|(b, &l)| &b[..l])
                        .collect();
                    if n > 0 {
                        dp.outbound_batch(&packets).await;
                    }
                    // After the packets read before it: the flow's order holds.
                    if whole.is_some() {
                        dp.outbound_whole(&bufs.whole).await;
                    }
                }
                Packet::Raw(Ok((tunnel, n))) => {
                    let (list, lens) = match tunnel {
                        TunnelType::Gre => (&bufs.gre, &bufs.raw_lens[bufs.raw_lens.len() / 2..]),
                        _ => (&bufs.ipip, &bufs.raw_lens[..]),
                    };
                    let packets: Vec<&[u8]> = list[..n]
                        .iter()
                        .zip(&lens[..n])
                        .map(|(b, &l)| &b[..l])
                        .collect();
                    dp.inbound_batch(&packets).await;
                }
                Packet::Tun(Err(e)) | Packet::Raw(Err(e)) => debug!(error = %e, "data plane read"),
                Packet::None => {}
            }
        }
    }
}

/// A batch read in the select, handled after it (when nothing borrows the
/// data plane).
enum Packet {
    None,
    /// Split packets, and whether a superpacket was kept whole (in `Buffers::whole`).
    Tun(std::io::Result<(usize, Option<realm_io::Gso>)>),
    Raw(std::io::Result<(TunnelType, usize)>),
}

/// The data plane's receive buffers: a TUN batch (MTU-sized packets, split
/// from offloaded superpackets) and a `recvmmsg` batch per tunnel socket
/// (whole tunnel packets, reassembled by the kernel when fragmented).
struct Buffers {
    tun: Vec<Vec<u8>>,
    tun_lens: Vec<usize>,
    /// A TCP superpacket from the TUN that leaves whole.
    whole: Vec<u8>,
    ipip: Vec<Vec<u8>>,
    gre: Vec<Vec<u8>>,
    /// First half: IP-in-IP lengths; second half: GRE.
    raw_lens: Vec<usize>,
}

impl Buffers {
    /// Raw batches are smaller than TUN ones: their buffers hold whole
    /// (possibly reassembled) packets of up to 64 KiB.
    const RAW_BATCH: usize = 16;

    fn new() -> Buffers {
        let n = realm_io::MAX_BATCH;
        Buffers {
            tun: vec![vec![0; 2048]; n],
            tun_lens: vec![0; n],
            whole: Vec::with_capacity(realm_io::MAX_IPV4_PACKET),
            ipip: vec![vec![0; realm_io::MAX_IPV4_PACKET]; Self::RAW_BATCH],
            gre: vec![vec![0; realm_io::MAX_IPV4_PACKET]; Self::RAW_BATCH],
            raw_lens: vec![0; 2 * Self::RAW_BATCH],
        }
    }
}

async fn tun_recv(
    dp: Option<&DataPlane>,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
    whole: &mut Vec<u8>,
) -> std::io::Result<(usize, Option<realm_io::Gso>)> {
    match dp {
        Some(dp) => {
            dp.tun
                .recv_batch_whole(bufs, lens, whole, |p, gso_size| dp.keep_whole(p, gso_size))
                .await
        }
        None => std::future::pending().await,
    }
}

async fn raw_recv(
    dp: Option<&DataPlane>,
    ipip: &mut [Vec<u8>],
    gre: &mut [Vec<u8>],
    lens: &mut [usize],
) -> std::io::Result<(TunnelType, usize)> {
    match dp {
        Some(dp) => dp.raw.recv_batch(ipip, gre, lens).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Logs one engine event; true on `Closed`.
fn log_event(event: &HostEvent) -> bool {
    match event {
        HostEvent::Registered(r) => info!(
            client_id = r.client_id.0,
            flow_policy = ?r.flow_policy,
            methods = ?r.methods,
            tunnel_types = ?r.tunnel_types,
            "registered"
        ),
        HostEvent::UseTcp => warn!("the gateway answered USE_TCP: moving to TCP"),
        HostEvent::RegistrationFailed(code) => warn!(?code, "registration refused"),
        HostEvent::Unregistered { client_id, reason } => {
            info!(client_id = client_id.0, ?reason, "unregistered");
        }
        HostEvent::BindingGranted(b) => info!(
            bind_id = b.bind_id.0,
            method = ?b.method,
            address = ?b.local_address,
            ports = ?b.local_ports,
            spis = ?b.spis,
            tunnel = ?b.tunnel_type,
            endpoint = ?b.tunnel_endpoint,
            "binding granted"
        ),
        HostEvent::BindingExtended { bind_id, expires } => info!(
            bind_id = bind_id.0,
            lease_left_s = expires.saturating_duration_since(realm_io::now()).as_secs(),
            "binding extended"
        ),
        HostEvent::BindingRevoked { binding, reason } => {
            info!(bind_id = binding.bind_id.0, ?reason, "binding revoked");
        }
        HostEvent::QueryAnswered { request, answer } => {
            debug!(request = request.0, ?answer, "query answered");
        }
        HostEvent::RequestFailed { request, error } => {
            warn!(request = request.0, ?error, "request failed");
        }
        HostEvent::GatewayError { code, bind_id } => {
            warn!(?code, bind_id = ?bind_id.map(|b| b.0), "gateway error");
        }
        HostEvent::GatewayUnreachable { attempts } => {
            warn!(attempts, "gateway unreachable");
        }
        HostEvent::Closed => return true,
    }
    false
}
