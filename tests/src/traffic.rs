//! Real packets: UDP flows sent from one namespace and seen, with the
//! source MAC they arrived with, in another.
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::netns::{join, Netns};

/// Flow id (UDP source port) to the source MAC the receiver saw.
pub type FlowMacs = HashMap<u16, [u8; 6]>;

/// Sends one datagram per source port from `src` (an address of `from`) to
/// `dst:port` and returns, per source port, the source MAC with which it
/// reached interface `ifname` of `to`.
pub fn flows_by_mac(
    from: &Netns,
    src: &str,
    ports: std::ops::Range<u16>,
    to: &Netns,
    ifname: &str,
    dst: &str,
    dst_port: u16,
) -> Result<FlowMacs> {
    let expected = ports.len();
    let ifname = ifname.to_string();
    let sniff = to.spawn_ready("sniffer", move |ready| {
        let sniffer = Sniffer::open(&ifname)?;
        ready.send(()).ok();
        sniffer.udp_sources(dst_port, expected, Instant::now() + Duration::from_secs(5))
    })?;
    let (src, dst): (IpAddr, IpAddr) = (src.parse()?, dst.parse()?);
    from.enter(move || {
        for port in ports {
            let sock = UdpSocket::bind(SocketAddr::new(src, port))?;
            sock.send_to(b"ipmp flow", SocketAddr::new(dst, dst_port))?;
        }
        Ok(())
    })?;
    join(sniff)
}

fn set_socket_option<T>(fd: i32, level: i32, name: i32, value: &T) -> Result<()> {
    // SAFETY: value points at a T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        bail!(
            "setsockopt({level}, {name}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Receive buffer of a sniffer: room for thousands of frames.
const SNIFFER_BUFFER: i32 = 4 << 20;

/// A packet socket on one interface (AF_PACKET), for seeing frames as the
/// wire carried them.
pub struct Sniffer {
    fd: i32,
}

impl Sniffer {
    pub fn open(ifname: &str) -> Result<Sniffer> {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        let sniffer = Sniffer { fd };
        let name = std::ffi::CString::new(ifname)?;
        // SAFETY: valid NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            bail!("no interface {ifname}");
        }
        // SAFETY: zeroed sockaddr_ll is valid; filled below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto as u16;
        addr.sll_ifindex = index as i32;
        // SAFETY: addr is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            bail!(
                "binding AF_PACKET socket to {ifname}: {}",
                std::io::Error::last_os_error()
            );
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        sniffer.set_option(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // The default buffer (208 KiB) overflows on a burst of a few
        // hundred frames; FORCE passes rmem_max (we are root).
        sniffer.set_option(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &SNIFFER_BUFFER)?;
        Ok(sniffer)
    }

    fn set_option<T>(&self, level: i32, name: i32, value: &T) -> Result<()> {
        set_socket_option(self.fd, level, name, value)
    }

    /// Fails when the kernel dropped frames for this socket (its buffer
    /// overflowed): what the capture says is then incomplete, and a test
    /// must not read a missing frame as lost traffic. Call it when done.
    pub fn ensure_complete(&self) -> Result<()> {
        // SAFETY: zeroed tpacket_stats is valid; the kernel fills it.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: stats and len are valid for the kernel to write.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut stats as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if rc < 0 {
            bail!("PACKET_STATISTICS: {}", std::io::Error::last_os_error());
        }
        if stats.tp_drops > 0 {
            bail!(
                "broken capture: the packet socket dropped {} of {} frames (buffer overflow), \
                 so the frames it saw are not all that arrived",
                stats.tp_drops,
                stats.tp_packets + stats.tp_drops
            );
        }
        Ok(())
    }

    /// Sends one whole Ethernet frame out of the interface.
    pub fn send_frame(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is valid for its length; the socket is bound.
        let n = unsafe {
            libc::send(
                self.fd,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        if n < 0 {
            bail!("sending a frame: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Next frame, or `None` after the receive timeout.
    pub fn next_frame(&self, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        (n > 0).then_some(n as usize)
    }

    /// Collects IPv4 UDP datagrams to `dst_port` until `expected` distinct
    /// source ports were seen or `until` passes.
    pub fn udp_sources(&self, dst_port: u16, expected: usize, until: Instant) -> Result<FlowMacs> {
        let mut seen = FlowMacs::new();
        self.each_udp(dst_port, until, |sport, mac| {
            seen.insert(sport, mac);
            seen.len() < expected
        });
        self.ensure_complete()?;
        Ok(seen)
    }

    /// Every IPv4 or IPv6 UDP frame to `dst_port` until `until`, duplicates
    /// included: (destination MAC, source MAC).
    pub fn udp_frames(&self, dst_port: u16, until: Instant) -> Result<Vec<([u8; 6], [u8; 6])>> {
        let mut frames = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let Some(n) = self.next_frame(&mut buf) else {
                continue;
            };
            if udp_source(&buf[..n], dst_port).is_some() {
                frames.push((
                    buf[0..6].try_into().unwrap_or_default(),
                    buf[6..12].try_into().unwrap_or_default(),
                ));
            }
        }
        self.ensure_complete()?;
        Ok(frames)
    }

    /// Calls `f(source port, source MAC)` per UDP frame to `dst_port`
    /// while it returns true and `until` has not passed.
    fn each_udp(&self, dst_port: u16, until: Instant, mut f: impl FnMut(u16, [u8; 6]) -> bool) {
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let Some(n) = self.next_frame(&mut buf) else {
                continue;
            };
            if let Some((sport, mac)) = udp_source(&buf[..n], dst_port) {
                if !f(sport, mac) {
                    return;
                }
            }
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

/// (UDP source port, Ethernet source MAC) of an IPv4 or IPv6 (without
/// extension headers) UDP frame to `dst_port`.
fn udp_source(frame: &[u8], dst_port: u16) -> Option<(u16, [u8; 6])> {
    const UDP: u8 = 17;
    let l4 = match frame.get(12..14)? {
        [0x08, 0x00] if *frame.get(14 + 9)? == UDP => 14 + ((frame[14] & 0x0f) as usize) * 4,
        [0x86, 0xdd] if *frame.get(14 + 6)? == UDP => 14 + 40,
        _ => return None,
    };
    let udp = frame.get(l4..l4 + 4)?;
    let (sport, dport) = (
        u16::from_be_bytes([udp[0], udp[1]]),
        u16::from_be_bytes([udp[2], udp[3]]),
    );
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[6..12]);
    (dport == dst_port).then_some((sport, mac))
}

/// Waits for one datagram on `bind` in `ns` and echoes it back; returns the
/// sender. Run with [`Netns::spawn`] before sending.
pub fn echo_once(bind: SocketAddr, timeout: Duration) -> Result<SocketAddr> {
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 1500];
    let (n, from) = sock.recv_from(&mut buf).context("no datagram arrived")?;
    sock.send_to(&buf[..n], from)?;
    Ok(from)
}

/// Formats a MAC as `ip link` does.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a MAC as `ip link` prints it.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad MAC {text}"))
}

/// A fixed-rate stream of numbered UDP datagrams, for counting loss.
pub struct Stream {
    sender: std::thread::JoinHandle<Result<()>>,
    receiver: std::thread::JoinHandle<Result<Vec<bool>>>,
    /// The sequence number the sender sends next.
    next: Arc<AtomicU32>,
    count: u32,
}

/// A stream's sender position.
#[derive(Clone)]
pub struct Progress(Arc<AtomicU32>);

impl Progress {
    /// The sequence number being sent now: loss from here on is what a
    /// cut made now costs ([`Stream::lost_since`]).
    pub fn now(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// Receive buffer of a stream's receiver: a whole stream of small
/// datagrams fits, so a receiver that falls behind loses nothing.
const STREAM_BUFFER: i32 = 64 << 20;

/// One end of a stream: a namespace, and an address and UDP port in it.
pub type End<'a> = (&'a Netns, &'a str, u16);

/// How a stream sends: `count` datagrams, one every `interval`. With
/// `realtime` the sender and receiver run on SCHED_FIFO, so the stream
/// keeps its rate while other processes (ipmpd, load) compete for the
/// CPUs.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub interval: Duration,
    pub count: u32,
    pub realtime: bool,
}

impl Stream {
    /// Starts `count` datagrams, one every `interval`, from `src:sport` in
    /// `from` to `dst:dport` in `to`.
    pub fn start(
        from: &Netns,
        (src, sport): (&str, u16),
        to: &Netns,
        (dst, dport): (&str, u16),
        interval: Duration,
        count: u32,
    ) -> Result<Stream> {
        let pace = Pace {
            interval,
            count,
            realtime: false,
        };
        Self::spawn((from, src, sport), (to, dst, dport), pace)
    }

    /// Starts a stream `from` one end `to` the other at `pace`, once the
    /// receiver listens.
    pub fn spawn(from: End, to: End, pace: Pace) -> Result<Stream> {
        let bind = SocketAddr::new(to.1.parse()?, to.2);
        let next = Arc::new(AtomicU32::new(0));
        let sent = next.clone();
        let receiver =
            to.0.spawn_ready("receiver", move |ready| receive(bind, pace, ready, sent))?;
        let src = SocketAddr::new(from.1.parse()?, from.2);
        let progress = next.clone();
        let sender = from.0.spawn(move || {
            let sent = send(src, bind, pace, &progress);
            // Done, also on failure: the receiver stops once it drained.
            progress.store(pace.count, Ordering::Release);
            sent
        });
        Ok(Stream {
            sender,
            receiver,
            next,
            count: pace.count,
        })
    }

    /// Where the sender is, readable from any thread.
    pub fn progress(&self) -> Progress {
        Progress(self.next.clone())
    }

    /// Waits for the stream to end; returns how many datagrams were lost.
    pub fn lost(self) -> Result<u32> {
        Ok(self.lost_since(0)?.0)
    }

    /// Waits for the stream to end; returns the datagrams lost in all and
    /// those lost from sequence number `mark` on.
    pub fn lost_since(self, mark: u32) -> Result<(u32, u32)> {
        join(self.sender)?;
        let seen = join(self.receiver)?;
        let missing =
            |from: usize| seen[from.min(seen.len())..].iter().filter(|s| !**s).count() as u32;
        debug_assert_eq!(seen.len(), self.count as usize);
        Ok((missing(0), missing(mark as usize)))
    }
}

/// A stream's receiver, bound to `bind`: tells `ready` once it listens,
/// and marks each sequence number that arrives until the sender, whose
/// position is `sent`, is done and nothing came for a while.
fn receive(
    bind: SocketAddr,
    pace: Pace,
    ready: mpsc::Sender<()>,
    sent: Arc<AtomicU32>,
) -> Result<Vec<bool>> {
    if pace.realtime {
        set_realtime()?;
    }
    let sock = UdpSocket::bind(bind)?;
    set_socket_option(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &STREAM_BUFFER,
    )?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let overflows_before = udp_receive_buffer_errors()?;
    ready.send(()).ok();
    let mut seen = vec![false; pace.count as usize];
    let mut buf = [0u8; 64];
    // Until the sender is done and nothing came for a while: a
    // sender that starts late must not end the stream early.
    let mut quiet_since_done = 0;
    while quiet_since_done < 5 {
        match sock.recv(&mut buf) {
            Ok(n) if n >= 4 => {
                let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if let Some(s) = seen.get_mut(seq as usize) {
                    *s = true;
                }
            }
            Ok(_) => {}
            Err(_) if sent.load(Ordering::Acquire) >= pace.count => quiet_since_done += 1,
            Err(_) => {}
        }
    }
    let overflows = udp_receive_buffer_errors()? - overflows_before;
    if overflows > 0 {
        bail!(
            "broken measurement: the receiver's buffer overflowed {overflows} times, \
             so missing datagrams are not all lost on the way"
        );
    }
    Ok(seen)
}

/// A stream's sender: numbered datagrams from `src` to `to` at `pace`,
/// each sequence number stored in `progress` as it goes.
fn send(src: SocketAddr, to: SocketAddr, pace: Pace, progress: &AtomicU32) -> Result<()> {
    if pace.realtime {
        set_realtime()?;
    }
    let sock = UdpSocket::bind(src)?;
    sock.connect(to)?;
    // A blocked sender would pause the stream and hide the loss:
    // a datagram the stack refuses is counted as lost instead.
    sock.set_nonblocking(true)?;
    let start = Instant::now();
    for seq in 0..pace.count {
        let due = pace.interval * seq;
        let now = start.elapsed();
        if due > now {
            std::thread::sleep(due - now);
        }
        progress.store(seq, Ordering::Release);
        let _ = sock.send(&seq.to_be_bytes());
    }
    Ok(())
}

/// SCHED_FIFO for the calling thread.
fn set_realtime() -> Result<()> {
    let param = libc::sched_param { sched_priority: 50 };
    // SAFETY: plain syscall on the calling thread (pid 0).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        bail!("SCHED_FIFO: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `Udp: RcvbufErrors` of the calling thread's network namespace.
fn udp_receive_buffer_errors() -> Result<u64> {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next(), udp.next());
    let column = names
        .and_then(|n| n.split_whitespace().position(|w| w == "RcvbufErrors"))
        .context("no Udp RcvbufErrors in /proc/net/snmp")?;
    values
        .and_then(|v| v.split_whitespace().nth(column))
        .context("no Udp values in /proc/net/snmp")?
        .parse()
        .context("RcvbufErrors")
}

/// A UDP source port (from `candidates`) whose flow from `src` to
/// `dst:dport` leaves through the member with MAC `mac`, as `to` sees it.
pub fn port_through(
    from: &Netns,
    src: &str,
    candidates: std::ops::Range<u16>,
    to: &Netns,
    (dst, dport): (&str, u16),
    mac: &str,
) -> Result<u16> {
    let seen = flows_by_mac(from, src, candidates, to, "eth0", dst, dport)?;
    seen.iter()
        .filter(|(_, m)| mac_string(m) == mac)
        .map(|(p, _)| *p)
        .min()
        .with_context(|| format!("no candidate flow went through {mac}"))
}

/// The Internet checksum (RFC 1071), as ipmpd computes it for its probes.
pub use ipmp::probe::socket::checksum as internet_checksum;

/// Answers ICMP echo requests to `ns` from userspace, each `delay_ms`
/// (read per request) late, until `stop`: a slow target, since this
/// kernel has no netem. The namespace's kernel must not answer itself
/// (`net.ipv4.icmp_echo_ignore_all = 1`).
pub fn slow_echo_responder(
    ns: &Netns,
    delay_ms: Arc<AtomicU32>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Result<()>> {
    ns.spawn(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        use std::io::Read;
        let mut sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            let Ok(n) = sock.read(&mut buf) else { continue };
            let header = usize::from(buf[0] & 0x0f) * 4;
            if n < header + 8 || buf[header] != 8 {
                continue;
            }
            let from = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let mut reply = buf[header..n].to_vec();
            reply[0] = 0;
            reply[2..4].copy_from_slice(&[0, 0]);
            let sum = internet_checksum(&reply);
            reply[2..4].copy_from_slice(&sum.to_be_bytes());
            let (sender, delay) = (sock.try_clone()?, delay_ms.load(Ordering::Relaxed));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(u64::from(delay)));
                let to = SocketAddr::new(IpAddr::V4(from), 0);
                sender.send_to(&reply, &to.into()).ok();
            });
        }
        Ok(())
    })
}
