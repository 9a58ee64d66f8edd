//! Shard leases: the fence every write of a clustered entity carries.
//!
//! Before an entity of shard S is activated on a node, the node takes S's
//! lease in the database: (shard, holder, epoch, expiry). The epoch grows
//! whenever the lease changes hands, and every entity write checks, in the
//! same transaction, that the shard's epoch is still the one it was
//! activated with. So when a paused or partitioned owner comes back after
//! its shard moved, its writes are refused (`fenced`) instead of racing the
//! new owner: two activations of one thread can never both commit.
//!
//! The holder is `name#incarnation`, so a restarted process never shares a
//! fence with its previous life. Leases are renewed in one statement every
//! third of their time to live; a lease that expires (its holder died) can be
//! taken by the next owner, which is why taking over waits at most `ttl`.
//!
//! Every write of an entity carries the fence: posts, new threads,
//! archiving, and moderation (deletions, flags, moves, spoilers). The
//! takeover rule itself is `wani_supervision::lease::decide`, a pure
//! function tested by golden scripts; this is its driver. With a single
//! node there are no leases at all.

use crate::error::ActorError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wani_store::{Fence, Repo};
use wani_supervision::lease::Decision;
use wani_supervision::{shard_of, EntityKey};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This node's shard leases.
pub struct Leases {
    repo: Arc<dyn Repo>,
    holder: Box<dyn Fn() -> String + Send + Sync>,
    /// What to do about a lease another holder has (the membership view's
    /// [`wani_supervision::lease::decide`]).
    decide: Box<dyn Fn(&str) -> Decision + Send + Sync>,
    shards: u32,
    ttl: Duration,
    held: Mutex<HashMap<i64, (String, Fence)>>,
    /// One lease attempt per shard at a time: a failover re-activates
    /// hundreds of entities of a shard at once, and they wait for the
    /// first one's lease instead of each racing for it in the database.
    taking: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Leases {
    /// Leases for a node whose current holder id `holder()` returns.
    pub fn new(
        repo: Arc<dyn Repo>,
        holder: impl Fn() -> String + Send + Sync + 'static,
        decide: impl Fn(&str) -> Decision + Send + Sync + 'static,
        shards: u32,
        ttl: Duration,
    ) -> Arc<Leases> {
        Arc::new(Leases {
            repo,
            holder: Box::new(holder),
            decide: Box::new(decide),
            shards,
            ttl,
            held: Mutex::new(HashMap::new()),
            taking: Mutex::new(HashMap::new()),
        })
    }

    fn shard(&self, key: EntityKey) -> i64 {
        shard_of(&key, self.shards).0 as i64
    }

    /// The fence for `key`'s shard, taking the lease if needed. Waits (up to
    /// the lease time plus a margin) while a previous owner's lease runs out.
    pub async fn fence_for(&self, key: EntityKey) -> Result<Fence, ActorError> {
        let shard = self.shard(key);
        let holder = (self.holder)();
        let held = || {
            self.held
                .lock()
                .ok()
                .and_then(|m| m.get(&shard).cloned())
                .filter(|(h, _)| *h == holder)
                .map(|(_, f)| f)
        };
        if let Some(f) = held() {
            return Ok(f);
        }
        let gate = match self.taking.lock() {
            Ok(mut t) => t.entry(shard).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let _one_at_a_time = gate.lock().await;
        if let Some(f) = held() {
            return Ok(f);
        }
        let deadline = Instant::now() + self.ttl + Duration::from_millis(500);
        loop {
            let ttl_ms = self.ttl.as_millis() as i64;
            if let Some(f) = self
                .repo
                .acquire_lease(shard, &holder, now_ms(), ttl_ms)
                .await?
            {
                if let Ok(mut m) = self.held.lock() {
                    m.insert(shard, (holder.clone(), f));
                }
                return Ok(f);
            }
            if let Some(current) = self.repo.lease_holder(shard).await? {
                let decision = (self.decide)(&current);
                tracing::debug!(shard, %current, ?decision, "the shard's lease is held");
                match decision {
                    // A holder the view declares dead cannot renew: take the
                    // lease over now instead of waiting for it to run out.
                    // Safe even if the view is wrong: the epoch bump fences
                    // the old holder.
                    Decision::TakeOver if current != holder => {
                        if let Some(f) = self
                            .repo
                            .take_over_lease(shard, &current, &holder, now_ms(), ttl_ms)
                            .await?
                        {
                            tracing::info!(shard, from = %current, "took over the lease of a node declared down");
                            if let Ok(mut m) = self.held.lock() {
                                m.insert(shard, (holder.clone(), f));
                            }
                            return Ok(f);
                        }
                    }
                    // Cut off from the majority, this node may not take
                    // leases over, and the holder keeps renewing: say so at
                    // once rather than after the lease time.
                    Decision::Refuse => {
                        return Err(ActorError::Unavailable(format!(
                            "this node cannot reach a majority of the cluster, and shard {shard} \
                             is leased by another node; send the request to another node"
                        )))
                    }
                    Decision::TakeOver | Decision::Wait => {}
                }
            }
            if Instant::now() > deadline {
                return Err(ActorError::Unavailable(format!(
                    "shard {shard} is still leased by another node; try again in a moment"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Renews every lease; forgets those another node took over (or that
    /// a previous incarnation of this node held) and returns their shards:
    /// the entities activated under them may be stale now.
    pub async fn renew(&self) -> Vec<i64> {
        let holder = (self.holder)();
        match self
            .repo
            .renew_leases(&holder, now_ms(), self.ttl.as_millis() as i64)
            .await
        {
            Ok(fences) => {
                let Ok(mut m) = self.held.lock() else {
                    return Vec::new();
                };
                let now: HashMap<i64, (String, Fence)> = fences
                    .into_iter()
                    .map(|f| (f.shard, (holder.clone(), f)))
                    .collect();
                let lost = m
                    .keys()
                    .filter(|shard| !now.contains_key(shard))
                    .copied()
                    .collect();
                *m = now;
                lost
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew shard leases");
                Vec::new()
            }
        }
    }

    /// The shard of an entity.
    pub fn shard_of(&self, key: EntityKey) -> i64 {
        self.shard(key)
    }

    /// Releases the leases of shards `keep` does not want any more; returns
    /// how many it let go.
    pub async fn release_unless(&self, keep: impl Fn(i64) -> bool) -> usize {
        let gone: Vec<(i64, String)> = match self.held.lock() {
            Ok(mut m) => {
                let gone: Vec<(i64, String)> = m
                    .iter()
                    .filter(|(s, _)| !keep(**s))
                    .map(|(s, (h, _))| (*s, h.clone()))
                    .collect();
                for (s, _) in &gone {
                    m.remove(s);
                }
                gone
            }
            Err(_) => Vec::new(),
        };
        let released = gone.len();
        for (shard, holder) in gone {
            if let Err(e) = self.repo.release_lease(shard, &holder).await {
                tracing::warn!(shard, error = %e, "could not release a shard lease");
            }
        }
        released
    }

    /// How many shard leases this node holds now.
    pub fn held(&self) -> usize {
        self.held.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }
}
