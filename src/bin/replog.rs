//! `replog`: parse arguments, run the command, exit with its code.

use clap::Parser;

// One thread: a command mostly waits on the network, the nodes it asks at
// once (`verify`, `health`) are served concurrently on that one thread, and
// `replog bench` drives its connections faster from one thread than from
// several, whose wake-ups cross cores (docs/benchmarks.md, "One thread").
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = replog::cli::Cli::parse();
    std::process::exit(replog::cli::run(cli).await);
}
