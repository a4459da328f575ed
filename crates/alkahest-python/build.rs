//! Embeds `ALKAHEST_BUILD_ID`: a hash of every Rust source file of the workspace and of
//! `Cargo.lock`. The LLVM tier's cached objects call this library's routines by ABI and
//! follow its bulk-plan layout, so its disk cache keys on this identity: objects written
//! by another build are never loaded. (Cheaper than hashing the library file at run time.)

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn main() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for name in ["alkahest-core", "alkahest-cranelift", "alkahest-python"] {
        let src = crates.join(name).join("src");
        println!("cargo:rerun-if-changed={}", src.display());
        sources(&src, &mut files);
        files.push(crates.join(name).join("Cargo.toml"));
    }
    files.push(crates.join("../Cargo.lock"));
    files.sort();
    let mut h = DefaultHasher::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        h.write(f.strip_prefix(&crates).unwrap_or(f).to_string_lossy().as_bytes());
        h.write(&std::fs::read(f).unwrap_or_default());
    }
    h.write(std::env::var("PROFILE").unwrap_or_default().as_bytes());
    h.write(std::env::var("TARGET").unwrap_or_default().as_bytes());
    println!("cargo:rustc-env=ALKAHEST_BUILD_ID={:016x}", h.finish());
}
