//! See link_libtorch.rs.
include!("link_libtorch.rs");

fn main() {
    link_libtorch(&["rustc-link-arg"]);
}
