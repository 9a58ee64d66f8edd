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
}

/// A view of a board's live threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CatalogView {
    /// `GET /api/v1/board/{id}/catalog`.
    Json,
    /// The catalog page, in a theme.
    Page { theme: u8 },
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
}

/// A view crosses nodes as its three parts; the content type comes back as
/// one of the types views are rendered with.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireView {
    content_type: String,
    body: Vec<u8>,
    etag: String,
}

impl serde::Serialize for CachedView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireView {
            content_type: self.content_type.to_string(),
            body: self.body.to_vec(),
            etag: self.etag.to_string(),
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
        })
    }
}

impl CachedView {
    pub fn new(r: Rendered) -> CachedView {
        let digest = Sha256::digest(&r.body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        CachedView {
            content_type: r.content_type,
            body: r.body,
            etag: etag.into(),
        }
    }
}

/// The cached views of one entity, shared between the entity's actor (the
/// only writer: it renders and invalidates) and readers on the same node,
/// which take a cached view without a mailbox round trip. The actor clears
/// the cache before it acknowledges a write, so a reader that saw the write
/// acknowledged never gets a view from before it.
#[derive(Debug)]
pub struct ViewCache<K> {
    views: Arc<RwLock<HashMap<K, CachedView>>>,
}

impl<K> Clone for ViewCache<K> {
    fn clone(&self) -> Self {
        ViewCache {
            views: self.views.clone(),
        }
    }
}

impl<K: Eq + Hash + Copy> Default for ViewCache<K> {
    fn default() -> Self {
        ViewCache {
            views: Arc::default(),
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
        let v = CachedView::new(render());
        if let Ok(mut m) = self.views.write() {
            m.insert(key, v.clone());
        }
        v
    }
    /// Drops every view; the next read renders from the new state.
    pub fn invalidate(&mut self) {
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
}
