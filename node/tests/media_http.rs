//! The media pipeline over HTTP: stripped originals, serving headers and
//! ranges, duplicates, "no reposts", refusals that leave no blob, video.

#[macro_use]
mod common;

use common::{form, jpeg, jpeg_with_gps, json, png, png_claiming, Db, TestNode};
use reqwest::{header, StatusCode};
use serde_json::Value;

both_backends!(
    gps_is_stripped_and_files_are_served_with_the_right_headers,
    duplicates_reuse_the_blob_and_no_reposts_names_the_post,
    refused_uploads_leave_no_blob,
    videos_round_trip_with_ranges,
);

/// Posts a thread on `board` with `file`; the status and the JSON answer.
async fn post_file(node: &TestNode, board: &str, name: &str, file: Vec<u8>) -> (StatusCode, Value) {
    // Each post from its own address: flood control is not under test.
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let res = node
        .client_from(&format!("127.0.0.{}", n.max(1)))
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", board), ("subject", "file"), ("body", "see file")],
            Some((name, file)),
        ))
        .send()
        .await
        .expect("send");
    json(res).await
}

/// Boards here post without a captcha: these tests are about files.
fn no_captcha(config: &mut wani_node::Config) {
    for b in &mut config.bootstrap.boards {
        b.captcha_threads = false;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn gps_is_stripped_and_files_are_served_with_the_right_headers(db: Db) {
    let Some(node) = TestNode::start(db, no_captcha).await else {
        return;
    };
    let c = node.client();
    let upload = jpeg_with_gps(800, 600);
    assert!(contains(&upload, b"SecretCam"));
    let (status, v) = post_file(&node, "b", "holiday.jpg", upload.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let url = v["post"]["media_url"].as_str().unwrap().to_string();

    let res = c.get(node.at(&url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    let body = res.bytes().await.unwrap();
    assert!(!contains(&body, b"SecretCam") && !contains(&body, b"GPS:48"));
    assert!(
        !contains(&body, b"Exif"),
        "no orientation, so no EXIF at all"
    );
    assert!(body.len() < upload.len());
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(h[header::CONTENT_LENGTH], body.len().to_string().as_str());
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert!(h[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let image = image::load_from_memory(&body).expect("the stripped JPEG decodes");
    assert_eq!((image.width(), image.height()), (800, 600));

    let thumb = c
        .get(node.at(v["post"]["thumb_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(thumb.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (500, 375));

    let (status, v) = json(c.get(node.at("/api/v1/status")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["thumbnail_queue"], 0, "{v}");
    node.stop().await;
}

async fn duplicates_reuse_the_blob_and_no_reposts_names_the_post(db: Db) {
    let Some(node) = TestNode::start(db, |config| {
        config.bootstrap.boards.push(wani_store::BoardSettings {
            name: "strict".into(),
            no_reposts: true,
            ..Default::default()
        });
        no_captcha(config);
    })
    .await
    else {
        return;
    };
    let file = png(300, 200, true);
    let (status, first) = post_file(&node, "b", "a.png", file.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(node.blob_files(), 2, "the original and its thumbnail");
    // The same bytes with other metadata are the same file once stripped.
    let (status, second) = post_file(&node, "b", "copy.png", file.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(node.blob_files(), 2, "a duplicate is stored once");
    let media = |v: &Value| wani_store::MediaId(v["post"]["media"].as_i64().unwrap());
    let a = node
        .state
        .store
        .media(media(&first))
        .await
        .unwrap()
        .unwrap();
    let b = node
        .state
        .store
        .media(media(&second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&a.blob, &a.thumb_blob), (&b.blob, &b.thumb_blob));

    // "No reposts": the first post on /strict/ is fine, the second is not.
    let (status, op) = post_file(&node, "strict", "a.png", file.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{op}");
    let (status, v) = post_file(&node, "strict", "again.png", file).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let msg = v["error"].as_str().unwrap();
    let post = op["post"]["id"].as_i64().unwrap();
    let thread = op["id"].as_i64().unwrap();
    assert!(msg.contains(&format!(">>{post}")), "{msg}");
    assert!(msg.contains(&format!("/threads/{thread}#{post}")), "{msg}");
    node.stop().await;
}

/// A PNG of noise, which does not compress: about 3 bytes a pixel.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut x = 0x2545_F491u32;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let [a, b, c, _] = x.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn refused_uploads_leave_no_blob(db: Db) {
    let Some(node) = TestNode::start(db, |config| {
        config.bootstrap.boards[0].max_file_bytes = 200_000;
        config.bootstrap.boards[0].max_frames = 2;
        no_captcha(config);
    })
    .await
    else {
        return;
    };
    let good = jpeg(64, 64);
    let mut polyglot = good.clone();
    polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>");
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for i in 0..3u8 {
            let frame = image::RgbaImage::from_pixel(8, 8, image::Rgba([i * 60, 0, 0, 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "truncated.jpg",
            good[..good.len() - 40].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "truncated",
        ),
        (
            "polyglot.jpg",
            polyglot,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "web page",
        ),
        (
            "big.png",
            noise_png(400, 400),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most",
        ),
        (
            "bomb.png",
            png_claiming(60_000, 60_000),
            StatusCode::PAYLOAD_TOO_LARGE,
            "megapixels",
        ),
        (
            "frames.gif",
            gif,
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 2",
        ),
        (
            "page.jpg",
            b"<!DOCTYPE html><p>hi</p>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "JPEG",
        ),
    ];
    for (name, bytes, want, words) in cases {
        let (status, v) = post_file(&node, "b", name, bytes).await;
        assert_eq!(status, want, "{name}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(words), "{name}: {msg}");
        assert_eq!(node.blob_files(), 0, "{name} left a blob behind");
    }
    node.stop().await;
}

/// A 2 s WebM: 0.1 s of black, then green.
fn webm() -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("v.webm");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=c=black:s=320x240:d=0.1:r=25"])
        .args(["-f", "lavfi", "-i", "color=c=green:s=320x240:d=1.9:r=25"])
        .args(["-filter_complex", "[0][1]concat=n=2:v=1:a=0"])
        .args(["-c:v", "libvpx", "-b:v", "100k"])
        .arg(&path)
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::read(path).ok()).flatten()
}

async fn videos_round_trip_with_ranges(db: Db) {
    let Some(video) = webm() else {
        println!("video tests skipped: install ffmpeg");
        return;
    };
    let Some(node) = TestNode::start(db, |config| {
        config.bootstrap.boards[0]
            .mimetypes
            .push("video/webm".into());
        no_captcha(config);
    })
    .await
    else {
        return;
    };
    let (status, v) = post_file(&node, "b", "clip.webm", video.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["post"]["mimetype"], "video/webm");
    // Duration and dimensions are stored and shown.
    let duration = v["post"]["duration_ms"].as_i64().unwrap_or(0);
    assert!((1500..=2500).contains(&duration), "a 2 s video: {v}");
    assert!(v["post"]["width"].as_i64().unwrap_or(0) > 0);
    let c = node.client();
    let page = c
        .get(node.at(v["thread_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(", 0:02,") || page.contains(", 0:01,"),
        "the page shows the duration"
    );
    let url = node.at(v["post"]["media_url"].as_str().unwrap());
    let res = c
        .get(&url)
        .header(header::RANGE, "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "video/webm");
    assert_eq!(
        res.headers()[header::CONTENT_RANGE],
        format!("bytes 0-99/{}", video.len()).as_str()
    );
    assert_eq!(&res.bytes().await.unwrap()[..], &video[..100]);
    let res = c
        .get(&url)
        .header(header::RANGE, format!("bytes={}-", video.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let thumb = c
        .get(node.at(v["post"]["thumb_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap())
        .unwrap()
        .into_rgb8();
    assert_eq!(thumb.dimensions(), (320, 240));
    let px = thumb.get_pixel(160, 120).0;
    assert!(
        px[1] > 80 && px[0] < 60,
        "the thumbnail is {px:?}, not the green frame"
    );
    let id = wani_store::MediaId(v["post"]["media"].as_i64().unwrap());
    let m = node.state.store.media(id).await.unwrap().unwrap();
    assert!((1900..=2100).contains(&m.duration_ms), "{}", m.duration_ms);

    // A board that does not list video refuses it by type.
    node.stop().await;
}
