//! The wire format between nodes: a versioned bincode envelope that never
//! panics on bad input.
//!
//! ractor_cluster moves opaque byte frames; `BytesConvertable::from_bytes`
//! cannot return an error. So what crosses nodes is [`Wire`], whose
//! decoding yields a `Result`: a truncated, oversized, garbage or
//! future-version frame becomes a [`WireError`] the receiver logs and
//! answers, never a panic that would take the session (and every actor
//! proxied over it) down.
//!
//! Every frame is `Envelope::V1(Frame)`. A later format adds `V2` beside it;
//! a node that receives a version it does not know answers
//! `WireError::UnknownVersion` instead of guessing. Frames are bounded by
//! [`MAX_FRAME`], well under ractor_cluster's 16 MiB session limit (over which
//! it drops the whole session): media bytes never travel here, only keys,
//! and an answer larger than a frame (a long thread's view) travels as
//! [`Frame::AnswerPart`]s that the caller joins.
//!
//! Membership frames (heartbeats, acks, leaving) and the transport's frames
//! (a message for an actor on the receiver, and its answer; see
//! [`crate::transport`]) share the envelope.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest encoded frame accepted or sent, in bytes.
pub const MAX_FRAME: usize = 1 << 20;

/// A frame with its format version.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Envelope {
    V1(Frame),
}

/// What nodes tell each other (format version 1).
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Frame {
    /// "I am alive": sent to every peer each heartbeat interval.
    Heartbeat(Heartbeat),
    /// The answer to a heartbeat, echoing its send time for the round trip.
    HeartbeatAck { beat: Heartbeat, echo_sent_ms: u64 },
    /// The sender is draining and will own nothing.
    Leaving { from: String, incarnation: u64 },
    /// The membership actor's own timer. Local only; one received from a
    /// peer would only make the receiver re-check its view early.
    Tick,
    /// A message for the `kind` actor `key` on the receiver (see
    /// [`crate::transport`]); `body` is the encoded message. `req` is 0 for a
    /// one-way message; otherwise the receiver answers `Answer` (or
    /// `AnswerPart`s) with the same `req` to the transport of `from`.
    Send {
        req: u64,
        from: String,
        kind: String,
        key: i64,
        body: Vec<u8>,
    },
    /// The answer to a `Send`: the encoded reply, or why there is none.
    Answer {
        req: u64,
        result: Result<Vec<u8>, Fault>,
    },
    /// One of `parts` pieces of an answer too large for one frame (a long
    /// thread's view), in order; the caller joins them.
    AnswerPart {
        req: u64,
        part: u32,
        parts: u32,
        payload: Vec<u8>,
    },
}

/// The largest payload one `Answer` carries; larger answers go as
/// `AnswerPart`s of this size, leaving room for the envelope.
pub const PART: usize = MAX_FRAME - 4096;

/// A heartbeat's content.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Heartbeat {
    /// The sender's configured name (`name@host:port`).
    pub from: String,
    pub incarnation: u64,
    /// Role names (`web`, `entities`, …).
    pub roles: Vec<String>,
    /// How the sender sees the receiver: `up`, `suspect`, `down`, `leaving`,
    /// or empty when it does not know it yet…
    pub you_are: String,
    /// …and which incarnation of the receiver that verdict is about.
    pub you_are_incarnation: u64,
    /// The sender's clock when sent (ms), echoed in the ack.
    pub sent_ms: u64,
    /// The sender's cluster cookie digest; a mismatch is refused.
    pub cookie_digest: [u8; 16],
}

/// Why a message was not delivered or answered, typed by what the caller
/// can do about it.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
    thiserror::Error,
)]
pub enum Fault {
    /// The addressed actor does not exist (an entity that cannot be
    /// activated because there is no such record).
    #[error("{0}")]
    NotFound(String),
    /// The message cannot be taken as it is (it does not encode, or it is
    /// not meant to cross nodes); sending it again fails again.
    #[error("{0}")]
    Invalid(String),
    /// The actor refused it because of its state.
    #[error("{0}")]
    Conflict(String),
    /// Not delivered or not answered in time (no session, the node died,
    /// the actor stopped, it moved); the same message may succeed if sent
    /// again, perhaps to another node.
    #[error("{0}")]
    Unavailable(String),
}

impl Fault {
    /// Whether sending the same message again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Fault::Unavailable(_))
    }
}

/// Why a frame could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame is empty")]
    Empty,
    #[error("frame is malformed: {0}")]
    Malformed(String),
    #[error("frame has {0} trailing bytes")]
    Trailing(usize),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes a frame.
pub fn encode(frame: &Envelope) -> Result<Vec<u8>, WireError> {
    let bytes =
        bincode::encode_to_vec(frame, config()).map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_FRAME {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes a frame; any defect is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    if bytes.len() > MAX_FRAME {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (env, used) = bincode::decode_from_slice::<Envelope, _>(bytes, config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - used));
    }
    Ok(env)
}

/// A frame as an actor message crossing nodes: decoding cannot fail, it
/// yields the error instead.
#[derive(Clone, Debug, PartialEq)]
pub struct Wire(pub Result<Envelope, WireError>);

impl ractor::BytesConvertable for Wire {
    fn into_bytes(self) -> Vec<u8> {
        // An unencodable frame goes out empty and is refused as `Empty` by
        // the receiver, which is what the sender's error would have said.
        match self.0 {
            Ok(env) => {
                let bytes = encode(&env).unwrap_or_default();
                TRAFFIC.count(Class::of(&env), Direction::Sent, bytes.len());
                bytes
            }
            Err(_) => Vec::new(),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        let wire = Wire(decode(&bytes));
        if let Ok(env) = &wire.0 {
            TRAFFIC.count(Class::of(env), Direction::Received, bytes.len());
        }
        wire
    }
}

/// What a frame is for, as traffic is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Heartbeats, their acks, leave notices: the cost of knowing who is up.
    Membership,
    /// Messages for actors and their answers.
    Actors,
}

impl Class {
    pub const ALL: [Class; 2] = [Class::Membership, Class::Actors];

    fn of(env: &Envelope) -> Class {
        match env {
            Envelope::V1(
                Frame::Heartbeat(_)
                | Frame::HeartbeatAck { .. }
                | Frame::Leaving { .. }
                | Frame::Tick,
            ) => Class::Membership,
            Envelope::V1(_) => Class::Actors,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Membership => "membership",
            Class::Actors => "actors",
        }
    }
}

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Sent, Direction::Received];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// Frames and their encoded bytes (the payload ractor_cluster carries,
/// without its own framing) this process sent to and received from peers.
pub struct Traffic {
    counts: [[(AtomicU64, AtomicU64); 2]; 2],
}

/// This process's cluster traffic.
pub static TRAFFIC: Traffic = Traffic {
    counts: [
        [
            (AtomicU64::new(0), AtomicU64::new(0)),
            (AtomicU64::new(0), AtomicU64::new(0)),
        ],
        [
            (AtomicU64::new(0), AtomicU64::new(0)),
            (AtomicU64::new(0), AtomicU64::new(0)),
        ],
    ],
};

impl Traffic {
    fn count(&self, class: Class, dir: Direction, bytes: usize) {
        let (frames, total) = &self.counts[class as usize][dir as usize];
        frames.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Frames and bytes of `class` that went `dir` since the process started.
    pub fn get(&self, class: Class, dir: Direction) -> (u64, u64) {
        let (frames, total) = &self.counts[class as usize][dir as usize];
        (
            frames.load(Ordering::Relaxed),
            total.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::BytesConvertable;

    fn beat() -> Envelope {
        Envelope::V1(Frame::Heartbeat(Heartbeat {
            from: "a@127.0.0.1:7001".into(),
            incarnation: 42,
            roles: vec!["web".into(), "entities".into()],
            you_are: "up".into(),
            you_are_incarnation: 3,
            sent_ms: 1_700_000_000_000,
            cookie_digest: [7; 16],
        }))
    }

    #[test]
    fn traffic_is_counted_by_class_and_direction() {
        let before = |c, d| TRAFFIC.get(c, d);
        let (sent, received) = (
            before(Class::Membership, Direction::Sent),
            before(Class::Membership, Direction::Received),
        );
        let bytes = Wire(Ok(beat())).into_bytes();
        Wire::from_bytes(bytes.clone());
        // A refused frame is not traffic of any class.
        Wire::from_bytes(vec![0xff; 3]);
        // Other tests count too, in parallel: at least ours are there.
        let (s, r) = (
            before(Class::Membership, Direction::Sent),
            before(Class::Membership, Direction::Received),
        );
        assert!(
            s.0 > sent.0 && s.1 >= sent.1 + bytes.len() as u64,
            "{s:?} {sent:?}"
        );
        assert!(
            r.0 > received.0 && r.1 >= received.1 + bytes.len() as u64,
            "{r:?} {received:?}"
        );
        assert_eq!(Class::of(&beat()), Class::Membership);
        let answer = Envelope::V1(Frame::AnswerPart {
            req: 1,
            part: 0,
            parts: 1,
            payload: vec![1],
        });
        assert_eq!(Class::of(&answer), Class::Actors);
    }

    #[test]
    fn frames_round_trip() {
        let bytes = encode(&beat()).unwrap();
        assert_eq!(decode(&bytes).unwrap(), beat());
        assert_eq!(
            Wire::from_bytes(Wire(Ok(beat())).into_bytes()),
            Wire(Ok(beat()))
        );
        // A full part of a large answer fits in a frame.
        let part = Envelope::V1(Frame::AnswerPart {
            req: u64::MAX,
            part: 3,
            parts: 9,
            payload: vec![0xff; PART],
        });
        let bytes = encode(&part).unwrap();
        assert!(bytes.len() <= MAX_FRAME);
        assert_eq!(decode(&bytes).unwrap(), part);
    }

    #[test]
    fn broken_frames_are_errors_not_panics() {
        let good = encode(&beat()).unwrap();
        assert_eq!(decode(&[]), Err(WireError::Empty));
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(WireError::Trailing(1)));
        assert!(
            matches!(decode(&[9, 9, 9, 9]), Err(WireError::Malformed(_))),
            "unknown version tag"
        );
        assert_eq!(
            decode(&vec![0u8; MAX_FRAME + 1]),
            Err(WireError::TooLarge(MAX_FRAME + 1))
        );
        // A length prefix claiming a huge string must not allocate it.
        let mut huge = vec![0u8, 0u8];
        huge.extend_from_slice(&[0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert!(decode(&huge).is_err());
        // Every single-byte corruption decodes to something or an error.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xFF;
            let _ = decode(&b);
        }
    }
}
