//! The inference thread pool. When the process may run on exactly as many CPUs as inference has
//! threads (a dedicated cpuset, as with Kubernetes' static CPU manager or a 2-CPU VM), each
//! thread is pinned to its own CPU: after an idle gap of a tenth of a second or more, Linux wakes
//! both threads on one CPU and the first frame ran at one thread's speed (40 ms instead of 27 at
//! 640×384 on two cores). Where the process shares more CPUs than it has threads, pinning could
//! stack replicas on the same CPUs, so the scheduler keeps the choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tract_linalg::multithread::Executor;

/// An executor running one inference on `threads` threads (the caller's own when 1).
pub fn executor(threads: usize) -> Result<Executor, rayon::ThreadPoolBuildError> {
    if threads <= 1 {
        return Ok(Executor::SingleThread);
    }
    let pinning = pinning(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("slblur-ml-{i}"))
        .start_handler(move |i| {
            if let Some(cpus) = &pinning {
                pin_to(cpus[i]);
            }
        })
        .build()?;
    Ok(Executor::MultiThread(Arc::new(pool)))
}

/// Runs `f`, one inference, on a thread of `executor`'s pool while its other threads stay awake
/// looking for the inference's parallel work, the way onnxruntime's pool spins between ops.
///
/// Each op splits its work when it starts. A pool thread that has gone to sleep between two ops
/// took longer to wake (a futex and an inter-processor interrupt through the hypervisor) than the
/// smaller ops last: on two threads the depthwise convolutions ran no faster than on one. Started
/// from outside the pool, each op also waited for the caller to be woken when it ended.
/// Together these cost 1.1 ms of an 11.1 ms inference at 640×384 on two Zen 5 cores.
pub fn run_on<R: Send>(executor: &Executor, f: impl FnOnce() -> R + Send) -> R {
    let Executor::MultiThread(pool) = executor else {
        return f();
    };
    pool.install(|| {
        let done = AtomicBool::new(false);
        let inference = rayon::current_thread_index();
        rayon::scope(|scope| {
            for _ in 1..pool.current_num_threads() {
                scope.spawn(|_| stay_awake(&done, inference));
            }
            let result = f();
            done.store(true, Ordering::Release);
            result
        })
    })
}

/// Runs the pool's pending work until `done`, yielding the CPU to other processes when there is
/// none. On the inference's own thread it returns at once: that thread picks it up only while it
/// waits inside the inference, which it must go back to.
fn stay_awake(done: &AtomicBool, inference: Option<usize>) {
    if rayon::current_thread_index() == inference {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::yield_now();
        }
    }
}

/// Whether [`executor`] pins `threads` threads on this machine.
pub fn pins(threads: usize) -> bool {
    pinning(threads).is_some()
}

/// The CPUs `threads` inference threads are pinned to, one each, when the process may use
/// exactly that many.
fn pinning(threads: usize) -> Option<Vec<usize>> {
    let cpus = allowed_cpus();
    (threads > 1 && cpus.len() == threads).then_some(cpus)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the kernel writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_to(cpu: usize) {
    // SAFETY: as above; pinning can only fail for a CPU outside the allowed set, which then
    // leaves the thread where it was.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_to(_cpu: usize) {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// The CPUs each thread of the executor's pool may run on.
    fn masks(executor: &Executor) -> Vec<Vec<usize>> {
        let Executor::MultiThread(pool) = executor else {
            panic!("expected a thread pool, got {executor:?}");
        };
        pool.broadcast(|_| allowed_cpus())
    }

    #[test]
    fn threads_are_pinned_one_per_cpu_when_they_match_the_cpus() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "the affinity mask is readable");
        if cpus.len() < 2 {
            return; // one CPU: inference is single-threaded, nothing to pin
        }
        assert!(pins(cpus.len()));
        let mut seen: Vec<usize> = masks(&executor(cpus.len()).expect("pool"))
            .into_iter()
            .map(|mask| {
                assert_eq!(mask.len(), 1, "pinned to one CPU: {mask:?}");
                mask[0]
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, cpus, "one thread on each allowed CPU");
    }

    #[test]
    fn an_inference_runs_on_a_pool_thread_and_returns_when_done() {
        for threads in 1..=3 {
            let pool = executor(threads).expect("pool");
            let on_pool = run_on(&pool, || rayon::current_thread_index().is_some());
            assert_eq!(on_pool, threads > 1, "{threads} threads");
        }
    }

    #[test]
    fn threads_are_left_to_the_scheduler_otherwise() {
        let cpus = allowed_cpus();
        let threads = cpus.len() + 1;
        assert!(!pins(threads));
        for mask in masks(&executor(threads).expect("pool")) {
            assert_eq!(mask, cpus);
        }
        assert!(matches!(executor(1), Ok(Executor::SingleThread)));
    }
}
