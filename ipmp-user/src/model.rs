//! The plain data IPMP talks in: states as ipmpstat shows them, and the
//! status snapshot ipmpd hands to ipmpctl over the control socket.
use std::{fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

/// Enums of the words ipmpstat shows: each variant is written once with
/// its word, which is its serde name, its `Display` and [`Self::as_str`]
/// (metrics label values); `ALL` lists the variants in order.
macro_rules! words {
    ($(
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:tt,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The ipmpstat word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

words! {
    /// Group state (ipmpstat -g STATE).
    pub enum GroupState {
        /// Every member is usable.
        Ok = "ok",
        /// Some members are usable.
        Degraded = "degraded",
        /// No member is usable.
        Failed = "failed",
    }

    /// Link state of a member (ipmpstat -i LINK).
    pub enum LinkState {
        Up = "up",
        Down = "down",
        /// The driver gives no link state (or the interface is not there yet).
        Unknown = "unknown",
    }

    /// Probe-based detection state of a member (ipmpstat -i PROBE).
    pub enum ProbeState {
        Ok = "ok",
        Failed = "failed",
        /// Probing, but no target to probe.
        Unknown = "unknown",
        /// No test address: probe-based detection is off on this member.
        Disabled = "disabled",
    }

    /// Overall member state (ipmpstat -i STATE).
    pub enum MemberState {
        Ok = "ok",
        Failed = "failed",
        Offline = "offline",
        Unknown = "unknown",
    }

    /// How a member's probe targets were found (ipmpstat -t MODE).
    pub enum ProbeMode {
        /// Routers of the routing table (and configured targets).
        Routes = "routes",
        /// Hosts that answered an all-hosts echo.
        Multicast = "multicast",
        Disabled = "disabled",
    }
}

/// ipmpstat -i FLAGS, in column order `ismbMdh`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFlags {
    /// `i`: usable but not active.
    pub inactive: bool,
    /// `s`: configured as standby.
    pub standby: bool,
    /// `m`: sends and receives the group's IPv4 multicast.
    pub mcast4: bool,
    /// `b`: sends and receives the group's IPv4 broadcast.
    pub bcast4: bool,
    /// `M`: sends and receives the group's IPv6 multicast.
    pub mcast6: bool,
    /// `d`: the interface is down (administratively, or missing).
    pub down: bool,
    /// `h`: shares its hardware address with another member.
    pub dup_hwaddr: bool,
}

/// Everything `ipmpctl stat` shows, as one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub groups: Vec<GroupStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Group name; also the group interface's name.
    pub name: String,
    pub state: GroupState,
    /// Failure detection time in ms; `None` when no member probes.
    pub fdt_ms: Option<u64>,
    /// Members in configuration order.
    pub members: Vec<MemberStatus>,
    /// The data addresses, in configuration order (ipmpstat -a).
    #[serde(default)]
    pub addresses: Vec<AddressStatus>,
}

/// A data address of a group (ipmpstat -a).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddressStatus {
    pub address: IpAddr,
    /// Up while the group has an active member to carry it.
    pub up: bool,
    /// The member bound to receive for it; `None` until inbound binding.
    pub inbound: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub active: bool,
    pub flags: MemberFlags,
    pub link: LinkState,
    pub probe: ProbeState,
    pub state: MemberState,
    /// One entry per address family the member probes in.
    #[serde(default)]
    pub probing: Vec<ProbingStatus>,
    /// The XDP attach mode in use and why; `None` while not attached.
    #[serde(default)]
    pub xdp: Option<XdpStatus>,
}

/// How the member's XDP program is attached (ipmpstat -i XDP, XDPREASON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct XdpStatus {
    /// `native` or `generic`.
    pub mode: String,
    pub reason: String,
}

/// A member's probing in one address family (ipmpstat -t).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbingStatus {
    pub mode: ProbeMode,
    /// The test address (IPv4) or link-local address (IPv6); `None` until known.
    pub test_address: Option<IpAddr>,
    /// Active targets, in probing order.
    pub targets: Vec<IpAddr>,
}

/// One probe's outcome (ipmpstat -p), as ipmpd streams it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub interface: String,
    pub seq: u16,
    pub target: IpAddr,
    /// Round-trip time measured in the kernel (XDP); `None` for a lost probe.
    pub net_rtt_ns: Option<u64>,
    /// Round-trip time as ipmpd saw it, scheduling included.
    pub rtt_ns: Option<u64>,
    /// The target's smoothed RTT (sa/8) and mean deviation (sv/4).
    pub rtt_avg_ns: Option<u64>,
    pub rtt_dev_ns: Option<u64>,
}

/// A state change as ipmpd logs it, for `ipmpctl events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub group: String,
    pub interface: Option<String>,
    /// A short name for scripts: link_down, interface_failure, offline, ...
    pub event: String,
    /// The log line, in in.mpathd's words.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_is_the_serde_name_and_the_display() {
        fn check<T: Copy + Serialize + fmt::Display>(all: &[T], word: fn(T) -> &'static str) {
            for &v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), word(v));
                assert_eq!(v.to_string(), word(v));
            }
        }
        check(GroupState::ALL, GroupState::as_str);
        check(LinkState::ALL, LinkState::as_str);
        check(ProbeState::ALL, ProbeState::as_str);
        check(MemberState::ALL, MemberState::as_str);
        check(ProbeMode::ALL, ProbeMode::as_str);
        assert_eq!(MemberState::Offline.as_str(), "offline");
        assert_eq!(
            serde_json::from_str::<ProbeState>("\"disabled\"").unwrap(),
            ProbeState::Disabled
        );
        assert_eq!(GroupState::ALL.len(), 3);
    }
}
