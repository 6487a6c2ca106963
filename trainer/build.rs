//! See link_libtorch.rs.
include!("link_libtorch.rs");
