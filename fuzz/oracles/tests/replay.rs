//! Every fuzz input we keep, replayed natively through its target's oracle: the seeds
//! (`fuzz/seeds/<target>/`) and every crash ever found (`fuzz/regressions/<target>/`, a file per
//! crash, named after libFuzzer's artifact). A crash fixed once stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use easy_jwt_fuzz_oracles::targets;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs every file of `<corpus>/<target>/`; returns how many.
fn replay(corpus: &str, target: &str, check: Oracle) -> usize {
    let dir = fuzz_dir().join(corpus).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} breaks an invariant", path.display());
        count += 1;
    }
    count
}

/// An oracle: panics when its input breaks an invariant.
type Oracle = fn(&[u8]);

const TARGETS: [(&str, Oracle); 6] = [
    ("auth_response", targets::auth_response::check),
    ("config", targets::config::check),
    ("strict_json", targets::strict_json::check),
    ("path", targets::path::check),
    ("request", targets::request::check),
    ("token", targets::token::check),
];

#[test]
fn every_seed_keeps_the_invariants() {
    for (target, check) in TARGETS {
        assert!(replay("seeds", target, check) > 0, "no seeds for {target}");
    }
}

#[test]
fn every_crash_ever_found_stays_fixed() {
    let replayed: usize = TARGETS
        .iter()
        .map(|(target, check)| replay("regressions", target, *check))
        .sum();
    assert!(
        replayed > 0,
        "fuzz/regressions holds the crashes found so far"
    );
}

/// The crash `make fuzz` found in the `token` target (issue: one request-target parser): the
/// query was read up to the first `#`, stripping kept the fragment, and the fragment held a
/// second `?access_token=`.
#[test]
fn the_fragment_crash_is_in_the_regressions() {
    let path = fuzz_dir().join("regressions/token/crash-159851f6-fragment");
    let data = std::fs::read(&path).unwrap();
    assert_eq!(data[0] & 0b110, 0b110, "strip and query source on");
    targets::token::check(&data);
}
