//! Probe-based failure detection (README "How it works"): in.mpathd's
//! `mpd_probe.c` and the target half of `mpd_tables.c`, as pure code.
//!
//! [`detector::GroupProber`] makes every decision of one group's probing:
//! when each member sends which probe to which target, when a probe is
//! lost, when a member has failed or been repaired (and whether the whole
//! group failed), how the round-trip estimates move and when the failure
//! detection time must be raised or may be lowered. [`targets`] keeps each
//! member's targets per address family: explicit ones, routers, hosts found
//! by multicast discovery, and their RTT estimators.
//!
//! Like the policy, this does no I/O and reads no clock: ipmpd owns the
//! sockets, the XDP reply ring and the timer, passes the time (a
//! [`Duration`] since any fixed origin) and a source of randomness into
//! every call, sends the probes it is handed and feeds the failures and
//! repairs to [`crate::policy::group::GroupPolicy`].
//!
//! The numbers are in.mpathd's (`mpd_defs.h`, `mpd_tables.h`); the names
//! too, where a reader of the illumos sources would look for them.
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub mod detector;
pub mod replies;
pub mod socket;
pub mod targets;
#[cfg(test)]
mod testing;

pub use detector::{
    EchoReply, GroupProber, ProbeKind, ProbeMode, ProbeOutcome, ProbeReport, ProbeToSend,
    ProbeView, ProberEvent, TargetView,
};

/// Consecutive lost probes that fail a member (*Solaris* NUM_PROBE_FAILS).
pub const NUM_PROBE_FAILS: usize = 5;
/// Consecutive acknowledged probes that repair a member (*Solaris*
/// NUM_PROBE_REPAIRS).
pub const NUM_PROBE_REPAIRS: usize = 10;
/// Targets reactivated when every active one has gone (*Solaris*
/// MIN_PROBE_TARGETS); a slow target is only judged against at least this
/// many others.
pub const MIN_PROBE_TARGETS: usize = 3;
/// Targets probed at once, round-robin (*Solaris* MAX_PROBE_TARGETS).
pub const MAX_PROBE_TARGETS: usize = 5;
/// Probes remembered per member and family: enough to see a member fail, a
/// target die, a member and a target recover (*Solaris* PROBE_STATS_COUNT,
/// NUM_PROBE_REPAIRS × MAX_PROBE_TARGETS + 2). A reply counts only for one
/// of these, and an RTT sample longer than this many intervals is bogus.
pub const PROBE_HISTORY: usize = NUM_PROBE_REPAIRS * MAX_PROBE_TARGETS + 2;
/// The failure detection time is this many probe intervals: five to lose
/// and two of slack (*Solaris*: `pg_fdt / (NUM_PROBE_FAILS + 2)`).
pub const PROBES_PER_FDT: u32 = NUM_PROBE_FAILS as u32 + 2;
/// A probe goes out between these fractions of the configured interval
/// after its base time, so that members do not probe in lock step
/// (*Solaris* MIN_RANDOM_FACTOR, MAX_RANDOM_FACTOR).
pub const MIN_RANDOM_FACTOR: f64 = 0.5;
pub const MAX_RANDOM_FACTOR: f64 = 1.0;
/// Failure-detection probes awaiting a reply at once: the older one is
/// given up as lost before a third is sent (in.mpathd's timer).
pub const MAX_OUTSTANDING: usize = 2;
/// The least a probe is waited for before it counts as lost. XDP times
/// replies to a few µs, which makes CRTTs on a LAN a tenth of a millisecond
/// with µs of deviation; ipmpd's own jitter between deciding to send a probe
/// and the packet leaving is of that order too, and must not count as loss
/// (in.mpathd's timers have millisecond granularity anyway).
pub const MIN_LOSS_WAIT: Duration = Duration::from_millis(1);
/// A dead or slow target steps back towards active after this long
/// (*Solaris* MIN_RECOVERY_TIME).
pub const TARGET_RECOVERY_TIME: Duration = Duration::from_secs(60);
/// A raised failure detection time is not lowered within this long of the
/// raise, so that it does not flap (*Solaris* MIN_SETTLING_TIME).
pub const FDT_SETTLING_TIME: Duration = Duration::from_secs(60);
/// The FDT is raised to this many CRTTs per interval, and lowered by this
/// factor (*Solaris* NEXT_FDT_MULTIPLE).
pub const NEXT_FDT_MULTIPLE: u32 = 2;
/// The FDT may be lowered once every active target's CRTT is under this
/// fraction of the interval (*Solaris* LOWER_FDT_TRIGGER).
pub const LOWER_FDT_TRIGGER: u32 = 4;
/// A target is an exception (slow) rather than a reason to raise the FDT
/// when every other active target's CRTT is under the interval divided by
/// this (*Solaris* EXCEPTION_FACTOR).
pub const EXCEPTION_FACTOR: u32 = 2;
/// RTT samples held back because they alone would raise the FDT
/// (*Solaris* MAXDEFERREDRTT).
pub const MAX_DEFERRED_RTT: usize = 1;
/// Where target discovery probes go: all hosts / all nodes, link-local
/// scope.
pub use ipmp_common::wire::{ALL_NODES_V4, ALL_NODES_V6};

/// An address family a member probes in (in.mpathd's phyint instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Where target discovery probes of this family go.
    pub fn all_nodes(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(ALL_NODES_V4),
            Family::V6 => IpAddr::V6(ALL_NODES_V6),
        }
    }
}

/// in.mpathd's `AF_STR`: `inet` or `inet6`, as its log lines say.
impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        })
    }
}
