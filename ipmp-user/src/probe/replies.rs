//! Probe replies from the kernel: XDP times our replies and writes them to
//! the group's ring buffer; this reads them as they come.
use anyhow::{anyhow, Result};
use aya::maps::{MapData, RingBuf};
use ipmp_common::ProbeReply;
use tokio::{
    io::{unix::AsyncFd, Interest},
    sync::mpsc,
};

/// Forwards every reply of `ring` to `to`, tagged with `group`, until the
/// receiver goes away.
pub async fn forward(
    ring: RingBuf<MapData>,
    group: usize,
    to: mpsc::UnboundedSender<(usize, ProbeReply)>,
) -> Result<()> {
    // SAFETY: the ring buffer owns its fd for as long as the AsyncFd lives.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow!("watching the probe reply ring buffer: {e}"))?;
    loop {
        let mut ready = ring.readable_mut().await?;
        let buffer = ready.get_inner_mut();
        while let Some(item) = buffer.next() {
            if item.len() >= std::mem::size_of::<ProbeReply>() {
                // SAFETY: XDP wrote a ProbeReply here; read it unaligned.
                let reply = unsafe { (item.as_ptr() as *const ProbeReply).read_unaligned() };
                if to.send((group, reply)).is_err() {
                    return Ok(());
                }
            }
        }
        ready.clear_ready();
    }
}
