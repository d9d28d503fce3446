//! With the `duckdb` feature, otelsim links a prebuilt libduckdb (`make libduckdb`).
//! The binary records where to find it at run time: beside itself (`$ORIGIN`, for a
//! copied install) and the folder it was linked from, so no LD_LIBRARY_PATH is needed.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_DUCKDB").is_none() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
