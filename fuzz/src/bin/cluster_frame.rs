//! Frames between nodes: the versioned bincode envelope
//! (`wani_supervision::wire::decode`) and the transport payloads inside a
//! `Send` frame, decoded as the receiving service would
//! (`wani_supervision::transport::decode` into each remotable message
//! enum: thread, board, live, thumbnail, render).
//!
//! Input: a selector byte, then the bytes. Selector 0 (mod 6): a whole
//! frame, and if it is a `Send`, its body as the kind it names; 1–5: a
//! payload as one message kind directly.
//! Allocation limit 16 MiB: a frame is at most 1 MiB (`MAX_FRAME`).

use wani_actors::board::BoardMsg;
use wani_actors::live::LiveMsg;
use wani_actors::renderer::RenderMsg;
use wani_actors::thread::ThreadMsg;
use wani_actors::thumbnailer::ThumbMsg;
use wani_supervision::transport::{decode, Remote};
use wani_supervision::wire::{self, Envelope, Frame};

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(16);

fn body(kind: &str, bytes: &[u8]) {
    fn as_msg<M: Remote>(bytes: &[u8]) {
        let _ = decode::<M>(bytes);
    }
    match kind {
        k if k == ThreadMsg::KIND => as_msg::<ThreadMsg>(bytes),
        k if k == BoardMsg::KIND => as_msg::<BoardMsg>(bytes),
        k if k == LiveMsg::KIND => as_msg::<LiveMsg>(bytes),
        k if k == ThumbMsg::KIND => as_msg::<ThumbMsg>(bytes),
        k if k == RenderMsg::KIND => as_msg::<RenderMsg>(bytes),
        _ => {}
    }
}

fn main() {
    let kinds = [
        ThreadMsg::KIND,
        BoardMsg::KIND,
        LiveMsg::KIND,
        ThumbMsg::KIND,
        RenderMsg::KIND,
    ];
    afl::fuzz!(|data: &[u8]| {
        let Some((&which, rest)) = data.split_first() else {
            return;
        };
        match which % 6 {
            0 => {
                if let Ok(Envelope::V1(Frame::Send { kind, body: b, .. })) = wire::decode(rest) {
                    body(&kind, &b);
                }
            }
            n => body(kinds[usize::from(n) - 1], rest),
        }
    });
}
