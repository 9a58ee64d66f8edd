//! [`Slot`]: where a handle finds the current actor of a supervised child.
//!
//! A supervisor that restarts a child gets a new `ActorRef`; everyone who
//! talks to the child holds a handle, not the old ref. The handle reads the
//! slot on every message, and the supervisor writes the new ref into it
//! when the child (re)starts, so a restart is invisible to callers but for
//! the messages that were in the dead actor's mailbox (those callers see
//! their reply dropped, and retry).

use ractor::ActorRef;
use std::sync::{Arc, RwLock};

/// The current actor of one supervised child; empty before its first
/// start and while it is down.
pub struct Slot<M: ractor::Message>(Arc<RwLock<Option<ActorRef<M>>>>);

impl<M: ractor::Message> Clone for Slot<M> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<M: ractor::Message> Default for Slot<M> {
    fn default() -> Self {
        Slot(Arc::new(RwLock::new(None)))
    }
}

impl<M: ractor::Message> Slot<M> {
    /// The running actor, if any.
    pub fn get(&self) -> Option<ActorRef<M>> {
        let r = self.0.read().unwrap_or_else(|p| p.into_inner()).clone()?;
        matches!(
            r.get_status(),
            ractor::ActorStatus::Running
                | ractor::ActorStatus::Starting
                | ractor::ActorStatus::Upgrading
        )
        .then_some(r)
    }

    /// Points the slot at a (re)started actor.
    pub fn set(&self, actor: ActorRef<M>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(actor);
    }

    /// Sends without waiting; fails when the actor is down.
    pub fn cast(&self, msg: M) -> Result<(), ractor::MessagingErr<M>> {
        match self.get() {
            Some(a) => a.cast(msg),
            None => Err(ractor::MessagingErr::SendErr(msg)),
        }
    }
}
