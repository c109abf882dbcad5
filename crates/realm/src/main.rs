//! `realm`: the command-line front end. Each subcommand is a thin driver:
//! protocol logic lives in the library crates.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ctl;
mod decode;
mod host;
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
    /// Run an RSIP host: register with a gateway, hold bindings, de-register on SIGTERM.
    Host(host::HostArgs),
    /// Run a plain IPsec host: a TUN, an SPD and manually keyed SAs
    /// (docs/peer-config.md).
    Peer(peer::PeerArgs),
    /// Ask a running daemon through its control socket (docs/ctl.md),
    /// e.g. `realm ctl sas`.
    Ctl(ctl::CtlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Host(args) => host::run(args),
        Command::Peer(args) => peer::run(args),
        Command::Ctl(args) => ctl::client::run(args),
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
