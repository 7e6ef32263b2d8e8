//! The control socket between ipmpctl and ipmpd: one JSON request per
//! connection, one JSON response back. Queries are open to anyone who can
//! reach the socket; changes need root (checked with SO_PEERCRED).
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream as StdUnixStream},
    path::Path,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader},
    net::{UnixListener, UnixStream},
    sync::{broadcast, mpsc, oneshot},
};

use crate::model::{EventRecord, ProbeRecord, Status};

pub const DEFAULT_SOCKET: &str = "/run/ipmp/ipmpd.sock";
/// Environment variable naming the socket, for ipmpctl.
pub const SOCKET_ENV: &str = "IPMP_SOCKET";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub enum Request {
    Status,
    /// Follow probes as they happen (`ipmpctl stat -p`): one
    /// [`Response::Probe`] line per probe until the caller hangs up.
    Probes,
    /// Follow state changes as they happen (`ipmpctl events`): one
    /// [`Response::Event`] line each until the caller hangs up.
    Events,
    /// Take a member offline (if_mpadm -d): it carries nothing, is not probed.
    Offline {
        interface: String,
    },
    /// Bring an offline member back (if_mpadm -r), through the repair path.
    Online {
        interface: String,
    },
    /// Read the configuration file again and apply the difference.
    Reload,
    /// Remove every group interface, program, pin and address ipmpd created, then exit.
    Teardown,
}

impl Request {
    /// Whether the request changes the system (root only).
    pub fn is_change(&self) -> bool {
        !matches!(self, Request::Status | Request::Probes | Request::Events)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Status(Status),
    Probe(ProbeRecord),
    Event(EventRecord),
    Done,
    /// The request was understood and refused; the reason is for the operator.
    Refused(String),
}

/// A request as ipmpd's event loop receives it.
pub struct Incoming {
    pub request: Request,
    /// The caller's uid, from the socket's peer credentials.
    pub uid: u32,
    pub reply: oneshot::Sender<Response>,
    /// Fires once the response is written, so ipmpd can answer a teardown
    /// before it exits.
    pub written: oneshot::Receiver<()>,
}

/// Binds the control socket, replacing a stale one, readable by everyone.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if StdUnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "another ipmpd is listening on {}; stop it first or give this one --socket PATH",
            path.display()
        );
    }
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// What the event loop publishes for followers of probes and events.
#[derive(Clone)]
pub struct Feeds {
    pub probes: broadcast::Sender<ProbeRecord>,
    pub events: broadcast::Sender<EventRecord>,
}

/// Accepts connections and hands their requests to the event loop;
/// followers get the `feeds` streamed.
pub async fn serve(listener: UnixListener, to_daemon: mpsc::Sender<Incoming>, feeds: Feeds) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let to_daemon = to_daemon.clone();
        // Subscribed before the request is read, so nothing falls between.
        let (probes, events) = (feeds.probes.subscribe(), feeds.events.subscribe());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, to_daemon, probes, events).await {
                tracing::debug!("control connection: {e:#}");
            }
        });
    }
}

async fn answer(
    stream: UnixStream,
    to_daemon: mpsc::Sender<Incoming>,
    probes: broadcast::Receiver<ProbeRecord>,
    events: broadcast::Receiver<EventRecord>,
) -> Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    AsyncBufReader::new(read).read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            let (done, written) = oneshot::channel();
            to_daemon
                .send(Incoming {
                    request: request.clone(),
                    uid,
                    reply,
                    written,
                })
                .await?;
            let response = answer.await?;
            write_response(&mut write, &response).await?;
            let _ = done.send(());
            if response == Response::Done {
                match request {
                    Request::Probes => follow_feed(&mut write, probes, Response::Probe).await?,
                    Request::Events => follow_feed(&mut write, events, Response::Event).await?,
                    _ => {}
                }
            }
            return Ok(());
        }
        Err(e) => Response::Refused(format!("malformed request: {e}")),
    };
    write_response(&mut write, &response).await
}

/// Writes every record of `feed` until the reader hangs up.
async fn follow_feed<T: Clone>(
    write: &mut (impl AsyncWriteExt + Unpin),
    mut feed: broadcast::Receiver<T>,
    wrap: fn(T) -> Response,
) -> Result<()> {
    loop {
        match feed.recv().await {
            Ok(record) => write_response(write, &wrap(record)).await?,
            // A slow reader misses records rather than holding ipmpd up.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

async fn write_response(
    write: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> Result<()> {
    let mut text = serde_json::to_string(response)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    Ok(())
}

/// Why ipmpctl could not get an answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nobody listens on the socket.
    Unreachable,
    Other(anyhow::Error),
}

/// Sends one request and waits for the answer (ipmpctl's side).
pub fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let mut answer = None;
    follow(socket, request, |r| {
        answer = Some(r);
        false
    })?;
    answer.ok_or(ClientError::Unreachable)
}

/// Sends one request and hands each answer line to `each` while it returns
/// true and ipmpd keeps the connection open.
pub fn follow(
    socket: &Path,
    request: &Request,
    mut each: impl FnMut(Response) -> bool,
) -> Result<(), ClientError> {
    let mut stream = StdUnixStream::connect(socket).map_err(|_| ClientError::Unreachable)?;
    let mut text = serde_json::to_string(request).map_err(|e| ClientError::Other(e.into()))?;
    text.push('\n');
    stream
        .write_all(text.as_bytes())
        .map_err(|e| ClientError::Other(e.into()))?;
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(|e| ClientError::Other(e.into()))?;
        let response = serde_json::from_str(&line)
            .map_err(|e| ClientError::Other(anyhow::anyhow!("bad answer from ipmpd: {e}")))?;
        if !each(response) {
            break;
        }
    }
    Ok(())
}
