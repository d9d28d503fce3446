//! Thin entry point: parse flags, run on a multi-threaded runtime, exit with the code.

use clap::Parser;

// Generation allocates and frees many small attribute vectors per span; mimalloc
// measured faster than the system allocator on that pattern (see README, Load testing).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = otelsim::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("otelsim: cannot start the async runtime: {e}");
            std::process::exit(otelsim::app::exit::RUNTIME);
        }
    };
    let code = runtime.block_on(otelsim::app::run(cli));
    // Exporter tasks are finished by now; do not wait for idle connections to close.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
