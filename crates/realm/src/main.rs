//! `realm`: the command-line front end.
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "realm",
    version,
    about = "Realm-Specific IP (RSIP) with end-to-end IPsec"
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
