//! The agent's side of the fence socket: pets every [`super::PET_INTERVAL`] on one kept
//! connection (reconnecting when it breaks), and the fencing status the agent reports in its
//! heartbeats.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
};
use tracing::{info, warn};

use super::{
    level::{Fencing, FencingLevel},
    protocol::{Pet, Reply, Request},
};
use crate::model::VmId;

/// What a pet says, read from the agent's state at each pet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PetSource {
    pub fence_in: Duration,
    pub lease_left: Duration,
    pub vms: Vec<VmId>,
    pub renewed: bool,
}

/// The fencing of an agent without a fence process.
pub fn agent_only() -> Fencing {
    Fencing::new(
        FencingLevel::AgentOnly,
        "no fence process (agent-level fence only): a hung agent does not fence its HA domains",
    )
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

type Conn = (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf);

pub struct FenceClient {
    path: PathBuf,
    status: Mutex<Fencing>,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl FenceClient {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        FenceClient {
            status: Mutex::new(Fencing::new(
                FencingLevel::AgentOnly,
                format!("fence process at {} not reached yet", path.display()),
            )),
            path,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fencing status for heartbeats.
    pub fn status(&self) -> Fencing {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_status(&self, s: Fencing) {
        let mut cur = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if *cur != s {
            if s.is_degraded() {
                warn!(level = s.level.as_str(), status = %s.reason, "fencing");
            } else {
                info!(level = s.level.as_str(), status = %s.reason, "fencing");
            }
            *cur = s;
        }
    }

    /// Sends one request on the kept connection (opened when needed).
    pub async fn request(&self, req: &Request) -> std::io::Result<Reply> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let s = UnixStream::connect(&self.path).await?;
            let (r, w) = s.into_split();
            *guard = Some((BufReader::new(r).lines(), w));
        }
        let res = async {
            let (lines, w) = guard.as_mut().expect("connected above");
            let mut text = serde_json::to_string(req).map_err(std::io::Error::other)?;
            text.push('\n');
            w.write_all(text.as_bytes()).await?;
            match tokio::time::timeout(REPLY_TIMEOUT, lines.next_line()).await {
                Ok(Ok(Some(line))) => serde_json::from_str::<Reply>(&line).map_err(std::io::Error::other),
                Ok(Ok(None)) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the fence process closed the connection",
                )),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the fence process did not answer",
                )),
            }
        }
        .await;
        if res.is_err() {
            *guard = None;
        }
        res
    }

    /// One pet; updates the status.
    pub async fn pet(&self, src: PetSource) -> std::io::Result<Reply> {
        let req = Request::Pet(Pet {
            fence_in_ms: src.fence_in.as_millis() as u64,
            lease_left_ms: src.lease_left.as_millis() as u64,
            vms: src.vms,
            renewed: src.renewed,
        });
        let r = self.request(&req).await;
        self.set_status(match &r {
            Ok(reply) => Fencing::of_reply(reply),
            Err(e) => Fencing::new(
                FencingLevel::AgentOnly,
                format!(
                    "fence process unreachable at {} ({e}): only the agent's own watchdog fences",
                    self.path.display()
                ),
            ),
        });
        r
    }

    /// Pets every `interval` with what `source` says, until dropped.
    pub async fn run(&self, interval: Duration, source: impl Fn() -> PetSource) {
        loop {
            let _ = self.pet(source()).await;
            tokio::time::sleep(interval).await;
        }
    }

    /// A clean stop without HA domains: the fence process stops watching this agent.
    pub async fn disarm(&self) -> std::io::Result<()> {
        self.request(&Request::Disarm).await.map(|_| ())
    }
}

/// The status text of a fence process's reply.
pub fn status_of(r: &Reply) -> String {
    Fencing::of_reply(r).text()
}
