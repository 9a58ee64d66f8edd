//! Test harness: a fresh database per test, on SQLite (always) and on
//! PostgreSQL (when `WANI_TEST_POSTGRES_URL` names a server we may create
//! databases on — `scripts/postgres.sh start DIR PORT` prints one).
//!
//! [`both_backends!`] turns `async fn name(db: &TestDb)` cases into one
//! `#[tokio::test]` per backend, so the same assertions run on both.

#![allow(dead_code)] // each test binary uses a different part of the harness

use wani_store::*;

/// One test's database. Dropping it removes the database.
pub struct TestDb {
    /// The store under test, connected and migrated.
    pub store: Store,
    pub url: String,
    place: Place,
}

enum Place {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        // A nested path also checks that connect creates missing directories.
        let url = format!("sqlite://{}/data/wani.db", dir.path().display());
        let store = open(&url).await;
        TestDb {
            store,
            url,
            place: Place::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a note) when no server
    /// is configured.
    pub async fn postgres() -> Option<TestDb> {
        let Some(admin_url) = testing::postgres_admin_url() else {
            println!("PostgreSQL tests skipped: set {}", testing::POSTGRES_ENV);
            return None;
        };
        let (url, name) = testing::create_postgres_database(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("create a test database on {admin_url}: {e}"));
        let store = open(&url).await;
        Some(TestDb {
            store,
            url,
            place: Place::Postgres { admin_url, name },
        })
    }

    /// Another store on the same database, as after a restart.
    pub async fn reopen(&self) -> Store {
        open(&self.url).await
    }

    /// Which backend this database is on.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Closes the store; the database goes when `self` drops.
    pub async fn finish(self) {
        self.store.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = &self.place else {
            return;
        };
        let (admin_url, db) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // a short-lived thread with its own runtime drops the database.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            rt.block_on(testing::drop_postgres_database(&admin_url, &db))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

async fn open(url: &str) -> Store {
    let store = Store::connect(StoreOptions {
        url: url.to_string(),
        max_connections: 4,
        writers: 0,
    })
    .await
    .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    store.migrate().await.expect("migrate");
    store
}

/// Runs each `async fn case(db: &TestDb)` once per backend:
/// `sqlite::case` always, `postgres::case` when PostgreSQL is configured.
#[allow(unused_macros)] // the throughput test pairs its cases by hand
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = $crate::common::TestDb::postgres().await else {
                        return;
                    };
                    super::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

/// A board with default settings and the given name.
pub async fn board(store: &Store, name: &str) -> Board {
    store
        .create_board(BoardSettings {
            name: name.to_string(),
            title: format!("/{name}/"),
            ..BoardSettings::default()
        })
        .await
        .expect("create board")
}

/// A post with a fresh idempotency key; tests adjust fields from here.
pub fn new_post(thread: ThreadId, body: &str, now: i64) -> NewPost {
    NewPost {
        thread,
        body: body.to_string(),
        body_html: format!("<p>{body}</p>"),
        poster: "ab12".to_string(),
        ip: "192.0.2.1".to_string(),
        media: None,
        spoiler: false,
        sage: false,
        quotes: Vec::new(),
        idempotency_key: fresh_key(),
        bump: true,
        now,
        fence: None,
        author: Author::default(),
    }
}

/// A unique idempotency key.
pub fn fresh_key() -> String {
    format!("key-{:032x}", rand::random::<u128>())
}

/// Media whose blob keys derive from `seed` (blob and thumbnail differ).
pub fn media(seed: &str) -> NewMedia {
    NewMedia {
        blob: wani_store::blob::blob_key(seed.as_bytes()),
        thumb_blob: wani_store::blob::blob_key(format!("thumb:{seed}").as_bytes()),
        mimetype: "image/png".to_string(),
        ext: "png".to_string(),
        is_animated: false,
        width: 640,
        height: 480,
        thumb_width: 500,
        thumb_height: 375,
        size_bytes: 12345,
        thumb_mimetype: "image/jpeg".to_string(),
        duration_ms: 0,
        frames: 1,
        md5: None,
        file_name: None,
    }
}

/// A new thread on `board` whose opening post carries media.
pub fn new_thread(board: BoardId, subject: &str, now: i64) -> NewThread {
    let mut op = new_post(ThreadId(0), &format!("op of {subject}"), now);
    op.media = Some(media(subject));
    NewThread {
        board,
        subject: Some(subject.to_string()),
        tags: Vec::new(),
        op,
    }
}

/// Creates a thread and returns it with its opening post.
pub async fn thread(store: &Store, board: BoardId, subject: &str, now: i64) -> (Thread, Post) {
    store
        .create_thread(new_thread(board, subject, now))
        .await
        .expect("create thread")
        .into_inner()
}

/// Posts a reply and returns it.
/// The posts of a thread that exists, in order.
pub async fn posts(store: &Store, thread: ThreadId) -> Vec<Post> {
    store.thread(thread).await.unwrap().unwrap().posts
}

pub async fn reply(store: &Store, thread: ThreadId, body: &str, now: i64) -> Post {
    store
        .create_post(new_post(thread, body, now))
        .await
        .expect("create post")
        .into_inner()
}
