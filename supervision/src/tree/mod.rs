//! The node's supervision tree: every long-lived actor and periodic job of
//! a node has a parent and a stated policy.
//!
//! [`Tree`] is the root; the node adds its children in order
//! ([`ChildSpec`]: a name, a [`Policy`], a start function called again on
//! every restart) and they run under it until shutdown stops them, last
//! started first. A crash restarts the child (at once, then with a growing
//! backoff); a crash loop — more crashes than the policy allows within its
//! window — escalates to the node: [`Health::unready_reason`] says which
//! child and why, `/readyz` answers 503 with it, the log says so once, and
//! the child is tried again when the window has passed (the node is ready
//! again once it has run a whole window without crashing).
//!
//! Handles reach children through [`Slot`]s that each start fills, so a
//! restart is invisible to callers. Periodic jobs are actors too ([`Job`]):
//! a panic in a run crashes and restarts the job instead of ending a bare
//! loop silently. The pure part — what a crash means — is `policy.rs`.
//!
//! The tree a node runs (`wani-node` adds these; `GET /api/v1/status`
//! shows them with their restart counts):
//!
//! ```text
//! node
//! ├── cluster/node-server   ractor_cluster's listener and sessions (cluster only)
//! ├── cluster/membership    heartbeats, failure detector, the view (cluster only)
//! ├── transport             carries actor messages between nodes (cluster only)
//! ├── renderer              factory of markup workers (render role)
//! ├── thumbnailer           factory of media workers (thumbnail role)
//! ├── live-hub              live fan-out; one LiveSubscriber per client
//! ├── region                entities: BoardActor, ThreadActor (own budget per entity)
//! ├── handover              job: view changes and lease renewal (cluster only)
//! └── ban-reload            job: the ban list's safety net (cluster only)
//! ```

mod job;
mod policy;
mod slot;
mod supervisor;

pub use job::{job, Job, JobArgs, JobMsg, Work};
pub use policy::{Budget, Decision, Policy, Restart};
pub use slot::Slot;
pub use supervisor::{ChildSpec, ChildStatus, CrashFn, Health, StartFn, Tree, TreeMsg};
