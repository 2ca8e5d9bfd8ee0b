//! The allocator settings inference needs (glibc only). One CenterFace run allocates and frees
//! tens of tensors of up to ~24 MB each; glibc's defaults hand such blocks back to the kernel
//! (`mmap` above 128 KiB, heap trimming) and give every thread that allocates its own arena,
//! so each worker, ML and start-up thread keeps its own high-water mark of freed tensors.

/// Call first thing in `main`, before other threads start: one arena for the whole process
/// (tensors freed by one worker serve the next, whichever thread runs it) and blocks up to
/// 32 MiB (glibc's ceiling) kept on the heap instead of being unmapped and faulted back in.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tunables; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
