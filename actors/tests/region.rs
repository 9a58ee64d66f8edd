//! The region activates entities concurrently: an entity whose state takes
//! long to load never delays another one's activation or its messages.
//!
//! The entity kind here is made for the test (its `pre_start` waits on a
//! gate for one id), so the property is the region's own, whatever a real
//! kind loads.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wani_actors::catalog::CatalogSink;
use wani_actors::region::{Activation, Entity, EntityMsg};
use wani_actors::views::{CatalogView, Rendered, ThreadView, ViewRenderer};
use wani_actors::{Entities, EntityConfig, Renderer, Shared};
use wani_store::{Board, ThreadFull, ThreadSummary};
use wani_supervision::transport::{Remote, Reply, Transport};
use wani_supervision::tree::{Budget, Tree};
use wani_supervision::NodeName;

/// Released by the test: the activation of entity 1 waits for it.
static GATE: Notify = Notify::const_new();

#[derive(Serialize, Deserialize)]
enum SlowMsg {
    Ping { reply: Reply<i64> },
}
impl ractor::Message for SlowMsg {}
impl Remote for SlowMsg {
    const KIND: &'static str = "slow";
}
impl EntityMsg for SlowMsg {
    type Actor = Slow;
    type Id = i64;
}

#[derive(Default)]
struct Slow;

impl Entity for Slow {
    type Cache = ();
}

impl Actor for Slow {
    type Msg = SlowMsg;
    type State = i64;
    type Arguments = Activation<()>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SlowMsg>,
        args: Activation<()>,
    ) -> Result<i64, ActorProcessingErr> {
        if args.id == 1 {
            GATE.notified().await;
        }
        Ok(args.id)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SlowMsg>,
        msg: SlowMsg,
        id: &mut i64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SlowMsg::Ping { reply } => reply.send(*id),
        }
        Ok(())
    }
}

struct NoViews;
impl ViewRenderer for NoViews {
    fn thread(&self, _: ThreadView, _: &Board, _: &ThreadFull) -> Rendered {
        Rendered {
            content_type: "text/plain",
            body: Default::default(),
        }
    }
    fn catalog(&self, _: CatalogView, _: &Board, _: &[ThreadSummary]) -> Rendered {
        Rendered {
            content_type: "text/plain",
            body: Default::default(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_activation_delays_no_other_entity() {
    let dir = tempfile::tempdir().unwrap();
    let store = wani_store::Store::connect(wani_store::StoreOptions {
        url: format!("sqlite://{}/wani.db", dir.path().display()),
        max_connections: 2,
        writers: 0,
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let transport = Transport::single(NodeName("test".into()));
    let entities = Entities::new(transport.clone(), None, 64, Duration::from_secs(30));
    let catalog: CatalogSink = Arc::new(|_, _| {});
    entities.set_shared(Shared {
        repo: Arc::new(store.clone()),
        blobs: Arc::new(wani_store::blob::FsBlobStore::new(dir.path())),
        renderer: Renderer::new(transport, false, 1, 1),
        views: Arc::new(NoViews),
        config: EntityConfig::default(),
        poster_secret: Arc::from(&b"secret"[..]),
        live: None,
        catalog,
        boards: Default::default(),
        post_homes: Default::default(),
    });
    let tree = Tree::start(Budget::default()).await.unwrap();
    tree.add(entities.child()).await.unwrap();

    // Entity 1's activation hangs in its load…
    let slow = {
        let e = entities.clone();
        tokio::spawn(async move { e.ask(1, |reply| SlowMsg::Ping { reply }).await })
    };
    // …while a hundred others activate and answer.
    let others: Vec<_> = (2..102)
        .map(|id| {
            let e = entities.clone();
            tokio::spawn(async move { e.ask(id, |reply| SlowMsg::Ping { reply }).await })
        })
        .collect();
    for (id, t) in (2..102).zip(others) {
        let answer = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("entity answered while another was still loading")
            .unwrap();
        assert_eq!(answer, Ok(id));
    }
    assert!(!slow.is_finished(), "entity 1 is still loading");

    GATE.notify_one();
    let answer = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("entity 1 answers once loaded")
        .unwrap();
    assert_eq!(answer, Ok(1));
    assert_eq!(entities.active_of("slow"), 101);
    tree.shutdown().await;
}
