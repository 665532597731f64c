//! The process's allocator, and the pages it gets from the kernel.
//!
//! mimalloc asks for transparent huge pages on the regions it reserves,
//! and Debian's default (`madvise`) grants them. Ingest frees memory in
//! large pieces (a sealed segment's columns, a request's buffers) that
//! mimalloc returns to the kernel a second later and takes back as fresh
//! pages: with huge pages every such fault zeroes 2 MiB however little of
//! it is used, and at 50,000 spans/s zeroing pages was the largest single
//! item of the server's CPU profile (the figures are in BENCHMARKS.md).
//! Regular 4 KiB pages are zeroed only where they are touched.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the whole process on regular pages. The setting covers mappings
/// made before the call too: the kernel checks it at each fault.
pub fn small_pages() {
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        // Older kernels and some sandboxes refuse it; huge pages cost CPU,
        // not correctness.
        tracing::debug!(%error, "transparent huge pages stay on");
    }
}
