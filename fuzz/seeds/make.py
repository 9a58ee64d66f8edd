#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (except cluster_frame, whose
frames come from `wani-fuzz`'s `cluster_seeds` binary, as only the Rust
types know their encoding). Needs ffmpeg and ffprobe.

Seeds are the inputs the tests use (the markup golden files, the shipped
configs, the live API's bodies) and small media files of each accepted
kind, with the metadata the stripper must handle. Run from the repository
root: fuzz/seeds/make.py
"""
import json, os, pathlib, re, struct, subprocess, tempfile, zlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"


def out(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def ffmpeg(args, ext):
    with tempfile.TemporaryDirectory() as t:
        path = os.path.join(t, "out." + ext)
        subprocess.run(["ffmpeg", "-v", "error", "-y"] + args + [path], check=True)
        return open(path, "rb").read()


def src(size="16x16", frames=1, alpha=False):
    fmt = ",format=rgba" if alpha else ""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=5{fmt}", "-frames:v", str(frames)]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiff_orientation(o):
    # Big-endian TIFF, one IFD with the orientation tag (0x0112).
    return b"MM\0*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x112, 3, 1, o, 0) + b"\0\0\0\0"


def media():
    jpg = ffmpeg(src() + ["-q:v", "5"], "jpg")
    exif = b"Exif\0\0" + tiff_orientation(6)
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    com = b"\xff\xfe" + struct.pack(">H", 2 + 9) + b"a comment"
    jpg_meta = jpg[:2] + app1 + com + jpg[2:] + b"trailer"
    png = ffmpeg(src(), "png")
    png_rgba = ffmpeg(src(alpha=True), "png")
    iend = png.rfind(b"IEND") - 4
    text = png_chunk(b"tEXt", b"Comment\0hello") + png_chunk(b"eXIf", tiff_orientation(8))
    png_meta = png[:33] + text + png[33:iend] + png[iend:] + b"trailer"
    apng = ffmpeg(src(frames=2) + ["-plays", "0", "-f", "apng"], "png")
    gif = ffmpeg(src(frames=2), "gif")
    webp_lossy = ffmpeg(src() + ["-c:v", "libwebp", "-lossless", "0"], "webp")
    webp_lossless = ffmpeg(src(alpha=True) + ["-c:v", "libwebp", "-lossless", "1"], "webp")
    webp_anim = ffmpeg(src(frames=2) + ["-c:v", "libwebp_anim", "-loop", "0"], "webp")
    webm = ffmpeg(src(frames=2) + ["-c:v", "libvpx", "-b:v", "20k"], "webm")
    mp4 = ffmpeg(src(frames=2) + ["-c:v", "mpeg4", "-q:v", "20"], "mp4")
    # Big enough for the reduced-scale paths with the target's 32 px
    # thumbnails: 1/8 scale (wani's DC-only decoder) and 1/2–1/4
    # (jpeg-decoder's scaled decode); 4:2:0, 4:4:4 and grey.
    dc420 = ffmpeg(src("256x256") + ["-q:v", "31", "-pix_fmt", "yuvj420p"], "jpg")
    dc444 = ffmpeg(src("256x128") + ["-q:v", "31", "-pix_fmt", "yuvj444p"], "jpg")
    grey = ffmpeg(src("128x96") + ["-q:v", "31", "-pix_fmt", "gray"], "jpg")
    images = {
        "dc-420.jpg": dc420, "dc-444.jpg": dc444, "scaled-grey.jpg": grey,
        "baseline.jpg": jpg, "exif-comment-trailer.jpg": jpg_meta, "rgb.png": png,
        "rgba.png": png_rgba, "text-exif-trailer.png": png_meta, "animated.apng": apng,
        "animated.gif": gif, "lossy.webp": webp_lossy, "lossless-alpha.webp": webp_lossless,
        "animated.webp": webp_anim,
        # A decompression bomb's header: 60000×60000 in a few bytes.
        "bomb.png": png[:16] + struct.pack(">II", 60000, 60000) + png[24:],
    }
    for name, data in images.items():
        out("media_process", name, data)
        out("media_prepare", name, data)
    out("media_prepare", "tiny.webm", webm)
    out("media_prepare", "tiny.mp4", mp4)
    return {"webm": webm, "mp4": mp4}


def probes(videos):
    for ext, data in videos.items():
        with tempfile.TemporaryDirectory() as t:
            path = os.path.join(t, "v." + ext)
            open(path, "wb").write(data)
            r = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json",
                                "-show_format", "-show_streams", "-i", path],
                               check=True, capture_output=True)
            out("video_probe", ext + ".json", r.stdout)
    # From media/src/video.rs's tests: rotation, an audio-only file.
    out("video_probe", "rotated.json", json.dumps({
        "streams": [{"codec_type": "audio"}, {"codec_type": "video", "width": 1920, "height": 1080,
                     "side_data_list": [{"rotation": -90}]}], "format": {"duration": "12.345"}}))
    out("video_probe", "tags-rotate.json", json.dumps({
        "streams": [{"codec_type": "video", "width": 640, "height": 480, "duration": "1.5",
                     "tags": {"rotate": "270"}, "disposition": {"attached_pic": 0}}]}))
    out("video_probe", "audio.json", '{"streams":[{"codec_type":"audio"}],"format":{"duration":"3"}}')
    out("video_probe", "stderr.txt", "/tmp/wani-video-1.webm: Invalid data found when processing input\n")


def markup():
    for f in sorted((ROOT / "actors" / "tests" / "markup").glob("*.txt")):
        text = f.read_text()
        m = re.search(r"--- input(?: escaped)?\n(.*?)\n--- output\n", text, re.S)
        if m:
            out("markup", f.stem, m.group(1))


def configs():
    for f in [ROOT / "cluster.toml", *sorted((ROOT / "examples").glob("*/*.toml"))]:
        out("config", f.parent.name + "-" + f.name if f.parent != ROOT else f.name, f.read_bytes())


def live():
    bodies = [
        {"client-id": "client_0123456789", "subscribe": {"thread": [1, 2], "board": [3]}},
        {"client-id": "client_0000000000", "unsubscribe": {"thread": [12]}},
        {"client-id": "x", "subscribe": {}, "unsubscribe": {"board": [-1, 9223372036854775807]}},
    ]
    for i, b in enumerate(bodies):
        out("live_body", f"post-{i}", b"\0" + json.dumps(b).encode())
    heads = [
        b"GET /api/v1/live HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /api/v1/live?thread=1,2&board=3+4&thread[]=5%2C6 HTTP/1.1\r\nHost: a\r\n"
        b"Last-Event-ID: 42\r\nAccept: text/event-stream\r\n\r\n",
    ]
    for i, h in enumerate(heads):
        out("live_body", f"get-{i}", b"\1" + h)


def multipart():
    def form(boundary, parts):
        body = b""
        for headers, value in parts:
            body += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + value + b"\r\n"
        return b"multipart/form-data; boundary=" + boundary + b"\n" + body + b"--" + boundary + b"--\r\n"
    text = lambda name: b'Content-Disposition: form-data; name="' + name + b'"'
    out("multipart", "reply", form(b"XyZ", [
        (text(b"body"), b">>12 hello\r\n>green"), (text(b"spoiler"), b"on"),
        (text(b"email"), b"sage"), (text(b"idempotency_key"), b"k1"),
        (b'Content-Disposition: form-data; name="media"; filename="a.png"\r\nContent-Type: image/png',
         b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
    ]))
    out("multipart", "thread", form(b"----WebKitFormBoundary7MA4YWxkTrZu0gW", [
        (text(b"subject"), b"a subject"), (text(b"tags"), b"a, b"),
        (b'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream', b""),
    ]))
    out("multipart", "not-multipart", b"application/x-www-form-urlencoded\nbody=hi")


if __name__ == "__main__":
    markup()
    configs()
    live()
    multipart()
    probes(media())
