//! Accounts and moderation in the store, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use common::*;
use wani_store::*;

both_backends!(
    deleting_posts_and_threads_frees_what_nothing_else_uses,
    thread_flags_moves_and_spoilers,
    moderation_is_fenced_and_logged_in_one_transaction,
    slips_and_sessions,
    bans_log_and_reports,
);

/// A change without fence or log entry.
fn plain(change: Change) -> Moderation {
    Moderation {
        change,
        fence: None,
        log: None,
    }
}

async fn moderation_is_fenced_and_logged_in_one_transaction(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let (t, _) = thread(s, b.id, "t", 1).await;
    let by = ModBy {
        slip: None,
        slip_name: "mod".into(),
        reason: "tidy".into(),
    };
    let mine = s.acquire_lease(3, "a#1", 0, 60_000).await.unwrap().unwrap();
    let sticky = |fence| Moderation {
        change: Change::Flags {
            thread: t.id,
            sticky: true,
            locked: false,
        },
        fence: Some(fence),
        log: Some(by.entry(10, "sticky", Some(b.id), format!("thread {}", t.id))),
    };
    // Another node takes the shard over: the old owner's change is refused,
    // and neither the flag nor its log entry is written.
    let theirs = s
        .take_over_lease(3, "a#1", "b#2", 1, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        s.moderate(sticky(mine)).await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(!s.thread(t.id).await.unwrap().unwrap().thread.sticky);
    assert!(
        s.mod_log(10).await.unwrap().is_empty(),
        "no entry for a refused change"
    );
    // A change that fails (no such thread) writes no entry either.
    let mut missing = sticky(theirs);
    missing.change = Change::Flags {
        thread: ThreadId(999),
        sticky: true,
        locked: false,
    };
    assert!(matches!(
        s.moderate(missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.mod_log(10).await.unwrap().is_empty());
    // The current owner's change and its entry land together.
    s.moderate(sticky(theirs)).await.unwrap();
    assert!(s.thread(t.id).await.unwrap().unwrap().thread.sticky);
    let log = s.mod_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action.as_str(), log[0].reason.as_str()),
        ("sticky", "tidy")
    );
    // Archiving is fenced too.
    assert!(matches!(
        s.archive_thread(t.id, Some(mine)).await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(!s.thread(t.id).await.unwrap().unwrap().thread.archived);
}

async fn deleting_posts_and_threads_frees_what_nothing_else_uses(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let (t, op) = thread(s, b.id, "one", 1).await;
    let mut with_media = new_post(t.id, "pic", 2);
    with_media.media = Some(media("pic"));
    let pic = s.create_post(with_media).await.unwrap().into_inner();
    let mut quoting = new_post(t.id, ">>pic", 3);
    quoting.quotes = vec![pic.id];
    let quoting = s.create_post(quoting).await.unwrap().into_inner();
    s.report_post(pic.id, "bad", 4).await.unwrap();

    let err = s
        .moderate(plain(Change::DeletePost(op.id)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let gone = s.moderate(plain(Change::DeletePost(pic.id))).await.unwrap();
    let m = pic.media.as_ref().unwrap();
    let mut expected = vec![m.blob.clone(), m.thumb_blob.clone()];
    expected.sort();
    assert_eq!(gone.orphaned_blobs, expected);
    assert!(s.post(pic.id).await.unwrap().is_none());
    assert!(
        s.reports(None).await.unwrap().is_empty(),
        "its report went too"
    );
    let full = s.thread(t.id).await.unwrap().unwrap();
    assert_eq!(full.posts.len(), 2);
    assert!(full.posts[0].replies.is_empty() || !full.posts[0].replies.contains(&pic.id));
    assert!(matches!(
        s.moderate(plain(Change::DeletePost(pic.id))).await,
        Err(StoreError::NotFound(_))
    ));

    // A blob shared with another thread survives the thread's deletion.
    let (other, _) = thread(s, b.id, "one", 5).await;
    let gone = s.moderate(plain(Change::DeleteThread(t.id))).await.unwrap();
    assert!(gone.orphaned_blobs.is_empty(), "{:?}", gone.orphaned_blobs);
    assert!(s.thread(t.id).await.unwrap().is_none());
    assert!(s.post(quoting.id).await.unwrap().is_none());
    let gone = s
        .moderate(plain(Change::DeleteThread(other.id)))
        .await
        .unwrap();
    assert_eq!(gone.orphaned_blobs.len(), 2);
    // Ids are never reused.
    let (next, next_op) = thread(s, b.id, "two", 6).await;
    assert!(next.id > other.id && next_op.id > quoting.id);
}

async fn thread_flags_moves_and_spoilers(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let g = board(s, "g").await;
    let (old, op) = thread(s, b.id, "old", 1).await;
    let (new, _) = thread(s, b.id, "new", 2).await;
    s.moderate(plain(Change::Flags {
        thread: old.id,
        sticky: true,
        locked: true,
    }))
    .await
    .unwrap();
    let list = s.board_threads(b.id).await.unwrap();
    assert_eq!(list[0].thread.id, old.id, "stickies first");
    assert!(list[0].thread.sticky && list[0].thread.locked);
    s.moderate(plain(Change::Spoiler {
        post: op.id,
        spoiler: true,
    }))
    .await
    .unwrap();
    assert!(s.post(op.id).await.unwrap().unwrap().spoiler);
    s.moderate(plain(Change::Move {
        thread: new.id,
        board: g.id,
    }))
    .await
    .unwrap();
    assert_eq!(s.board_threads(g.id).await.unwrap()[0].thread.id, new.id);
    assert!(matches!(
        s.moderate(plain(Change::Move {
            thread: new.id,
            board: BoardId(999)
        }))
        .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.moderate(plain(Change::Flags {
            thread: ThreadId(999),
            sticky: true,
            locked: false
        }))
        .await,
        Err(StoreError::NotFound(_))
    ));
    let mut signed = new_post(old.id, "hi", 3);
    signed.author = Author {
        slip: None,
        name: Some("kana !abc".into()),
        capcode: Some("Mod".into()),
    };
    let p = s.create_post(signed).await.unwrap().into_inner();
    let read = s.post(p.id).await.unwrap().unwrap();
    assert_eq!(read.slip_name.as_deref(), Some("kana !abc"));
    assert_eq!(read.capcode.as_deref(), Some("Mod"));
}

async fn slips_and_sessions(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let slip = s.create_slip("kana", "hash", false, true).await.unwrap();
    assert!(matches!(
        s.create_slip("kana", "h", false, false).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_slip(&"x".repeat(21), "h", false, false).await,
        Err(StoreError::Invalid(_))
    ));
    let (found, hash) = s.slip_by_name("kana").await.unwrap().unwrap();
    assert_eq!((found.id, hash.as_str()), (slip.id, "hash"));
    s.set_slip_roles(slip.id, false, false, &[b.id])
        .await
        .unwrap();
    s.create_session("t1", slip.id, "csrf1", 10, 100)
        .await
        .unwrap();
    let session = s.session("t1", 50).await.unwrap().unwrap();
    assert_eq!(session.csrf, "csrf1");
    assert_eq!(session.slip.boards, vec![b.id]);
    assert!(s.session("t1", 100).await.unwrap().is_none(), "expired");
    s.delete_session("t1").await.unwrap();
    assert!(s.session("t1", 50).await.unwrap().is_none());
}

async fn bans_log_and_reports(db: &TestDb) {
    let s = &db.store;
    let b = board(s, "b").await;
    let (t, op) = thread(s, b.id, "t", 1).await;
    let ban = s
        .create_ban(Ban {
            id: 0,
            cidr: "10.0.0.0/8".into(),
            board: Some(b.id),
            reason: "spam".into(),
            created: 1,
            expires: Some(100),
            slip: None,
            post: Some(op.id),
        })
        .await
        .unwrap();
    assert_eq!(s.active_bans(50).await.unwrap(), vec![ban.clone()]);
    assert!(s.active_bans(100).await.unwrap().is_empty());
    assert!(s.delete_ban(ban.id).await.unwrap());
    assert_eq!(
        s.post_origin(op.id).await.unwrap(),
        Some(("192.0.2.1".into(), t.id))
    );

    let first = s.report_post(op.id, "rude", 5).await.unwrap();
    let again = s.report_post(op.id, "also rude", 9).await.unwrap();
    assert_eq!(
        (again.id, again.count, again.reason.as_str()),
        (first.id, 2, "rude")
    );
    assert_eq!(again.last_at, 9);
    assert!(matches!(
        s.report_post(PostId(999), "x", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.reports(Some(b.id)).await.unwrap().len(), 1);
    assert!(s.reports(Some(BoardId(999))).await.unwrap().is_empty());
    assert!(s.dismiss_report(first.id).await.unwrap());
    assert!(s.reports(None).await.unwrap().is_empty());

    let entry = ModLogEntry {
        id: 0,
        at: 7,
        slip: None,
        slip_name: "root".into(),
        action: "delete_post".into(),
        board: Some(b.id),
        target: "post 1".into(),
        reason: "why".into(),
    };
    s.log_mod_action(&entry).await.unwrap();
    let log = s.mod_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        ModLogEntry {
            id: log[0].id,
            ..entry
        },
        log[0]
    );
}
