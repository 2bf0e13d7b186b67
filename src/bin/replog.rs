//! `replog`: parse arguments, run the command, exit with its code.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = replog::cli::Cli::parse();
    std::process::exit(replog::cli::run(cli).await);
}
