//! The README's benchmark figures live in docs/benchmarks/service.md, written by the service
//! bench (`-- --record`) with the SHA-256 of its own source: figures taken with another version
//! of the bench (other rows, labels or method) fail here.

use sha2::{Digest, Sha256};

const RESULTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/benchmarks/service.md"
);

#[test]
fn recorded_benchmark_is_of_the_current_bench() {
    let recorded = std::fs::read_to_string(RESULTS).unwrap_or_else(|e| panic!("{RESULTS}: {e}"));
    let hash = recorded
        .lines()
        .find_map(|l| l.strip_prefix("<!-- bench source sha256: "))
        .and_then(|l| l.strip_suffix(" -->"))
        .expect("docs/benchmarks/service.md names the bench source it was written by");
    let current = hex::encode(Sha256::digest(include_str!("../../benches/service.rs")));
    assert_eq!(
        hash, current,
        "docs/benchmarks/service.md was written by another version of services/datastorage/benches/service.rs: run `cargo bench -p datastorage --bench service -- --record` and commit the file"
    );
    assert!(recorded.contains("| benchmark | service | baseline (same run) |"));
}
