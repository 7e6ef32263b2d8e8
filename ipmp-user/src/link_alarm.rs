//! ipmpd's fast path for a member going down: a second rtnetlink
//! subscription to link messages whose fixed header alone (interface
//! index, flags) is read, into one buffer allocated at start, before any
//! full parse. The full parse (netlink.rs) and the policy follow as usual;
//! this only lets the flow table flip and the data addresses move at once,
//! however long the rest takes.
//!
//! The same socket hears of multicast joins and leaves on any interface
//! (RTNLGRP_IPV4_MCADDR / RTNLGRP_IPV6_MCADDR, Linux 6.13 on): ipmpd reads
//! the group interface's memberships again only when they change.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context, Result};
use tokio::io::unix::AsyncFd;
use tracing::warn;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWMULTICAST: u16 = 56;
const RTM_DELMULTICAST: u16 = 57;
const RTMGRP_LINK: u32 = 1;
/// Netlink groups beyond 32 are joined with a socket option.
const RTNLGRP_IPV4_MCADDR: u32 = 37;
const RTNLGRP_IPV6_MCADDR: u32 = 38;
const NLMSG_HEADER: usize = 16;
/// struct ifinfomsg: family, pad, type, index (i32), flags (u32), change.
const IFINFOMSG: usize = 16;
/// struct ifaddrmsg (multicast messages): family, prefix length, flags,
/// scope, index (u32): the index sits where ifinfomsg has it.
const IFADDRMSG: usize = 8;
const IFF_UP: u32 = 1;
const IFF_LOWER_UP: u32 = 1 << 16;
/// Room for a burst of link messages; the kernel's own default.
const RECEIVE_BUFFER: usize = 1 << 20;

/// Whether the alarm socket hears multicast joins and leaves (set when it
/// opens): if not, the groups read their memberships on a timer.
static MEMBERSHIPS_ANNOUNCED: AtomicBool = AtomicBool::new(false);

pub fn memberships_announced() -> bool {
    MEMBERSHIPS_ANNOUNCED.load(Ordering::Relaxed)
}

/// Joins the netlink multicast group `group` (those beyond 32 need the
/// socket option).
fn join_group(fd: &OwnedFd, group: u32) -> io::Result<()> {
    // SAFETY: setsockopt with a u32 option value of its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            &group as *const u32 as *const libc::c_void,
            std::mem::size_of::<u32>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a message on the alarm socket says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alarm {
    /// The interface was deleted, set down or lost its carrier.
    Down(u32),
    /// A multicast group was joined or left on the interface.
    Memberships(u32),
}

pub struct LinkAlarm {
    socket: AsyncFd<OwnedFd>,
    buffer: Box<[u8]>,
}

impl LinkAlarm {
    pub fn open() -> Result<LinkAlarm> {
        // SAFETY: plain socket(2) call; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("opening an rtnetlink socket");
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_nl is valid; filled below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = RTMGRP_LINK;
        // SAFETY: addr is a valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("subscribing to rtnetlink link events");
        }
        let announced = [RTNLGRP_IPV4_MCADDR, RTNLGRP_IPV6_MCADDR]
            .iter()
            .all(|group| join_group(&fd, *group).is_ok());
        MEMBERSHIPS_ANNOUNCED.store(announced, Ordering::Relaxed);
        if !announced {
            warn!(
                "This kernel announces no multicast joins (Linux 6.13 and later do): the group \
                 interfaces' memberships are read every second"
            );
        }
        // SAFETY: the descriptor is owned by the AsyncFd for its lifetime.
        let socket = unsafe { AsyncFd::register(fd) }
            .map_err(|e| e.into_parts().1)
            .context("registering the link alarm socket")?;
        Ok(LinkAlarm {
            socket,
            buffer: vec![0; RECEIVE_BUFFER].into_boxed_slice(),
        })
    }

    /// Resolves when link messages may be waiting; [`Self::drain`] them.
    pub async fn ready(&self) -> Result<()> {
        let mut guard = self.socket.readable().await?;
        // drain() reads until the socket is empty, so a message arriving
        // after this wakes the next ready() again.
        guard.clear_ready();
        Ok(())
    }

    /// Calls `alarm` for every waiting message that reports an interface
    /// deleted, administratively down or without carrier, or a multicast
    /// join or leave.
    pub fn drain(&mut self, mut alarm: impl FnMut(Alarm)) {
        loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.socket.get_ref().as_raw_fd(),
                    self.buffer.as_mut_ptr() as *mut libc::c_void,
                    self.buffer.len(),
                    0,
                )
            };
            // EAGAIN: drained. ENOBUFS (messages lost): the full path
            // resynchronises; this one only ever speeds things up.
            if n <= 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            for_each_alarm(&self.buffer[..n as usize], &mut alarm);
        }
    }
}

/// The alarms in `messages` (one datagram of netlink messages).
fn for_each_alarm(mut messages: &[u8], alarm: &mut impl FnMut(Alarm)) {
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    while messages.len() >= NLMSG_HEADER + IFADDRMSG {
        let len = u32_at(messages, 0) as usize;
        if len < NLMSG_HEADER || len > messages.len() {
            return;
        }
        let kind = u16_at(messages, 4);
        if len >= NLMSG_HEADER + IFINFOMSG && matches!(kind, RTM_NEWLINK | RTM_DELLINK) {
            let index = u32_at(messages, NLMSG_HEADER + 4);
            let flags = u32_at(messages, NLMSG_HEADER + 8);
            let working = IFF_UP | IFF_LOWER_UP;
            if kind == RTM_DELLINK || flags & working != working {
                alarm(Alarm::Down(index));
            }
        }
        if len >= NLMSG_HEADER + IFADDRMSG && matches!(kind, RTM_NEWMULTICAST | RTM_DELMULTICAST) {
            alarm(Alarm::Memberships(u32_at(messages, NLMSG_HEADER + 4)));
        }
        // Messages are 4-byte aligned.
        messages = &messages[((len + 3) & !3).min(messages.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, index: u32, flags: u32, attributes: usize) -> Vec<u8> {
        let len = NLMSG_HEADER + IFINFOMSG + attributes;
        let mut m = vec![0u8; len];
        m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[NLMSG_HEADER + 4..NLMSG_HEADER + 8].copy_from_slice(&index.to_ne_bytes());
        m[NLMSG_HEADER + 8..NLMSG_HEADER + 12].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    fn alarms(datagram: &[u8]) -> Vec<Alarm> {
        let mut seen = Vec::new();
        for_each_alarm(datagram, &mut |a| seen.push(a));
        seen
    }

    fn downs(datagram: &[u8]) -> Vec<u32> {
        alarms(datagram)
            .into_iter()
            .filter_map(|a| match a {
                Alarm::Down(i) => Some(i),
                Alarm::Memberships(_) => None,
            })
            .collect()
    }

    #[test]
    fn carrier_loss_admin_down_and_removal_are_down() {
        let mut d = message(RTM_NEWLINK, 3, IFF_UP | IFF_LOWER_UP, 20);
        d.extend(message(RTM_NEWLINK, 4, IFF_UP, 8));
        d.extend(message(RTM_NEWLINK, 5, IFF_LOWER_UP, 0));
        d.extend(message(RTM_DELLINK, 6, IFF_UP | IFF_LOWER_UP, 4));
        // Other messages are skipped whole.
        d.extend(message(20, 7, 0, 12));
        assert_eq!(downs(&d), [4, 5, 6]);
    }

    #[test]
    fn truncated_and_lying_lengths_stop_the_walk() {
        let mut d = message(RTM_NEWLINK, 4, IFF_UP, 0);
        d.truncate(20);
        assert!(downs(&d).is_empty());
        let mut lying = message(RTM_NEWLINK, 4, IFF_UP, 0);
        lying[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(downs(&lying).is_empty());
        let mut short = message(RTM_NEWLINK, 4, IFF_UP, 0);
        short[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(downs(&short).is_empty());
    }

    #[test]
    fn joins_and_leaves_name_their_interface() {
        // ifaddrmsg then IFA_MULTICAST and IFA_CACHEINFO, as the kernel sends.
        let mut d = message(RTM_NEWMULTICAST, 9, 0, 28);
        d.truncate(NLMSG_HEADER + IFADDRMSG + 28);
        d[0..4].copy_from_slice(&((NLMSG_HEADER + IFADDRMSG + 28) as u32).to_ne_bytes());
        d.extend(message(RTM_DELMULTICAST, 10, 0, 0));
        d.extend(message(RTM_NEWLINK, 4, IFF_UP, 0));
        assert_eq!(
            alarms(&d),
            [
                Alarm::Memberships(9),
                Alarm::Memberships(10),
                Alarm::Down(4)
            ]
        );
    }
}
