//! `wani import maniwani`: brings a Maniwani site into wani.
//!
//! Boards, slips (with their password hashes: the login accepts Werkzeug's
//! and re-hashes with argon2 on the first success), tags, threads and posts
//! with their ids kept, so `>>N` links and `/threads/N` keep working. Each
//! file goes through the upload pipeline (typed from its bytes, metadata
//! stripped, deduplicated, thumbnailed again); a missing or unreadable file
//! is reported with its post and the post imported without it.
//!
//! A run is planned before anything is written: a board name wani already
//! has, or a post or thread id wani uses for its own, stops it with what to
//! do. Threads are then written in batches, each thread whole in one
//! transaction, so a second run (or one after an interruption) imports
//! only what is missing. `--dry-run` reads and checks everything, files
//! included, and writes nothing.

pub mod maniwani;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use futures::StreamExt as _;
use wani_store::{
    import_key, Author, Board, BoardId, BoardSettings, ImportPost, ImportTag, ImportThread,
    NewMedia, PostId, Repo as _, Store, StoreOptions, ThreadId,
};
use wani_supervision::transport::Transport;
use wani_supervision::tree::Tree;
use wani_supervision::NodeName;

use crate::config::Config;
use crate::http::upload::{store_media, MediaPipe};
use crate::progress::Progress;

/// The source name imported rows are marked with.
const SOURCE: &str = "maniwani";
/// Longest body wani stores, in characters.
const MAX_BODY_CHARS: usize = 4096;
/// Every type wani's pipeline takes; an imported board accepts those of
/// Maniwani's list among them.
const WANI_TYPES: [&str; 6] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/webm",
    "video/mp4",
];

#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {
    /// Import a Maniwani site: its database and its upload folder.
    Maniwani(ManiwaniArgs),
}

#[derive(clap::Args, Debug)]
pub struct ManiwaniArgs {
    /// Maniwani's database: sqlite:///path/to/maniwani.db or
    /// postgres://user@host/db.
    #[arg(long)]
    pub from: String,
    /// Maniwani's upload folder (UPLOAD_FOLDER: `<media id>.<ext>` files).
    #[arg(long)]
    pub media: PathBuf,
    /// Read and check everything, files included; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import Maniwani's board OLD as NEW (for a name wani already has).
    /// Repeatable.
    #[arg(long = "rename", value_name = "OLD=NEW", value_parser = parse_rename)]
    pub rename: Vec<(String, String)>,
    /// Threads written per transaction.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// A running node to tell about the import, so boards and threads its
    /// cluster has loaded already are read again (node.listen of the config
    /// by default). Nodes that are not running read everything when they
    /// start.
    #[arg(long, value_name = "HOST:PORT")]
    pub node: Option<String>,
}

fn parse_rename(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((old, new)) if !old.trim().is_empty() && !new.trim().is_empty() => {
            Ok((old.trim().to_string(), new.trim().to_string()))
        }
        _ => Err(format!("expected OLD=NEW, got {s:?}")),
    }
}

/// Counts of one stage of the report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub boards: Counts,
    pub slips: Counts,
    pub threads: Counts,
    pub posts: Counts,
    pub media: Counts,
    /// One line per skipped or failed row, naming it and why.
    pub notes: Vec<String>,
}

impl Report {
    fn print(&self, dry_run: bool) {
        let verb = if dry_run { "would import" } else { "imported" };
        println!(
            "\nimport report{}",
            if dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        println!("  {:<8} {:>12} {:>8} {:>8}", "", verb, "skipped", "failed");
        for (name, c) in [
            ("boards", self.boards),
            ("slips", self.slips),
            ("threads", self.threads),
            ("posts", self.posts),
            ("media", self.media),
        ] {
            println!(
                "  {:<8} {:>12} {:>8} {:>8}",
                name, c.imported, c.skipped, c.failed
            );
        }
        if !self.notes.is_empty() {
            println!("skipped or failed:");
            for n in &self.notes {
                println!("  {n}");
            }
        }
    }
}

/// Runs `wani import …` against the database and blobs of `config`.
pub async fn run(config: Config, cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Maniwani(args) = cmd;
    let report = import_maniwani(&config, &args).await?;
    report.print(args.dry_run);
    Ok(())
}

/// The import itself; the report it prints.
pub async fn import_maniwani(config: &Config, args: &ManiwaniArgs) -> anyhow::Result<Report> {
    if !args.media.is_dir() {
        bail!(
            "--media {}: not a folder (give Maniwani's UPLOAD_FOLDER)",
            args.media.display()
        );
    }
    let source = maniwani::connect(&args.from).await?;
    let site = maniwani::read(&source).await;
    source.close().await;
    let site = site?;
    eprintln!(
        "read {} boards, {} threads, {} posts, {} files from {}",
        site.boards.len(),
        site.threads.len(),
        site.posts.len(),
        site.media.len(),
        args.from
    );
    let store = if args.dry_run {
        // No migration either: a dry run writes nothing at all.
        Store::connect(StoreOptions::new(config.database.url.clone()))
            .await
            .with_context(|| format!("opening the database {}", config.database.url))?
    } else {
        crate::node::open_store(config).await?
    };
    let result = Importer::new(config, &store, &site, args).await;
    let result = match result {
        Ok(mut importer) => match importer.run().await {
            Ok(()) => {
                if !args.dry_run {
                    importer.tell_node().await;
                }
                Ok(importer.report)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    store.close().await;
    result
}

/// Where each Maniwani board goes.
#[derive(Debug, Clone)]
enum BoardPlan {
    /// Imported by an earlier run.
    Done(BoardId),
    /// To create, under this name.
    New(String),
}

struct Importer<'a> {
    config: &'a Config,
    store: &'a Store,
    site: &'a maniwani::Site,
    args: &'a ManiwaniArgs,
    boards: Vec<(&'a maniwani::Board, BoardPlan)>,
    /// Maniwani slip id → wani slip (id, name, capcode).
    slips: HashMap<i64, (i64, String, Option<&'static str>)>,
    /// Posts already in wani from an earlier run.
    done_posts: HashSet<i64>,
    /// wani ids of the boards imported into, and of the threads an earlier
    /// run imported that got posts now: what a running node must reload.
    touched_boards: Vec<i64>,
    extended_threads: Vec<i64>,
    report: Report,
}

impl<'a> Importer<'a> {
    /// Reads what wani has and checks the site fits beside it.
    async fn new(
        config: &'a Config,
        store: &'a Store,
        site: &'a maniwani::Site,
        args: &'a ManiwaniArgs,
    ) -> anyhow::Result<Importer<'a>> {
        // A dry run against a database never migrated reads it as empty.
        let empty = args.dry_run && store.boards().await.is_err();
        let mapped = match empty {
            true => HashMap::new(),
            false => store.import_map(SOURCE, "board").await.unwrap_or_default(),
        };
        let renames: HashMap<&str, &str> = args
            .rename
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        for old in renames.keys() {
            if !site.boards.iter().any(|b| b.name == *old) {
                bail!("--rename {old}=…: Maniwani has no board named {old:?}");
            }
        }
        let mut problems = Vec::new();
        let mut boards = Vec::new();
        let mut names = HashSet::new();
        for b in &site.boards {
            if let Some(&id) = mapped.get(&b.id) {
                boards.push((b, BoardPlan::Done(BoardId(id))));
                continue;
            }
            let name = renames.get(b.name.as_str()).copied().unwrap_or(&b.name);
            if let Err(e) = wani_store::check_board_name(name) {
                problems.push(format!(
                    "Maniwani's board {:?} cannot keep that name in wani ({e}): import it \
                     as another with --rename {}=<new name>",
                    b.name, b.name
                ));
            } else if !names.insert(name.to_string()) {
                problems.push(format!(
                    "two Maniwani boards would both be /{name}/: rename one with --rename"
                ));
            } else if !empty && store.board_by_name(name).await?.is_some() {
                problems.push(format!(
                    "wani already has a board /{name}/: import Maniwani's as another name \
                     with --rename {}=<new name>",
                    b.name
                ));
            }
            boards.push((b, BoardPlan::New(name.to_string())));
        }
        let ours: HashSet<i64> = boards
            .iter()
            .filter_map(|(_, p)| match p {
                BoardPlan::Done(id) => Some(id.0),
                BoardPlan::New(_) => None,
            })
            .collect();
        let mut done_posts = HashSet::new();
        if let (false, Some(lo), Some(hi)) = (
            empty,
            site.posts.iter().map(|p| p.id).min(),
            site.posts.iter().map(|p| p.id).max(),
        ) {
            let source_ids: HashSet<i64> = site.posts.iter().map(|p| p.id).collect();
            let mut clashes = Vec::new();
            for (id, key) in store.post_keys_between(lo, hi).await? {
                if key == import_key(SOURCE, id) {
                    done_posts.insert(id.0);
                } else if source_ids.contains(&id.0) {
                    clashes.push(id.0);
                }
            }
            if !clashes.is_empty() {
                problems.push(format!(
                    "wani has posts of its own with ids Maniwani's posts keep ({} of them, \
                     e.g. {}): import into a wani whose posts are numbered apart from \
                     Maniwani's (an empty one)",
                    clashes.len(),
                    clashes[0]
                ));
            }
        }
        if let (false, Some(lo), Some(hi)) = (
            empty,
            site.threads.first().map(|t| t.id),
            site.threads.last().map(|t| t.id),
        ) {
            let source_ids: HashSet<i64> = site.threads.iter().map(|t| t.id).collect();
            let clashes: Vec<i64> = store
                .thread_boards_between(lo, hi)
                .await?
                .into_iter()
                .filter(|(id, board)| source_ids.contains(&id.0) && !ours.contains(&board.0))
                .map(|(id, _)| id.0)
                .collect();
            if !clashes.is_empty() {
                problems.push(format!(
                    "wani has threads of its own with ids Maniwani's threads keep ({} of \
                     them, e.g. {}): import into a wani whose threads are numbered apart \
                     from Maniwani's (an empty one)",
                    clashes.len(),
                    clashes[0]
                ));
            }
        }
        if !problems.is_empty() {
            bail!("nothing was imported:\n  {}", problems.join("\n  "));
        }
        Ok(Importer {
            config,
            store,
            site,
            args,
            boards,
            slips: HashMap::new(),
            done_posts,
            touched_boards: Vec::new(),
            extended_threads: Vec::new(),
            report: Report::default(),
        })
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let dry = self.args.dry_run;
        if !dry {
            // Before any thread: a node posting meanwhile takes ids above
            // every id this import keeps.
            if let Some(hi) = self.site.threads.iter().map(|t| t.id).max() {
                self.store.reserve_ids("thread", hi).await?;
            }
            if let Some(hi) = self.site.posts.iter().map(|p| p.id).max() {
                self.store.reserve_ids("post", hi).await?;
            }
        }
        let board_ids = self.import_boards().await?;
        self.import_slips().await?;
        self.import_threads(&board_ids).await
    }

    async fn import_boards(&mut self) -> anyhow::Result<HashMap<i64, Board>> {
        let mut progress = Progress::new("boards", self.boards.len() as u64);
        let mut out = HashMap::new();
        for (b, plan) in self.boards.clone() {
            let settings = BoardSettings {
                name: match &plan {
                    BoardPlan::New(n) => n.clone(),
                    BoardPlan::Done(_) => b.name.clone(),
                },
                title: b.name.clone(),
                rules: b.rules.clone(),
                max_threads: b.max_threads.filter(|&n| n > 0).unwrap_or(50),
                mimetypes: {
                    let types: Vec<String> = WANI_TYPES
                        .iter()
                        .filter(|t| b.mimetypes.iter().any(|m| m == *t))
                        .map(|t| t.to_string())
                        .collect();
                    if types.is_empty() {
                        wani_store::DEFAULT_MIMETYPES
                            .iter()
                            .map(|t| t.to_string())
                            .collect()
                    } else {
                        types
                    }
                },
                ..BoardSettings::default()
            };
            let board = match (plan, self.args.dry_run) {
                (BoardPlan::Done(id), _) => {
                    self.report.boards.skipped += 1;
                    self.store
                        .board(id)
                        .await?
                        .with_context(|| format!("board {id}, imported before, is gone"))?
                }
                (BoardPlan::New(_), true) => {
                    self.report.boards.imported += 1;
                    Board::new(BoardId(b.id), settings)
                }
                (BoardPlan::New(name), false) => {
                    let board = self
                        .store
                        .import_board(SOURCE, b.id, b.id, settings)
                        .await
                        .with_context(|| format!("creating board /{name}/"))?;
                    self.report.boards.imported += 1;
                    board
                }
            };
            self.touched_boards.push(board.id.0);
            out.insert(b.id, board);
            progress.add(1);
        }
        progress.finish();
        Ok(out)
    }

    async fn import_slips(&mut self) -> anyhow::Result<()> {
        let mapped = match self.args.dry_run {
            true => self
                .store
                .import_map(SOURCE, "slip")
                .await
                .unwrap_or_default(),
            false => self.store.import_map(SOURCE, "slip").await?,
        };
        let mut progress = Progress::new("slips", self.site.slips.len() as u64);
        for s in &self.site.slips {
            let capcode = if s.is_admin {
                Some("Admin")
            } else if s.is_mod {
                Some("Mod")
            } else {
                None
            };
            progress.add(1);
            if let Some(&id) = mapped.get(&s.id) {
                self.report.slips.skipped += 1;
                self.slips.insert(s.id, (id, s.name.clone(), capcode));
                continue;
            }
            if self.args.dry_run {
                self.report.slips.imported += 1;
                continue;
            }
            match self
                .store
                .import_slip(SOURCE, s.id, &s.name, &s.pass_hash, s.is_admin, s.is_mod)
                .await
            {
                Ok(id) => {
                    self.report.slips.imported += 1;
                    self.slips.insert(s.id, (id, s.name.clone(), capcode));
                }
                Err(e) => {
                    self.report.slips.failed += 1;
                    self.report.notes.push(format!(
                        "slip {} ({:?}): {e}; its posts show no name",
                        s.id, s.name
                    ));
                }
            }
        }
        progress.finish();
        Ok(())
    }

    async fn import_threads(&mut self, boards: &HashMap<i64, Board>) -> anyhow::Result<()> {
        let site = self.site;
        let thread_of: HashMap<i64, i64> = site.posts.iter().map(|p| (p.id, p.thread)).collect();
        let mut by_thread: HashMap<i64, Vec<&maniwani::Post>> = HashMap::new();
        for p in &site.posts {
            by_thread.entry(p.thread).or_default().push(p);
        }
        let known: HashSet<i64> = site.threads.iter().map(|t| t.id).collect();
        for p in site.posts.iter().filter(|p| !known.contains(&p.thread)) {
            self.report.posts.failed += 1;
            self.report.notes.push(format!(
                "post {}: its thread {} does not exist",
                p.id, p.thread
            ));
        }
        let with_media = site.posts.iter().filter(|p| p.media.is_some()).count() as u64;
        let mut threads_bar = Progress::new("threads", site.threads.len() as u64);
        let mut posts_bar = Progress::new("posts", site.posts.len() as u64);
        let mut media_bar = Progress::new("media", with_media);

        // A pipeline of the node's own kind, local to this process.
        let tree = Tree::start(self.config.supervision.budget())
            .await
            .map_err(anyhow::Error::msg)?;
        let transport = Transport::single(NodeName(format!("{}-import", self.config.node.name)));
        let blobs = crate::node::open_blobs(self.config, self.store).await?;
        let thumbnailer =
            crate::node::start_thumbnailer(self.config, transport, true, blobs.clone()).await;
        if let Some(child) = thumbnailer.child() {
            tree.add(child).await.map_err(anyhow::Error::msg)?;
        }
        let pipe = MediaPipe {
            store: self.store,
            blobs: &blobs,
            thumbnailer: &thumbnailer,
            config: &self.config.media,
        };
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            * 2;

        let result = async {
            for chunk in site.threads.chunks(self.args.batch.max(1)) {
                let mut batch = Vec::new();
                let mut files = Vec::new();
                for t in chunk {
                    let posts = by_thread.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
                    let Some(board) = boards.get(&t.board) else {
                        self.report.threads.failed += 1;
                        self.report.posts.failed += posts.len() as u64;
                        self.report.notes.push(format!(
                            "thread {}: its board {} does not exist",
                            t.id, t.board
                        ));
                        continue;
                    };
                    let Some(op) = posts.first() else {
                        self.report.threads.skipped += 1;
                        self.report
                            .notes
                            .push(format!("thread {}: it has no posts", t.id));
                        continue;
                    };
                    let todo: Vec<&maniwani::Post> = posts
                        .iter()
                        .copied()
                        .filter(|p| !self.done_posts.contains(&p.id))
                        .collect();
                    self.report.posts.skipped += (posts.len() - todo.len()) as u64;
                    posts_bar.add((posts.len() - todo.len()) as u64);
                    if todo.is_empty() {
                        self.report.threads.skipped += 1;
                        threads_bar.add(1);
                        continue;
                    }
                    if todo.len() < posts.len() {
                        self.extended_threads.push(t.id);
                    }
                    for p in &todo {
                        if let Some(m) = p.media {
                            files.push((p.id, m, board.clone()));
                        }
                    }
                    batch.push((t, board.id, *op, todo));
                }
                let stored = self
                    .store_files(&pipe, files, parallel, &mut media_bar)
                    .await;
                let mut threads = Vec::new();
                for (t, board, op, todo) in batch {
                    let mut posts = Vec::new();
                    for p in todo {
                        if p.body.chars().count() > MAX_BODY_CHARS {
                            self.report.posts.failed += 1;
                            self.report.notes.push(format!(
                                "post {}: its body is longer than wani's {MAX_BODY_CHARS} \
                                 characters",
                                p.id
                            ));
                            continue;
                        }
                        posts.push(self.post(p, &thread_of, stored.get(&p.id).cloned()));
                    }
                    let last = posts
                        .iter()
                        .map(|p| p.datetime)
                        .max()
                        .unwrap_or(op.datetime);
                    threads.push(ImportThread {
                        id: ThreadId(t.id),
                        board,
                        subject: op.subject.clone().filter(|s| !s.is_empty()),
                        tags: t
                            .tags
                            .iter()
                            .filter_map(|id| site.tags.get(id))
                            .map(|tag| ImportTag {
                                name: tag.name.clone(),
                                bg_style: tag.bg_style.clone(),
                                text_style: tag.text_style.clone(),
                            })
                            .collect(),
                        created: op.datetime,
                        last_updated: t.last_updated.unwrap_or(last).max(last),
                        views: t.views,
                        posts,
                    });
                }
                self.write(&threads, &mut threads_bar, &mut posts_bar).await;
            }
            anyhow::Ok(())
        }
        .await;
        threads_bar.finish();
        posts_bar.finish();
        media_bar.finish();
        tree.shutdown().await;
        result
    }

    /// Asks a running node to reload what this run wrote behind its actors'
    /// backs. No node running is fine: one started later reads the database.
    async fn tell_node(&mut self) {
        let addr = match &self.args.node {
            Some(a) => a.clone(),
            None => match self.config.local_node() {
                Ok(a) => a,
                Err(_) => return,
            },
        };
        let cookie = match crate::drain::is_loopback(&addr).await {
            true => None,
            false => self
                .config
                .cluster
                .runtime(&self.config.node)
                .ok()
                .map(|r| r.cookie),
        };
        let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // Threads in slices, so no request line grows past what a server reads.
        let mut paths = vec![format!(
            "/api/v1/admin/reload?boards={}",
            list(&self.touched_boards)
        )];
        for chunk in self.extended_threads.chunks(500) {
            paths.push(format!("/api/v1/admin/reload?threads={}", list(chunk)));
        }
        for path in paths {
            match crate::drain::request(&addr, "POST", &path, cookie.as_deref()).await {
                Ok((200, _)) => {}
                Ok((code, body)) => {
                    self.report.notes.push(format!(
                        "the node at {addr} did not reload what was imported ({code}: {}); \
                         restart it, or its cluster, to show every imported thread",
                        String::from_utf8_lossy(&body).trim()
                    ));
                    return;
                }
                Err(_) => {
                    eprintln!(
                        "no node answers at {addr}: nothing to reload (a node reads the \
                         imported site when it starts)"
                    );
                    return;
                }
            }
        }
        eprintln!("the node at {addr} reloaded the imported boards and threads");
    }

    /// Writes a batch; if it fails, each thread alone, reporting the ones
    /// that still fail.
    async fn write(
        &mut self,
        threads: &[ImportThread],
        threads_bar: &mut Progress,
        posts_bar: &mut Progress,
    ) {
        fn count(report: &mut Report, bars: (&mut Progress, &mut Progress), ts: &[ImportThread]) {
            let posts = ts.iter().map(|t| t.posts.len() as u64).sum::<u64>();
            report.threads.imported += ts.len() as u64;
            report.posts.imported += posts;
            bars.0.add(ts.len() as u64);
            bars.1.add(posts);
        }
        if self.args.dry_run {
            count(&mut self.report, (threads_bar, posts_bar), threads);
            return;
        }
        if self.store.import_threads(SOURCE, threads).await.is_ok() {
            count(&mut self.report, (threads_bar, posts_bar), threads);
            return;
        }
        for t in threads {
            match self
                .store
                .import_threads(SOURCE, std::slice::from_ref(t))
                .await
            {
                Ok(()) => count(
                    &mut self.report,
                    (threads_bar, posts_bar),
                    std::slice::from_ref(t),
                ),
                Err(e) => {
                    self.report.threads.failed += 1;
                    self.report.posts.failed += t.posts.len() as u64;
                    self.report
                        .notes
                        .push(format!("thread {}: not written: {e}", t.id));
                    threads_bar.add(1);
                    posts_bar.add(t.posts.len() as u64);
                }
            }
        }
    }

    fn post(
        &self,
        p: &maniwani::Post,
        thread_of: &HashMap<i64, i64>,
        media: Option<NewMedia>,
    ) -> ImportPost {
        let rendered = wani_actors::markup::render_full(&p.body, &|id: PostId| {
            thread_of.get(&id.0).map(|&t| ThreadId(t))
        });
        let poster = self.site.posters.get(&p.poster);
        let hex = poster
            .map(|q| q.hex.to_ascii_uppercase())
            .filter(|h| h.len() == 4 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .unwrap_or_else(|| format!("{:04X}", p.poster & 0xffff));
        let author = poster
            .and_then(|q| q.slip)
            .and_then(|s| self.slips.get(&s))
            .map(|(id, name, capcode)| Author {
                slip: Some(*id),
                name: Some(name.clone()),
                capcode: capcode.map(str::to_string),
            })
            .unwrap_or_default();
        ImportPost {
            id: PostId(p.id),
            body: p.body.clone(),
            body_html: rendered.html,
            subject: p.subject.clone().filter(|s| !s.is_empty()),
            datetime: p.datetime,
            poster: hex,
            ip: poster.map(|q| q.ip.clone()).unwrap_or_default(),
            media,
            spoiler: p.spoiler,
            quotes: rendered.quoted,
            author,
        }
    }

    /// Stores the files of a batch through the upload pipeline, several at
    /// once; a file that is missing or refused is reported and left out.
    async fn store_files(
        &mut self,
        pipe: &MediaPipe<'_>,
        files: Vec<(i64, i64, Board)>,
        parallel: usize,
        bar: &mut Progress,
    ) -> HashMap<i64, NewMedia> {
        let site = self.site;
        let folder = &self.args.media;
        let dry = self.args.dry_run;
        let results: Vec<(i64, Result<Option<NewMedia>, String>)> = futures::stream::iter(files)
            .map(|(post, media, board)| async move {
                let r = async {
                    let m = site
                        .media
                        .get(&media)
                        .ok_or_else(|| format!("media {media} is not in Maniwani's media table"))?;
                    let path = maniwani::media_path(folder, media, &m.ext).ok_or_else(|| {
                        format!(
                            "media {media}: the file {media}.{} is missing from {}",
                            m.ext,
                            folder.display()
                        )
                    })?;
                    let bytes = tokio::fs::read(&path)
                        .await
                        .map_err(|e| format!("media {media}: {}: {e}", path.display()))?;
                    let board = lenient(board, bytes.len());
                    let what = |e: crate::http::ApiError| {
                        format!("media {media} ({}.{}): {}", media, m.ext, e.message)
                    };
                    if dry {
                        let limits = crate::http::upload::board_limits(pipe, &board);
                        wani_media::precheck(&bytes, &limits).map_err(|e| {
                            what(crate::http::ApiError::from(wani_actors::ThumbError::Media(
                                e,
                            )))
                        })?;
                        return Ok(None);
                    }
                    store_media(pipe, &board, Bytes::from(bytes), Some(media.to_string()))
                        .await
                        .map(Some)
                        .map_err(what)
                }
                .await;
                (post, r)
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        let mut out = HashMap::new();
        for (post, r) in results {
            bar.add(1);
            match r {
                Ok(Some(m)) => {
                    self.report.media.imported += 1;
                    out.insert(post, m);
                }
                Ok(None) => self.report.media.imported += 1,
                Err(why) => {
                    self.report.media.failed += 1;
                    self.report.notes.push(format!(
                        "post {post}: {why}; the post is imported without it"
                    ));
                }
            }
        }
        out
    }
}

/// The board an imported file is held to: Maniwani took it already, so any
/// type wani's pipeline reads and any size are accepted; pixels, frames and
/// video length stay bounded as for an upload (they bound the work).
fn lenient(mut board: Board, size: usize) -> Board {
    board.mimetypes = WANI_TYPES.iter().map(|t| t.to_string()).collect();
    board.max_file_bytes = board.max_file_bytes.max(size as i64);
    board.no_reposts = false;
    board
}
