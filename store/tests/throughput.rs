//! Group-commit throughput: concurrent callers posting into 16 threads.
//! Ignored by default (it measures, it does not check behaviour); run with
//!
//! ```text
//! cargo test --release -p wani-store --test throughput -- --ignored --nocapture
//! ```
//!
//! and, for PostgreSQL, `WANI_TEST_POSTGRES_URL` set as for the other tests.
//! The target is 2,000 committed posts/s on SQLite.

#[macro_use]
mod common;

use std::time::Instant;

use common::*;
use wani_store::*;

const THREADS: usize = 16;
const CALLERS: usize = 64;
const POSTS: usize = 20_000;

async fn posts_per_second(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "bench").await;
    let mut threads = Vec::with_capacity(THREADS);
    for i in 0..THREADS {
        threads.push(thread(s, b.id, &format!("thread {i}"), 0).await);
    }
    let body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(4);
    let start = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (s, threads, body) = (s.clone(), threads.clone(), body.clone());
            tokio::spawn(async move {
                for n in (caller..POSTS).step_by(CALLERS) {
                    let (thread, op) = &threads[n % THREADS];
                    let mut post = new_post(thread.id, &body, n as i64 + 1);
                    post.ip = format!("10.0.{}.{}", caller, n % 7);
                    post.quotes = vec![op.id];
                    if n % 10 == 0 {
                        post.media = Some(media(&format!("bench {n}")));
                    }
                    s.create_post(post).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller task").expect("post");
    }
    let elapsed = start.elapsed();
    assert_eq!(s.count_posts().await.unwrap(), (POSTS + THREADS) as i64);
    println!(
        "{:?}: {POSTS} posts from {CALLERS} callers into {THREADS} threads in {:.2?}: {:.0} posts/s",
        db.backend(),
        elapsed,
        POSTS as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures throughput; run with --ignored --nocapture"]
async fn sqlite_group_commit() {
    let db = TestDb::sqlite().await;
    posts_per_second(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures throughput; run with --ignored --nocapture"]
async fn postgres_group_commit() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    posts_per_second(&db).await;
    db.finish().await;
}
