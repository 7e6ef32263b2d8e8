//! IPMP policy: which members of a group carry traffic, and how flows are
//! spread over them. Policy is pure code over plain data, events in,
//! decisions out: it does no I/O, reads no clock (time is passed in) and
//! knows nothing of netlink, BPF maps or sockets, so ipmpd can replay any
//! sequence of link, probe and operator events in a unit test and get the
//! same notices, active set and flow table it would get in production.
pub mod flow_table;
pub mod group;
pub mod inbound;
mod notice;
