//! Cached views: what an entity serves for reads, rendered once per change.
//!
//! An entity actor holds its state and, beside it, the bytes of each view
//! asked for (thread JSON, thread page per theme, catalog…) with an ETag. A
//! read that finds its view cached costs a lookup and an `Arc` clone; a
//! write drops every cached view of that entity. How a view is rendered is
//! not the actors' business (they know neither HTML nor the API's JSON
//! shapes): the node supplies a [`ViewRenderer`].

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use wani_store::{Board, ThreadFull, ThreadSummary};

/// A view of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ThreadView {
    /// `GET /api/v1/thread/{id}`.
    Json,
    /// The thread page, in a theme (the renderer's theme number).
    Page { theme: u8 },
    /// The gallery page, in a theme.
    Gallery { theme: u8 },
    /// `/{board}/thread/{no}.json`: the thread in 4chan's API.
    Chan,
    /// The thread on a 4chan index page: the opening post and last replies.
    ChanIndex,
    /// The thread in 4chan's `catalog.json`: the opening post with `last_replies`.
    ChanCatalog,
}

/// A view of a board's live threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CatalogView {
    /// `GET /api/v1/board/{id}/catalog`.
    Json,
    /// The catalog page, in a theme.
    Page { theme: u8 },
    /// `/{board}/threads.json` in 4chan's API.
    ChanThreads,
}

/// Renders views from entity state. Implemented by the node (HTML and JSON).
pub trait ViewRenderer: Send + Sync + 'static {
    fn thread(&self, view: ThreadView, board: &Board, thread: &ThreadFull) -> Rendered;
    fn catalog(&self, view: CatalogView, board: &Board, threads: &[ThreadSummary]) -> Rendered;
}

/// Freshly rendered bytes.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Rendered bytes with their ETag, cheap to clone.
#[derive(Clone, Debug)]
pub struct CachedView {
    pub content_type: &'static str,
    pub body: Bytes,
    /// A strong ETag: a hash of the bytes, so it survives restarts and is the
    /// same on every node serving the same content.
    pub etag: Arc<str>,
    /// When the state it shows last changed, in Unix seconds (`Last-Modified`,
    /// which some clients need).
    pub last_modified: i64,
    /// An earlier state of the entity, already served, changed in the same
    /// second: a client holding that second as its `If-Modified-Since` may
    /// hold either, so it is not told "not modified" (see [`ViewCache`]).
    pub same_second: bool,
}

/// A view crosses nodes as its three parts; the content type comes back as
/// one of the types views are rendered with.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireView {
    content_type: String,
    body: Vec<u8>,
    etag: String,
    #[serde(default)]
    last_modified: i64,
    #[serde(default)]
    same_second: bool,
}

impl serde::Serialize for CachedView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireView {
            content_type: self.content_type.to_string(),
            body: self.body.to_vec(),
            etag: self.etag.to_string(),
            last_modified: self.last_modified,
            same_second: self.same_second,
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for CachedView {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireView::deserialize(d)?;
        let content_type = match w.content_type.as_str() {
            "application/json" => "application/json",
            "text/html; charset=utf-8" => "text/html; charset=utf-8",
            _ => "application/octet-stream",
        };
        Ok(CachedView {
            content_type,
            body: Bytes::from(w.body),
            etag: Arc::from(w.etag),
            last_modified: w.last_modified,
            same_second: w.same_second,
        })
    }
}

impl CachedView {
    /// Bytes rendered now from state that changed now, as far as anyone knows.
    pub fn new(r: Rendered) -> CachedView {
        CachedView::changed_at(r, unix_now())
    }

    /// Bytes showing state last changed at `last_modified` (Unix seconds).
    pub fn changed_at(r: Rendered, last_modified: i64) -> CachedView {
        let digest = Sha256::digest(&r.body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        CachedView {
            content_type: r.content_type,
            body: r.body,
            etag: etag.into(),
            last_modified,
            same_second: false,
        }
    }

    /// Whether a client that has the state of `If-Modified-Since: since`
    /// (Unix seconds) has this one.
    pub fn unmodified_since(&self, since: i64) -> bool {
        self.last_modified < since || (self.last_modified == since && !self.same_second)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The cached views of one entity, shared between the entity's actor (the
/// only writer: it renders and invalidates) and readers on the same node,
/// which take a cached view without a mailbox round trip. The actor clears
/// the cache before it acknowledges a write, so a reader that saw the write
/// acknowledged never gets a view from before it.
///
/// Each clearing also records when the entity changed (`Last-Modified`).
/// HTTP dates count whole seconds, so two states can carry the same date:
/// when a state was served and the next one changed within the same second,
/// the next is marked [`CachedView::same_second`], and a client asking
/// `If-Modified-Since` that second gets the content again rather than a 304
/// that could hide the second change. Dates stay the real ones.
#[derive(Debug)]
pub struct ViewCache<K> {
    views: Arc<RwLock<HashMap<K, CachedView>>>,
    changed: Arc<std::sync::Mutex<Changed>>,
}

/// When the current state began, and whether its date is shared.
#[derive(Debug, Clone, Copy)]
struct Changed {
    second: i64,
    /// A view of this state has been rendered (so a client may hold it).
    rendered: bool,
    /// An earlier rendered state has the same second.
    same_second: bool,
}

impl<K> Clone for ViewCache<K> {
    fn clone(&self) -> Self {
        ViewCache {
            views: self.views.clone(),
            changed: self.changed.clone(),
        }
    }
}

impl<K: Eq + Hash + Copy> Default for ViewCache<K> {
    fn default() -> Self {
        ViewCache {
            views: Arc::default(),
            changed: Arc::new(std::sync::Mutex::new(Changed {
                second: unix_now(),
                rendered: false,
                same_second: false,
            })),
        }
    }
}

impl<K: Eq + Hash + Copy> ViewCache<K> {
    /// The cached view, if there is one (for readers outside the actor).
    pub fn get(&self, key: K) -> Option<CachedView> {
        self.views.read().ok()?.get(&key).cloned()
    }
    /// The cached view, rendering it first if needed (the actor's side).
    pub fn get_or_render(&mut self, key: K, render: impl FnOnce() -> Rendered) -> CachedView {
        if let Some(v) = self.get(key) {
            return v;
        }
        let changed = {
            let mut c = self.changed.lock().unwrap_or_else(|e| e.into_inner());
            c.rendered = true;
            *c
        };
        let mut v = CachedView::changed_at(render(), changed.second);
        v.same_second = changed.same_second;
        if let Ok(mut m) = self.views.write() {
            m.insert(key, v.clone());
        }
        v
    }
    /// Drops every view; the next read renders from the new state.
    pub fn invalidate(&mut self) {
        let now = unix_now();
        {
            let mut c = self.changed.lock().unwrap_or_else(|e| e.into_inner());
            let shared = now <= c.second && (c.rendered || c.same_second);
            *c = Changed {
                second: now.max(c.second),
                rendered: false,
                same_second: shared,
            };
        }
        if let Ok(mut m) = self.views.write() {
            m.clear();
        }
    }
    pub fn len(&self) -> usize {
        self.views.read().map(|m| m.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_once_until_invalidated() {
        let mut c = ViewCache::<ThreadView>::default();
        let mut renders = 0;
        for _ in 0..3 {
            c.get_or_render(ThreadView::Json, || {
                renders += 1;
                Rendered {
                    content_type: "application/json",
                    body: Bytes::from_static(b"[]"),
                }
            });
        }
        assert_eq!(renders, 1);
        c.invalidate();
        let v = c.get_or_render(ThreadView::Json, || Rendered {
            content_type: "x",
            body: Bytes::from_static(b"{}"),
        });
        assert_eq!(&v.body[..], b"{}");
        assert!(v.etag.starts_with('"') && v.etag.len() == 26);
    }

    #[test]
    fn a_second_change_within_a_second_is_never_not_modified() {
        let mut c = ViewCache::<ThreadView>::default();
        let render = || Rendered {
            content_type: "application/json",
            body: Bytes::from_static(b"[]"),
        };
        let first = c.get_or_render(ThreadView::Json, render);
        assert!(first.unmodified_since(first.last_modified));
        // Changes within the same second as a served state: whoever holds
        // that second may hold the old state, so it is sent again...
        for _ in 0..3 {
            c.invalidate();
            let last = c.get_or_render(ThreadView::Json, render);
            if last.last_modified == first.last_modified {
                assert!(!last.unmodified_since(first.last_modified));
            }
            assert!(last.unmodified_since(last.last_modified + 1));
        }
        // ...while a state nobody was served before carries no doubt.
        let mut quiet = ViewCache::<ThreadView>::default();
        quiet.invalidate();
        let v = quiet.get_or_render(ThreadView::Json, render);
        assert!(v.unmodified_since(v.last_modified));
        assert!(!v.unmodified_since(v.last_modified - 1));
    }
}
