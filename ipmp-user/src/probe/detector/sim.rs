//! A group's prober driven as ipmpd's loop drives it, over simulated time
//! and a scripted network: the harness of the prober's tests.
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::probe::targets::RttEstimator;
pub(crate) use crate::probe::testing::{ms, secs, v4};
use crate::probe::Family;

use super::{EchoReply, GroupProber, ProbeKind, ProbeToSend, ProberEvent};

pub(crate) fn at(s: u64, ms_: u64) -> Duration {
    secs(s) + ms(ms_)
}

pub(crate) fn ll(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, d))
}

/// FDT 7 s: a 1 s interval keeps the arithmetic readable.
pub(crate) const FDT: Duration = Duration::from_secs(7);
pub(crate) const QUIET: Duration = Duration::from_secs(40);
pub(crate) const RTT: Duration = Duration::from_millis(10);

pub(crate) fn failure(m: &str) -> ProberEvent {
    ProberEvent::Failure(m.into())
}

pub(crate) fn repair(m: &str) -> ProberEvent {
    ProberEvent::Repair(m.into())
}

/// A reply to `member`'s probe `seq` in `family`, as the caller hands it in.
pub(crate) fn echo(
    member: &str,
    family: Family,
    seq: u16,
    kind: ProbeKind,
    from: IpAddr,
    rtt: Duration,
) -> EchoReply<'_> {
    EchoReply {
        member,
        family,
        seq,
        kind,
        from,
        rtt,
    }
}

/// Randomness that always says `r`: with 1.0, members start one
/// interval after being added and probe every interval exactly.
pub(crate) fn always(r: f64) -> Box<dyn FnMut() -> f64> {
    Box::new(move || r)
}

pub(crate) fn cycle(values: Vec<f64>) -> Box<dyn FnMut() -> f64> {
    let mut i = 0;
    Box::new(move || {
        i += 1;
        values[(i - 1) % values.len()]
    })
}

/// Who answers a probe sent at some time: (from, rtt) for each reply.
pub(crate) type Net = Box<dyn FnMut(Duration, &ProbeToSend) -> Vec<(IpAddr, Duration)>>;

/// Every unicast probe answered by its target after `RTT`.
pub(crate) fn answering() -> Net {
    Box::new(|_, p| match p.kind {
        ProbeKind::TargetDiscovery => vec![],
        _ => vec![(p.target, RTT)],
    })
}

/// A group driven by the daemon's loop over simulated time.
pub(crate) struct Sim {
    pub(crate) p: GroupProber,
    pub(crate) now: Duration,
    pub(crate) rand: Box<dyn FnMut() -> f64>,
    pub(crate) net: Net,
    pub(crate) in_flight: Vec<(Duration, ProbeToSend, IpAddr, Duration)>,
    pub(crate) sent: Vec<(Duration, ProbeToSend)>,
    /// Replies delivered: arrival, the probe, from.
    pub(crate) replies: Vec<(Duration, ProbeToSend, IpAddr)>,
    pub(crate) events: Vec<(Duration, ProberEvent)>,
}

impl Sim {
    pub(crate) fn new(rand: Box<dyn FnMut() -> f64>, net: Net) -> Sim {
        Sim {
            p: GroupProber::new("g", FDT, QUIET),
            now: Duration::ZERO,
            rand,
            net,
            in_flight: Vec::new(),
            sent: Vec::new(),
            replies: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, member: &str, families: &[Family]) {
        self.p
            .add_member(member, families, self.now, &mut *self.rand);
    }

    pub(crate) fn run_until(&mut self, end: Duration) {
        for _ in 0..1_000_000 {
            let reply = self.in_flight.iter().map(|r| r.0).min();
            let deadline = self.p.next_deadline();
            let next = match (reply, deadline) {
                (Some(r), Some(d)) => r.min(d),
                (r, d) => match r.or(d) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            // Replies first at equal times (a reply racing its deadline).
            self.in_flight.sort_by_key(|r| r.0);
            while self.in_flight.first().is_some_and(|r| r.0 <= self.now) {
                let (_, probe, from, rtt) = self.in_flight.remove(0);
                let reply = echo(
                    &probe.member,
                    probe.family,
                    probe.seq,
                    probe.kind,
                    from,
                    rtt,
                );
                let events = self.p.on_reply(self.now, &reply);
                self.replies.push((self.now, probe, from));
                self.events
                    .extend(events.into_iter().map(|e| (self.now, e)));
            }
            if self.p.next_deadline().is_some_and(|d| d <= self.now) {
                let (sends, events) = self.p.poll(self.now, &mut *self.rand);
                self.events
                    .extend(events.into_iter().map(|e| (self.now, e)));
                for probe in sends {
                    for (from, rtt) in (self.net)(self.now, &probe) {
                        self.in_flight
                            .push((self.now + rtt, probe.clone(), from, rtt));
                    }
                    self.sent.push((self.now, probe));
                }
            }
        }
        self.now = self.now.max(end);
    }

    /// After a state change outside poll: the events it queued.
    pub(crate) fn settle(&mut self) {
        self.run_until(self.now);
    }

    pub(crate) fn fd_probes(&self, member: &str) -> Vec<(Duration, IpAddr, u16)> {
        self.probes(member, ProbeKind::FailureDetection)
            .into_iter()
            .map(|(t, p)| (t, p.target, p.seq))
            .collect()
    }

    pub(crate) fn probes(&self, member: &str, kind: ProbeKind) -> Vec<(Duration, ProbeToSend)> {
        self.sent
            .iter()
            .filter(|(_, p)| p.member == member && p.kind == kind)
            .cloned()
            .collect()
    }

    pub(crate) fn crtt(&self, member: &str, family: Family, target: IpAddr) -> Duration {
        let view = self.p.view(member, family).unwrap();
        let t = view.targets.iter().find(|t| t.address == target).unwrap();
        t.crtt.unwrap()
    }

    pub(crate) fn estimator(&self, member: &str, family: Family, target: IpAddr) -> RttEstimator {
        let m = &self.p.members[self.p.index(member).unwrap()];
        let i = &m.instances[m.instance(family).unwrap()];
        i.targets.get(target).unwrap().rtt.clone()
    }

    pub(crate) fn targets(&self, member: &str, family: Family) -> Vec<IpAddr> {
        let view = self.p.view(member, family).unwrap();
        view.targets.iter().map(|t| t.address).collect()
    }
}

/// Members a and b probing in IPv4, target 192.0.2.1 answering in
/// 10 ms, except as `net` says.
pub(crate) fn pair(rand: Box<dyn FnMut() -> f64>, net: Net) -> Sim {
    let mut sim = Sim::new(rand, net);
    sim.p.set_explicit_targets(vec![v4(1)]);
    sim.add("a", &[Family::V4]);
    sim.add("b", &[Family::V4]);
    sim
}

/// Answers everything but `member`'s failure-detection probes sent in
/// [from, to).
pub(crate) fn outage(member: &'static str, from: Duration, to: Duration) -> Net {
    Box::new(move |t, p| {
        if p.member == member && t >= from && t < to || p.kind == ProbeKind::TargetDiscovery {
            vec![]
        } else {
            vec![(p.target, RTT)]
        }
    })
}
