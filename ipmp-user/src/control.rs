//! The control socket between ipmpctl and ipmpd: one JSON request per
//! connection, one JSON response back. Queries are open to anyone who can
//! reach the socket; changes need root (checked with SO_PEERCRED).
//!
//! The socket is open to every local user, so what one connection may cost
//! ipmpd is bounded: a request is at most [`MAX_REQUEST_BYTES`] and must
//! arrive within [`REQUEST_TIMEOUT`], and at most [`MAX_USER_CONNECTIONS`]
//! connections of other users are served at once (root has
//! [`MAX_ROOT_CONNECTIONS`] of its own, so they can never lock root out).
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{
        fs::{FileTypeExt, PermissionsExt},
        net::UnixStream as StdUnixStream,
    },
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader},
    net::{UnixListener, UnixStream},
    sync::{broadcast, mpsc, oneshot, OwnedSemaphorePermit, Semaphore},
};

use crate::model::{EventRecord, ProbeRecord, Status};

pub const DEFAULT_SOCKET: &str = "/run/ipmp/ipmpd.sock";
/// Environment variable naming the socket, for ipmpctl.
pub const SOCKET_ENV: &str = "IPMP_SOCKET";
/// The longest request line; real ones are under 100 bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of users other than root served at once (followers of
/// `stat -p` and `events` included).
pub const MAX_USER_CONNECTIONS: usize = 32;
/// Connections of root served at once, apart from the users' ones.
pub const MAX_ROOT_CONNECTIONS: usize = 16;
/// The first wait after a failed accept (out of file descriptors); it
/// doubles up to [`ACCEPT_BACKOFF_MAX`] while accepting keeps failing.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

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
/// Anything else at `path` (a file, a live socket) is left alone.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("examining {}", path.display())),
        Ok(meta) if !meta.file_type().is_socket() => anyhow::bail!(
            "{} exists and is not a socket; ipmpd replaces only a stale socket of its own: \
             remove it or give another --socket PATH",
            path.display()
        ),
        Ok(_) if StdUnixStream::connect(path).is_ok() => anyhow::bail!(
            "another ipmpd is listening on {}; stop it first or give this one --socket PATH",
            path.display()
        ),
        // A socket nobody listens on: what a killed ipmpd leaves behind.
        Ok(_) => std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?,
    }
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
    let users = Arc::new(Semaphore::new(MAX_USER_CONNECTIONS));
    let root = Arc::new(Semaphore::new(MAX_ROOT_CONNECTIONS));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: the connection stays
                // queued, so retrying at once would spin.
                tracing::warn!("control socket: cannot accept a connection: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        let Ok(uid) = stream.peer_cred().map(|c| c.uid()) else {
            continue;
        };
        let (slots, cap) = if uid == 0 {
            (&root, MAX_ROOT_CONNECTIONS)
        } else {
            (&users, MAX_USER_CONNECTIONS)
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse_busy(&stream, cap);
            continue;
        };
        let to_daemon = to_daemon.clone();
        // Subscribed before the request is read, so nothing falls between.
        let (probes, events) = (feeds.probes.subscribe(), feeds.events.subscribe());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, uid, to_daemon, probes, events, permit).await {
                tracing::debug!("control connection: {e:#}");
            }
        });
    }
}

/// Tells a connection beyond the cap why it is closed, without waiting
/// for it: a client that does not read loses the message, nothing more.
fn refuse_busy(stream: &UnixStream, cap: usize) {
    let mut text = serde_json::to_string(&Response::Refused(format!(
        "ipmpd is already serving {cap} connections of this kind; try again when some have finished"
    )))
    .unwrap_or_default();
    text.push('\n');
    let _ = stream.try_write(text.as_bytes());
}

/// Reads one request line: at most [`MAX_REQUEST_BYTES`], within
/// [`REQUEST_TIMEOUT`]. `Err` is the refusal to send back.
async fn read_request(read: impl tokio::io::AsyncRead + Unpin) -> Result<Request, String> {
    let mut line = Vec::new();
    let limited = AsyncBufReader::new(read.take(MAX_REQUEST_BYTES as u64 + 1));
    let mut limited = std::pin::pin!(limited);
    match tokio::time::timeout(REQUEST_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Err(_) => {
            return Err(format!(
                "no complete request within {} s; send one JSON line",
                REQUEST_TIMEOUT.as_secs()
            ))
        }
        Ok(Err(e)) => return Err(format!("reading the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "request longer than {MAX_REQUEST_BYTES} bytes; a request is one short JSON line"
        ));
    }
    decode_request(&line)
}

/// Decodes one request line (what a client sent, untrusted).
pub fn decode_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice::<Request>(line).map_err(|e| format!("malformed request: {e}"))
}

async fn answer(
    stream: UnixStream,
    uid: u32,
    to_daemon: mpsc::Sender<Incoming>,
    probes: broadcast::Receiver<ProbeRecord>,
    events: broadcast::Receiver<EventRecord>,
    // Held until the connection ends.
    _permit: OwnedSemaphorePermit,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let response = match read_request(read).await {
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
        Err(refusal) => Response::Refused(refusal),
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
    // A client that stops reading would otherwise hold its slot for good.
    tokio::time::timeout(REQUEST_TIMEOUT, write.write_all(text.as_bytes()))
        .await
        .map_err(|_| anyhow::anyhow!("the client read nothing for {REQUEST_TIMEOUT:?}"))??;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: Vec<u8>) -> Result<Request, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(read_request(std::io::Cursor::new(bytes)))
    }

    #[test]
    fn a_request_line_is_read() {
        assert_eq!(
            read(b"{\"request\":\"status\"}\n".to_vec()),
            Ok(Request::Status)
        );
        // A line as long as allowed, padded with JSON whitespace.
        let mut line = b"{\"request\":\"reload\"}".to_vec();
        line.resize(MAX_REQUEST_BYTES - 1, b' ');
        line.push(b'\n');
        assert_eq!(read(line), Ok(Request::Reload));
    }

    #[test]
    fn a_longer_request_is_refused_unread() {
        let mut line = b"{\"request\":\"reload\"}".to_vec();
        line.resize(MAX_REQUEST_BYTES, b' ');
        line.push(b'\n');
        assert_eq!(
            read(line),
            Err(format!(
                "request longer than {MAX_REQUEST_BYTES} bytes; a request is one short JSON line"
            ))
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let refusal = read(b"{\"request\":\"shutdown\"}\n".to_vec()).unwrap_err();
        assert!(
            refusal.starts_with("malformed request: unknown variant `shutdown`"),
            "{refusal}"
        );
        assert!(read(Vec::new())
            .unwrap_err()
            .starts_with("malformed request"));
    }
}
