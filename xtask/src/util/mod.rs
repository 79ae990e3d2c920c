//! Process, signal and file-system plumbing shared by every command.

pub mod cmd;
pub mod interrupt;
pub mod pool;
pub mod progress;
pub mod report;
pub mod staging;
pub mod tar_writer;
pub mod template;
