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
