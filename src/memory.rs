//! Giving freed memory back to the operating system.
//!
//! glibc keeps freed heap pages in its arenas; after a large zone file is reloaded or removed
//! the process would keep its peak size. [`release_free_memory`] asks the allocator to return
//! what it can (`malloc_trim`). It changes no data.

/// Return free heap memory to the operating system (glibc); a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
