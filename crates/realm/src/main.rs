//! `realm`: the command-line front end. Each subcommand is a thin driver:
//! protocol logic lives in the library crates.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ctl;
mod decode;
mod gateway;
mod host;
mod ike;
mod lab;
mod peer;

#[derive(Debug, Parser)]
#[command(
    name = "realm",
    version,
    about = "Realm-Specific IP (RSIP) with end-to-end IPsec"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode RSIP messages (hex) or a capture (pcap/pcapng) with its IP,
    /// tunnel, ESP/AH and ISAKMP headers.
    Decode(decode::DecodeArgs),
    /// Run the RSIP gateway daemon (docs/gateway-config.md).
    Gateway(gateway::GatewayArgs),
    /// Ask a running daemon (gateway or peer) through its control socket
    /// (docs/ctl.md), e.g. `realm ctl status`, `realm ctl sas`.
    Ctl(ctl::client::CtlArgs),
    /// Run an RSIP host: register with a gateway, hold bindings, de-register on SIGTERM.
    Host(host::HostArgs),
    /// The live demo: RSIP hosts, a gateway with one public address and a
    /// public host in network namespaces, with traffic through RSIP (root).
    Lab(lab::LabArgs),
    /// Run a plain IPsec host: a TUN, an SPD and manually keyed SAs
    /// (docs/peer-config.md).
    Peer(peer::PeerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Ctl(args) => ctl::client::run(args),
        Command::Host(args) => host::run(args),
        Command::Peer(args) => peer::run(args),
        Command::Lab(args) => lab::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("realm: {e:#}");
            ExitCode::from(2)
        }
    }
}
