//! One process-wide handler for SIGINT and SIGTERM.
//!
//! While work must finish on its own (an apply with operations in flight,
//! or a drift schedule between runs) the first signal only asks it to stop
//! starting new work. Anywhere else, and on a second signal, the process
//! removes the state lock it holds and exits with 130, so no command leaves
//! its lock behind when it is interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::Notify;

/// Set by the first signal; apply and drift loops poll it.
pub static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
/// Woken by every signal, for loops that sleep.
pub static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);
/// Whether the current phase winds down by itself.
static GRACEFUL: AtomicBool = AtomicBool::new(false);
/// Releases the lock this process holds, if any.
type Releaser = Box<dyn Fn() + Send + Sync>;
static LOCK: Mutex<Option<Releaser>> = Mutex::new(None);

/// Records how to release the lock held, so an interrupt can release it.
pub fn holding(release: Option<Releaser>) {
    if let Ok(mut l) = LOCK.lock() {
        *l = release;
    }
}

/// Marks the start or end of a phase that stops gracefully, and returns
/// the previous setting so nested phases can restore it.
pub fn graceful(on: bool) -> bool {
    GRACEFUL.swap(on, Ordering::SeqCst)
}

fn exit_now() -> ! {
    if let Ok(l) = LOCK.lock() {
        if let Some(release) = l.as_ref() {
            release();
        }
    }
    crate::output::note("interrupted");
    std::process::exit(130);
}

/// Starts the handler. Call once, inside the runtime.
pub fn install(color: bool) {
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
        let Ok(mut int) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) else { return };
        loop {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            if STOP.load(Ordering::SeqCst) || !GRACEFUL.load(Ordering::SeqCst) {
                exit_now();
            }
            STOP.store(true, Ordering::SeqCst);
            WAKE.notify_waiters();
            crate::output::warn(
                color,
                "interrupted: finishing what is in flight, then stopping (signal again to quit now)",
            );
        }
    });
}
