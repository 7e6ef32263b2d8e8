//! Test support: namespaces, the tutorial topology, ipmpd under test and
//! real traffic. Used by the integration tests and by xtask (testbed, demo,
//! bench).
pub mod config;
pub mod daemon;
pub mod http;
pub mod netns;
pub mod topology;
pub mod traffic;
pub mod xdp;
