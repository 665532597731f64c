//! Links the `seam` binary with packed relative relocations (DT_RELR)
//! where the toolchain and C library support them.
//!
//! The binary is position independent, so the loader fixes up every
//! pointer in its read-only data at start. In the classic format that is
//! 24 bytes a pointer, about 6 MB here, all read at each start and kept
//! resident; packed, it is tens of kilobytes. Needs GNU ld 2.38 or lld 15
//! and glibc 2.36; a probe link decides, so older systems build as before.

use std::io::Write;
use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).ok();
    // The probe runs what it links, so a cross build keeps the default.
    let native_linux_gnu = var("CARGO_CFG_TARGET_OS").as_deref() == Some("linux")
        && var("CARGO_CFG_TARGET_ENV").as_deref() == Some("gnu")
        && var("HOST") == var("TARGET");
    if native_linux_gnu && links_with_relr() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

/// Whether the C compiler Cargo links with accepts the flag and makes a
/// program that runs.
fn links_with_relr() -> bool {
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return false;
    };
    let program = std::path::Path::new(&out).join("relr-probe");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let child = Command::new(&cc)
        .args(["-x", "c", "-", "-o"])
        .arg(&program)
        .arg(FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"int main(void) { return 0; }\n");
    }
    if !child.wait().is_ok_and(|s| s.success()) {
        return false;
    }
    Command::new(&program).status().is_ok_and(|s| s.success())
}
