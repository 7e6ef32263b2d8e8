//! The failure-detection probes one member sent in one family, and what
//! became of each: in.mpathd's `probe_stats` ring and the counts it derives
//! from it (`probe_fail_info`, `probe_success_info` in `mpd_probe.c`).
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use super::super::{MAX_OUTSTANDING, PROBE_HISTORY};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Pending,
    Acked(Duration),
    /// Lost at this time (the loss deadline, or when it was given up).
    Lost(Duration),
}

/// A failure-detection probe sent (in.mpathd's `probe_stats`).
#[derive(Clone, Debug)]
pub(super) struct Sent {
    pub(super) seq: u16,
    /// `None` once the target has been removed: no reply can count.
    pub(super) target: Option<IpAddr>,
    pub(super) at: Duration,
    pub(super) fate: Fate,
}

/// The last [`PROBE_HISTORY`] failure-detection probes, oldest first.
#[derive(Debug)]
pub(super) struct History {
    probes: VecDeque<Sent>,
}

impl History {
    pub(super) fn new() -> Self {
        History {
            probes: VecDeque::with_capacity(PROBE_HISTORY),
        }
    }

    pub(super) fn clear(&mut self) {
        self.probes.clear();
    }

    /// Remembers a probe sent to `target` at `at`, forgetting the oldest
    /// when [`PROBE_HISTORY`] are remembered.
    pub(super) fn push(&mut self, seq: u16, target: IpAddr, at: Duration) {
        if self.probes.len() == PROBE_HISTORY {
            self.probes.pop_front();
        }
        self.probes.push_back(Sent {
            seq,
            target: Some(target),
            at,
            fate: Fate::Pending,
        });
    }

    /// The probes awaiting a reply.
    pub(super) fn pending(&self) -> impl Iterator<Item = &Sent> {
        self.probes.iter().filter(|s| s.fate == Fate::Pending)
    }

    /// Marks lost the pending probes whose deadline (`deadline(probe)`)
    /// has come by `now`; returns them, oldest first.
    pub(super) fn lose_due(
        &mut self,
        now: Duration,
        deadline: impl Fn(&Sent) -> Duration,
    ) -> Vec<Sent> {
        let mut lost = Vec::new();
        for s in &mut self.probes {
            if s.fate != Fate::Pending {
                continue;
            }
            let due = deadline(s);
            if due <= now {
                s.fate = Fate::Lost(due);
                lost.push(s.clone());
            }
        }
        lost
    }

    /// Gives up the oldest pending probes, as lost at `now`, so that at
    /// most [`MAX_OUTSTANDING`] are pending once the next one is sent;
    /// returns them, oldest first.
    pub(super) fn give_up_outstanding(&mut self, now: Duration) -> Vec<Sent> {
        let pending = self.pending().count();
        let excess = (pending + 1).saturating_sub(MAX_OUTSTANDING);
        let mut lost = Vec::new();
        for s in self.probes.iter_mut().filter(|s| s.fate == Fate::Pending) {
            if lost.len() == excess {
                break;
            }
            s.fate = Fate::Lost(now);
            lost.push(s.clone());
        }
        lost
    }

    /// Targets removed: their pending probes are lost at `now` (returned,
    /// oldest first) and no reply can count for any of their probes.
    pub(super) fn forget(&mut self, removed: &[IpAddr], now: Duration) -> Vec<Sent> {
        let mut lost = Vec::new();
        for s in &mut self.probes {
            if s.target.is_some_and(|t| removed.contains(&t)) {
                if s.fate == Fate::Pending {
                    s.fate = Fate::Lost(now);
                    lost.push(s.clone());
                }
                s.target = None;
            }
        }
        lost
    }

    /// Acknowledges, at `now`, the newest remembered probe with sequence
    /// number `seq` if it went to `from` and was not acknowledged yet.
    /// Returns its position and the probe; `None` when the reply counts
    /// nothing (out of window, from elsewhere, or a duplicate).
    pub(super) fn acknowledge(
        &mut self,
        seq: u16,
        from: IpAddr,
        now: Duration,
    ) -> Option<(usize, Sent)> {
        let pos = self.probes.iter().rposition(|s| s.seq == seq)?;
        let sent = &mut self.probes[pos];
        if sent.target != Some(from) || matches!(sent.fate, Fate::Acked(_)) {
            return None;
        }
        sent.fate = Fate::Acked(now);
        Some((pos, sent.clone()))
    }

    /// Settled probes, newest first (pending ones are neither success nor
    /// failure yet).
    fn settled(&self) -> impl Iterator<Item = &Sent> {
        self.probes.iter().rev().filter(|s| s.fate != Fate::Pending)
    }

    /// Consecutive losses up to the newest settled probe, and when the
    /// first of them was lost (in.mpathd's `pf_nfail`, `pf_tff`).
    pub(super) fn consecutive_losses(&self) -> (usize, Option<Duration>) {
        let mut count = 0;
        let mut first = None;
        for s in self.settled() {
            match s.fate {
                Fate::Lost(at) => {
                    count += 1;
                    first = Some(at);
                }
                _ => break,
            }
        }
        (count, first)
    }

    /// Consecutive losses of the probes to `target` (`pf_nfail_tg`).
    pub(super) fn consecutive_target_losses(&self, target: IpAddr) -> usize {
        self.settled()
            .filter(|s| s.target == Some(target))
            .take_while(|s| matches!(s.fate, Fate::Lost(_)))
            .count()
    }

    /// Consecutive acknowledged probes (`ps_nsucc`).
    pub(super) fn consecutive_acks(&self) -> usize {
        self.settled()
            .take_while(|s| matches!(s.fate, Fate::Acked(_)))
            .count()
    }

    /// Consecutive acknowledged probes to `target` (`ps_nsucc_tg`).
    pub(super) fn consecutive_target_acks(&self, target: IpAddr) -> usize {
        self.settled()
            .filter(|s| s.target == Some(target))
            .take_while(|s| matches!(s.fate, Fate::Acked(_)))
            .count()
    }

    /// When the newest acknowledged probe was acknowledged (`ps_tls`).
    pub(super) fn last_success(&self) -> Option<Duration> {
        self.probes.iter().rev().find_map(|s| match s.fate {
            Fate::Acked(at) => Some(at),
            _ => None,
        })
    }

    /// The target of the newest settled probe, if that one was lost.
    pub(super) fn latest_lost_target(&self) -> Option<IpAddr> {
        self.settled()
            .next()
            .filter(|s| matches!(s.fate, Fate::Lost(_)))
            .and_then(|s| s.target)
    }

    /// No probe sent after the one at `pos` to the same target has been
    /// acknowledged (in.mpathd's `highest_ack_tg`): only the newest
    /// acknowledgement of a target moves its estimate.
    pub(super) fn newest_ack_of_target(&self, pos: usize, target: IpAddr) -> bool {
        !self
            .probes
            .iter()
            .skip(pos + 1)
            .any(|s| s.target == Some(target) && matches!(s.fate, Fate::Acked(_)))
    }

    /// The fates, oldest first (for tests).
    #[cfg(test)]
    pub(super) fn fates(&self) -> Vec<Fate> {
        self.probes.iter().map(|s| s.fate).collect()
    }
}
