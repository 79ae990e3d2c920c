//! One module per `cargo xtask` command; each exposes `impl flags::X { fn run }`.

pub mod bench;
pub mod bench_image;
pub mod bench_rebuild;
pub mod bench_repo;
pub mod bench_source;
pub mod builder;
pub mod dist;
pub mod doctor;
pub mod image;
pub mod lint;
pub mod merge;
pub mod mutants;
pub mod repo;
pub mod verify;
