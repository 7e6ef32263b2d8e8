//! Control requests, as mini-redis handles commands: one permission check
//! ([`permitted`]) and one dispatcher ([`Daemon::dispatch`]) whose arms
//! carry each request out and answer it.
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{error, info};

use super::{remove_if_empty, teardown, Daemon};
use crate::{
    control::{Incoming, Request, Response},
    model::Status,
};

/// Whether the event loop goes on after a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    /// Torn down: ipmpd exits.
    Exit,
}

/// Queries are open to anyone who reaches the socket; changes need root.
fn permitted(request: &Request, uid: u32) -> Result<(), Response> {
    if request.is_change() && uid != 0 {
        return Err(Response::Refused(
            "permission denied: only root may change IPMP".into(),
        ));
    }
    Ok(())
}

impl Daemon {
    /// Checks and carries out one control request, and answers it.
    pub(super) async fn dispatch(&mut self, incoming: Incoming) -> Flow {
        let Incoming {
            request,
            uid,
            reply,
            written,
        } = incoming;
        if let Err(refusal) = permitted(&request, uid) {
            let _ = reply.send(refusal);
            return Flow::Continue;
        }
        let response = match request {
            Request::Status => Some(Response::Status(Status {
                groups: self.groups.iter().map(|g| g.status()).collect(),
            })),
            // The connection follows the feed once answered.
            Request::Events => Some(Response::Done),
            Request::Probes if self.groups.iter().any(|g| g.probes()) => Some(Response::Done),
            Request::Probes => Some(Response::Refused(
                "probe-based failure detection is disabled".into(),
            )),
            Request::Offline { interface } => self.set_offline(&interface, true).await,
            Request::Online { interface } => self.set_offline(&interface, false).await,
            Request::Reload => Some(match self.reload().await {
                Ok(()) => Response::Done,
                Err(problems) => Response::Refused(problems),
            }),
            Request::Teardown => {
                self.teardown_all(reply, written).await;
                return Flow::Exit;
            }
        };
        // No answer when carrying it out failed (logged): the caller sees
        // the connection close.
        if let Some(response) = response {
            let _ = reply.send(response);
        }
        Flow::Continue
    }

    /// Takes `interface` offline or brings it online in its group.
    async fn set_offline(&mut self, interface: &str, offline: bool) -> Option<Response> {
        let Some(g) = self.groups.iter_mut().find(|g| g.has_member(interface)) else {
            return Some(Response::Refused(format!(
                "{interface} is not a member of any IPMP group"
            )));
        };
        match g.set_offline(&self.nl, interface, offline).await {
            Ok(Some(reason)) => Some(Response::Refused(reason)),
            Ok(None) => Some(Response::Done),
            Err(e) => {
                error!("{e:#}");
                None
            }
        }
    }

    /// Removes every group in the pins, configured or not, answers once
    /// that is done and waits (a little) for the answer to be written.
    async fn teardown_all(
        &mut self,
        reply: oneshot::Sender<Response>,
        written: oneshot::Receiver<()>,
    ) {
        // The programs are let go first so the pins' removal detaches them.
        self.groups.clear();
        if let Err(e) = teardown::everything(&self.nl, &self.started.pin_root).await {
            error!("teardown: {e:#}");
        }
        remove_if_empty(&self.pin_dir);
        let _ = std::fs::remove_file(&self.socket);
        let _ = reply.send(Response::Done);
        let _ = tokio::time::timeout(Duration::from_secs(1), written).await;
        info!("Torn down; exiting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_may_change_ipmp_and_anyone_may_look() {
        let changes = [
            Request::Offline {
                interface: "net0".into(),
            },
            Request::Online {
                interface: "net0".into(),
            },
            Request::Reload,
            Request::Teardown,
        ];
        for request in &changes {
            assert_eq!(permitted(request, 0), Ok(()));
            assert_eq!(
                permitted(request, 1000),
                Err(Response::Refused(
                    "permission denied: only root may change IPMP".into()
                ))
            );
        }
        for request in [Request::Status, Request::Probes, Request::Events] {
            assert_eq!(permitted(&request, 1000), Ok(()));
        }
    }
}
