//! The allocator settings inference needs (glibc only). One CenterFace run allocates and frees
//! tens of tensors of up to ~24 MB each; glibc's defaults hand such blocks back to the kernel
//! (`mmap` above 128 KiB, heap trimming) and give every thread that allocates its own arena,
//! so each worker, ML and start-up thread keeps its own high-water mark of freed tensors.

/// Call first thing in `main`, before other threads start: one arena (tensors freed by one
/// inference serve the next, whichever thread runs it) until [`arenas`] allows more, and blocks
/// up to 32 MiB (glibc's ceiling) kept on the heap instead of being unmapped and faulted back in.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tunables; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Allows one arena per worker, for the threads started from now on: concurrent inferences then
/// take their tensors from heaps of their own. Sharing one, two single-threaded workers ran the
/// whole pipeline at 97 frames/s on two Zen 5 cores, against 107 with an arena each (and 105
/// for two processes); RSS grew from 90 to 105 MB.
pub fn arenas(workers: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above; glibc reads this limit when a thread first allocates.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, workers.clamp(1, 64) as i32);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = workers;
}
