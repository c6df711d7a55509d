//! Embeds hls.js (installed from npm by `npm ci` at the repository root, pinned by
//! package-lock.json) into the binary for the web page. Without it the page falls back to the
//! browser's native HLS, and the build says so.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let hlsjs = root.join("../../node_modules/hls.js/dist/hls.min.js");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("hls.min.js");
    println!("cargo::rerun-if-changed={}", hlsjs.display());
    match std::fs::read(&hlsjs) {
        Ok(bytes) => std::fs::write(&out, bytes).expect("write hls.min.js"),
        Err(_) => {
            println!(
                "cargo::warning=hls.js not found at {}: run `npm ci` at the repository root; \
                 the web page will use the browser's native HLS only",
                hlsjs.display()
            );
            std::fs::write(&out, b"").expect("write empty hls.min.js");
        }
    }
}
