//! Probe replies from the kernel: XDP times our replies and writes them to
//! the group's ring buffer. ipmpd drains it whenever it becomes readable,
//! and each timer tick drains it once more before the prober judges losses,
//! so that a reply the kernel already had by then never counts as a loss.
//! A reply that arrives during the tick is read afterwards: if its probe
//! was judged lost meanwhile, it turns it into an acknowledged one (as a
//! late reply does), but a failure decided on that loss stands.
use anyhow::{anyhow, Result};
use aya::maps::{MapData, RingBuf};
use ipmp_common::ProbeReply;
use tokio::io::{unix::AsyncFd, Interest};

pub struct Replies {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl Replies {
    /// Watches `ring` (on the current tokio runtime).
    pub fn new(ring: RingBuf<MapData>) -> Result<Replies> {
        // SAFETY: the ring buffer owns its fd for as long as the AsyncFd lives.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow!("watching the probe reply ring buffer: {e}"))?;
        Ok(Replies { ring })
    }

    /// Resolves when replies may be waiting; [`Self::drain`] them next.
    pub async fn ready(&self) -> Result<()> {
        let mut guard = self.ring.readable().await?;
        // Cleared before draining: a reply that lands in between wakes us again.
        guard.clear_ready();
        Ok(())
    }

    /// Every reply the kernel has handed over so far.
    pub fn drain(&mut self) -> Vec<ProbeReply> {
        let ring = self.ring.get_mut();
        let mut replies = Vec::new();
        while let Some(item) = ring.next() {
            if item.len() >= std::mem::size_of::<ProbeReply>() {
                // SAFETY: XDP wrote a ProbeReply here; read it unaligned.
                replies.push(unsafe { (item.as_ptr() as *const ProbeReply).read_unaligned() });
            }
        }
        replies
    }
}
