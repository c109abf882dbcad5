//! `realm gateway`: the RSIP gateway daemon. It drives the sans-IO engine
//! (`realm_rsip::gateway::Gateway`) on tokio with the crash-safe store
//! (`realm-store`); it owns sockets, the clock, signals, metrics and the
//! control socket, and no protocol logic.
//!
//! Tasks: one engine task owning the `Gateway` ([`engine`]), a TCP accept
//! loop and one task per connection, one receive task per UDP socket
//! ([`net`]), the metrics server ([`metrics`]) and the control socket
//! (`crate::ctl`). Startup: open the store (its report is logged: a corrupt
//! or missing store starts empty and hosts resync, RFC 3103 10.2.2), restore
//! the engine from its rows (records that lapsed while down are ended and
//! logged), then serve. SIGTERM/SIGINT: stop accepting, let batches in flight
//! commit and their answers leave, close the store, exit 0.
//!
//! Configuration: `docs/gateway-config.md`; metrics: `docs/metrics.md`.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod dataplane;
pub(crate) mod engine;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod persist;

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use realm_rsip::gateway::Gateway;
use realm_store::{OpenStatus, Options, Store};
use tokio::sync::{mpsc, oneshot};

use crate::ctl::Response;
use config::DaemonConfig;
use control::CtlRequest;
use engine::{Engine, Inputs, Stop};
use net::NetCounters;

/// `realm gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {
    /// The configuration file (TOML, docs/gateway-config.md).
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Check the configuration, print it with every default filled in, and
    /// exit.
    #[arg(long)]
    check: bool,
}

/// Runs the daemon until SIGTERM/SIGINT. `Ok(true)`: clean exit.
pub(crate) fn run(args: &GatewayArgs) -> anyhow::Result<bool> {
    let config = DaemonConfig::load(&args.config)?;
    if args.check {
        print!("{}", toml::to_string(&config)?);
        return Ok(true);
    }
    init_logging(&config.log.level);
    // One thread runs every task (engine, sockets, metrics, control): a
    // request then crosses threads only to reach the store's writer, which
    // has a core of its own. Wake-ups between tasks on one thread cost far
    // less than cross-thread ones, and the engine is single-owner anyway.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(serve(config))?;
    Ok(true)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
    Ok(seed)
}

async fn serve(config: DaemonConfig) -> anyhow::Result<()> {
    let clock = clock::Clock::start();
    let now = clock.now();

    // The store: opened (and checked) before anything is served.
    let options = Options {
        durability: config.store.durability.into(),
        queue_capacity: config.store.queue_capacity,
        max_group: config.store.max_group,
        alloc_log: config.store.alloc_log.clone(),
        alloc_log_sync: Duration::from_millis(config.store.alloc_log_sync_ms),
        now: Some(now),
        prune_expired: false,
    };
    let path = config.store.path.clone();
    let (store, report) = tokio::task::spawn_blocking(move || Store::open_with(&path, &options))
        .await
        .context("store open task")?
        .with_context(|| format!("open the store {}", config.store.path.display()))?;
    match &report.status {
        OpenStatus::New => tracing::warn!(
            store = %config.store.path.display(),
            "no store found: starting empty; registered hosts will resync (RFC 3103 10.2.2)"
        ),
        OpenStatus::Recovered { reason } => tracing::error!(
            store = %config.store.path.display(),
            %reason,
            moved_aside = ?report.moved_aside,
            "the store was unusable and was moved aside: starting empty; hosts will resync (RFC 3103 10.2.2)"
        ),
        OpenStatus::Existing => {}
    }
    let store = Arc::new(store);

    // The engine, rebuilt from the store.
    let (state, undecodable) = {
        let s = Arc::clone(&store);
        tokio::task::spawn_blocking(move || persist::load(&s))
            .await
            .context("store load task")??
    };
    for why in &undecodable {
        tracing::warn!(row = %why, "store row skipped: it does not decode");
    }
    let (mut gw, restored) = Gateway::restore(config.gateway.clone(), seed()?, &state, now)
        .context("[gateway] configuration")?;
    gw.set_on_tcp_close(config.on_tcp_close);
    tracing::info!(
        hosts = restored.hosts,
        bindings = restored.bindings,
        quarantine = restored.quarantine,
        quarantine_ended = restored.quarantine_ended,
        expired_hosts = restored.expired_hosts.len(),
        expired_bindings = restored.expired_bindings.len(),
        dropped = restored.dropped.len(),
        "engine restored"
    );
    for why in &restored.dropped {
        tracing::warn!(record = %why, "stored record dropped (resync)");
    }

    // Sockets.
    let net_counters = Arc::new(NetCounters::default());
    let (input_tx, input_rx) = mpsc::channel(4096);
    let mut tasks = tokio::task::JoinSet::new();
    let next_conn = Arc::new(AtomicU64::new(1));
    let mut udp = Vec::new();
    for addr in &config.listen.addresses {
        let at = SocketAddr::V4(SocketAddrV4::new(*addr, config.listen.port));
        let listener =
            realm_io::socket::tcp_listen(at, &realm_io::socket::SocketOptions::default(), 1024)
                .with_context(|| format!("listen on TCP {at}"))?;
        tracing::info!(%at, "RSIP over TCP");
        tasks.spawn(net::accept_loop(
            listener,
            input_tx.clone(),
            config.limits.clone(),
            Arc::clone(&net_counters),
            Arc::clone(&next_conn),
        ));
        if config.listen.udp {
            let options = realm_io::socket::SocketOptions {
                recv_buffer: Some(config.limits.udp_recv_buffer),
                ..realm_io::socket::SocketOptions::default()
            };
            let socket = realm_io::socket::udp_bind(at, &options)
                .with_context(|| format!("bind UDP {at}"))?;
            let granted = realm_io::socket::recv_buffer_size(&socket).unwrap_or(0);
            let socket = Arc::new(socket);
            tracing::info!(%at, recv_buffer = granted, "RSIP over UDP");
            tasks.spawn(net::udp_loop(
                Arc::clone(&socket),
                udp.len(),
                input_tx.clone(),
                config.limits.clone(),
                Arc::clone(&net_counters),
            ));
            udp.push(socket);
        }
    }
    // The data plane (when a public interface is configured), loaded with
    // the bindings that survived the restart.
    let data_plane = match &config.data_plane.public_interface {
        Some(public) => Some(
            dataplane::start(
                &config.data_plane,
                public,
                &config.listen.addresses,
                &config.gateway,
                gw.bindings(),
                clock,
                input_tx.clone(),
            )
            .await
            .context("[data_plane]")?,
        ),
        None => {
            tracing::info!("no data_plane.public_interface: signalling only, no packets forwarded");
            None
        }
    };
    drop(input_tx);

    let (scrape_tx, scrape_rx) = mpsc::channel(16);
    if let Some(at) = config.metrics.listen {
        let listener = metrics::bind(at)
            .await
            .with_context(|| format!("listen for metrics on {at}"))?;
        tracing::info!(%at, "metrics on http://{at}/metrics");
        tasks.spawn(metrics::serve(
            listener,
            scrape_tx,
            Arc::clone(&net_counters),
        ));
    } else {
        drop(scrape_tx);
    }

    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let (incoming_tx, mut incoming_rx) = mpsc::channel::<crate::ctl::server::Incoming>(16);
    let ctl_server = crate::ctl::server::CtlServer::bind(&config.control.socket, incoming_tx)
        .with_context(|| format!("control socket {}", config.control.socket.display()))?;
    tracing::info!(socket = %config.control.socket.display(), "control socket");
    // `help` is answered here; the rest goes to the engine task.
    tasks.spawn(async move {
        while let Some(req) = incoming_rx.recv().await {
            if req.command == "help" {
                let _ = req.reply.send(
                    Response::ok(crate::ctl::help("gateway", control::COMMANDS))
                        .answered_by("gateway"),
                );
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let forwarded = CtlRequest {
                command: req.command,
                args: req.args,
                reply: tx,
            };
            let reply = req.reply;
            let ctl_tx: mpsc::Sender<CtlRequest> = ctl_tx.clone();
            tokio::spawn(async move {
                let response = match ctl_tx.send(forwarded).await {
                    Err(_) => Response::error("gateway stopping"),
                    Ok(()) => match rx.await {
                        Ok(Ok(v)) => Response::ok(v),
                        Ok(Err(e)) => Response::error(e),
                        Err(_) => Response::error("gateway stopping"),
                    },
                };
                let _ = reply.send(response.answered_by("gateway"));
            });
        }
    });

    // Signals.
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(async move {
        let stop = wait_for_signal().await;
        let _ = stop_tx.send(stop);
    });

    let mut engine = Engine::new(
        gw,
        clock,
        &store,
        persist::Persister::new(&state),
        &config,
        udp,
    );
    drop(state);
    if let Some(dp) = &data_plane {
        engine.set_data_plane(Arc::clone(&dp.shared));
    }
    engine.start().await?;
    tracing::info!("gateway serving");
    let inputs = Inputs {
        input: input_rx,
        ctl: ctl_rx,
        scrape: scrape_rx,
        stop: stop_rx,
    };
    let result = engine.run(inputs).await;
    // Stop accepting and reading before closing the store.
    tasks.abort_all();
    drop(ctl_server);
    let status = engine.gateway().status();
    drop(engine);
    // Forwarding stops, the steering rules and the TUN go.
    drop(data_plane);
    let store = Arc::try_unwrap(store).map_err(|_| anyhow::anyhow!("store still shared"))?;
    let closed = tokio::task::spawn_blocking(move || store.close())
        .await
        .context("store close task")?;
    let stop = result?;
    closed.context("close the store")?;
    tracing::info!(
        ?stop,
        hosts = status.hosts,
        bindings = status.bindings,
        "gateway stopped; store closed"
    );
    Ok(())
}

async fn wait_for_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    Stop::Signal
}
