//! Gives the server's freed heap back to the kernel once it has been quiet: glibc keeps the
//! pages a burst of calls freed (request and answer buffers, the kept connections to agents,
//! which close after a second idle) in its arenas for later allocations, and the server's
//! resident memory stays at its peak. Every [`TICK`] the task looks at how many calls the
//! process has begun ([`faasbox_core::activity`]); [`QUIET_TICKS`] ticks without a new call
//! after some calls, it calls `malloc_trim(0)` once. Under steady load it never trims (a trim
//! holds an arena's lock while it gives pages back); an idle server trims once per quiet
//! period.

use std::time::Duration;

/// How often the task looks.
pub const TICK: Duration = Duration::from_millis(250);

/// How many ticks without a new call make the server quiet: 1.25 s, past the second after
/// which the server closes a kept connection to an idle agent (its buffers are freed then).
pub const QUIET_TICKS: u32 = 5;

/// Decides from the count of calls begun, tick by tick, when to trim.
#[derive(Debug, Default)]
pub struct Quiet {
    last_count: u64,
    quiet_ticks: u32,
    /// Calls began since the last trim.
    dirty: bool,
}

impl Quiet {
    /// One tick, seeing `calls_begun`: whether to trim now.
    pub fn tick(&mut self, calls_begun: u64) -> bool {
        if calls_begun != self.last_count {
            self.last_count = calls_begun;
            self.quiet_ticks = 0;
            self.dirty = true;
            return false;
        }
        self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        if self.dirty && self.quiet_ticks >= QUIET_TICKS {
            self.dirty = false;
            return true;
        }
        false
    }
}

/// Runs as long as the server: trims once after each quiet period that followed calls.
pub async fn run() {
    let mut quiet = Quiet::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if quiet.tick(faasbox_core::activity::calls_begun()) {
            // Off the async threads: a trim walks every arena.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// Gives every free page of malloc's arenas back to the kernel.
pub fn trim() {
    // SAFETY: malloc_trim takes no pointer and only rearranges malloc's own free memory; it
    // takes malloc's locks like any allocation does.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_calls_and_a_quiet_period() {
        let mut quiet = Quiet::default();
        // No call yet: nothing to give back.
        for _ in 0..10 {
            assert!(!quiet.tick(0));
        }
        // Calls keep coming: no trim while they do.
        for count in 1..=10 {
            assert!(!quiet.tick(count));
        }
        let trims: Vec<bool> = (0..QUIET_TICKS + 5).map(|_| quiet.tick(10)).collect();
        let at = trims.iter().position(|&t| t);
        assert_eq!(at, Some(QUIET_TICKS as usize - 1), "{trims:?}");
        assert_eq!(trims.iter().filter(|&&t| t).count(), 1, "{trims:?}");
        // A new call: again after the next quiet period.
        assert!(!quiet.tick(11));
        assert!((0..QUIET_TICKS).any(|_| quiet.tick(11)));
    }

    /// Resident pages of this process.
    fn resident_pages() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_trim_gives_freed_pages_back() {
        // 32 MiB in 16 KiB blocks, every other one freed: holes glibc keeps without a trim
        // (the top of the heap is still in use, so nothing is given back on its own).
        let mut blocks: Vec<Vec<u8>> = (0..2048).map(|i| vec![i as u8; 16 << 10]).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(block);
            }
        }
        let before = resident_pages();
        trim();
        let after = resident_pages();
        let page_kib = 4;
        // The 16 MiB freed are given back, less what malloc's bookkeeping keeps in each hole.
        assert!(
            before.saturating_sub(after) * page_kib >= 8 << 10,
            "resident {} KiB before the trim, {} KiB after",
            before * page_kib,
            after * page_kib
        );
        drop(kept);
    }
}
