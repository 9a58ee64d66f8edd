//! The membership actor: sends and receives heartbeats, steps the view,
//! dials seeds. Its state is the [`Cluster`] it drives (the view lives
//! there, shared with readers), so a restart of this actor loses nothing
//! but the seeds' dial backoff.

use super::Cluster;
use crate::membership::{Input, MemberState, Role};
use crate::placement::NodeName;
use crate::wire::{Envelope, Frame, Heartbeat, Wire};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::node::NodeServerMessage;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::now_ms;

/// The process group every membership actor joins.
pub const MEMBERSHIP_GROUP: &str = "wani:membership";

/// Longest wait between two connection attempts to one seed.
const MAX_DIAL_BACKOFF_MS: u64 = 5_000;

fn cookie_digest(cookie: &str) -> [u8; 16] {
    let d = Sha256::digest(cookie.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Per-seed dialing state.
struct Dial {
    next_ms: u64,
    backoff_ms: u64,
}

/// The membership actor's state.
pub struct MembershipState {
    /// The node's cluster: its config, its view (this actor is the view's
    /// only writer but for [`Cluster::leave`]), its session directory.
    cluster: Arc<Cluster>,
    cookie_digest: [u8; 16],
    dials: HashMap<String, Dial>,
    my_connection: String,
}

/// Sends and receives heartbeats; owns the view.
pub struct MembershipActor;

impl MembershipState {
    fn heartbeat(&self, you_are: Option<(MemberState, u64)>) -> Wire {
        let m = self.cluster.view.read();
        Wire(Ok(Envelope::V1(Frame::Heartbeat(Heartbeat {
            from: m.me().0.clone(),
            incarnation: m.incarnation(),
            roles: m.roles().iter().map(|r| r.name().to_string()).collect(),
            you_are: you_are.map(|(s, _)| s.name()).unwrap_or("").to_string(),
            you_are_incarnation: you_are.map(|(_, i)| i).unwrap_or(0),
            sent_ms: now_ms(),
            cookie_digest: self.cookie_digest,
        }))))
    }

    /// Applies one input to the view and tells subscribers what changed.
    fn step(&mut self, input: Input) {
        let changes = self.cluster.view.write().step(input);
        self.cluster.publish(changes);
    }

    async fn tick(&mut self) {
        let now = now_ms();
        self.step(Input::Tick { now_ms: now });

        // Who is connected, by configured name and by address.
        let sessions = match self.cluster.node_server.get() {
            None => HashMap::new(),
            Some(server) => match ractor::call_t!(server, NodeServerMessage::GetSessions, 1_000) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the node server did not answer");
                    HashMap::new()
                }
            },
        };
        let mut names = HashMap::new();
        let mut connected = BTreeSet::new();
        for s in sessions.values() {
            if let Some(peer) = &s.peer_name {
                let name = peer.name.split('@').next().unwrap_or("").to_string();
                names.insert(s.node_id, name);
                connected.insert(peer.connection_string.clone());
            }
        }

        if let Ok(mut d) = self.cluster.directory.write() {
            *d = names.iter().map(|(id, name)| (name.clone(), *id)).collect();
        }

        for cell in ractor::pg::get_members(&MEMBERSHIP_GROUP.to_string()) {
            let id = cell.get_id();
            if id.is_local() {
                continue;
            }
            let you_are = names.get(&id.node()).and_then(|n| self.verdict_on(n));
            let peer: ActorRef<Wire> = cell.into();
            let _ = peer.cast(self.heartbeat(you_are));
            // Every tick, so a peer that missed the first notice (or
            // connects later) learns it too.
            if self.cluster.view.read().is_leaving() {
                let _ = peer.cast(self.leaving());
            }
        }

        for seed in self.cluster.config.seeds.clone() {
            if seed == self.my_connection {
                continue;
            }
            let interval = self.cluster.config.detector.heartbeat_interval_ms;
            let dial = self.dials.entry(seed.clone()).or_insert(Dial {
                next_ms: 0,
                backoff_ms: interval,
            });
            if connected.contains(&seed) {
                dial.backoff_ms = interval;
                dial.next_ms = 0;
                continue;
            }
            if now < dial.next_ms {
                continue;
            }
            dial.next_ms = now + dial.backoff_ms;
            dial.backoff_ms = (dial.backoff_ms * 2).min(MAX_DIAL_BACKOFF_MS);
            let Some(server) = self.cluster.node_server.get() else {
                continue;
            };
            let tls = self.cluster.tls.as_ref().map(|t| t.connector());
            tokio::spawn(async move {
                let res = match tls {
                    None => ractor_cluster::client_connect(&server, seed.as_str()).await,
                    Some(connector) => {
                        let Some(name) = crate::tls::seed_server_name(&seed) else {
                            tracing::warn!(%seed, "seed host is not a valid TLS server name");
                            return;
                        };
                        ractor_cluster::client_connect_enc(&server, seed.as_str(), connector, name)
                            .await
                    }
                };
                if let Err(e) = res {
                    tracing::debug!(%seed, error = %e, "seed not reachable yet");
                }
            });
        }
    }

    fn leaving(&self) -> Wire {
        let m = self.cluster.view.read();
        Wire(Ok(Envelope::V1(Frame::Leaving {
            from: m.me().0.clone(),
            incarnation: m.incarnation(),
        })))
    }

    /// How this node sees the peer `name`: its state and incarnation.
    fn verdict_on(&self, name: &str) -> Option<(MemberState, u64)> {
        self.cluster
            .view
            .read()
            .member(&NodeName(name.to_string()))
            .map(|m| (m.state, m.incarnation))
    }

    /// The membership actor of `name`'s current session, if connected.
    fn peer(&self, name: &str) -> Option<ActorRef<Wire>> {
        let id = self.cluster.node_id(name)?;
        ractor::pg::get_members(&MEMBERSHIP_GROUP.to_string())
            .into_iter()
            .find(|c| !c.get_id().is_local() && c.get_id().node() == id)
            .map(ActorRef::from)
    }

    fn receive(&mut self, frame: Frame) {
        match frame {
            Frame::Heartbeat(beat) | Frame::HeartbeatAck { beat, .. }
                if beat.cookie_digest != self.cookie_digest =>
            {
                tracing::warn!(from = %beat.from, "heartbeat with another cluster cookie refused");
            }
            Frame::Heartbeat(beat) => {
                // Answer with our own heartbeat echoing its send time: the
                // sender measures the round trip on its own clock, so clock
                // skew between nodes does not enter the figure. An ack is
                // never answered, so there is no ping-pong.
                let echo_sent_ms = beat.sent_ms;
                let from = beat.from.clone();
                self.heard(beat, None);
                if let Some(peer) = self.peer(&from) {
                    let you_are = self.verdict_on(&from);
                    if let Wire(Ok(Envelope::V1(Frame::Heartbeat(mine)))) = self.heartbeat(you_are)
                    {
                        let _ = peer.cast(Wire(Ok(Envelope::V1(Frame::HeartbeatAck {
                            beat: mine,
                            echo_sent_ms,
                        }))));
                    }
                }
            }
            Frame::HeartbeatAck { beat, echo_sent_ms } => {
                let rtt = now_ms().saturating_sub(echo_sent_ms);
                self.heard(beat, Some(rtt));
            }
            Frame::Leaving { from, incarnation } => self.step(Input::Leaving {
                from: NodeName(from),
                incarnation,
                now_ms: now_ms(),
            }),
            // Actor traffic goes to the transport, not here.
            Frame::Tick | Frame::Send { .. } | Frame::Answer { .. } | Frame::AnswerPart { .. } => {}
        }
    }

    /// Feeds a peer's heartbeat (or ack, with the measured round trip) to
    /// the state machine.
    fn heard(&mut self, beat: Heartbeat, rtt_ms: Option<u64>) {
        let roles = beat
            .roles
            .iter()
            .filter_map(|r| Role::from_name(r))
            .collect();
        self.step(Input::Heartbeat {
            from: NodeName(beat.from),
            incarnation: beat.incarnation,
            roles,
            you_are: MemberState::from_name(&beat.you_are).map(|s| (s, beat.you_are_incarnation)),
            now_ms: now_ms(),
            rtt_ms,
        });
    }
}

impl Actor for MembershipActor {
    type Msg = Wire;
    type State = MembershipState;
    type Arguments = Arc<Cluster>;

    async fn pre_start(
        &self,
        myself: ActorRef<Wire>,
        cluster: Arc<Cluster>,
    ) -> Result<MembershipState, ActorProcessingErr> {
        ractor::pg::join(MEMBERSHIP_GROUP.to_string(), vec![myself.get_cell()]);
        let c = &cluster.config;
        let my_connection = format!("{}:{}", c.advertise_host, c.listen.port());
        Ok(MembershipState {
            cookie_digest: cookie_digest(&c.cookie),
            dials: HashMap::new(),
            my_connection,
            cluster,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Wire>,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        let every =
            Duration::from_millis(state.cluster.config.detector.heartbeat_interval_ms.max(10));
        myself.send_interval(every, || Wire(Ok(Envelope::V1(Frame::Tick))));
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Wire>,
        msg: Wire,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        #[cfg(debug_assertions)]
        if state
            .cluster
            .crash
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("crash requested for the membership actor (test hook)");
        }
        match msg.0 {
            Ok(Envelope::V1(Frame::Tick)) => state.tick().await,
            Ok(Envelope::V1(frame)) => state.receive(frame),
            Err(e) => tracing::warn!(error = %e, "dropped a broken cluster frame"),
        }
        Ok(())
    }
}
