//! Reactor kick: a node thread that interrupts each shard's thread with a no-op signal every
//! `KICK_EVERY`. We observed (docs/runtime.md) an idle executor asleep in `io_uring_enter`
//! while its timers had expired and a connection's request sat unread: a wake-up lost between
//! the reactor's linked rings on this kernel. A signal ends that wait (EINTR), the executor
//! runs its loop, reaps what completed and fires due timers; a lost wake-up then costs at most
//! one period instead of hanging the shard. Busy shards barely notice: one empty signal handler
//! per period.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often each shard thread is interrupted.
pub const KICK_EVERY: Duration = Duration::from_millis(5);

const KICK_SIGNAL: i32 = libc::SIGURG;

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs the no-op handler (idempotent). `SA_RESTART` so that ordinary blocking syscalls
/// on other threads are not disturbed; `io_uring_enter` still returns on a signal.
pub fn install_handler() {
    // SAFETY: installing a handler that does nothing is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_kick as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(KICK_SIGNAL, &sa, std::ptr::null_mut());
    }
}

/// The calling thread's kernel thread id.
pub fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Interrupts every registered thread each period until `stop` is set.
pub fn run(tids: Arc<Vec<AtomicI32>>, stop: Arc<AtomicBool>) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(KICK_EVERY);
        for tid in tids.iter() {
            let t = tid.load(Ordering::Acquire);
            if t > 0 {
                // SAFETY: tgkill with our own pid only reaches our own threads.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, t, KICK_SIGNAL) };
            }
        }
    }
}
