//! The node's [`ViewRenderer`]: how entity state becomes JSON and HTML.
//!
//! Entity actors cache what this returns, so it runs once per change of a
//! thread or board, not once per request.

use crate::chan;
use crate::json;
use crate::pages::{self, PageCtx, Theme};
use bytes::Bytes;
use std::sync::{Arc, RwLock};
use wani_actors::{CatalogView, Rendered, ThreadView, ViewRenderer};
use wani_store::{Board, ThreadFull, ThreadSummary};

/// Renders the site's views.
pub struct SiteRenderer {
    site_name: String,
    /// The boards in the navigation bar; refreshed whenever the node lists boards.
    boards: RwLock<Arc<Vec<Board>>>,
}

/// A theme's number in cache keys.
pub fn theme_index(t: Theme) -> u8 {
    Theme::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8
}

fn theme_of(i: u8) -> Theme {
    Theme::ALL.get(i as usize).copied().unwrap_or_default()
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

impl SiteRenderer {
    pub fn new(site_name: String, boards: Vec<Board>) -> SiteRenderer {
        SiteRenderer {
            site_name,
            boards: RwLock::new(Arc::new(boards)),
        }
    }

    pub fn set_boards(&self, boards: Vec<Board>) {
        if let Ok(mut b) = self.boards.write() {
            if **b != boards {
                *b = Arc::new(boards);
            }
        }
    }

    /// The id of the board with this name, if the cached list has it.
    pub fn board_named(&self, name: &str) -> Option<wani_store::BoardId> {
        self.boards().iter().find(|b| b.name == name).map(|b| b.id)
    }

    fn boards(&self) -> Arc<Vec<Board>> {
        self.boards.read().map(|b| b.clone()).unwrap_or_default()
    }

    fn json(value: impl serde::Serialize) -> Rendered {
        // Serialising plain records cannot fail; an empty array keeps the shape if it ever did.
        let body = serde_json::to_vec(&value).unwrap_or_else(|_| b"[]".to_vec());
        Rendered {
            content_type: JSON,
            body: Bytes::from(body),
        }
    }

    fn html(body: String) -> Rendered {
        Rendered {
            content_type: HTML,
            body: Bytes::from(body),
        }
    }
}

impl ViewRenderer for SiteRenderer {
    fn thread(&self, view: ThreadView, board: &Board, t: &ThreadFull) -> Rendered {
        match view {
            ThreadView::Json => {
                let posts: Vec<_> = t
                    .posts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| json::post(p, &t.thread, i == 0))
                    .collect();
                Self::json(posts)
            }
            ThreadView::Page { theme } => {
                let boards = self.boards();
                let ctx = PageCtx {
                    theme: theme_of(theme),
                    site_name: &self.site_name,
                    boards: &boards,
                };
                Self::html(pages::thread(&ctx, board, t))
            }
            ThreadView::Gallery { theme } => {
                let boards = self.boards();
                let ctx = PageCtx {
                    theme: theme_of(theme),
                    site_name: &self.site_name,
                    boards: &boards,
                };
                Self::html(pages::gallery(&ctx, board, t))
            }
            ThreadView::Chan => Self::json(chan::thread(t, board)),
            ThreadView::ChanIndex => Self::json(chan::index_entry(t, board)),
            ThreadView::ChanCatalog => Self::json(chan::catalog_entry(t, board)),
        }
    }

    fn catalog(&self, view: CatalogView, board: &Board, threads: &[ThreadSummary]) -> Rendered {
        match view {
            CatalogView::Json => Self::json(
                threads
                    .iter()
                    .map(|t| json::catalog_entry(t, None))
                    .collect::<Vec<_>>(),
            ),
            CatalogView::Page { theme } => {
                let boards = self.boards();
                let ctx = PageCtx {
                    theme: theme_of(theme),
                    site_name: &self.site_name,
                    boards: &boards,
                };
                Self::html(pages::catalog(&ctx, board, threads))
            }
            CatalogView::ChanThreads => Self::json(chan::threads(threads)),
        }
    }
}
