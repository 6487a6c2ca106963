// Shared by the build scripts of the crates whose targets link libtorch (the worker binary, the
// tests and benches that train in-process, and tunewright-trainer): an rpath to libtorch, and
// libtorch_cuda linked even when unused (docs/building.md). `targets` are the cargo directives
// that say which targets get the link arguments (`rustc-link-arg` for all of a crate's).
fn link_libtorch(targets: &[&str]) {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set: run script/setup first");
        return;
    };
    let lib = std::path::PathBuf::from(root).join("lib");
    let lib = lib.display();
    let cuda = std::path::Path::new(&format!("{lib}/libtorch_cuda.so")).exists();
    for target in targets {
        println!("cargo:{target}=-Wl,-rpath,{lib}");
        if cuda {
            println!("cargo:{target}=-Wl,--no-as-needed");
            println!("cargo:{target}=-L{lib}");
            println!("cargo:{target}=-ltorch_cuda");
            println!("cargo:{target}=-Wl,--as-needed");
        }
    }
}
