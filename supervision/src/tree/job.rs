//! A periodic job as a supervised actor.
//!
//! A loop in a bare task dies silently with its first panic and is never
//! seen again. Here each job is an actor: it runs its work on its own timer
//! (one run at a time: a run that outlasts the period delays the next, it
//! never overlaps it), a panic in a run crashes the actor, and its
//! supervisor restarts it under the job's policy and counts it.

use super::{ChildSpec, Policy, Slot};
use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;

/// One run of a job.
pub type Work = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A job's mailbox.
pub enum JobMsg {
    /// Time for a run (the timer's, or a nudge to run now).
    Run,
    /// Panics inside the job, to exercise its supervision. Debug builds only.
    #[cfg(debug_assertions)]
    Crash,
}
impl ractor::Message for JobMsg {}

/// What a job runs and how often.
pub struct JobArgs {
    pub every: Duration,
    pub work: Work,
}

/// The job actor.
pub struct Job;

impl Actor for Job {
    type Msg = JobMsg;
    type State = JobArgs;
    type Arguments = JobArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<JobMsg>,
        args: JobArgs,
    ) -> Result<JobArgs, ActorProcessingErr> {
        // The timer ends with the actor (its mailbox closes).
        myself.send_interval(args.every, || JobMsg::Run);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<JobMsg>,
        msg: JobMsg,
        state: &mut JobArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            JobMsg::Run => (state.work)().await,
            #[cfg(debug_assertions)]
            JobMsg::Crash => panic!("crash requested (test hook)"),
        }
        Ok(())
    }
}

/// A job as a child of the node's tree, and the slot to nudge it with
/// ([`JobMsg::Run`] runs it now, besides its timer).
pub fn job(
    name: &'static str,
    restart_means: &'static str,
    every: Duration,
    work: Work,
) -> (ChildSpec, Slot<JobMsg>) {
    let slot = Slot::default();
    let started = slot.clone();
    #[cfg(debug_assertions)]
    let crash: Option<super::CrashFn> = {
        let slot = slot.clone();
        Some(Box::new(move || slot.cast(JobMsg::Crash).is_ok()))
    };
    #[cfg(not(debug_assertions))]
    let crash = None;
    let spec = ChildSpec {
        name,
        policy: Policy::Restart,
        restart_means,
        start: Box::new(move |sup| {
            let (slot, work) = (started.clone(), work.clone());
            Box::pin(async move {
                let (actor, _) = Actor::spawn_linked(None, Job, JobArgs { every, work }, sup)
                    .await
                    .map_err(|e| format!("{e}"))?;
                slot.set(actor.clone());
                Ok(actor.get_cell())
            })
        }),
        crash,
    };
    (spec, slot)
}
