//! Helpers shared by the probe modules' tests.
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// 192.0.2.`d` (TEST-NET-1).
pub(crate) fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}
