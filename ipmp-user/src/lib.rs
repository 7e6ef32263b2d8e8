//! ipmpd, ipmpctl and the library they share: IP multipathing for Linux
//! (Solaris IPMP's in.mpathd, ipmpstat and if_mpadm), over the kernel
//! programs of `ipmp-ebpf` and the map layouts of `ipmp-common`.
//!
//! # Layout
//!
//! Pure policy, no I/O, unit-tested without a kernel (events in, decisions
//! out):
//! - [`policy`]: the member and group state machine (`group`), the flow
//!   table (`flow_table`), the data addresses' inbound binding (`inbound`).
//! - [`probe`]: in.mpathd's probing as pure code: the detector (per target
//!   history, failure and repair, adaptive failure detection time), target
//!   selection (`targets`); `socket` and `replies` are its thin plumbing.
//! - [`config`]: the TOML schema and its checks; [`convert`]: Solaris
//!   files to that TOML; [`ipmpstat`]: every column of `ipmpctl stat`;
//!   [`model`]: the status the control socket and metrics report.
//!
//! Plumbing, kept thin around the policy:
//! - [`dataplane`]: aya: load, pin, adopt, typed map access;
//!   [`kernel_layout`]: the running kernel's `net_device` offsets and BTF
//!   ids; [`objects`]: the kernel programs linked for that kernel;
//!   [`pin_watch`]: removals from a group's pin folder.
//! - [`netlink`]: links, addresses, rules, route mirroring, the event
//!   stream; [`link_alarm`]: the fast path for links going down and
//!   multicast joins.
//! - [`memberships`], [`notify`], [`sysctl`], [`syslog`]: multicast groups
//!   held on members, gratuitous ARP / unsolicited NA, member sysctls,
//!   logging.
//! - [`control`]: the control socket; [`metrics`]: Prometheus over HTTP.
//! - [`daemon`]: the event loop (`mod.rs`, `requests.rs` its one dispatcher,
//!   `reload.rs`), one `group::Group` per IPMP group wiring events into the
//!   policy and its decisions into the dataplane (`daemon/group/*.rs`, one
//!   file per concern), the member record kept in the pins (`record.rs`).
pub mod config;
pub mod control;
pub mod convert;
pub mod daemon;
pub mod dataplane;
pub mod ipmpstat;
pub mod kernel_layout;
pub mod link_alarm;
pub mod memberships;
pub mod metrics;
pub mod model;
pub mod netlink;
pub mod notify;
pub mod objects;
pub mod pin_watch;
pub mod policy;
pub mod probe;
pub mod sysctl;
pub mod syslog;
