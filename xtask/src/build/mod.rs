//! Making and checking a binary: backend choice and build commands, the toolchain, the ELF
//! check and the run check on the arch's CPU class, and the records that tell a build is up
//! to date.

pub mod backend;
pub mod cross;
pub mod elf;
pub mod emulator;
pub mod fingerprint;
pub mod run_check;
pub mod tool_steps;
pub mod toolchain;

/// `armv7-unknown-linux-musleabihf` → `ARMV7_UNKNOWN_LINUX_MUSLEABIHF`, as in cargo's env keys.
/// Here, not in backend.rs, because the backends and the cross backend both need it.
pub fn env_key(target: &str) -> String {
    target.to_ascii_uppercase().replace(['-', '.'], "_")
}
