"""Existing imageboard clients, unchanged, against a real wani node.

Posts two boards of threads (files, replies, a spoiler, a file posted twice),
then points three clients from PyPI at the node by configuration only and
checks what they fetched:

- gallery-dl (downloader, Mike Fährmann): a `vichan` instance in its config
  file; every file of every thread downloaded byte-identical to the upload;
- pyvichan (client library, vichan layout): `site_url`; thread lists from
  threads.json and the catalog complete, posts in order, files and MD5s;
- BASC-py4chan (client library, 4chan layout, Bibliotheca Anonoma): its
  4chan host names reach the node through the standard HTTP proxy setting
  (`http_proxy`), as a hosts-file entry would; pages from 1, files from the
  4chan file-host layout, and its own If-Modified-Since polling.

Usage: check.py WANI_BINARY WORK_DIR   (run by scripts/test-clients)
"""

import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib

import requests

WANI, WORK = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def png(w, h, seed):
    """A plain RGB PNG with nothing for wani to strip: stored as posted."""
    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 7 + seed) % 256, (y * 5 + seed) % 256, (x ^ y ^ seed) % 256)) for x in range(w))
        for y in range(h)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sha(data):
    return hashlib.sha256(data).hexdigest()


port = free_port()
base = f"http://127.0.0.1:{port}"
os.makedirs(WORK, exist_ok=True)
config = os.path.join(WORK, "wani.toml")
with open(config, "w") as f:
    f.write(
        f"""
[node]
listen = "127.0.0.1:{port}"
[database]
url = "sqlite://{WORK}/wani.db"
[blobs]
dir = "{WORK}/blobs"
[site]
trusted_proxies = ["127.0.0.1"]
[abuse]
same_content_secs = 0
"""
    )
    for name, title in [("b", "Random"), ("g", "Technology")]:
        f.write(
            f"""
[[bootstrap.boards]]
name = "{name}"
title = "{title}"
captcha_threads = false
captcha_replies = false
thread_interval_secs = 0
reply_interval_secs = 0
"""
        )
log = open(os.path.join(WORK, "wani.log"), "w")
node = subprocess.Popen([WANI, "--config", config, "serve"], stdout=log, stderr=subprocess.STDOUT)
try:
    wait_for("the node", lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200)

    posted = {}  # board -> {thread number -> [(post id, sha256 of file or None)]}
    threads_of = {}  # thread number -> wani thread id (for posting replies)
    files = {}  # sha256 -> bytes
    seed = 0

    def upload(path, fields, image):
        global seed
        # Always multipart, as the API takes it: text fields as parts too.
        files_arg = {k: (None, v) for k, v in fields.items()}
        if image is not None:
            files_arg["media"] = (f"upload {sha(image)[:8]}.png", image, "image/png")
            files[sha(image)] = image
        # Each post from its own address, so the board's own limits are all we meet.
        seed += 1
        r = requests.post(f"{base}{path}", files=files_arg, headers={"X-Forwarded-For": f"10.0.{seed // 250}.{seed % 250}"})
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()

    shared = png(50, 40, 999)  # posted twice: wani stores it once
    for board, count in [("b", 17), ("g", 3)]:
        posted[board] = {}
        for i in range(count):
            seed += 1
            op = png(40 + i, 30 + i, seed)
            t = upload("/api/v1/thread/new", {"board": board, "subject": f"thread {i}", "body": f"opening {i}\n>green"}, op)
            tid = t["id"]
            posts = [(t["post"]["id"], sha(op))]
            for j in range(i % 7):
                image = None
                if j % 2 == 0:
                    seed += 1
                    image = shared if (i, j) in [(2, 0), (5, 2)] else png(20 + j, 20 + i, seed)
                fields = {"body": f">>{posts[0][0]} reply {j}"}
                if j == 2:
                    fields["spoiler"] = "on"
                p = upload(f"/api/v1/thread/{tid}/new", fields, image)
                posts.append((p["id"], sha(image) if image else None))
            # A thread's number in these APIs is its opening post's.
            posted[board][posts[0][0]] = posts
            threads_of[posts[0][0]] = tid
    n_files = sum(1 for b in posted.values() for t in b.values() for _, h in t if h)
    print(f"posted {sum(len(b) for b in posted.values())} threads, {n_files} files")

    def check_thread_posts(client, board, tid, got):
        want = [p for p, _ in posted[board][tid]]
        assert got == want, f"{client}: thread {tid} has posts {got}, posted {want}"

    # --- gallery-dl: the whole board, through a configured vichan instance.
    conf = os.path.join(WORK, "gallery-dl.json")
    dl = os.path.join(WORK, "gallery-dl")
    with open(conf, "w") as f:
        json.dump(
            {
                "extractor": {
                    "base-directory": dl,
                    "vichan": {"wani": {"root": base, "pattern": re.escape(f"127.0.0.1:{port}")}},
                }
            },
            f,
        )
    for board in posted:
        subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "gallery-dl"), "-q", "--ignore-config", "--config", conf, f"{base}/{board}/"],
            check=True,
        )
        got = []
        for root, _, names in os.walk(os.path.join(dl, "wani", board)):
            for name in names:
                with open(os.path.join(root, name), "rb") as fh:
                    got.append(sha(fh.read()))
        want = [h for t in posted[board].values() for _, h in t if h]
        assert sorted(got) == sorted(want), f"gallery-dl /{board}/: {len(got)} files, posted {len(want)}; differing: {set(got) ^ set(want)}"
        print(f"gallery-dl /{board}/: {len(got)} files, each byte-identical to its upload")

    # --- pyvichan: vichan layout, at our address.
    import pyvichan

    for board in posted:
        b = pyvichan.Board(board, site_url=f"127.0.0.1:{port}", https=False)
        ids = b.get_all_thread_ids()
        assert sorted(ids) == sorted(posted[board]), f"pyvichan threads.json /{board}/: {ids}"
        catalog = [t.topic.post_id for t in b.get_all_threads()]
        assert sorted(catalog) == sorted(posted[board]), f"pyvichan catalog /{board}/: {catalog}"
        first = [t.topic.post_id for t in b.get_threads(0)]
        assert first == ids[: len(first)] and len(first) == min(15, len(ids)), f"pyvichan page 0: {first}"
        checked = 0
        for tid in posted[board]:
            t = b.get_thread(tid)
            check_thread_posts("pyvichan", board, tid, [p.post_id for p in t.all_posts])
            want = {p: h for p, h in posted[board][tid]}
            for p in t.all_posts:
                assert p.has_file == (want[p.post_id] is not None), f"pyvichan post {p.post_id} has_file"
                if p.has_file:
                    data = requests.get(p.first_file.file_url).content
                    assert sha(data) == want[p.post_id], f"pyvichan {p.first_file.file_url}"
                    assert p.first_file.file_md5 == hashlib.md5(data).digest(), f"pyvichan md5 of {p.post_id}"
                    assert requests.get(p.first_file.thumbnail_url).headers["content-type"].startswith("image/")
                    checked += 1
        print(f"pyvichan /{board}/: {len(ids)} threads complete, {checked} files and MD5s match")

    # --- BASC-py4chan: 4chan layout and host names, through the proxy setting.
    os.environ["http_proxy"] = base
    os.environ["HTTP_PROXY"] = base
    os.environ.pop("no_proxy", None)
    os.environ.pop("NO_PROXY", None)
    import basc_py4chan

    boards = {b.name: b.title for b in basc_py4chan.get_all_boards()}
    assert boards == {"b": "Random", "g": "Technology"}, boards
    for board in posted:
        b = basc_py4chan.Board(board)
        ids = b.get_all_thread_ids()
        assert sorted(ids) == sorted(posted[board]), f"py4chan threads.json /{board}/: {ids}"
        paged = []
        page = 1
        while len(paged) < len(ids):
            got = b.get_threads(page)
            assert got, f"py4chan /{board}/ page {page} empty with {len(paged)} of {len(ids)} seen"
            paged += [t.topic.post_id for t in got]
            page += 1
        assert paged == ids, f"py4chan pages from 1: {paged} vs {ids}"
        catalog = [t.topic.post_id for t in b.get_all_threads()]
        assert sorted(catalog) == sorted(posted[board])
        # (get_all_threads(expand=True) drops threads without replies: its
        # filter takes a thread's length, its reply count, for truth.)
        expanded = [b.get_thread(i, raise_404=True) for i in ids]
        checked = 0
        for t in expanded:
            check_thread_posts("py4chan", board, t.id, [p.post_id for p in t.all_posts])
            for f in t.file_objects():
                data = requests.get(f.file_url).content
                assert f.file_url.startswith("http://i.4cdn.org/"), f.file_url
                assert sha(data) in files, f"py4chan {f.file_url}: not an uploaded file"
                # The name it was uploaded under (the shared file was sent
                # twice under the same name).
                assert f.filename_original == f"upload {sha(data)[:8]}.png", f.filename_original
                assert f.file_md5 == hashlib.md5(data).digest()
                assert requests.get(f.thumbnail_url).headers["content-type"].startswith("image/")
                checked += 1
        print(f"py4chan /{board}/: {len(ids)} threads over {page - 1} pages, {checked} files and MD5s match")

    # Its polling: If-Modified-Since answers 304 until a reply arrives.
    b = basc_py4chan.Board("g")
    statuses = []
    b._requests_session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
    tid = next(iter(posted["g"]))
    t = b.get_thread(tid)
    assert t.update() == 0, "an unchanged thread is not new"
    assert statuses == [200, 304], statuses
    os.environ.pop("http_proxy")
    os.environ.pop("HTTP_PROXY")
    upload(f"/api/v1/thread/{threads_of[tid]}/new", {"body": "late reply"}, None)
    os.environ["http_proxy"] = base
    os.environ["HTTP_PROXY"] = base
    assert t.update() == 1, "the new reply is fetched"
    assert statuses == [200, 304, 200], statuses
    print("py4chan polling: 304 while unchanged, the new reply after a post")
    print("all clients passed")
finally:
    node.terminate()
    try:
        node.wait(timeout=20)
    except subprocess.TimeoutExpired:
        node.kill()
