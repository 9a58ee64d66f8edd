//! A real browser against a real node: headless Chromium driven through
//! chromedriver (the WebDriver protocol, JSON over HTTP spoken with
//! `reqwest`), doing what a newcomer does — start a thread with an image,
//! quote it in a reply, switch the theme. It catches what the HTML-level
//! tests cannot: a form a browser would not submit, an image that does not
//! decode, the script that quotes a post on click.
//!
//! Without chromedriver and Chromium (Debian: `chromium`, `chromium-driver`)
//! the test prints a note and passes. It runs on SQLite only: it is about
//! the browser, not the database. A screenshot of the thread lands in
//! `target/test-artifacts/browser-thread.png`, chromedriver's log beside it.

mod common;

use anyhow::{bail, Context};
use common::{eventually, form, png, Db, TestNode};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long any one wait may take: Chromium starting, a page loading, a
/// form's redirect. Generous, because CI shares two cores with the build.
const DEADLINE: Duration = Duration::from_secs(30);

/// The key under which WebDriver names an element in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const SUBJECT: &str = "Hello from Chromium";
const BODY: &str = ">be me\n**bold** move, ||the ending||";
const REPLY: &str = "nice picture";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_starts_a_thread_replies_and_picks_a_theme() -> anyhow::Result<()> {
    let Some(browser) = Browser::launch().await? else {
        println!("browser tests skipped: install chromium and chromium-driver");
        return Ok(());
    };
    let started = Instant::now();
    let node = TestNode::start(Db::Sqlite, |_| {})
        .await
        .context("a SQLite node always starts")?;
    let b = &browser;

    // 1. The new-thread form, folded in its <details>, with an image.
    let image = node.dir.path().join("gradient.png");
    std::fs::write(&image, png(800, 600, true)).context("writing the upload")?;
    b.goto(&node.at("/boards/b")).await?;
    b.click(&b.find("details.form-toggle > summary").await?)
        .await?;
    let form = "form.new-thread";
    b.type_text(
        &b.find(&format!("{form} input[name=subject]")).await?,
        SUBJECT,
    )
    .await?;
    b.type_text(&b.find(&format!("{form} textarea[name=body]")).await?, BODY)
        .await?;
    let path = image
        .canonicalize()
        .context("absolute path of the upload")?;
    b.type_text(
        &b.find(&format!("{form} input[name=media]")).await?,
        &path.display().to_string(),
    )
    .await?;
    b.click(&b.find(&format!("{form} button[type=submit]")).await?)
        .await?;

    // 2. The browser follows the 303 to the thread, which shows everything.
    let threads = format!("{}/threads/", node.url);
    let threads = threads.as_str();
    let thread: u64 = eventually(
        "the browser to land on /threads/N",
        DEADLINE,
        || async move { b.url().await.ok()?.strip_prefix(threads)?.parse().ok() },
    )
    .await;
    let thread_url = node.at(&format!("/threads/{thread}"));
    let op = b.wait_for("the opening post", "article.post.op").await;
    let op_id = b.attr(&op, "id").await?.context("the OP has an id")?;
    let in_op = |css: &str| format!("article[id=\"{op_id}\"] {css}");
    assert_eq!(b.text(&b.find(&in_op(".subject")).await?).await?, SUBJECT);
    assert_eq!(
        b.text(&b.find(&in_op(".post-body span.greentext")).await?)
            .await?,
        ">be me"
    );
    assert_eq!(
        b.text(&b.find(&in_op(".post-body strong")).await?).await?,
        "bold"
    );
    let spoiler = b.find(&in_op(".post-body span.spoiler")).await?;
    assert_eq!(b.text(&spoiler).await?, "the ending");
    let hidden = b
        .script(
            "const s = getComputedStyle(arguments[0]); return s.color === s.backgroundColor;",
            &[spoiler.json()],
        )
        .await?;
    assert_eq!(
        hidden,
        json!(true),
        "a spoiler is unreadable until revealed"
    );

    let img = b.find(&in_op("img.thumb")).await?;
    let src = b.attr(&img, "src").await?.unwrap_or_default();
    assert!(src.starts_with("/upload/thumb/"), "thumbnail src {src:?}");
    let img_json = img.json();
    let img_json = &img_json;
    let natural_width = eventually("the thumbnail to finish loading", DEADLINE, || async move {
        let js = "const i = arguments[0]; return i.complete ? i.naturalWidth : null;";
        b.script(js, std::slice::from_ref(img_json))
            .await
            .ok()?
            .as_u64()
    })
    .await;
    assert!(
        natural_width > 0 && natural_width <= 500,
        "the thumbnail decoded in Chromium, at most 500 px wide: {natural_width}"
    );

    // 3. Quote the OP the way a user does, by clicking its "No.", and reply.
    b.click(&b.find(&in_op("a.post-no")).await?).await?;
    let reply_box = b.find("#reply textarea[name=body]").await?;
    assert_eq!(
        b.script("return arguments[0].value;", &[reply_box.json()])
            .await?,
        json!(format!(">>{op_id}\n")),
        "clicking No. quotes the post in the reply form"
    );
    b.type_text(&reply_box, REPLY).await?;
    b.click(&b.find("#reply button[type=submit]").await?)
        .await?;
    let anchor = format!("{thread_url}#");
    let anchor = anchor.as_str();
    let reply_id: u64 = eventually("the redirect to /threads/N#post", DEADLINE, || async move {
        b.url().await.ok()?.strip_prefix(anchor)?.parse().ok()
    })
    .await;
    let reply = format!("article.post.reply[id=\"{reply_id}\"]");
    b.wait_for("the reply on the thread page", &reply).await;
    assert!(
        b.text(&b.find(&format!("{reply} .post-body")).await?)
            .await?
            .contains(REPLY),
        "the reply's text"
    );
    let quote = b.find(&format!("{reply} .post-body a.post-reply")).await?;
    assert_eq!(
        b.attr(&quote, "href").await?.as_deref(),
        Some(format!("/threads/{thread}#{op_id}").as_str()),
        "the quote links to the OP"
    );
    let back = b.find(&in_op("footer.post-replies a.post-reply")).await?;
    assert_eq!(
        b.attr(&back, "href").await?.as_deref(),
        Some(format!("/threads/{thread}#{reply_id}").as_str()),
        "the OP's Replies line links to the reply"
    );
    assert_eq!(b.text(&back).await?, format!(">>{reply_id}"));

    // 4. A screenshot to look at when this fails, or when the pages change.
    b.script("window.scrollTo(0, 0);", &[]).await?;
    let shot = artifacts()?.join("browser-thread.png");
    std::fs::write(&shot, b.screenshot().await?)
        .with_context(|| format!("writing {}", shot.display()))?;
    println!("screenshot: {}", shot.display());

    // 5. The theme picker sets a cookie every page then follows.
    b.goto(&node.at("/themes")).await?;
    b.click(&b.find("input[name=theme][value=wildride]").await?)
        .await?;
    b.click(&b.find("form.theme-form button[type=submit]").await?)
        .await?;
    // The answer redirects back to /themes, so the URL does not change:
    // wait for the page that links the new stylesheet instead.
    let wildride = "link[rel=stylesheet][href=\"/static/themes/wildride.css\"]";
    b.wait_for("/themes to come back in wildride", wildride)
        .await;
    b.goto(&thread_url).await?;
    b.find(wildride)
        .await
        .context("the thread page links the wildride stylesheet")?;
    assert!(
        b.find("link[href=\"/static/themes/stock.css\"]")
            .await
            .is_err(),
        "and no longer the stock one"
    );

    // 6. Everything above ran under the pages' Content-Security-Policy and
    // the policy refused nothing of ours; markup that got through (here put
    // in by hand) could not run a script.
    let refused: Vec<String> = b
        .console()
        .await?
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    assert!(
        refused.is_empty(),
        "the policy refused the pages' own: {refused:?}"
    );
    let injected = b
        .script(
            "return new Promise(done => {
                const img = document.createElement('div');
                img.innerHTML = '<img src=\"/nothing-here\" onerror=\"window.__injected = 1\">';
                const el = img.firstChild;
                el.addEventListener('error', () => setTimeout(() => done(window.__injected || 0), 50));
                document.body.appendChild(el);
            });",
            &[],
        )
        .await?;
    assert_eq!(injected, json!(0), "an injected inline handler ran");
    let refused = b.console().await?;
    assert!(
        refused
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "the policy reported the injected handler: {refused:?}"
    );

    println!("browser test took {:?}", started.elapsed());
    node.stop().await;
    Ok(())
}

/// Creates a thread through the JSON API: (thread, opening post).
async fn api_thread(node: &TestNode, subject: &str) -> anyhow::Result<(i64, i64)> {
    let res = node
        .client()
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", subject), ("body", "watch this")],
            Some(("a.png", png(64, 48, false))),
        ))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "new thread: {}", res.status());
    let v: Value = res.json().await?;
    Ok((
        v["id"].as_i64().context("thread id")?,
        v["post"]["id"].as_i64().context("post id")?,
    ))
}

/// Replies through the JSON API from another address; the new post's id.
async fn api_reply(node: &TestNode, thread: i64, body: &str) -> anyhow::Result<i64> {
    let res = node
        .client_from("127.0.0.2")
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(&[("body", body)], None))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "reply: {}", res.status());
    let v: Value = res.json().await?;
    v["id"].as_i64().context("post id")
}

/// Someone else posts while a reader has the thread open: the post appears
/// on the reader's page without a reload, exactly as a reload shows it, and
/// the quoted post's Replies line gains it; a catalog shows a new thread the
/// same way. A node that serves no live stream is followed by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_pages_show_new_posts_and_threads_without_reloading() -> anyhow::Result<()> {
    let Some(browser) = Browser::launch().await? else {
        println!("browser tests skipped: install chromium and chromium-driver");
        return Ok(());
    };
    let b = &browser;
    let node = TestNode::start(Db::Sqlite, |_| {})
        .await
        .context("a SQLite node always starts")?;
    let (thread, op) = api_thread(&node, "Watched live").await?;
    let thread_url = node.at(&format!("/threads/{thread}"));
    b.goto(&thread_url).await?;
    b.wait_for(
        "the thread page to open its live stream",
        "div.thread[data-following=live]",
    )
    .await;
    // A reload would lose this.
    b.script("window.notReloaded = true;", &[]).await?;

    let reply = api_reply(&node, thread, &format!(">>{op}\nlive from the API")).await?;
    let css = format!("div.thread > article.post.reply[id=\"{reply}\"]");
    b.wait_for("the reply to appear on the open page", &css)
        .await;
    assert_eq!(
        b.script("return window.notReloaded === true;", &[]).await?,
        json!(true),
        "the page was not reloaded"
    );
    let backlink = format!("article[id=\"{op}\"] footer.post-replies a.post-reply");
    let backlink = backlink.as_str();
    let text = eventually(
        "the OP's Replies line to gain the reply",
        DEADLINE,
        || async move {
            let el = b.find(backlink).await.ok()?;
            b.text(&el).await.ok()
        },
    )
    .await;
    assert_eq!(text, format!(">>{reply}"));
    assert_eq!(
        b.text(&b.find(".thread-counts").await?).await?,
        "1 reply · 1 image",
        "the thread's counts follow"
    );
    let outer = "return document.getElementById(arguments[0]).outerHTML;";
    let live_html = b.script(outer, &[json!(reply.to_string())]).await?;
    b.script("window.scrollTo(0, document.body.scrollHeight);", &[])
        .await?;
    let shot = artifacts()?.join("browser-live.png");
    std::fs::write(&shot, b.screenshot().await?)
        .with_context(|| format!("writing {}", shot.display()))?;
    println!("screenshot: {}", shot.display());
    b.goto(&thread_url).await?;
    b.wait_for("the reloaded page", &css).await;
    assert_eq!(
        b.script(outer, &[json!(reply.to_string())]).await?,
        live_html,
        "the appended post is what a reload shows"
    );

    // The catalog takes new threads in.
    b.goto(&node.at("/boards/b")).await?;
    b.wait_for(
        "the catalog to open its live stream",
        "section.catalog-live[data-following=live]",
    )
    .await;
    b.script("window.notReloaded = true;", &[]).await?;
    let (fresh, _) = api_thread(&node, "Fresh thread").await?;
    b.wait_for(
        "the new thread's tile in the open catalog",
        &format!("article.tile[data-thread=\"{fresh}\"]"),
    )
    .await;
    assert_eq!(
        b.script("return window.notReloaded === true;", &[]).await?,
        json!(true)
    );
    node.stop().await;

    // Without a live stream (a node without the live role answers 421),
    // the page polls with If-None-Match and still shows the reply.
    let node = TestNode::start(Db::Sqlite, |c| c.node.roles.retain(|r| r != "live"))
        .await
        .context("a SQLite node always starts")?;
    let (thread, _) = api_thread(&node, "Polled").await?;
    b.goto(&node.at(&format!("/threads/{thread}"))).await?;
    b.wait_for(
        "the page to fall back to polling",
        "div.thread[data-following=polling]",
    )
    .await;
    b.script("window.notReloaded = true;", &[]).await?;
    let reply = api_reply(&node, thread, "seen by polling").await?;
    b.wait_for(
        "the reply to appear through polling",
        &format!("article.post.reply[id=\"{reply}\"]"),
    )
    .await;
    assert_eq!(
        b.script("return window.notReloaded === true;", &[]).await?,
        json!(true)
    );
    node.stop().await;
    Ok(())
}

/// `target/test-artifacts` of the workspace, created if missing.
fn artifacts() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/test-artifacts"
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    dir.canonicalize()
        .context("resolving target/test-artifacts")
}

/// `/usr/bin/{name}`, else `name` on the PATH.
fn installed(name: &str) -> Option<PathBuf> {
    let usual = Path::new("/usr/bin").join(name);
    if usual.is_file() {
        return Some(usual);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A WebDriver element reference.
struct Element(String);

impl Element {
    /// The element as a script argument.
    fn json(&self) -> Value {
        json!({ ELEMENT: self.0 })
    }
}

/// One Chromium session through its chromedriver. Dropped — also while a
/// failing test unwinds — it ends the session, which quits Chromium, then
/// stops chromedriver.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:{port}/session/{id}`.
    session: String,
    session_id: String,
    /// Chromium's main process, killed on drop if ending the session failed.
    chromium_pid: Option<libc::pid_t>,
    // Fields drop in order: chromedriver is stopped after `Drop::drop` ended
    // the session, and the profile is removed once Chromium is gone.
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` when
    /// either is not installed.
    async fn launch() -> anyhow::Result<Option<Browser>> {
        let (Some(chromedriver), Some(chromium)) =
            (installed("chromedriver"), installed("chromium"))
        else {
            return Ok(None);
        };
        let driver = Driver::start(&chromedriver)?;
        let http = reqwest::Client::builder()
            // A wedged chromedriver fails the test instead of hanging it.
            .timeout(Duration::from_secs(60))
            .build()
            .context("WebDriver client")?;
        let base = format!("http://127.0.0.1:{}", driver.port);
        let status = format!("{base}/status");
        let (http_ref, status) = (&http, status.as_str());
        eventually(
            "chromedriver to answer /status with ready: true",
            DEADLINE,
            || async move {
                let res = http_ref.get(status).send().await.ok()?;
                let body: Value = res.json().await.ok()?;
                body["value"]["ready"].as_bool().filter(|ready| *ready)
            },
        )
        .await;

        let profile = tempfile::tempdir().context("Chromium profile dir")?;
        let args = [
            "--headless=new".to_string(),
            // Root in a container has no user namespaces for the sandbox.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            // The console, to see what the Content-Security-Policy refused.
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let res = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .context("creating a WebDriver session")?;
        let body: Value = res.json().await.context("session answer")?;
        let Some(session_id) = body["value"]["sessionId"].as_str() else {
            bail!("chromedriver refused a session: {}", body["value"]);
        };
        let chromium_pid = body["value"]["capabilities"]["goog:processID"]
            .as_i64()
            .and_then(|pid| libc::pid_t::try_from(pid).ok());
        Ok(Some(Browser {
            http,
            session: format!("{base}/session/{session_id}"),
            session_id: session_id.to_string(),
            chromium_pid,
            driver,
            _profile: profile,
        }))
    }

    /// One command; the answer's `value`, or its WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if method == reqwest::Method::POST {
            req = req.json(&body);
        }
        let res = req.send().await.with_context(|| what.clone())?;
        let status = res.status();
        let mut answer: Value = res.json().await.with_context(|| what.clone())?;
        let value = answer["value"].take();
        if !status.is_success() {
            bail!("{what}: {status} {} — {}", value["error"], value["message"]);
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::GET, path, Value::Null).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::POST, path, body).await
    }

    /// Navigates and waits for the page to load.
    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    async fn url(&self) -> anyhow::Result<String> {
        let url = self.get("/url").await?;
        url.as_str().map(str::to_string).context("URL is a string")
    }

    /// The first element matching `css`, or an error at once.
    async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let found = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await
            .with_context(|| format!("finding {css}"))?;
        let id = found[ELEMENT].as_str().context("element reference")?;
        Ok(Element(id.to_string()))
    }

    /// The first element matching `css`, polled for until `DEADLINE`.
    async fn wait_for(&self, what: &str, css: &str) -> Element {
        eventually(what, DEADLINE, || async move { self.find(css).await.ok() }).await
    }

    async fn click(&self, el: &Element) -> anyhow::Result<()> {
        let path = format!("/element/{}/click", el.0);
        self.post(&path, json!({})).await.map(drop)
    }

    /// Types into a field (appending), or gives a file input its path.
    async fn type_text(&self, el: &Element, text: &str) -> anyhow::Result<()> {
        let path = format!("/element/{}/value", el.0);
        self.post(&path, json!({ "text": text })).await.map(drop)
    }

    async fn attr(&self, el: &Element, name: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .get(&format!("/element/{}/attribute/{name}", el.0))
            .await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// The element's text as rendered.
    async fn text(&self, el: &Element) -> anyhow::Result<String> {
        let value = self.get(&format!("/element/{}/text", el.0)).await?;
        value
            .as_str()
            .map(str::to_string)
            .context("text is a string")
    }

    /// The browser console's entries since the last call (messages only).
    async fn console(&self) -> anyhow::Result<Vec<String>> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await?;
        Ok(entries
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs `js` as a function body with `args` as `arguments`.
    async fn script(&self, js: &str, args: &[Value]) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({ "script": js, "args": args }))
            .await
    }

    /// The viewport as PNG bytes.
    async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let encoded = self.get("/screenshot").await?;
        let png = base64(encoded.as_str().context("screenshot is a string")?)?;
        if !png.starts_with(b"\x89PNG") {
            bail!("the screenshot is not a PNG");
        }
        Ok(png)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.end_session() {
            if let Some(pid) = self.chromium_pid {
                // Its renderers and helpers exit with it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Browser {
    /// Ends the session, which quits Chromium; whether chromedriver said so.
    /// Drop cannot await, hence a blocking HTTP/1.1 request by hand.
    fn end_session(&self) -> bool {
        let port = self.driver.port;
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n",
            self.session_id
        );
        if conn.write_all(request.as_bytes()).is_err() {
            return false;
        }
        // chromedriver answers once Chromium has quit, and keeps the
        // connection open afterwards: the end of the headers is the signal.
        let (mut answer, mut chunk) = (Vec::new(), [0u8; 512]);
        while let Ok(n @ 1..) = conn.read(&mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                return answer.starts_with(b"HTTP/1.1 200");
            }
        }
        false
    }
}

/// A chromedriver child, killed on drop. It stays in the test's process
/// group, so Ctrl-C on `cargo test` ends it (and Chromium) too.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(chromedriver: &Path) -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("a free port")?
            .port();
        let log_path = artifacts()?.join("chromedriver.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().context("log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        Ok(Driver { child, port })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes standard base64 (the screenshot); small enough not to need a crate.
fn base64(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("{:?} is not base64", c as char),
        };
        // Bits shifted out of `acc` were already emitted.
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
