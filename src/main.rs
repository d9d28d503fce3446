//! Thin entry point: parse flags, run on a multi-threaded runtime, exit with the code.

// Generation allocates and frees many small attribute vectors per span; mimalloc
// measured faster than the system allocator on that pattern (see README, Load testing).
// Word-aligned requests take its plain, fast paths (see `allocator`).
#[global_allocator]
static ALLOC: otelsim::allocator::Allocator = otelsim::allocator::Allocator;

/// mimalloc's `mi_option_arena_eager_commit` (index 4 of its option enum).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// mimalloc's `mi_option_purge_delay` (index 15), in ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs before `main` and before the first allocation. Arenas commit memory as
/// it is used instead of up front, which measured ≈ 40 MB less peak RSS with log
/// records on, at the same speed. Freed memory goes back to the system after
/// 100 ms instead of 10: each export request's buffer (≈ 0.5 MB) was returned
/// and faulted in again, ≈ 90,000 page faults and 0.1–0.2 s of system CPU per
/// 800,000 spans; now ≈ 30,000, for ≈ 6 MB more peak RSS (500 ms saved a few
/// thousand faults more but peaked at up to 75 MB).
extern "C" fn allocator_options() {
    // SAFETY: sets two integer options and reads the environment with a
    // NUL-terminated name; no allocation has happened yet. mimalloc's own
    // MIMALLOC_PURGE_DELAY still wins when set.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        if libc::getenv(c"MIMALLOC_PURGE_DELAY".as_ptr()).is_null() {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100);
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static ALLOCATOR_OPTIONS: extern "C" fn() = allocator_options;

fn main() {
    let cli = otelsim::cli::Cli::parse_args();
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
