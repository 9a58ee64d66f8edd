"""Makes a Maniwani site to import: its database, created by Maniwani's own
SQLAlchemy models (model/, copied unchanged from DangerOnTheRanger/maniwani
at d24c428, MIT: LICENSE.md), and its upload folder laid out as Maniwani's
FolderStorage writes it (`<media id>.<ext>`, thumbnails under `thumbs/`).

Only the table definitions are Maniwani's concern here, so the modules its
models import for rendering and caching (Markdown extensions, bleach, the
Redis cache) are stood in for before the models are imported; the columns,
keys and constraints are exactly the models'.

Usage (Debian's python3 with python3-flask-sqlalchemy and python3-pil;
python3-psycopg2 for PostgreSQL):

    make_site.py --db sqlite:////tmp/m.db --media /tmp/uploads --expected /tmp/e.json
    make_site.py --db ... --media ... --bulk --threads 1000 --replies 99 --images 10000

The first form writes the feature site the import tests check: every
markup feature, slips with Werkzeug password hashes, tags, media of each
kind, a post whose file is missing and one whose file is not an image.
`--expected` writes what Maniwani shows of it as JSON. `--bulk` writes a
large site fast (Core inserts through the same tables) for the benchmark.
"""

import argparse
import datetime
import io
import json
import os
import random
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))


def stand_in_modules(db_url):
    """Modules Maniwani's models import for things other than their tables."""
    import markupsafe
    import werkzeug.utils
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    # Removed from Werkzeug 2.1; Post.py imports it.
    werkzeug.utils.escape = markupsafe.escape

    app = Flask("maniwani")
    app.config["SQLALCHEMY_DATABASE_URI"] = db_url
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    app.config["UPLOAD_FOLDER"] = "./uploads"
    app.config["THUMB_FOLDER"] = "./uploads/thumbs"
    shared = types.ModuleType("shared")
    shared.app = app
    shared.db = SQLAlchemy(app)
    sys.modules["shared"] = shared

    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m

    class Unused:
        def __init__(self, *a, **k):
            pass

    module("cache", Cache=Unused)
    module("outputmixin", OutputMixin=type("OutputMixin", (object,), {}))
    module("bleach", clean=lambda *a, **k: None)
    module("markdown", markdown=lambda *a, **k: None)
    module("model.PostReplyExtension", PostReplyExtension=Unused)
    module("model.SpacingExtension", SpacingExtension=Unused)
    module("model.Spoiler", SpoilerExtension=Unused)
    module("model.ThreadRootExtension", ThreadRootExtension=Unused)
    return app, shared.db


# Every markup feature Maniwani renders (Markdown, its reply links, spoilers
# and line spacing), and raw HTML that must come out inert.
MARKUP_BODY = """# A heading
## A smaller one

Plain text with **bold**, *italics*, `inline code` and a [link](https://example.org/page?a=1&b=2).
A single newline
breaks the line.

>greentext line
>>{op} quotes the opening post, >>{other} quotes another thread, >>999999 quotes nothing

- a list item
- another ||with a spoiler||

1. first
2. second

    indented code block <b>not bold</b>

<script>alert("xss")</script><img src=x onerror=alert(1)>
---
the end"""


def png(width, height, seed):
    from PIL import Image
    img = Image.new("RGB", (width, height), (seed * 37 % 256, seed * 91 % 256, 120))
    for x in range(0, width, 7):
        img.putpixel((x, (x * seed) % height), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg(width, height, seed):
    from PIL import Image
    img = Image.new("RGB", (width, height), (200, seed * 53 % 256, 40))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def gif(width, height, frames):
    from PIL import Image
    images = [Image.new("P", (width, height), i * 40 % 256) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buf.getvalue()


def webm():
    """A one-second WebM made by ffmpeg (Maniwani thumbnailed videos with it
    too); None where ffmpeg is missing."""
    import shutil
    import subprocess
    import tempfile
    if shutil.which("ffmpeg") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "v.webm")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc=size=160x120:rate=10", "-t", "1", "-c:v", "libvpx",
                        "-b:v", "200k", out], check=True)
        with open(out, "rb") as f:
            return f.read()


def save_file(media_dir, media_id, ext, data):
    if data is not None:
        with open(os.path.join(media_dir, "%d.%s" % (media_id, ext)), "wb") as f:
            f.write(data)
        # Maniwani's own thumbnail beside it; wani makes its own.
        with open(os.path.join(media_dir, "thumbs", "%d.jpg" % media_id), "wb") as f:
            f.write(b"thumbnail")


def feature_site(db, models, media_dir):
    """The site the import tests check, and what Maniwani shows of it."""
    from werkzeug.security import generate_password_hash
    Board, Thread, Post, Poster, Media, Slip, Tag = models
    t0 = datetime.datetime(2020, 5, 1, 12, 0, 0)
    expected = {"boards": [], "threads": [], "slips": [], "missing_media": [],
                "broken_media": []}

    b = Board(name="b", rules="Be nice.", max_threads=50,
              mimetypes="image/jpeg,image/png,image/gif,text/plain")
    tech = Board(name="tech", rules="On topic.\nNo spam.", max_threads=20,
                 mimetypes="image/jpeg,image/png")
    db.session.add_all([b, tech])
    db.session.flush()
    for board in (b, tech):
        expected["boards"].append({"id": board.id, "name": board.name, "rules": board.rules,
                                   "max_threads": board.max_threads})

    admin = Slip(name="admin", pass_hash=generate_password_hash("correct horse battery"),
                 is_admin=True, is_mod=False)
    mod = Slip(name="janny", pass_hash=generate_password_hash("mop and bucket",
                                                              method="pbkdf2:sha256:50000"),
               is_admin=False, is_mod=True)
    db.session.add_all([admin, mod])
    db.session.flush()
    expected["slips"] = [
        {"name": "admin", "password": "correct horse battery", "is_admin": True, "is_mod": False},
        {"name": "janny", "password": "mop and bucket", "is_admin": False, "is_mod": True},
    ]
    tags = {name: Tag(name=name, bg_style="background: #%s" % c, text_style="color: white")
            for name, c in (("news", "c00"), ("meta", "00c"))}
    db.session.add_all(tags.values())

    minute = [0]

    def at():
        minute[0] += 1
        return t0 + datetime.timedelta(minutes=minute[0])

    def thread(board, tag_names):
        t = Thread(board=board.id, views=random.randint(0, 500), last_updated=at())
        t.tags = [tags[n] for n in tag_names]
        db.session.add(t)
        db.session.flush()
        return {"thread": t, "json": {"id": t.id, "board": board.id, "tags": tag_names,
                                      "posts": []}}

    def post(th, body, ip, subject=None, media=None, spoiler=False, slip=None):
        t = th["thread"]
        poster = db.session.query(Poster).filter_by(thread=t.id, ip_address=ip).one_or_none()
        if poster is None:
            poster = Poster(hex_string="%04X" % random.randint(0, 0xffff), ip_address=ip,
                            thread=t.id, slip=slip.id if slip else None)
            db.session.add(poster)
            db.session.flush()
        m = None
        if media is not None:
            ext, mimetype, data, animated = media
            m = Media(ext=ext, mimetype=mimetype, is_animated=animated)
            db.session.add(m)
            db.session.flush()
            save_file(media_dir, m.id, ext, data)
        p = Post(body=body, subject=subject, thread=t.id, datetime=at(), poster=poster.id,
                 media=m.id if m else None, spoiler=spoiler)
        db.session.add(p)
        db.session.flush()
        t.last_updated = p.datetime
        th["json"]["posts"].append({
            "id": p.id, "body": body, "subject": subject, "spoiler": spoiler,
            "slip": slip.name if slip else None,
            "media": {"ext": ext, "mimetype": mimetype} if m else None,
            "media_id": m.id if m else None,
        })
        return p

    first = thread(b, ["news"])
    op = post(first, "First thread, first post.", "10.0.0.1", subject="Hello, Maniwani",
              media=("png", "image/png", png(640, 480, 1), False))
    second = thread(tech, ["news", "meta"])
    other = post(second, "A thread on /tech/ with a JPEG.", "10.0.0.2",
                 subject="Second thread", media=("jpg", "image/jpeg", jpeg(800, 600, 2), False))
    post(first, MARKUP_BODY.format(op=op.id, other=other.id), "10.0.0.3")
    post(first, "An animated GIF, spoilered.", "10.0.0.4",
         media=("gif", "image/gif", gif(64, 48, 4), True), spoiler=True)
    gone = post(first, "This post's file was lost from the upload folder.", "10.0.0.5",
                media=("png", "image/png", None, False))
    expected["missing_media"].append(gone.id)
    broken = post(first, "A text file, which Maniwani took and wani does not.", "10.0.0.6",
                  media=("txt", "text/plain", b"just some text\n", False))
    expected["broken_media"].append(broken.id)
    video = webm()
    if video is not None:
        post(second, "A WebM, as Maniwani took them.", "10.0.0.10",
             media=("webm", "video/webm", video, True))
    post(first, "The same PNG again: stored once.", "10.0.0.7",
         media=("png", "image/png", png(640, 480, 1), False))
    post(first, "Posted with the admin's slip.", "10.0.0.8", slip=admin)
    post(second, "Reply to >>%d on /tech/." % other.id, "10.0.0.1")
    post(second, "A moderator speaks.", "10.0.0.9", slip=mod)
    for i in range(3):
        th = thread(b if i % 2 else tech, [])
        post(th, "Thread %d, opening." % i, "10.1.0.%d" % i, subject="Thread %d" % i)
        for j in range(4):
            post(th, "Reply %d in thread %d, >>%d." % (j, i, op.id), "10.2.%d.%d" % (i, j))
        expected["threads"].append(th["json"])
    expected["threads"][:0] = [first["json"], second["json"]]
    db.session.commit()
    return expected


class Pictures:
    """Distinct photos for the benchmark site, as an imageboard gets them:
    mostly JPEGs of about a megapixel, some PNGs. Each is a textured base
    with its own mark, so no two files are alike (deduplication would skip
    the work the benchmark is there to time)."""

    def __init__(self):
        from PIL import Image
        noise = Image.effect_noise((1024, 768), 12)
        grad = Image.linear_gradient("L").resize((1024, 768))
        self.base = Image.merge("RGB", (noise, grad, noise.transpose(Image.FLIP_LEFT_RIGHT)))

    def make(self, n):
        from PIL import ImageDraw
        img = self.base.copy()
        draw = ImageDraw.Draw(img)
        draw.rectangle((n % 900, n * 7 % 700, n % 900 + 60, n * 7 % 700 + 40),
                       fill=(n % 256, n // 256 % 256, 200))
        draw.text((10, 10), "picture %d" % n, fill=(255, 255, 255))
        buf = io.BytesIO()
        if n % 5 == 0:
            img.resize((640, 480)).save(buf, "PNG")
            return "png", "image/png", buf.getvalue()
        img.save(buf, "JPEG", quality=85)
        return "jpg", "image/jpeg", buf.getvalue()


def bulk_site(db, models, media_dir, threads, replies, images):
    """A large site written with Core inserts through Maniwani's tables."""
    Board, Thread, Post, Poster, Media, Slip, Tag = models
    conn = db.session.connection()
    conn.execute(Board.__table__.insert(), [
        {"id": 1, "name": "b", "rules": "", "max_threads": threads, "mimetypes": "image/png"},
    ])
    t0 = datetime.datetime(2021, 1, 1)
    total = threads * (replies + 1)
    every = max(1, total // images) if images else 0
    pictures = Pictures()
    thread_rows, poster_rows, post_rows, media_rows = [], [], [], []
    post_id = 0
    media_id = 0
    for t in range(1, threads + 1):
        thread_rows.append({"id": t, "board": 1, "views": 0,
                            "last_updated": t0 + datetime.timedelta(seconds=t * (replies + 1))})
        poster_rows.append({"id": t, "hex_string": "%04X" % (t % 0xffff), "ip_address":
                            "10.%d.%d.1" % (t // 256 % 256, t % 256), "thread": t, "slip": None})
        for r in range(replies + 1):
            post_id += 1
            m = None
            if every and post_id % every == 0 and media_id < images:
                media_id += 1
                m = media_id
                ext, mimetype, data = pictures.make(m)
                media_rows.append({"id": m, "ext": ext, "mimetype": mimetype,
                                   "is_animated": False})
                save_file(media_dir, m, ext, data)
            post_rows.append({"id": post_id, "thread": t, "poster": t, "media": m,
                              "spoiler": False, "subject": "Thread %d" % t if r == 0 else None,
                              "datetime": t0 + datetime.timedelta(seconds=post_id),
                              "body": "Post %d in thread %d, quoting >>%d.\n>implying"
                                      % (post_id, t, max(1, post_id - 1))})
    for table, rows in ((Thread.__table__, thread_rows), (Poster.__table__, poster_rows),
                        (Media.__table__, media_rows), (Post.__table__, post_rows)):
        for k in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[k:k + 5000])
    db.session.commit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--media", required=True)
    parser.add_argument("--expected")
    parser.add_argument("--bulk", action="store_true")
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=99)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--add-reply", type=int, metavar="THREAD",
                        help="add one post to THREAD of an existing site, print its id")
    parser.add_argument("--body", default="A reply made after the import.")
    args = parser.parse_args()
    random.seed(args.seed)
    os.makedirs(os.path.join(args.media, "thumbs"), exist_ok=True)

    app, db = stand_in_modules(args.db)
    sys.path.insert(0, HERE)
    from model.Board import Board
    from model.Media import Media
    from model.Post import Post
    from model.Poster import Poster
    from model.Reply import Reply  # noqa: F401 (its table)
    from model.Session import Session  # noqa: F401 (its table)
    from model.Slip import Slip
    from model.Tag import Tag
    from model.Thread import Thread
    models = (Board, Thread, Post, Poster, Media, Slip, Tag)
    with app.app_context():
        db.create_all()
        if args.add_reply:
            thread = db.session.get(Thread, args.add_reply)
            poster = Poster(hex_string="BEEF", ip_address="10.9.9.9", thread=thread.id)
            db.session.add(poster)
            db.session.flush()
            last = db.session.query(db.func.max(Post.datetime)).scalar()
            post = Post(body=args.body, thread=thread.id, poster=poster.id,
                        datetime=last + datetime.timedelta(minutes=1), spoiler=False)
            db.session.add(post)
            thread.last_updated = post.datetime
            db.session.commit()
            print(post.id)
        elif args.bulk:
            bulk_site(db, models, args.media, args.threads, args.replies, args.images)
        else:
            expected = feature_site(db, models, args.media)
            if args.expected:
                with open(args.expected, "w") as f:
                    json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
