//! Writes the `cluster_frame` seeds: real frames and message payloads,
//! encoded by the code that sends them, each behind the target's selector
//! byte. Usage: `cluster_seeds DIR` (scripts/fuzz seeds runs it).

use std::path::PathBuf;
use wani_actors::board::BoardMsg;
use wani_actors::live::LiveMsg;
use wani_actors::renderer::RenderMsg;
use wani_actors::thread::{PostDraft, ThreadMsg};
use wani_actors::thumbnailer::ThumbMsg;
use wani_media::{MediaLimits, ThumbOptions};
use wani_store::{PostId, ThreadId};
use wani_supervision::transport::{encode, Fault, Remote, Reply};
use wani_supervision::wire::{self, Envelope, Frame, Heartbeat};

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: cluster_seeds DIR"));
    std::fs::create_dir_all(&dir).expect("creating the seed directory");
    let write = |name: &str, selector: u8, bytes: Vec<u8>| {
        let mut seed = vec![selector];
        seed.extend(bytes);
        std::fs::write(dir.join(name), seed).expect("writing a seed");
    };
    let frame = |f: Frame| wire::encode(&Envelope::V1(f)).expect("a seed frame encodes");
    let beat = Heartbeat {
        from: "a@127.0.0.1:7001".into(),
        incarnation: 42,
        roles: vec!["web".into(), "entities".into()],
        you_are: "up".into(),
        you_are_incarnation: 3,
        sent_ms: 1_700_000_000_000,
        cookie_digest: [7; 16],
    };
    let render = RenderMsg::Render {
        body: ">>12 hello\n>green ||spoiler||".into(),
        links: vec![(PostId(12), Some(ThreadId(2))), (PostId(13), None)],
        reply: Reply::detached(),
    };
    let body = |m: &dyn Fn() -> Vec<u8>| m();
    write("heartbeat", 0, frame(Frame::Heartbeat(beat.clone())));
    write(
        "heartbeat-ack",
        0,
        frame(Frame::HeartbeatAck {
            beat,
            echo_sent_ms: 1_700_000_000_123,
        }),
    );
    write(
        "leaving",
        0,
        frame(Frame::Leaving {
            from: "b@127.0.0.1:7002".into(),
            incarnation: 7,
        }),
    );
    write("tick", 0, frame(Frame::Tick));
    write(
        "send-render",
        0,
        frame(Frame::Send {
            req: 9,
            from: "a@127.0.0.1:7001".into(),
            kind: RenderMsg::KIND.into(),
            key: 0,
            body: encode(&render).expect("encodes"),
        }),
    );
    write(
        "answer-ok",
        0,
        frame(Frame::Answer {
            req: 9,
            result: Ok(b"<p>hi</p>".to_vec()),
        }),
    );
    write(
        "answer-fault",
        0,
        frame(Frame::Answer {
            req: 10,
            result: Err(Fault::Conflict("fenced".into())),
        }),
    );
    write(
        "answer-part",
        0,
        frame(Frame::AnswerPart {
            req: 11,
            part: 1,
            parts: 3,
            payload: vec![1, 2, 3],
        }),
    );
    let draft = PostDraft {
        body: "hello >>1".into(),
        ip: "127.0.0.1".into(),
        media: None,
        spoiler: true,
        sage: false,
        idempotency_key: "k1".into(),
        author: Default::default(),
        privileged: false,
    };
    write(
        "thread-create-post",
        1,
        body(&|| {
            encode(&ThreadMsg::CreatePost {
                draft: Box::new(draft.clone()),
                reply: Reply::detached(),
            })
            .expect("encodes")
        }),
    );
    write(
        "thread-quoted-by",
        1,
        encode(&ThreadMsg::QuotedBy {
            target: PostId(1),
            by: PostId(2),
        })
        .expect("encodes"),
    );
    write(
        "board-create-thread",
        2,
        encode(&BoardMsg::CreateThread {
            subject: Some("subject".into()),
            tags: vec!["a".into()],
            draft: Box::new(draft),
            reply: Reply::detached(),
        })
        .expect("encodes"),
    );
    write(
        "board-latest",
        2,
        encode(&BoardMsg::Latest {
            limit: 10,
            reply: Reply::detached(),
        })
        .expect("encodes"),
    );
    write(
        "live-relayed",
        3,
        encode(&LiveMsg::Relayed {
            from: "a@127.0.0.1:7001".into(),
            stream: 1,
            seq: 2,
            event: None,
        })
        .expect("encodes"),
    );
    write(
        "thumb-process",
        4,
        encode(&ThumbMsg::Process {
            blob: "ab/cdef".into(),
            limits: MediaLimits::default(),
            options: ThumbOptions::default(),
            reply: Reply::detached(),
        })
        .expect("encodes"),
    );
    write("render", 5, encode(&render).expect("encodes"));
}
