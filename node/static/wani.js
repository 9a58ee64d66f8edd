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
