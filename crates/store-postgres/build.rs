//! Lets `JUNCTION_SKIP_POSTGRES=1` compile the PostgreSQL-backed tests out, for machines without
//! a server; without it, those tests fail loudly when no server is reachable.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(junction_skip_postgres)");
    println!("cargo::rerun-if-env-changed=JUNCTION_SKIP_POSTGRES");
    if std::env::var("JUNCTION_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
        println!("cargo::rustc-cfg=junction_skip_postgres");
    }
}
