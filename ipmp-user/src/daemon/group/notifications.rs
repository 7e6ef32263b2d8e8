//! The schedule of peer notifications (gratuitous ARP, unsolicited
//! neighbour advertisements): each new inbound binding of a data address is
//! announced through its member a configured number of times, one
//! [`PEER_NOTIFICATION_INTERVAL`] apart, for the peers and switches that
//! missed the first. Pure: the group sends what [`Schedule::take_due`]
//! returns.
use std::{net::IpAddr, time::Duration};

/// Time between the peer notifications of one binding.
pub(super) const PEER_NOTIFICATION_INTERVAL: Duration = Duration::from_millis(100);

/// Peer notifications of one data address's binding still to send.
struct Pending {
    address: IpAddr,
    slot: u8,
    left: u32,
    /// When the next one is due, since the group's epoch.
    due: Duration,
}

/// The bindings still to announce.
#[derive(Default)]
pub(super) struct Schedule {
    pending: Vec<Pending>,
}

impl Schedule {
    /// `address` is now bound to `slot`: `count` notifications, the first
    /// due at `now`.
    pub fn bound(&mut self, address: IpAddr, slot: u8, count: u32, now: Duration) {
        if count > 0 {
            self.pending.push(Pending {
                address,
                slot,
                left: count,
                due: now,
            });
        }
    }

    /// `address`'s earlier binding is announced no more (it moved, or the
    /// address left the configuration).
    pub fn forget(&mut self, address: IpAddr) {
        self.pending.retain(|n| n.address != address);
    }

    /// Keeps only the notifications of the addresses `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(IpAddr) -> bool) {
        self.pending.retain(|n| keep(n.address));
    }

    /// The notifications due at `now` (address, slot), counted as sent;
    /// each binding's next one is due an interval later.
    pub fn take_due(&mut self, now: Duration) -> Vec<(IpAddr, u8)> {
        let mut due = Vec::new();
        for n in self.pending.iter_mut().filter(|n| n.due <= now) {
            n.left -= 1;
            n.due = now + PEER_NOTIFICATION_INTERVAL;
            due.push((n.address, n.slot));
        }
        self.pending.retain(|n| n.left > 0);
        due
    }

    /// When the next notification is due, if any is left.
    pub fn next_due(&self) -> Option<Duration> {
        self.pending.iter().map(|n| n.due).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_binding_is_announced_count_times_an_interval_apart() {
        let mut s = Schedule::default();
        s.bound(addr("192.0.2.1"), 3, 3, 10 * MS);
        assert_eq!(s.next_due(), Some(10 * MS));
        assert_eq!(s.take_due(5 * MS), vec![]);
        assert_eq!(s.take_due(10 * MS), vec![(addr("192.0.2.1"), 3)]);
        assert_eq!(s.next_due(), Some(110 * MS));
        assert_eq!(s.take_due(50 * MS), vec![]);
        assert_eq!(s.take_due(115 * MS), vec![(addr("192.0.2.1"), 3)]);
        // The interval counts from when it was sent.
        assert_eq!(s.next_due(), Some(215 * MS));
        assert_eq!(s.take_due(215 * MS).len(), 1);
        assert_eq!(s.next_due(), None);
        assert_eq!(s.take_due(Duration::from_secs(9)), vec![]);
    }

    #[test]
    fn no_notifications_configured_schedules_nothing() {
        let mut s = Schedule::default();
        s.bound(addr("2001:db8::1"), 0, 0, Duration::ZERO);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_forgotten_or_unkept_address_is_announced_no_more() {
        let mut s = Schedule::default();
        s.bound(addr("192.0.2.1"), 0, 2, Duration::ZERO);
        s.bound(addr("192.0.2.2"), 1, 2, Duration::ZERO);
        s.bound(addr("192.0.2.3"), 2, 2, Duration::ZERO);
        s.forget(addr("192.0.2.1"));
        s.retain(|a| a != addr("192.0.2.3"));
        assert_eq!(s.take_due(Duration::ZERO), vec![(addr("192.0.2.2"), 1)]);
    }
}
