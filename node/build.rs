//! Bakes build facts into the binary: the target triple, the git commit and the build date.
//! The date comes from SOURCE_DATE_EPOCH, never the wall clock, so rebuilds are byte-identical.

use std::time::{Duration, UNIX_EPOCH};

fn main() {
    for var in ["SOURCE_DATE_EPOCH", "GIT_COMMIT"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let commit = std::env::var("GIT_COMMIT").unwrap_or_else(|_| "unknown".into());
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(raw) => {
            let secs: u64 = raw
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH must be seconds since 1970, got {raw:?}"));
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()[..10]
                .to_string()
        }
        Err(_) => "unknown".to_string(),
    };
    println!("cargo:rustc-env=EXONODE_TARGET={target}");
    println!("cargo:rustc-env=EXONODE_COMMIT={commit}");
    println!("cargo:rustc-env=EXONODE_BUILD_DATE={date}");
}
