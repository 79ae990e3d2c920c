//! `cargo xtask dist` and `verify`, end to end.
