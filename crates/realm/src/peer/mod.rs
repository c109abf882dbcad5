//! `realm peer`: a plain (non-RSIP) IPsec host. Applications' packets come
//! out of a TUN device, go through the SPD, are protected with SAs keyed by
//! IKEv1 (`[connections]`, the shared runtime in `crate::ike`) or manually
//! (RFC 2401 s4.6.1) and leave on raw ESP/AH sockets or UDP 4500;
//! protected packets from the underlay are opened, checked against the
//! inbound SPD and written to the TUN. The IPsec logic is `realm-ipsec`'s,
//! the OS access `realm-io`'s; this module only wires them (see
//! ARCHITECTURE.md, "IPsec peer"). Configuration: `docs/peer-config.md`.

use std::path::PathBuf;

use anyhow::Context;

pub(crate) mod config;
mod daemon;
mod report;

use config::PeerConfig;

/// `realm peer`: run an IPsec host on a TUN.
#[derive(Debug, clap::Args)]
pub(crate) struct PeerArgs {
    /// Configuration file (TOML; see docs/peer-config.md).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration (parse it and install its SAs and policies
    /// into an engine), print a summary, and exit.
    #[arg(long)]
    check: bool,
}

/// Runs `realm peer`.
pub(crate) fn run(args: &PeerArgs) -> anyhow::Result<bool> {
    let config = PeerConfig::load(&args.config)?;
    if args.check {
        let mut engine = realm_ipsec::Ipsec::default();
        let ids = config
            .manual_keying()
            .install(&mut engine, realm_io::now())
            .context("install SAs and policies")?;
        let ike = config.connections.as_ref().map_or(String::new(), |c| {
            format!(
                ", IKE connections {:?}",
                c.connections
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
            )
        });
        println!(
            "{}: ok: TUN {} (MTU {}), underlay {}, {} SAs, {} policies, NAT-T ports {:?}{ike}",
            args.config.display(),
            config.tun.name,
            config.tun.mtu,
            config.underlay.address,
            ids.len(),
            config.policy.len(),
            config.udp_ports(),
        );
        return Ok(true);
    }
    init_tracing(&config.log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(daemon::run(config))?;
    Ok(true)
}

/// Logs to stderr; `RUST_LOG`, when set, overrides the configured filter.
fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
