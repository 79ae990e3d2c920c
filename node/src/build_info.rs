//! What this binary is: version, target, commit and build date, fixed at build time.

use serde::Serialize;

pub const NAME: &str = env!("CARGO_PKG_NAME");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const TARGET: &str = env!("EXONODE_TARGET");
pub const COMMIT: &str = env!("EXONODE_COMMIT");
pub const BUILD_DATE: &str = env!("EXONODE_BUILD_DATE");

#[derive(Serialize)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub target: &'static str,
    pub commit: &'static str,
    pub build_date: &'static str,
}

pub const BUILD_INFO: BuildInfo =
    BuildInfo { name: NAME, version: VERSION, target: TARGET, commit: COMMIT, build_date: BUILD_DATE };

/// The one line `exonode --version` prints.
pub fn version_line() -> String {
    format!("{NAME} {VERSION} ({TARGET}; commit {COMMIT}; built {BUILD_DATE})")
}
