//! The worker threads of parallel bulk calls: one pool per process, of a bounded size,
//! made again in a child process after `fork`.
//!
//! - **Bounded.** The pool has [`max_threads`] threads: the core count, or
//!   `ALKAHEST_NUM_THREADS` if that is larger, never more than [`HARD_MAX_THREADS`].
//!   A call asking for more threads runs on that many; asking never starts new threads.
//! - **Fork.** A forked child has none of its parent's threads, so a pool inherited
//!   through `fork` would wait forever for workers that do not exist. The pool remembers
//!   the process id it was made in; a call from another process makes a new one. The
//!   pool is reached through an atomic pointer, never a lock another thread could have
//!   held at the moment of the fork.
//! - **Interruptible.** Work is split into chunks claimed from an atomic counter. The
//!   calling thread works too, and between its chunks (at most every
//!   [`CHECK_INTERVAL`]) asks `interrupted()`; once that says yes, no new chunk starts
//!   and the call returns [`Error::Interrupted`] as soon as the running chunks end.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Most threads the pool may ever have, whatever `ALKAHEST_NUM_THREADS` says.
pub const HARD_MAX_THREADS: usize = 1024;

/// How often, at most, the calling thread asks whether to stop.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Cores available to this process (read once: std reads cgroup files, ~30 us).
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `ALKAHEST_NUM_THREADS`, else `OMP_NUM_THREADS`, if set to a positive integer. The
/// second is how Dask workers, job schedulers and HPC batch systems tell a process how
/// many threads are its own (a Dask worker process gets 1 and runs one task per thread);
/// numexpr and the BLAS libraries read it too.
fn env_threads() -> Option<usize> {
    let read =
        |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&t| t > 0);
    read("ALKAHEST_NUM_THREADS").or_else(|| read("OMP_NUM_THREADS"))
}

/// Default thread count of parallel calls: `ALKAHEST_NUM_THREADS`, else `OMP_NUM_THREADS`,
/// else all cores.
pub fn default_threads() -> usize {
    env_threads().unwrap_or_else(cores).min(HARD_MAX_THREADS)
}

/// Threads a parallel call can use at most (the pool's size).
pub fn max_threads() -> usize {
    cores().max(env_threads().unwrap_or(0)).min(HARD_MAX_THREADS)
}

struct Pool {
    pid: u32,
    pool: rayon::ThreadPool,
}

static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

/// The pool of this process, made on first use (and again after a fork).
fn pool() -> Result<&'static Pool> {
    let pid = std::process::id();
    loop {
        let current = POOL.load(Ordering::Acquire);
        // SAFETY: pools are leaked, never freed: a non-null pointer stays valid.
        if let Some(p) = unsafe { current.as_ref() } {
            if p.pid == pid {
                return Ok(p);
            }
        }
        let size = max_threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(size)
            .thread_name(|i| format!("alkahest-{i}"))
            .build()
            .map_err(|e| Error::Expression(format!("could not start {size} worker threads: {e}")))?;
        let new = Box::into_raw(Box::new(Pool { pid, pool }));
        match POOL.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
            // The parent's pool is left as it is: its threads do not exist in this process.
            Ok(_) => return Ok(unsafe { &*new }),
            // Another thread made one first: use that (ours is dropped, its threads end).
            Err(_) => drop(unsafe { Box::from_raw(new) }),
        }
    }
}

/// Runs `work(start, end)` over `[0, n)` in chunks of at most `chunk` on up to `threads`
/// threads (the calling thread one of them), stopping early if `interrupted()` says so.
/// `work` must be safe to run on disjoint ranges at once.
pub fn run_chunks(
    n: usize,
    chunk: usize,
    threads: usize,
    work: &(dyn Fn(usize, usize) + Sync),
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let chunk = chunk.max(1);
    let n_chunks = n.div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let claim = || {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let c = next.fetch_add(1, Ordering::Relaxed);
        (c < n_chunks).then(|| (c * chunk, ((c + 1) * chunk).min(n)))
    };
    let helpers = threads.min(max_threads()).min(n_chunks).saturating_sub(1);
    let mut last_check = Instant::now();
    let mut caller = || {
        while let Some((start, end)) = claim() {
            work(start, end);
            if last_check.elapsed() >= CHECK_INTERVAL {
                last_check = Instant::now();
                if interrupted() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    };
    if helpers == 0 {
        caller();
    } else {
        pool()?.pool.in_place_scope(|s| {
            for _ in 0..helpers {
                s.spawn(|_| {
                    while let Some((start, end)) = claim() {
                        work(start, end);
                    }
                });
            }
            caller();
        });
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_index_is_covered_once() {
        let seen = Mutex::new(vec![0u8; 100_003]);
        run_chunks(
            100_003,
            1000,
            4,
            &|a, b| seen.lock().unwrap()[a..b].iter_mut().for_each(|v| *v += 1),
            &mut || false,
        )
        .unwrap();
        assert!(seen.into_inner().unwrap().iter().all(|&v| v == 1));
    }

    #[test]
    fn an_interruption_stops_new_chunks() {
        let done = AtomicUsize::new(0);
        let work = |_: usize, _: usize| {
            std::thread::sleep(Duration::from_millis(5));
            done.fetch_add(1, Ordering::Relaxed);
        };
        let r = run_chunks(1000, 1, 2, &work, &mut || true);
        assert_eq!(r, Err(Error::Interrupted));
        assert!(done.load(Ordering::Relaxed) < 100);
    }

    #[test]
    fn huge_thread_counts_use_the_one_bounded_pool() {
        let start = Instant::now();
        run_chunks(1 << 16, 16, 1_000_000, &|_, _| {}, &mut || false).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(pool().unwrap().pool.current_num_threads() <= HARD_MAX_THREADS);
    }
}
