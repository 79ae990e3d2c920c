//! End-to-end tests: they drive the real `cargo xtask` with real compilers, qemu-user, Docker
//! and a registry on loopback, and read like the README. One binary, so the ten-arch dist is
//! built once and shared.

mod fault_proxy;
mod support;

mod deb;
mod dist;
mod doctor;
mod image;
mod lint;
mod merge;
mod network;
mod oci;
mod plan_steps;
mod repo;
mod rpm;
mod sign;
mod source;
