// wani.js: progressive enhancements. Every page works without it.
// - shows <time> elements in the reader's time zone (UTC stays in the title);
// - hovering a >>N link (a.post-reply) previews the quoted post: cloned from
//   this page when it is here, else fetched once from its thread page;
// - clicking a post's "No. N" inserts ">>N" into the reply form;
// - tapping a ||spoiler|| reveals it on touch screens.
// No frameworks, no requests beyond this site's own thread pages.
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(document); });
  } else {
    localise(document);
  }
})();
