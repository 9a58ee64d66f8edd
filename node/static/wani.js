// wani.js: progressive enhancements. Every page works without it.
// - shows <time> elements in the reader's time zone (UTC stays in the title);
// - hovering a >>N link (a.post-reply) previews the quoted post: cloned from
//   this page when it is here, else fetched once from its thread page;
// - clicking a post's "No. N" inserts ">>N" into the reply form;
// - tapping a ||spoiler|| reveals it on touch screens;
// - live updates: on a thread page new posts appear as they are made, on a
//   board's catalog new and bumped threads do. Events come from
//   /api/v1/live (Server-Sent Events); each one makes the page fetch itself
//   again (with If-None-Match, so an unchanged page costs a 304) and take
//   the new posts or tiles from it, so they look exactly as after a reload.
//   Without EventSource, or when the stream cannot be opened, the page
//   polls the same way.
// - captcha: clicking the picture loads another; coming back to a page
//   (back button) loads a fresh one, since the old one may be spent;
// - proof of work: before a posting form is sent, asks /captcha/pow whether
//   its board wants one; if so, finds a nonce such that
//   SHA-256(challenge + nonce) starts with the asked number of zero bits
//   (a small SHA-256 below: crypto.subtle is async per hash, far too slow
//   for millions, and missing outside HTTPS) and sends it with the form.
// No frameworks, no requests beyond this site's own pages and live stream.
(function () {
  "use strict";

  var fmt = window.Intl && Intl.DateTimeFormat
    ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" })
    : null;

  function localise(root) {
    if (!fmt) return;
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = el.textContent;
      el.textContent = fmt.format(d);
      el.dataset.local = "1";
    });
  }

  // Thread pages fetched for previews, by path: a Promise of a Document (or null).
  var pages = new Map();
  var preview = null;
  var hovered = null;

  function fetchThread(path) {
    if (!pages.has(path)) {
      pages.set(path, fetch(path, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          return html ? new DOMParser().parseFromString(html, "text/html") : null;
        })
        .catch(function () { return null; }));
    }
    return pages.get(path);
  }

  function findPost(doc, id) {
    var el = doc.getElementById(id);
    return el && el.classList.contains("post") ? el : null;
  }

  function hidePreview() {
    if (preview) preview.remove();
    preview = null;
    hovered = null;
  }

  function showPreview(link, post) {
    if (hovered !== link) return;
    if (preview) preview.remove();
    if (post) {
      preview = post.cloneNode(true);
      preview.removeAttribute("id");
      preview.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
      localise(preview);
    } else {
      preview = document.createElement("div");
      preview.className = "post missing";
      preview.textContent = "Post not found.";
    }
    preview.classList.add("post-preview");
    preview.setAttribute("aria-hidden", "true");
    document.body.appendChild(preview);
    var r = link.getBoundingClientRect();
    var w = preview.offsetWidth, h = preview.offsetHeight;
    var left = Math.max(4, Math.min(r.left, window.innerWidth - w - 4));
    var top = r.bottom + 6;
    if (top + h > window.innerHeight - 4) top = Math.max(4, r.top - h - 6);
    preview.style.left = left + "px";
    preview.style.top = top + "px";
  }

  document.addEventListener("mouseover", function (e) {
    var link = e.target.closest && e.target.closest("a.post-reply");
    if (!link || link === hovered) return;
    var url = new URL(link.href, location.href);
    // `/posts/N` (a reply quoted from another thread) redirects to N's thread.
    var moved = /^\/posts\/(\d+)$/.exec(url.pathname);
    var id = moved ? moved[1] : decodeURIComponent(url.hash.slice(1));
    if (url.origin !== location.origin || !(moved || /^\/threads\/\d+$/.test(url.pathname)) || !id) return;
    hovered = link;
    var here = url.pathname === location.pathname && findPost(document, id);
    if (here) {
      showPreview(link, here);
      return;
    }
    fetchThread(url.pathname).then(function (doc) {
      showPreview(link, doc && findPost(doc, id));
    });
  });

  document.addEventListener("mouseout", function (e) {
    if (hovered && e.target.closest && e.target.closest("a.post-reply") === hovered &&
        !hovered.contains(e.relatedTarget)) {
      hidePreview();
    }
  });

  document.addEventListener("click", function (e) {
    var no = e.target.closest && e.target.closest("a.post-no");
    var box = document.querySelector("#reply textarea[name=body]");
    if (no && box) {
      e.preventDefault();
      var text = ">>" + no.dataset.post + "\n";
      var start = box.selectionStart, end = box.selectionEnd;
      if (typeof start === "number") {
        box.value = box.value.slice(0, start) + text + box.value.slice(end);
        box.selectionStart = box.selectionEnd = start + text.length;
      } else {
        box.value += text;
      }
      box.focus();
      return;
    }
    var spoiler = e.target.closest && e.target.closest(".spoiler");
    if (spoiler && !spoiler.classList.contains("revealed")) {
      spoiler.classList.add("revealed");
      e.preventDefault();
    }
  });

  window.addEventListener("scroll", hidePreview, { passive: true });

  // How often a page without a live stream asks whether it changed.
  var POLL_MS = 10000;
  var LIVE_EVENTS = ["new-post", "new-thread", "new-reply", "delete-post", "resync"];

  function follow(box) {
    var etag = null, busy = false, again = false, polling = null;

    // A thread: append the posts this page lacks, replace those whose
    // Replies line changed, drop those deleted. A catalog: take it whole.
    function merge(doc) {
      var fresh = doc.getElementById(box.id);
      if (!fresh) return;
      if (box.classList.contains("thread")) {
        var seen = {};
        fresh.querySelectorAll(":scope > article.post").forEach(function (p) {
          seen[p.id] = true;
          var old = document.getElementById(p.id);
          if (old && old.parentNode === box) {
            var a = old.querySelector("footer.post-replies");
            var b = p.querySelector("footer.post-replies");
            if ((a ? a.innerHTML : "") === (b ? b.innerHTML : "")) return;
          }
          var post = document.importNode(p, true);
          if (old && old.parentNode === box) box.replaceChild(post, old);
          else box.appendChild(post);
          localise(post);
        });
        box.querySelectorAll(":scope > article.post").forEach(function (p) {
          if (!seen[p.id]) p.remove();
        });
        var counts = doc.querySelectorAll(".thread-counts");
        document.querySelectorAll(".thread-counts").forEach(function (el, i) {
          if (counts[i]) el.textContent = counts[i].textContent;
        });
      } else {
        box.innerHTML = fresh.innerHTML;
        localise(box);
      }
    }

    // At most one fetch at a time; events during it make one more.
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      var headers = {};
      if (etag) headers["If-None-Match"] = etag;
      fetch(location.pathname, { credentials: "same-origin", cache: "no-store", headers: headers })
        .then(function (r) {
          if (!r.ok) return null; // 304 included: nothing changed
          etag = r.headers.get("ETag");
          return r.text();
        })
        .then(function (html) {
          if (html) merge(new DOMParser().parseFromString(html, "text/html"));
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    }

    // `data-following` says how the page follows (tests wait on it).
    function poll() {
      if (!polling) polling = setInterval(refresh, POLL_MS);
      box.dataset.following = "polling";
    }

    if (!window.EventSource) { poll(); return; }
    var es = new EventSource("/api/v1/live?" + box.dataset.live);
    var opened = false, failures = 0;
    LIVE_EVENTS.forEach(function (name) { es.addEventListener(name, refresh); });
    es.onopen = function () {
      failures = 0;
      if (polling) { clearInterval(polling); polling = null; }
      // A reconnect may have missed events: catch up once.
      if (opened) refresh();
      opened = true;
      box.dataset.following = "live";
    };
    es.onerror = function () {
      // The browser retries by itself; a refused stream (CLOSED) or one
      // that keeps failing falls back to polling until it opens again.
      failures += 1;
      if (es.readyState === EventSource.CLOSED || failures >= 3) poll();
    };
  }

  // ---- proof of work (pow:begin): no DOM here, so it also runs alone ----
  var K256 = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var W256 = new Int32Array(64);

  // SHA-256 of an ASCII string (the challenge is base64url, the nonce
  // digits), as eight signed 32-bit words, big-endian.
  function sha256(s) {
    var n = s.length, blocks = ((n + 8) >> 6) + 1, i, t;
    var m = new Int32Array(blocks * 16);
    for (i = 0; i < n; i++) m[i >> 2] |= (s.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
    m[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    m[blocks * 16 - 1] = n * 8;
    var h0 = 0x6a09e667, h1 = 0xbb67ae85 | 0, h2 = 0x3c6ef372, h3 = 0xa54ff53a | 0,
      h4 = 0x510e527f, h5 = 0x9b05688c | 0, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
    for (var o = 0; o < m.length; o += 16) {
      for (t = 0; t < 64; t++) {
        if (t < 16) {
          W256[t] = m[o + t];
        } else {
          var x = W256[t - 15], y = W256[t - 2];
          var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
          var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
          W256[t] = (W256[t - 16] + s0 + W256[t - 7] + s1) | 0;
        }
      }
      var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K256[t] + W256[t]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
    }
    return [h0, h1, h2, h3, h4, h5, h6, h7];
  }

  function zeroBits(words) {
    for (var i = 0; i < 8; i++) {
      if (words[i] !== 0) return i * 32 + Math.clz32(words[i]);
    }
    return 256;
  }

  // Finds the first nonce (0, 1, 2, … as decimal text) that does the work
  // and passes it to done; in slices, so the page stays responsive.
  function solveWork(challenge, bits, done) {
    var nonce = 0;
    function slice() {
      for (var end = nonce + 20000; nonce < end; nonce++) {
        if (zeroBits(sha256(challenge + nonce)) >= bits) {
          done(String(nonce));
          return;
        }
      }
      setTimeout(slice, 0);
    }
    slice();
  }
  // ---- (pow:end) ----

  function hiddenField(form, name, value) {
    var el = form.querySelector("input[name='" + name + "']");
    if (!el) {
      el = document.createElement("input");
      el.type = "hidden";
      el.name = name;
      form.appendChild(el);
    }
    el.value = value;
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form.post-form[data-board]")) return;
    if (form.dataset.worked) return;
    e.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var label = button ? button.textContent : "";
    function send() {
      // requestSubmit fires this handler again, which now lets it through;
      // the flag goes right after, so a later post does its own work.
      form.dataset.worked = "1";
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
      delete form.dataset.worked;
    }
    fetch("/captcha/pow?board=" + encodeURIComponent(form.dataset.board),
      { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { bits: 0 }; })
      .catch(function () { return { bits: 0 }; })
      .then(function (p) {
        if (!p.bits) { send(); return; }
        if (button) { button.disabled = true; button.textContent = "Working\u2026"; }
        solveWork(p.challenge, p.bits, function (nonce) {
          hiddenField(form, "pow_challenge", p.challenge);
          hiddenField(form, "pow_nonce", nonce);
          if (button) { button.disabled = false; button.textContent = label; }
          send();
        });
      });
  });

  function newCaptcha(img) {
    img.src = "/captcha/new.png?" + Date.now();
  }

  document.addEventListener("click", function (e) {
    var img = e.target.closest && e.target.closest("img.captcha");
    if (!img) return;
    e.preventDefault();
    newCaptcha(img);
  });

  window.addEventListener("pageshow", function (e) {
    if (e.persisted) document.querySelectorAll("img.captcha").forEach(newCaptcha);
  });

  function startLive() {
    document.querySelectorAll("[data-live]").forEach(follow);
  }

  function start() {
    localise(document);
    startLive();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
