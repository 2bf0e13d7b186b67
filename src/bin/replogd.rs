//! `replogd`: parse arguments, set up logging, run the daemon.

use clap::Parser;

fn main() {
    let args = replog::daemon::DaemonArgs::parse();
    replog::daemon::init_logging();
    std::process::exit(replog::daemon::main(args));
}
