//! The `Repo` behaviour the actors rely on, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use common::*;
use wani_store::*;

both_backends!(
    boards_are_created_listed_and_validated,
    threads_round_trip_with_global_increasing_ids,
    quotes_are_recorded_as_replies,
    bump_moves_last_updated_only_when_asked,
    same_address_keeps_its_poster_id_per_thread,
    empty_poster_id_is_derived_from_the_secret,
    idempotent_retry_returns_the_stored_post,
    concurrent_duplicates_store_one_post,
    archived_thread_refuses_replies_and_frees_unshared_blobs,
    fenced_writes_need_the_current_epoch,
    renewals_never_wait_for_writes_in_flight,
    one_bad_write_does_not_sink_its_batch,
    settle_waits_for_writes_whose_callers_gave_up,
    queued_posts_commit_in_the_order_queued,
    queued_replies_are_stored_as_one_at_a_time_would_store_them,
    bad_input_gets_a_clear_error,
    poster_secret_is_stable_across_reconnects,
    data_survives_reopening,
    long_threads_read_in_order,
    duplicate_files_are_found_by_blob,
);

async fn boards_are_created_listed_and_validated(db: &TestDb) {
    let s = &db.store;
    let g = s
        .create_board(BoardSettings {
            name: "g".into(),
            title: "Technology".into(),
            rules: "be nice".into(),
            max_threads: 10,
            bump_limit: 100,
            mimetypes: vec!["image/png".into(), "video/webm".into()],
            max_file_bytes: 1000,
            max_pixels: 1_000_000,
            max_duration_secs: 30,
            max_frames: 50,
            no_reposts: true,
            captcha_threads: false,
            captcha_replies: true,
            thread_interval_secs: 30,
            reply_interval_secs: 5,
        })
        .await
        .unwrap();
    assert_eq!(g.name, "g");
    assert_eq!(s.board(g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(s.board_by_name("g").await.unwrap(), Some(g.clone()));
    assert_eq!(s.board_by_name("nope").await.unwrap(), None);

    let dup = s.create_board(BoardSettings {
        name: "g".into(),
        ..Default::default()
    });
    assert!(matches!(dup.await, Err(StoreError::Conflict(_))));
    // (The last two: the site's own URLs begin with them.)
    for bad in [
        "",
        "G",
        "a b",
        "ü",
        "../x",
        &"x".repeat(33),
        "threads",
        "upload",
    ] {
        let r = s
            .create_board(BoardSettings {
                name: bad.to_string(),
                ..Default::default()
            })
            .await;
        assert!(
            matches!(r, Err(StoreError::Invalid(_))),
            "{bad:?} accepted: {r:?}"
        );
    }
    let longest = "a_-9".repeat(8);
    let b = board(s, &longest).await;
    assert_eq!(b.mimetypes, BoardSettings::default().mimetypes);

    let all = s.boards().await.unwrap();
    assert_eq!(
        all.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        ["g", longest.as_str()]
    );

    let renamed = s
        .update_board(
            g.id,
            BoardSettings {
                name: "tech".into(),
                max_threads: 3,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.board(g.id).await.unwrap(), Some(renamed));
    let taken = s.update_board(
        g.id,
        BoardSettings {
            name: longest.clone(),
            ..Default::default()
        },
    );
    assert!(matches!(taken.await, Err(StoreError::Conflict(_))));
    let missing = s.update_board(
        BoardId(9999),
        BoardSettings {
            name: "zz".into(),
            ..Default::default()
        },
    );
    assert!(matches!(missing.await, Err(StoreError::NotFound(_))));
}

async fn threads_round_trip_with_global_increasing_ids(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let mut new = new_thread(b.id, "first", 1_000);
    new.tags = vec!["rust".into(), " art ".into(), "rust".into(), "".into()];
    let (t1, op1) = s.create_thread(new).await.unwrap().into_inner();
    assert_eq!(t1.tags, ["art", "rust"]);
    assert_eq!(
        (t1.created, t1.last_updated, t1.archived),
        (1_000, 1_000, false)
    );
    assert_eq!(op1.subject.as_deref(), Some("first"));
    assert!(op1.media.is_some());

    let (t2, op2) = thread(s, b.id, "second", 2_000).await;
    let r1 = reply(s, t1.id, "reply in one", 3_000).await;
    let r2 = reply(s, t2.id, "reply in two", 4_000).await;
    let r3 = reply(s, t1.id, "again in one", 5_000).await;
    assert!(t2.id > t1.id);
    let ids = [op1.id, op2.id, r1.id, r2.id, r3.id];
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "post ids not increasing: {ids:?}"
    );
    assert_eq!(r1.media, None);
    assert_eq!(r1.subject, None);

    let full = s.thread(t1.id).await.unwrap().unwrap();
    assert_eq!(full.thread, t1.clone().with_last_updated(5_000));
    assert_eq!(full.posts, vec![op1.clone(), r1.clone(), r3.clone()]);
    assert_eq!(s.post(r2.id).await.unwrap(), Some(r2.clone()));
    let media = op1.media.clone().unwrap();
    assert_eq!(s.media(media.id).await.unwrap(), Some(media));
    assert_eq!(s.thread(ThreadId(9999)).await.unwrap(), None);
    assert_eq!(s.post(PostId(9999)).await.unwrap(), None);

    let found = s
        .threads_of_posts(&[op1.id, r2.id, PostId(9999)])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&op1.id], t1.id);
    assert_eq!(found[&r2.id], t2.id);
    assert_eq!(s.count_posts().await.unwrap(), 5);

    let catalog = s.board_threads(b.id).await.unwrap();
    assert_eq!(
        catalog.iter().map(|c| c.thread.id).collect::<Vec<_>>(),
        [t1.id, t2.id]
    );
    assert_eq!(catalog[0].op, op1);
    assert_eq!(catalog[0].thread.tags, ["art", "rust"]);
    assert_eq!((catalog[0].num_replies, catalog[0].num_media), (2, 1));
    assert_eq!((catalog[1].num_replies, catalog[1].num_media), (1, 1));
}

trait WithLastUpdated {
    fn with_last_updated(self, t: i64) -> Self;
}
impl WithLastUpdated for Thread {
    fn with_last_updated(mut self, t: i64) -> Self {
        self.last_updated = t;
        self
    }
}

async fn quotes_are_recorded_as_replies(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "q").await;
    let (t1, op1) = thread(s, b.id, "one", 1).await;
    let (t2, op2) = thread(s, b.id, "two", 2).await;
    let a = reply(s, t1.id, "plain", 3).await;
    let mut quoting = new_post(t1.id, ">>op >>a >>a >>missing", 4);
    quoting.quotes = vec![op1.id, a.id, a.id, PostId(9999)];
    let q = s.create_post(quoting).await.unwrap().into_inner();
    assert!(q.replies.is_empty());
    // Across threads: a post in thread two quotes the opening post of one.
    let mut cross = new_post(t2.id, ">>op1", 5);
    cross.quotes = vec![op1.id];
    let x = s.create_post(cross).await.unwrap().into_inner();

    let full = s.thread(t1.id).await.unwrap().unwrap();
    let replies: Vec<_> = full
        .posts
        .iter()
        .map(|p| (p.id, p.replies.clone()))
        .collect();
    assert_eq!(
        replies,
        [
            (op1.id, vec![q.id, x.id]),
            (a.id, vec![q.id]),
            (q.id, vec![])
        ]
    );
    assert_eq!(s.post(a.id).await.unwrap().unwrap().replies, [q.id]);
    let catalog = s.board_threads(b.id).await.unwrap();
    let one = catalog.iter().find(|c| c.thread.id == t1.id).unwrap();
    assert_eq!(one.op.replies, [q.id, x.id]);
    let two = catalog.iter().find(|c| c.thread.id == t2.id).unwrap();
    assert_eq!(two.op.id, op2.id);
    assert!(two.op.replies.is_empty());
}

async fn bump_moves_last_updated_only_when_asked(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "bump").await;
    let (t1, _) = thread(s, b.id, "one", 100).await;
    let (t2, _) = thread(s, b.id, "two", 200).await;
    let order = |c: Vec<ThreadSummary>| c.iter().map(|c| c.thread.id).collect::<Vec<_>>();
    assert_eq!(order(s.board_threads(b.id).await.unwrap()), [t2.id, t1.id]);

    let mut sage = new_post(t1.id, "no bump", 300);
    sage.bump = false;
    sage.sage = true;
    let stored = s.create_post(sage).await.unwrap().into_inner();
    assert!(stored.sage);
    let after = s.thread(t1.id).await.unwrap().unwrap().thread;
    assert_eq!(after.last_updated, 100);
    assert_eq!(order(s.board_threads(b.id).await.unwrap()), [t2.id, t1.id]);

    reply(s, t1.id, "bump", 400).await;
    assert_eq!(
        s.thread(t1.id).await.unwrap().unwrap().thread.last_updated,
        400
    );
    assert_eq!(order(s.board_threads(b.id).await.unwrap()), [t1.id, t2.id]);

    // A post stamped earlier (a node with a slow clock) never sinks a thread.
    reply(s, t1.id, "late clock", 350).await;
    assert_eq!(
        s.thread(t1.id).await.unwrap().unwrap().thread.last_updated,
        400
    );
}

async fn same_address_keeps_its_poster_id_per_thread(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "ids").await;
    let (t1, op) = thread(s, b.id, "one", 1).await;
    assert_eq!(op.poster, "ab12");
    let mut again = new_post(t1.id, "same address", 2);
    again.poster = "ffff".into();
    assert_eq!(
        s.create_post(again).await.unwrap().into_inner().poster,
        "ab12"
    );
    let mut other = new_post(t1.id, "other address", 3);
    other.ip = "198.51.100.7".into();
    other.poster = "0c0c".into();
    assert_eq!(
        s.create_post(other).await.unwrap().into_inner().poster,
        "0c0c"
    );
    let mut two = new_thread(b.id, "two", 4);
    two.op.ip = "203.0.113.50".into();
    let (t2, _) = s.create_thread(two).await.unwrap().into_inner();
    let mut elsewhere = new_post(t2.id, "same address, other thread", 5);
    elsewhere.poster = "9999".into();
    assert_eq!(
        s.create_post(elsewhere).await.unwrap().into_inner().poster,
        "9999"
    );
    let posters: Vec<_> = posts(s, t1.id)
        .await
        .into_iter()
        .map(|p| p.poster)
        .collect();
    assert_eq!(posters, ["ab12", "ab12", "0c0c"]);
}

async fn empty_poster_id_is_derived_from_the_secret(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "derived").await;
    // The actors cannot know a new thread's id, so they leave the OP's empty.
    let mut new = new_thread(b.id, "t", 1);
    new.op.poster = String::new();
    let (t, op) = s.create_thread(new).await.unwrap().into_inner();
    let secret = s.poster_secret().await.unwrap();
    assert_eq!(op.poster, poster_hex(&secret, t.id, &op_ip()));
    let mut again = new_post(t.id, "same address, empty id", 2);
    again.poster = String::new();
    assert_eq!(
        s.create_post(again).await.unwrap().into_inner().poster,
        op.poster
    );
    let mut other = new_post(t.id, "other address, empty id", 3);
    other.poster = String::new();
    other.ip = "198.51.100.1".into();
    let other = s.create_post(other).await.unwrap().into_inner();
    assert_eq!(other.poster, poster_hex(&secret, t.id, "198.51.100.1"));
}

/// The address `new_post` posts from.
fn op_ip() -> String {
    new_post(ThreadId(0), "", 0).ip
}

async fn idempotent_retry_returns_the_stored_post(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "idem").await;
    let new = new_thread(b.id, "once", 10);
    let first = s.create_thread(new.clone()).await.unwrap();
    let again = s.create_thread(new.clone()).await.unwrap();
    assert!(first.is_created());
    assert!(!again.is_created());
    assert_eq!(first.clone().into_inner(), again.into_inner());
    let (t, op) = first.into_inner();
    assert_eq!(s.board_threads(b.id).await.unwrap().len(), 1);

    let mut post = new_post(t.id, "retried", 20);
    post.quotes = vec![op.id];
    let created = s.create_post(post.clone()).await.unwrap();
    assert!(created.is_created());
    // Even a retry that differs (a later clock) gets what was stored first.
    post.now = 30;
    let replayed = s.create_post(post).await.unwrap();
    assert_eq!(replayed, Committed::Replayed(created.into_inner()));
    assert_eq!(s.count_posts().await.unwrap(), 2);
    assert_eq!(
        s.thread(t.id).await.unwrap().unwrap().thread.last_updated,
        20
    );
    assert_eq!(s.post(op.id).await.unwrap().unwrap().replies.len(), 1);
}

async fn concurrent_duplicates_store_one_post(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "dup").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let post = new_post(t.id, "clicked submit many times", 2);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, post) = (s.clone(), post.clone());
            tokio::spawn(async move { s.create_post(post).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_created()).count(), 1);
    let id = results[0].clone().into_inner().id;
    assert!(results.iter().all(|r| r.clone().into_inner().id == id));
    assert_eq!(s.count_posts().await.unwrap(), 2);
}

async fn archived_thread_refuses_replies_and_frees_unshared_blobs(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "arch").await;
    let (old, op) = thread(s, b.id, "old", 1).await;
    let (keep, _) = thread(s, b.id, "keep", 2).await;
    let mut with_shared = new_post(old.id, "same file as keep's op", 3);
    with_shared.media = Some(media("keep"));
    reply(s, old.id, "no file", 4).await;
    let shared = s.create_post(with_shared).await.unwrap().into_inner();

    let archived = s.archive_thread(old.id, None).await.unwrap();
    let mut expected = vec![
        op.media.as_ref().unwrap().blob.clone(),
        op.media.as_ref().unwrap().thumb_blob.clone(),
    ];
    expected.sort();
    let mut orphaned = archived.orphaned_blobs.clone();
    orphaned.sort();
    assert_eq!(orphaned, expected, "keep's blobs are still referenced");

    let catalog = s.board_threads(b.id).await.unwrap();
    assert_eq!(
        catalog.iter().map(|c| c.thread.id).collect::<Vec<_>>(),
        [keep.id]
    );
    let (gone, total) = s.archived_threads(b.id, 100, 0).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(
        gone.iter().map(|t| (t.id, t.archived)).collect::<Vec<_>>(),
        [(old.id, true)]
    );
    let full = s.thread(old.id).await.unwrap().unwrap();
    assert!(full.thread.archived);
    assert_eq!(full.posts.len(), 3);
    assert!(full.posts.iter().all(|p| p.media.is_none()));
    assert_eq!(s.media(shared.media.unwrap().id).await.unwrap(), None);

    let refused = s.create_post(new_post(old.id, "too late", 5)).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(s.count_posts().await.unwrap(), 4);
    assert_eq!(
        s.archive_thread(old.id, None).await.unwrap(),
        Archived::default()
    );
    let missing = s.archive_thread(ThreadId(9999), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));

    // Once keep goes too, its blobs are free.
    let freed = s.archive_thread(keep.id, None).await.unwrap();
    assert_eq!(freed.orphaned_blobs.len(), 2);
}

async fn fenced_writes_need_the_current_epoch(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "fence").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let mine = s
        .acquire_lease(7, "a@host:1", 1_000, 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.acquire_lease(7, "a@host:1", 1_200, 500).await.unwrap(),
        Some(mine)
    );
    assert_eq!(
        s.acquire_lease(7, "b@host:2", 1_300, 500).await.unwrap(),
        None
    );

    let mut ok = new_post(t.id, "fenced and current", 2);
    ok.fence = Some(mine);
    s.create_post(ok).await.unwrap();

    // a's lease lapses; b takes the shard with a higher epoch.
    let theirs = s
        .acquire_lease(7, "b@host:2", 1_800, 500)
        .await
        .unwrap()
        .unwrap();
    assert!(theirs.epoch > mine.epoch);
    let mut stale = new_post(t.id, "from the old owner", 3);
    stale.fence = Some(mine);
    let refused = s.create_post(stale).await;
    assert!(
        matches!(&refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    let mut stale_thread = new_thread(b.id, "stale", 4);
    stale_thread.op.fence = Some(mine);
    assert!(matches!(
        s.create_thread(stale_thread).await,
        Err(StoreError::Fenced { .. })
    ));
    let no_lease = Fence { shard: 8, epoch: 1 };
    let mut unleased = new_post(t.id, "shard never leased", 5);
    unleased.fence = Some(no_lease);
    assert!(matches!(
        s.create_post(unleased).await,
        Err(StoreError::Fenced { .. })
    ));

    assert_eq!(
        s.count_posts().await.unwrap(),
        2,
        "refused writes wrote nothing"
    );
    assert_eq!(s.board_threads(b.id).await.unwrap().len(), 1);
    assert_eq!(
        s.thread(t.id).await.unwrap().unwrap().thread.last_updated,
        2
    );

    // A released lease can be taken at once, and the epoch still grows.
    s.release_lease(7, "b@host:2").await.unwrap();
    let back = s
        .acquire_lease(7, "a@host:1", 1_900, 500)
        .await
        .unwrap()
        .unwrap();
    assert!(back.epoch > theirs.epoch);
}

async fn one_bad_write_does_not_sink_its_batch(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "batch").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let (archived, _) = thread(s, b.id, "archived", 1).await;
    s.archive_thread(archived.id, None).await.unwrap();
    // Joined futures on the test's single-threaded runtime all enqueue before
    // the writer task runs, so they share one batch.
    let (a, missing, c, too_long, e, closed, g) = tokio::join!(
        s.create_post(new_post(t.id, "a", 2)),
        s.create_post(new_post(ThreadId(9999), "to nowhere", 2)),
        s.create_post(new_post(t.id, "c", 3)),
        s.create_post(new_post(t.id, &"x".repeat(4097), 3)),
        s.create_post(new_post(t.id, "e", 4)),
        s.create_post(new_post(archived.id, "to the archive", 4)),
        s.create_thread(new_thread(b.id, "g", 5)),
    );
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    assert!(
        matches!(too_long, Err(StoreError::Invalid(_))),
        "{too_long:?}"
    );
    assert!(matches!(closed, Err(StoreError::Conflict(_))), "{closed:?}");
    let bodies: Vec<_> = [a, c, e]
        .into_iter()
        .map(|r| r.unwrap().into_inner().body)
        .collect();
    assert_eq!(bodies, ["a", "c", "e"]);
    g.unwrap();
    let stored: Vec<_> = posts(s, t.id).await.into_iter().map(|p| p.body).collect();
    assert_eq!(stored, ["op of t", "a", "c", "e"]);
    assert_eq!(s.count_posts().await.unwrap(), 6);
}

/// A thread's actor queues each reply without waiting for the one before
/// to commit: they commit in the order queued, whatever order their
/// answers are awaited in, and a bad one fails alone.
async fn queued_posts_commit_in_the_order_queued(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "queued").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let mut landings = Vec::new();
    for i in 0..30 {
        let body = if i == 13 {
            "x".repeat(4097)
        } else {
            format!("r{i}")
        };
        landings.push(s.queue_post(new_post(t.id, &body, 2 + i)).await.unwrap());
    }
    let mut answers = Vec::new();
    for landing in landings.into_iter().rev() {
        answers.push(landing.await);
    }
    answers.reverse();
    assert!(
        matches!(answers[13], Err(StoreError::Invalid(_))),
        "{:?}",
        answers[13]
    );
    let ids: Vec<i64> = answers
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 13)
        .map(|(_, a)| a.unwrap().into_inner().id.0)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids in queue order: {ids:?}"
    );
    let stored: Vec<_> = posts(s, t.id)
        .await
        .into_iter()
        .skip(1)
        .map(|p| p.body)
        .collect();
    let want: Vec<String> = (0..30)
        .filter(|i| *i != 13)
        .map(|i| format!("r{i}"))
        .collect();
    assert_eq!(stored, want);
}

/// Replies queued together are written in bulk (a few statements for the
/// whole run): what is stored must be what writing them one at a time
/// stores. Two threads, three addresses (the second post of an address
/// offers another hex: the first one stays), sage, quotes of posts in this
/// thread, in the other and of none, media, fenced and unfenced.
async fn queued_replies_are_stored_as_one_at_a_time_would_store_them(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "bulk").await;
    let fence = s
        .acquire_lease(9, "a@host:1", 1_000, 500)
        .await
        .unwrap()
        .unwrap();
    let script = |threads: [&(Thread, Post); 2], i: usize| {
        let (thread, op) = threads[i % 3 % 2];
        let other = &threads[(i % 3 + 1) % 2].1;
        let mut new = new_post(thread.id, &format!("r{i}"), 100 + i as i64);
        new.ip = format!("192.0.2.{}", i % 3);
        new.poster = format!("{:04x}", 0xa000 + i);
        new.sage = i % 4 == 1;
        new.bump = !new.sage && i < 17;
        new.quotes = match i % 5 {
            0 => vec![op.id],
            1 => vec![other.id, op.id, op.id],
            2 => vec![PostId(1_000_000_000)],
            _ => Vec::new(),
        };
        new.fence = i.is_multiple_of(2).then_some(fence);
        if i % 7 == 3 {
            new.media = Some(media(&format!("bulk {i} {}", thread.id)));
        }
        new
    };
    let one = [
        &thread(s, b.id, "1", 1).await,
        &thread(s, b.id, "2", 1).await,
    ];
    for i in 0..20 {
        s.create_post(script(one, i)).await.unwrap();
    }
    let queued = [
        &thread(s, b.id, "1", 1).await,
        &thread(s, b.id, "2", 1).await,
    ];
    let mut landings = Vec::new();
    for i in 0..20 {
        landings.push(s.queue_post(script(queued, i)).await.unwrap());
    }
    for landing in landings {
        assert!(matches!(landing.await, Ok(Committed::Created(_))));
    }
    let (want, got) = (shape(s, one).await, shape(s, queued).await);
    assert_eq!(got, want);
    assert!(
        want.iter()
            .any(|l| l.contains("replies [(false, 1), (false, 4)")),
        "{want:#?}"
    );

    // A reply fenced by a lease that moved on fails alone.
    let lost = s
        .acquire_lease(9, "b@host:2", 1_800, 500)
        .await
        .unwrap()
        .unwrap();
    let (t, _) = queued[0];
    let mut landings = Vec::new();
    for i in 0..4 {
        let mut new = new_post(t.id, &format!("late {i}"), 200 + i);
        new.fence = Some(if i == 2 { fence } else { lost });
        landings.push(s.queue_post(new).await.unwrap());
    }
    let mut answers = Vec::new();
    for landing in landings {
        answers.push(landing.await);
    }
    assert!(
        matches!(answers[2], Err(StoreError::Fenced { .. })),
        "{:?}",
        answers[2]
    );
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 3);
}

/// Two threads' rows and posts, each post by its place (ids differ
/// between two runs of the same script).
async fn shape(s: &Store, threads: [&(Thread, Post); 2]) -> Vec<String> {
    let mut out = Vec::new();
    let mut place = std::collections::HashMap::new();
    for (t, _) in threads {
        for (n, p) in posts(s, t.id).await.into_iter().enumerate() {
            place.insert(p.id, (t.id == threads[1].0.id, n));
        }
    }
    for (t, _) in threads {
        let row = s.thread(t.id).await.unwrap().unwrap().thread;
        out.push(format!("thread bumped at {}", row.last_updated));
        for p in posts(s, t.id).await {
            // By place: which thread's reply got the lower id is up to
            // the writers (on PostgreSQL each thread may have its own).
            let mut replies: Vec<_> = p.replies.iter().map(|r| place[r]).collect();
            replies.sort();
            out.push(format!(
                "{} by {} at {} sage {} media {} replies {replies:?}",
                p.body,
                p.poster,
                p.datetime,
                p.sage,
                p.media.map(|m| m.blob).unwrap_or_default().len(),
            ));
        }
    }
    out
}

/// An actor killed mid-write leaves its write queued; the activation that
/// replaces it settles the writer before loading, so it sees that write.
async fn settle_waits_for_writes_whose_callers_gave_up(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "settle").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let callers: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create_post(new_post(t.id, &format!("r{i}"), 2)).await })
        })
        .collect();
    // On the test's single-threaded runtime every caller runs until it
    // waits for its answer, its write queued; then each gives up.
    tokio::task::yield_now().await;
    for c in &callers {
        c.abort();
    }
    s.settle(t.id.0).await.unwrap();
    let posts = posts(s, t.id).await;
    assert_eq!(
        posts.len(),
        21,
        "every queued reply landed before settle returned"
    );
    // An idle writer settles at once.
    s.settle(t.id.0).await.unwrap();
    s.settle(-7).await.unwrap();
}

async fn bad_input_gets_a_clear_error(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "bad").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let longest = "é".repeat(4096);
    assert_eq!(
        reply(s, t.id, &longest, 2).await.body,
        longest,
        "4096 characters fit"
    );
    let r = s.create_post(new_post(t.id, &"é".repeat(4097), 3)).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = s
        .create_thread(new_thread(BoardId(9999), "nowhere", 4))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let mut bad_poster = new_post(t.id, "poster ids are 4 hex digits", 5);
    bad_poster.ip = "203.0.113.9".into();
    bad_poster.poster = "toolong".into();
    let r = s.create_post(bad_poster).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(s.count_posts().await.unwrap(), 2);
}

async fn poster_secret_is_stable_across_reconnects(db: &TestDb) {
    let s = &db.store;
    let (a, b) = tokio::join!(s.poster_secret(), s.poster_secret());
    let secret = a.unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(b.unwrap(), secret);
    let other = db.reopen().await;
    assert_eq!(other.poster_secret().await.unwrap(), secret);
    other.close().await;
}

async fn data_survives_reopening(db: &TestDb) {
    let b = board(&db.store, "keep").await;
    let (t, _) = thread(&db.store, b.id, "t", 1).await;
    let r = reply(&db.store, t.id, "still here", 2).await;
    let before = db.store.thread(t.id).await.unwrap();
    db.store.close().await;
    assert!(matches!(
        db.store.create_post(new_post(t.id, "after close", 3)).await,
        Err(StoreError::Unavailable(_))
    ));

    let again = db.reopen().await;
    again.migrate().await.unwrap();
    assert_eq!(again.thread(t.id).await.unwrap(), before);
    assert_eq!(again.post(r.id).await.unwrap(), Some(r.clone()));
    // Ids keep growing after a restart.
    let next = reply(&again, t.id, "next", 3).await;
    assert!(next.id > r.id);
    again.close().await;
}

async fn long_threads_read_in_order(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "long").await;
    let (t, op) = thread(s, b.id, "long", 0).await;
    let tasks: Vec<_> = (1..=300)
        .map(|i| {
            let s = s.clone();
            let mut post = new_post(t.id, &format!("post {i}"), i);
            post.quotes = vec![op.id];
            if i % 10 == 0 {
                post.media = Some(media(&format!("m{i}")));
            }
            tokio::spawn(async move { s.create_post(post).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let full = s.thread(t.id).await.unwrap().unwrap();
    assert_eq!(full.posts.len(), 301);
    assert!(full.posts.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(full.posts[0].replies.len(), 300);
    assert_eq!(full.posts.iter().filter(|p| p.media.is_some()).count(), 31);
    let summary = &s.board_threads(b.id).await.unwrap()[0];
    assert_eq!((summary.num_replies, summary.num_media), (300, 31));
}

async fn duplicate_files_are_found_by_blob(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "dup").await;
    let other = board(s, "other").await;
    let (t, op) = thread(s, b.id, "cat", 1_000).await;
    let key = op.media.clone().unwrap().blob;
    assert_eq!(s.media_by_blob(&key).await.unwrap(), op.media.clone());
    assert_eq!(
        s.post_with_blob(b.id, &key).await.unwrap(),
        Some((op.id, t.id))
    );
    assert_eq!(s.post_with_blob(other.id, &key).await.unwrap(), None);

    // The same file again, in another board: the newest row is reused.
    let (_, again) = thread(s, other.id, "cat", 2_000).await;
    let reused = s.media_by_blob(&key).await.unwrap().unwrap();
    assert_eq!(Some(reused.clone()), again.media);
    assert_eq!((reused.duration_ms, reused.frames), (0, 1));
    assert_eq!(
        s.post_with_blob(b.id, &key).await.unwrap(),
        Some((op.id, t.id))
    );

    let unknown = wani_store::blob::blob_key(b"never stored");
    assert_eq!(s.media_by_blob(&unknown).await.unwrap(), None);
    assert_eq!(s.post_with_blob(b.id, &unknown).await.unwrap(), None);

    // Archived threads give up their media, so their files are no reposts.
    s.archive_thread(t.id, None).await.unwrap();
    assert_eq!(s.post_with_blob(b.id, &key).await.unwrap(), None);
}

/// A write in flight share-locks its shard's lease row until it commits: a
/// takeover waits for it (so it cannot commit after the epoch moved), but a
/// renewal must not (it only moves the expiry), or renewals stall behind
/// busy shards, leases lapse under load, and a renewal and a batch of
/// writes can deadlock. PostgreSQL only: SQLite has one writer at a time.
async fn renewals_never_wait_for_writes_in_flight(db: &TestDb) {
    use sqlx::Connection;
    if db.store.backend() != Backend::Postgres {
        return;
    }
    let s = &db.store;
    let mine = s
        .acquire_lease(9, "a#1", 1_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut write = conn.begin().await.unwrap();
    sqlx::query("SELECT epoch FROM shard_lease WHERE shard = 9 FOR SHARE")
        .execute(&mut *write)
        .await
        .unwrap();

    let renewed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.renew_leases("a#1", 2_000, 60_000),
    )
    .await
    .expect("the renewal went through beside the write")
    .unwrap();
    assert_eq!(renewed, vec![mine]);
    assert_eq!(
        s.acquire_lease(9, "a#1", 2_100, 60_000).await.unwrap(),
        Some(mine),
        "keeping a lease does not wait either"
    );

    let store = s.clone();
    let mut takeover =
        tokio::spawn(async move { store.take_over_lease(9, "a#1", "b#2", 3_000, 60_000).await });
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), &mut takeover)
            .await
            .is_err(),
        "the takeover waits for the write in flight"
    );
    write.commit().await.unwrap();
    let theirs = takeover.await.unwrap().unwrap().unwrap();
    assert_eq!(theirs.epoch, mine.epoch + 1);
}
