//! Link libtorch so the built binaries run with no extra environment (docs/building.md):
//! force `libtorch_cuda` in (the linker's --as-needed would drop it and CUDA would silently be
//! unavailable) and set an rpath to the libtorch that script/setup installed.
include!("trainer/link_libtorch.rs");
