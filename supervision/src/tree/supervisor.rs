//! The node's root supervisor: starts every long-lived actor of the node in
//! order, restarts the ones that crash, and turns a crash loop into a node
//! that says it is not ready.
//!
//! Children are described by [`ChildSpec`]s: a name, a [`Policy`], and a
//! start function the supervisor calls again on every restart. A child
//! reaches the rest of the node through handles that read a [`Slot`], so a
//! restart is invisible to callers (but for the messages lost with the dead
//! actor, whose callers see their reply dropped and retry).
//!
//! [`Slot`]: super::Slot

use super::policy::{Budget, Policy, Restart};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Starts a child linked to the supervisor given; called on every
/// (re)start. Answers the child's cell, or why it could not start.
pub type StartFn =
    Box<dyn Fn(ActorCell) -> BoxFuture<'static, Result<ActorCell, String>> + Send + Sync>;

/// Makes a running child panic (debug builds' fault hook); false when it
/// could not be reached.
pub type CrashFn = Box<dyn Fn() -> bool + Send + Sync>;

/// One child of the tree.
pub struct ChildSpec {
    /// Its name in logs, `/api/v1/status` and metrics (`region`, `live-hub`).
    pub name: &'static str,
    /// What a crash of it does.
    pub policy: Policy,
    /// What restarting it means, for people reading the status (`"entities
    /// re-activate from the store on their next message"`).
    pub restart_means: &'static str,
    pub start: StartFn,
    /// Debug builds: makes it panic, to exercise this very supervision.
    pub crash: Option<CrashFn>,
}

/// How a child is doing, as `/api/v1/status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChildStatus {
    pub name: &'static str,
    pub policy: &'static str,
    pub restart_means: &'static str,
    /// `running`, `restarting`, `stopped` (crash loop: waiting out its
    /// window) or `failed` (it could not be started again).
    pub state: &'static str,
    /// Restarts after crashes since the node started.
    pub restarts: u64,
    /// The last crash, if any.
    pub last_crash: Option<String>,
}

/// The tree's view of the node's health: why it is not ready, if it is
/// not. Cheap to clone; read by `/readyz`.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<RwLock<HealthState>>,
}

#[derive(Default)]
struct HealthState {
    /// Children whose crash loop made the node unready, with the reason.
    unready: HashMap<&'static str, String>,
    children: Vec<ChildStatus>,
}

impl Health {
    /// Why the node is not ready, if a child's crash loop made it so.
    pub fn unready_reason(&self) -> Option<String> {
        let h = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut reasons: Vec<&String> = h.unready.values().collect();
        reasons.sort();
        (!reasons.is_empty()).then(|| {
            reasons
                .into_iter()
                .cloned()
                .collect::<Vec<String>>()
                .join("; ")
        })
    }

    /// Every child, in start order.
    pub fn children(&self) -> Vec<ChildStatus> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .children
            .clone()
    }

    /// Restarts of the child `name` so far.
    pub fn restarts(&self, name: &str) -> u64 {
        self.children()
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.restarts)
            .unwrap_or(0)
    }

    fn update(&self, f: impl FnOnce(&mut HealthState)) {
        let mut h = self.inner.write().unwrap_or_else(|p| p.into_inner());
        f(&mut h);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The supervisor's mailbox.
pub enum TreeMsg {
    /// Starts a child (in the order they are added) and answers once it runs.
    Add {
        spec: ChildSpec,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Starts child `index` again (after a crash and its backoff).
    Restart { index: usize, generation: u64 },
    /// Child `index` has run a whole window since its restart after a crash
    /// loop: the node may be ready again.
    Stable { index: usize, generation: u64 },
    /// Makes child `name` panic (debug builds).
    Crash {
        name: String,
        reply: oneshot::Sender<bool>,
    },
    /// Stops every child, last started first, and answers once they are gone.
    Shutdown { reply: oneshot::Sender<()> },
}
impl ractor::Message for TreeMsg {}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restart: Restart,
    restarts: u64,
    last_crash: Option<String>,
    state: &'static str,
    /// Counts (re)starts, so a timer set for an older life is ignored.
    generation: u64,
}

/// The supervisor's state.
pub struct TreeState {
    budget: Budget,
    children: Vec<Child>,
    by_id: HashMap<ActorId, usize>,
    health: Health,
    stopping: bool,
}

impl TreeState {
    fn publish(&self) {
        let children = self
            .children
            .iter()
            .map(|c| ChildStatus {
                name: c.spec.name,
                policy: c.spec.policy.name(),
                restart_means: c.spec.restart_means,
                state: c.state,
                restarts: c.restarts,
                last_crash: c.last_crash.clone(),
            })
            .collect();
        self.health.update(|h| h.children = children);
    }

    async fn start(&mut self, myself: &ActorRef<TreeMsg>, index: usize) -> Result<(), String> {
        let child = &mut self.children[index];
        child.generation += 1;
        match (child.spec.start)(myself.get_cell()).await {
            Ok(cell) => {
                self.by_id.insert(cell.get_id(), index);
                let child = &mut self.children[index];
                child.cell = Some(cell);
                child.state = "running";
                Ok(())
            }
            Err(e) => {
                let child = &mut self.children[index];
                child.cell = None;
                child.state = "failed";
                Err(e)
            }
        }
    }

    /// A child died: decide by its policy.
    fn crashed(&mut self, myself: &ActorRef<TreeMsg>, index: usize, why: String) {
        let child = &mut self.children[index];
        child.cell = None;
        child.last_crash = Some(why.clone());
        let name = child.spec.name;
        let decision = child
            .restart
            .on_crash(child.spec.policy, self.budget, now_ms());
        match decision {
            super::policy::Decision::Restart { delay_ms } => {
                child.state = "restarting";
                tracing::warn!(child = name, error = %why, delay_ms, "a supervised actor crashed; restarting it");
                let generation = child.generation;
                myself.send_after(Duration::from_millis(delay_ms), move || TreeMsg::Restart {
                    index,
                    generation,
                });
            }
            super::policy::Decision::Escalate {
                reason,
                retry_in_ms,
            } => {
                child.state = "stopped";
                tracing::error!(child = name, error = %why, %reason, "a supervised actor keeps crashing: this node is not ready");
                self.health.update(|h| {
                    h.unready
                        .insert(name, format!("{name}: {reason} (last: {why})"));
                });
                let generation = child.generation;
                myself.send_after(Duration::from_millis(retry_in_ms), move || {
                    TreeMsg::Restart { index, generation }
                });
            }
        }
        self.publish();
    }
}

/// The node's root supervisor.
pub struct Supervisor;

impl Actor for Supervisor {
    type Msg = TreeMsg;
    type State = TreeState;
    type Arguments = (Health, Budget);

    async fn pre_start(
        &self,
        _myself: ActorRef<TreeMsg>,
        (health, budget): (Health, Budget),
    ) -> Result<TreeState, ActorProcessingErr> {
        Ok(TreeState {
            budget,
            children: Vec::new(),
            by_id: HashMap::new(),
            health,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<TreeMsg>,
        msg: TreeMsg,
        state: &mut TreeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TreeMsg::Add { spec, reply } => {
                let restart = Restart::default();
                state.children.push(Child {
                    spec,
                    cell: None,
                    restart,
                    restarts: 0,
                    last_crash: None,
                    state: "starting",
                    generation: 0,
                });
                let index = state.children.len() - 1;
                let r = state.start(&myself, index).await;
                state.publish();
                let _ = reply.send(r);
            }
            TreeMsg::Restart { index, generation } => {
                let Some(child) = state.children.get(index) else {
                    return Ok(());
                };
                if state.stopping || child.generation != generation || child.cell.is_some() {
                    return Ok(());
                }
                let name = child.spec.name;
                match state.start(&myself, index).await {
                    Ok(()) => {
                        let child = &mut state.children[index];
                        child.restarts += 1;
                        tracing::info!(
                            child = name,
                            restarts = child.restarts,
                            "restarted a supervised actor"
                        );
                        if state.health.unready_reason().is_some() {
                            let generation = child.generation;
                            let window = state.budget.window_ms;
                            myself.send_after(Duration::from_millis(window), move || {
                                TreeMsg::Stable { index, generation }
                            });
                        }
                    }
                    Err(e) => state.crashed(&myself, index, format!("could not restart: {e}")),
                }
                state.publish();
            }
            TreeMsg::Stable { index, generation } => {
                let Some(child) = state.children.get(index) else {
                    return Ok(());
                };
                if child.generation == generation && child.cell.is_some() {
                    let name = child.spec.name;
                    state.health.update(|h| {
                        if h.unready.remove(name).is_some() {
                            tracing::info!(child = name, "a restarted actor has run a whole window without crashing: ready again");
                        }
                    });
                }
            }
            TreeMsg::Crash { name, reply } => {
                let crashed = state
                    .children
                    .iter()
                    .find(|c| c.spec.name == name)
                    .and_then(|c| c.spec.crash.as_ref())
                    .is_some_and(|f| f());
                let _ = reply.send(crashed);
            }
            TreeMsg::Shutdown { reply } => {
                state.stopping = true;
                for child in state.children.iter_mut().rev() {
                    if let Some(cell) = child.cell.take() {
                        cell.stop(Some("node stopping".into()));
                        // Bounded: a stuck child must not hold up shutdown.
                        let _ = cell.wait(Some(Duration::from_secs(5))).await;
                    }
                    child.state = "stopped";
                }
                state.publish();
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    // ractor's default stops the supervisor when any child exits; this one
    // restarts the child instead.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<TreeMsg>,
        event: SupervisionEvent,
        state: &mut TreeState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("panicked: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped on its own ({})",
                    reason.unwrap_or_else(|| "no reason given".into())
                ),
            ),
            _ => return Ok(()),
        };
        let Some(index) = state.by_id.remove(&cell.get_id()) else {
            return Ok(());
        };
        // A child stopped at shutdown, or replaced already, is no crash.
        let current = state.children[index]
            .cell
            .as_ref()
            .is_some_and(|c| c.get_id() == cell.get_id());
        if state.stopping || !current {
            return Ok(());
        }
        state.crashed(&myself, index, why);
        Ok(())
    }
}

/// A running tree: the handle the node keeps.
#[derive(Clone)]
pub struct Tree {
    actor: ActorRef<TreeMsg>,
    health: Health,
}

impl Tree {
    /// Starts the root supervisor, with no children yet; every child may
    /// crash as often as `budget` allows before it is a crash loop.
    pub async fn start(budget: Budget) -> Result<Tree, String> {
        let health = Health::default();
        let (actor, _) = Actor::spawn(None, Supervisor, (health.clone(), budget))
            .await
            .map_err(|e| format!("could not start the supervisor: {e}"))?;
        Ok(Tree { actor, health })
    }

    /// Starts a child under the tree and waits until it runs.
    pub async fn add(&self, spec: ChildSpec) -> Result<(), String> {
        let name = spec.name;
        let (tx, rx) = oneshot::channel();
        self.actor
            .cast(TreeMsg::Add { spec, reply: tx })
            .map_err(|e| format!("{name}: the supervisor is gone: {e}"))?;
        rx.await
            .map_err(|_| format!("{name}: the supervisor stopped"))?
            .map_err(|e| format!("{name}: {e}"))
    }

    /// The tree's health (readiness and each child's status).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Makes child `name` panic (debug builds' fault hook): false when
    /// there is no such child or it has no hook.
    pub async fn crash(&self, name: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .actor
            .cast(TreeMsg::Crash {
                name: name.to_string(),
                reply: tx,
            })
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Stops every child, last started first, then the supervisor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.actor.cast(TreeMsg::Shutdown { reply: tx }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(60), rx).await;
        }
        self.actor.stop(None);
    }
}
