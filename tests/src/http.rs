//! A minimal HTTP GET from inside a namespace (the metrics endpoint and
//! Prometheus listen on that namespace's loopback).
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::netns::Netns;

/// GETs `http://addr/path` from inside `ns`; returns the body of a 200.
pub fn get(ns: &Netns, addr: &str, path: &str) -> Result<String> {
    let (addr, path) = (addr.to_string(), path.to_string());
    ns.enter(move || fetch(&addr, &path))
}

/// GETs `http://addr/path` in the calling thread's namespace.
pub fn fetch(addr: &str, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// The value of the series `series` (name and labels exactly as printed)
/// in a Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A per-member series `name` of group production0, summed over `members`,
/// from the metrics at `addr` inside `ns`.
pub fn member_sum(ns: &Netns, addr: &str, name: &str, members: &[&str]) -> Result<f64> {
    let text = get(ns, addr, "/metrics")?;
    Ok(members
        .iter()
        .filter_map(|m| {
            sample(
                &text,
                &format!("{name}{{group=\"production0\",interface=\"{m}\"}}"),
            )
        })
        .sum())
}
