//! Link libtorch into the worker binary and into the tests and benches that train in-process,
//! so they run with no extra environment (docs/building.md): an rpath to the libtorch that
//! script/setup installed, `libtorch_cuda` forced in. The service binary, `tunewright`, gets
//! none of it: it links no torch. The worker also looks for libtorch where `script/install`
//! puts it (`<prefix>/lib/tunewright/torch/lib`, relative to `<prefix>/bin`), before the
//! checkout's.
include!("trainer/link_libtorch.rs");

fn main() {
    println!(
        "cargo:rustc-link-arg-bin=tunewright-worker=-Wl,-rpath,$ORIGIN/../lib/tunewright/torch/lib"
    );
    link_libtorch(&[
        "rustc-link-arg-bin=tunewright-worker",
        "rustc-link-arg-tests",
        "rustc-link-arg-benches",
    ]);
}
