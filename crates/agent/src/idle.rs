//! Returning an idle agent's freed memory to the kernel: an idle warm instance is multiplied by
//! every warm instance on the host, and glibc keeps the pages a call freed (its buffers, the
//! kept connections', see `contract::http`) in the heap for later allocations. [`run`] asks
//! malloc to give back every free page (`malloc_trim(0)`) once the agent has been quiet: for
//! [`QUIET`] after the last call in flight ended (and no call ended since), or for
//! [`AFTER_CLOSE`] after a platform connection closed (the server closes a connection it kept
//! once it has been idle for a second, and with it go hyper's buffers of it here). The main
//! thread's stack pages below the idle task's frame go too. The next call allocates the pages
//! again, a page fault each. A call that began in between and still
//! runs is not waited for: the trim only costs it a moment of malloc's lock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How long the agent must have had no call in flight before it trims: longer than a kept
/// connection to the function stays open idle (`contract::http`'s `MAX_KEPT_IDLE`, 1 s), so
/// that its buffers are freed first.
pub const QUIET: Duration = Duration::from_millis(1500);

/// How long after a platform connection closed (and nothing else happened) the agent trims:
/// a moment, so that connections closing together are trimmed once.
pub const AFTER_CLOSE: Duration = Duration::from_millis(100);

/// What [`run`] is told: the last call in flight ended ([`crate::calls::Calls`]), a platform
/// connection closed (`platform_api`).
#[derive(Debug, Default)]
pub struct Signals {
    call_ended: Notify,
    connection_closed: Notify,
}

impl Signals {
    /// The last call in flight has just ended.
    pub fn last_call_ended(&self) {
        self.call_ended.notify_one();
    }

    /// A connection of the platform has just closed.
    pub fn connection_closed(&self) {
        self.connection_closed.notify_one();
    }
}

/// Trims the heap once the agent has been quiet after a call or a closed connection, once per
/// quiet period. Runs as long as the agent.
pub async fn run(signals: Arc<Signals>) {
    loop {
        let mut quiet = tokio::select! {
            () = signals.call_ended.notified() => QUIET,
            () = signals.connection_closed.notified() => AFTER_CLOSE,
        };
        // Each further event starts the wait again.
        loop {
            tokio::select! {
                () = tokio::time::sleep(quiet) => break,
                () = signals.call_ended.notified() => quiet = QUIET,
                () = signals.connection_closed.notified() => quiet = AFTER_CLOSE,
            }
        }
        trim();
    }
}

/// Gives the heap's free pages, and the main thread's stack pages below the current frame,
/// back to the kernel.
fn trim() {
    release_unused_stack();
    // SAFETY: malloc_trim takes no pointer and only rearranges malloc's own free memory; it
    // takes malloc's locks like any allocation does.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// What is left below the current frame when the stack's unused pages are released: room for
/// the frames of the release itself (the `madvise` call).
const STACK_MARGIN: usize = 8 << 10;

/// Releases the pages of the main thread's stack below the current frame (minus
/// [`STACK_MARGIN`]): a call's deepest frames (parsing, hyper, the contract) dirtied them once
/// and they stay resident otherwise, about 20 KiB of an idle agent. The agent's tasks run on
/// the main thread (a current-thread runtime), so [`run`] is the only frame chain on this
/// stack and everything below it is free; a later call faults the pages in again (zeroed).
/// Nothing is done when this runs on another thread's stack.
fn release_unused_stack() {
    let marker = 0u8;
    let here = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    let Some((low, high)) = main_stack() else {
        return;
    };
    if !(low..high).contains(&here) {
        return;
    }
    // SAFETY: sysconf takes no pointer.
    let page = match usize::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) }) {
        Ok(page) if page.is_power_of_two() => page,
        _ => return,
    };
    let end = here.saturating_sub(STACK_MARGIN) & !(page - 1);
    if end <= low {
        return;
    }
    // SAFETY: [low, end) is page-aligned and lies inside the main thread's stack mapping,
    // below this thread's current frame by STACK_MARGIN: no frame of this thread lives there
    // (the stack grows down and every caller's frame is above `here`), and no other thread
    // uses this stack. MADV_DONTNEED drops the pages; touching them again gives zeroed pages.
    unsafe {
        nix::libc::madvise(
            low as *mut nix::libc::c_void,
            end - low,
            nix::libc::MADV_DONTNEED,
        );
    }
}

/// The address range of the main thread's stack mapping (`[stack]` in `/proc/self/maps`).
fn main_stack() -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|line| line.ends_with("[stack]"))?;
    let range = line.split_whitespace().next()?;
    let (low, high) = range.split_once('-')?;
    Some((
        usize::from_str_radix(low, 16).ok()?,
        usize::from_str_radix(high, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The main thread's stack is found; releasing from a thread whose stack it is not (a
    /// test's) does nothing, and a trim leaves the process working.
    #[test]
    fn the_main_stack_is_found_and_only_its_unused_pages_go() {
        let (low, high) = main_stack().expect("a [stack] mapping");
        assert!(low < high);
        let marker = 0u8;
        let here = std::ptr::addr_of!(marker) as usize;
        let on_main = (low..high).contains(&here);
        trim();
        // Frames above this one are intact: the test returns and its data is still here.
        let data = std::hint::black_box([7u8; 64]);
        assert!(data.iter().all(|&b| b == 7), "on the main stack: {on_main}");
    }
}
