//! Random bytes for identifiers (SessionIDs), drawn from the operating system's random source
//! in blocks instead of one system call per identifier.
//!
//! Each thread keeps a block of 512 bytes from `getrandom`; an identifier takes 16 of them,
//! which are then erased from the block. A process forked from this one gets fresh bytes:
//! a `pthread_atfork` child handler bumps a generation that every thread's block is checked
//! against, so parent and child never hand out the same bytes.
//!
//! Lock and Key challenges do not come from here: `lock.rs` asks the operating system for
//! each one.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const BLOCK: usize = 512;

/// Bumped in every child process after a fork.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    // A flag, not a `Once`: a `Once` that a parent thread was running at a fork stays
    // "running" for ever in the child.
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.load(Ordering::Relaxed) && !REGISTERED.swap(true, Ordering::AcqRel) {
        #[cfg(unix)]
        // SAFETY: registers a handler that only touches an atomic (async-signal-safe).
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    }
}

struct Pool {
    bytes: [u8; BLOCK],
    used: usize,
    generation: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; BLOCK], used: BLOCK, generation: u64::MAX })
    };
}

/// 16 bytes from the operating system's random source (through this thread's block).
/// Panics only when the operating system has no random source, as `getrandom` does.
pub fn bytes16() -> [u8; 16] {
    watch_forks();
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    let take = |p: &mut Pool| {
        if p.used + 16 > BLOCK || p.generation != generation {
            getrandom::fill(&mut p.bytes).expect("operating system random source");
            p.used = 0;
            p.generation = generation;
        }
        let mut out = [0u8; 16];
        let range = p.used..p.used + 16;
        out.copy_from_slice(&p.bytes[range.clone()]);
        p.bytes[range].fill(0);
        p.used += 16;
        out
    };
    POOL.try_with(|p| take(&mut p.borrow_mut()))
        .unwrap_or_else(|_| {
            // The thread is ending (its block is gone): straight from the source.
            let mut out = [0u8; 16];
            getrandom::fill(&mut out).expect("operating system random source");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_across_blocks_and_threads() {
        let mut seen = HashSet::new();
        for _ in 0..3 * BLOCK / 16 {
            assert!(seen.insert(bytes16()));
        }
        let others: Vec<[u8; 16]> = std::thread::spawn(|| (0..100).map(|_| bytes16()).collect())
            .join()
            .unwrap();
        for b in others {
            assert!(seen.insert(b));
        }
    }

    #[test]
    fn a_new_generation_refills() {
        let a = bytes16();
        FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
        let b = bytes16();
        assert_ne!(a, b);
        POOL.with(|p| {
            let p = p.borrow();
            assert_eq!(p.used, 16, "the block was refilled for the new generation");
            assert!(
                p.bytes[..16].iter().all(|&x| x == 0),
                "taken bytes are erased"
            );
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_forked_child_does_not_repeat_the_parent() {
        // Prime this thread's block, then fork: the child's next bytes must differ from the
        // parent's next bytes.
        let _ = bytes16();
        let mut fds = [0i32; 2];
        // SAFETY: plain system calls; the child only computes, writes 16 bytes and exits.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let b = bytes16();
                libc::write(fds[1], b.as_ptr().cast(), 16);
                libc::_exit(0);
            }
            let mine = bytes16();
            let mut child = [0u8; 16];
            assert_eq!(libc::read(fds[0], child.as_mut_ptr().cast(), 16), 16);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
            assert_ne!(mine, child);
        }
    }
}
