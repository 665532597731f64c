//! Links the `seam` binary with packed relative relocations (DT_RELR)
//! where the toolchain and C library support them.
//!
//! The binary is position independent, so the loader fixes up every
//! pointer in its read-only data at start. In the classic format that is
//! 24 bytes a pointer, about 6 MB here, all read at each start and kept
//! resident; packed, it is tens of kilobytes. Needs GNU ld 2.38 or lld 15
//! and glibc 2.36; a probe link decides, so older systems build as before.

use std::path::PathBuf;
use std::process::Command;

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The explorer's bundle is embedded; a rebuilt bundle must rebuild
    // the binary.
    println!("cargo:rerun-if-changed=ui/dist");
    let var = |name: &str| std::env::var(name).ok();
    // The probe runs what it links, so a cross build keeps the default.
    let native_linux_gnu = var("CARGO_CFG_TARGET_OS").as_deref() == Some("linux")
        && var("CARGO_CFG_TARGET_ENV").as_deref() == Some("gnu")
        && var("HOST") == var("TARGET");
    if native_linux_gnu && links_with_relr() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

/// Whether the linker rustc uses (`cc` unless Cargo configures another)
/// accepts the flag and makes a program that runs.
fn links_with_relr() -> bool {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let (source, program) = (out.join("relr-probe.c"), out.join("relr-probe"));
    if std::fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let linked = Command::new(linker)
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .arg(FLAG)
        .output()
        .is_ok_and(|o| o.status.success());
    linked && Command::new(&program).status().is_ok_and(|s| s.success())
}
