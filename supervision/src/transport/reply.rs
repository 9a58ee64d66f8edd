//! [`Reply`]: a typed reply port that can sit inside a message crossing
//! nodes.
//!
//! An actor's message enum names its reply types in its variants
//! (`reply: Reply<Result<Post, ActorError>>`), as ractor's `RpcReplyPort`
//! would; unlike it, the enum stays serialisable. The port itself never
//! crosses: it serialises as nothing, marking only where the answer goes.
//!
//! - Local: [`Reply::local`] pairs a port with a [`ReplyWait`] the caller
//!   awaits; nothing is encoded.
//! - Remote: the caller's transport encodes the message (its port
//!   [`Reply::detached`]) and waits for the answer frame itself. The
//!   receiving transport decodes the message with [`bind_inbound`] in
//!   force: the one `Reply` decoded inside it is bound to a [`ReplySlot`]
//!   that encodes the value the actor sends and frames it back to the
//!   caller. A slot dropped unanswered (the actor stopped with the message
//!   in its mailbox, a full queue dropped it) answers "stopped before
//!   answering" at once, so the caller never waits out its timeout.
//!
//! The binding goes through a thread-local because serde gives a
//! `Deserialize` impl no context; decoding is synchronous, so the binding
//! covers exactly one message's decoding on one thread.

use super::Fault;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Where a remote answer goes: encoded bytes or a fault, framed back to
/// the caller. Implemented by the transport.
pub(crate) trait AnswerSink: Send + Sync + 'static {
    fn answer(&self, result: Result<Vec<u8>, Fault>);
}

/// The remote end of one request: answers at most once, and answers
/// "stopped before answering" if dropped without an answer.
pub(crate) struct ReplySlot {
    sink: Box<dyn AnswerSink>,
    answered: AtomicBool,
}

impl ReplySlot {
    pub(crate) fn new(sink: impl AnswerSink) -> Arc<ReplySlot> {
        Arc::new(ReplySlot {
            sink: Box::new(sink),
            answered: AtomicBool::new(false),
        })
    }

    /// Sends the answer unless one was sent already.
    pub(crate) fn answer(&self, result: Result<Vec<u8>, Fault>) {
        if !self.answered.swap(true, Ordering::AcqRel) {
            self.sink.answer(result);
        }
    }
}

impl Drop for ReplySlot {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) {
            self.sink.answer(Err(Fault::Unavailable(
                "the actor stopped before answering".into(),
            )));
        }
    }
}

thread_local! {
    /// The slot the next decoded [`Reply`] binds to, set by [`bind_inbound`].
    static INBOUND: RefCell<Option<Arc<ReplySlot>>> = const { RefCell::new(None) };
}

/// Runs `decode` with `slot` ready for the first [`Reply`] it decodes;
/// answers whether a `Reply` took it (a message sent with `ask` must hold
/// one, a message sent with `tell` none).
pub(crate) fn bind_inbound<R>(
    slot: Option<Arc<ReplySlot>>,
    decode: impl FnOnce() -> R,
) -> (R, bool) {
    let expected = slot.is_some();
    INBOUND.with(|c| *c.borrow_mut() = slot);
    let out = decode();
    let left = INBOUND.with(|c| c.borrow_mut().take());
    (out, expected && left.is_none())
}

enum Port<T> {
    Local(oneshot::Sender<T>),
    Remote(Arc<ReplySlot>),
}

/// A typed reply port (see the module doc). Send the answer with
/// [`Reply::send`]; dropping it unanswered tells the caller the actor
/// stopped before answering.
pub struct Reply<T> {
    port: Option<Port<T>>,
}

impl<T> Reply<T> {
    /// A port for a caller on this node, and what it awaits.
    pub fn local() -> (Reply<T>, ReplyWait<T>) {
        let (tx, rx) = oneshot::channel();
        (
            Reply {
                port: Some(Port::Local(tx)),
            },
            ReplyWait(rx),
        )
    }

    /// A port that goes nowhere: what a message carries while it is
    /// encoded for another node (the transport waits for that answer).
    pub fn detached() -> Reply<T> {
        Reply { port: None }
    }

    /// Whether an answer sent now can still reach anyone (the local caller
    /// may have given up).
    pub fn is_open(&self) -> bool {
        match &self.port {
            Some(Port::Local(tx)) => !tx.is_closed(),
            Some(Port::Remote(_)) => true,
            None => false,
        }
    }
}

impl<T: Serialize> Reply<T> {
    /// Answers the caller, wherever it is.
    pub fn send(mut self, value: T) {
        match self.port.take() {
            Some(Port::Local(tx)) => {
                let _ = tx.send(value);
            }
            Some(Port::Remote(slot)) => slot.answer(super::encode(&value)),
            None => {}
        }
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = match &self.port {
            Some(Port::Local(_)) => "local",
            Some(Port::Remote(_)) => "remote",
            None => "detached",
        };
        write!(f, "Reply({to})")
    }
}

impl<T> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de, T> Deserialize<'de> for Reply<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        let slot = INBOUND.with(|c| c.borrow_mut().take());
        Ok(Reply {
            port: slot.map(Port::Remote),
        })
    }
}

/// What a local caller awaits.
pub struct ReplyWait<T>(oneshot::Receiver<T>);

/// Why a local wait ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoReply {
    /// The port was dropped unanswered: the actor stopped, or dropped the
    /// message. Sending again may work (to a new activation).
    Dropped,
    /// No answer within the time allowed.
    TimedOut,
}

impl<T> ReplyWait<T> {
    /// Waits at most `timeout` for the answer.
    pub async fn wait(self, timeout: Duration) -> Result<T, NoReply> {
        match tokio::time::timeout(timeout, self.0).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(NoReply::Dropped),
            Err(_) => Err(NoReply::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Serialize, Deserialize)]
    enum Msg {
        Ask { n: u32, reply: Reply<String> },
        Tell(u32),
    }

    type Answers = Arc<Mutex<Vec<Result<Vec<u8>, Fault>>>>;

    struct Collect(Answers);
    impl AnswerSink for Collect {
        fn answer(&self, r: Result<Vec<u8>, Fault>) {
            self.0.lock().unwrap().push(r);
        }
    }

    fn slot() -> (Arc<ReplySlot>, Answers) {
        let got = Arc::new(Mutex::new(Vec::new()));
        (ReplySlot::new(Collect(got.clone())), got)
    }

    #[test]
    fn a_decoded_reply_answers_through_its_slot_once() {
        let bytes = super::super::encode(&Msg::Ask {
            n: 7,
            reply: Reply::detached(),
        })
        .unwrap();
        let (s, got) = slot();
        let (msg, bound) = bind_inbound(Some(s), || super::super::decode::<Msg>(&bytes));
        assert!(bound);
        let Ok(Msg::Ask { n: 7, reply }) = msg else {
            panic!("decoded something else")
        };
        reply.send("seven".to_string());
        let answers = got.lock().unwrap().clone();
        assert_eq!(answers.len(), 1);
        let text: String = super::super::decode(answers[0].as_ref().unwrap()).unwrap();
        assert_eq!(text, "seven");
    }

    #[test]
    fn a_reply_dropped_unanswered_says_so_and_a_tell_binds_nothing() {
        let bytes = super::super::encode(&Msg::Ask {
            n: 1,
            reply: Reply::detached(),
        })
        .unwrap();
        let (s, got) = slot();
        let (msg, _) = bind_inbound(Some(s), || super::super::decode::<Msg>(&bytes));
        drop(msg);
        assert!(matches!(
            got.lock().unwrap().as_slice(),
            [Err(Fault::Unavailable(_))]
        ));

        let bytes = super::super::encode(&Msg::Tell(3)).unwrap();
        let (s, _) = slot();
        let (msg, bound) = bind_inbound(Some(s), || super::super::decode::<Msg>(&bytes));
        assert!(matches!(msg, Ok(Msg::Tell(3))));
        assert!(!bound, "an ask must carry a reply port");
        // Nothing is left bound for the next message on this thread.
        let (_, bound) = bind_inbound(None, || ());
        assert!(!bound);
    }

    #[tokio::test]
    async fn local_ports_answer_or_say_why_not() {
        let (reply, wait) = Reply::<u8>::local();
        reply.send(5);
        assert_eq!(wait.wait(Duration::from_secs(1)).await, Ok(5));
        let (reply, wait) = Reply::<u8>::local();
        drop(reply);
        assert_eq!(
            wait.wait(Duration::from_secs(1)).await,
            Err(NoReply::Dropped)
        );
        let (_reply, wait) = Reply::<u8>::local();
        assert_eq!(
            wait.wait(Duration::from_millis(10)).await,
            Err(NoReply::TimedOut)
        );
    }
}
