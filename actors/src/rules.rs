//! The imageboard's rules as plain functions: what a post may contain, when a
//! reply bumps, which threads a full board archives.
//!
//! Kept free of actors and I/O so they are tested directly; the actors
//! decode a message, call these, and act on the answer.

use crate::error::ActorError;
use wani_store::{ThreadId, ThreadSummary};

/// Longest post body, in characters (Maniwani's limit).
pub const MAX_BODY_CHARS: usize = 4096;
/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 64;
/// Most tags on a thread, and the longest tag.
pub const MAX_TAGS: usize = 8;
pub const MAX_TAG_CHARS: usize = 32;

/// A post body that passed the rules: at most 4096 characters, line endings
/// normalised to `\n`, trailing white space trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostBody(String);

impl PostBody {
    /// Checks and normalises a body as written.
    pub fn parse(raw: &str) -> Result<PostBody, ActorError> {
        let body = raw.replace("\r\n", "\n").replace('\r', "\n");
        let body = body.trim_end();
        let n = body.chars().count();
        if n > MAX_BODY_CHARS {
            return Err(ActorError::Invalid(format!(
                "the post is {n} characters long; at most {MAX_BODY_CHARS} are allowed"
            )));
        }
        Ok(PostBody(body.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

/// A subject: trimmed, at most 64 characters, `None` when empty.
pub fn parse_subject(raw: Option<&str>) -> Result<Option<String>, ActorError> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.chars().any(char::is_control) {
        return Err(ActorError::Invalid(
            "the subject may not contain control characters".into(),
        ));
    }
    let n = s.chars().count();
    if n > MAX_SUBJECT_CHARS {
        return Err(ActorError::Invalid(format!(
            "the subject is {n} characters long; at most {MAX_SUBJECT_CHARS} are allowed"
        )));
    }
    Ok(Some(s.to_string()))
}

/// Tags from a comma-separated field: trimmed, lower-cased, deduplicated.
pub fn parse_tags(raw: &str) -> Result<Vec<String>, ActorError> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
    {
        if t.chars().count() > MAX_TAG_CHARS || t.chars().any(char::is_control) {
            return Err(ActorError::Invalid(format!(
                "a tag may have at most {MAX_TAG_CHARS} characters and no control characters"
            )));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ActorError::Invalid(format!(
            "at most {MAX_TAGS} tags are allowed"
        )));
    }
    Ok(tags)
}

/// A reply must say something or carry a file.
pub fn check_reply_content(body: &PostBody, has_media: bool) -> Result<(), ActorError> {
    if body.is_empty() && !has_media {
        return Err(ActorError::Invalid(
            "a post needs a comment or a file".into(),
        ));
    }
    Ok(())
}

/// A new thread needs a file (Maniwani's rule and message).
pub fn check_thread_content(has_media: bool) -> Result<(), ActorError> {
    if !has_media {
        return Err(ActorError::Invalid(
            "A file is required to post a thread!".into(),
        ));
    }
    Ok(())
}

/// What decides whether a reply bumps its thread.
#[derive(Clone, Copy, Debug)]
pub struct BumpInput<'a> {
    /// Poster id of the thread's latest post.
    pub previous_poster: &'a str,
    /// Poster id of the new reply.
    pub poster: &'a str,
    pub sage: bool,
    /// Replies in the thread before this one.
    pub replies_before: i64,
    pub bump_limit: i64,
}

/// A reply bumps unless it is sage, the thread has reached the bump limit,
/// or the same poster wrote the previous post (self-bumping does not count).
pub fn bumps(i: BumpInput<'_>) -> bool {
    !i.sage && i.replies_before < i.bump_limit && i.previous_poster != i.poster
}

/// The threads to archive so a board holds at most `max_threads` live ones:
/// the least recently bumped first. `threads` is in bump order (newest first).
pub fn prune_victims(threads: &[ThreadSummary], max_threads: i64) -> Vec<ThreadId> {
    let keep = max_threads.max(1) as usize;
    threads.iter().skip(keep).map(|t| t.thread.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump(prev: &str, me: &str, sage: bool, before: i64, limit: i64) -> bool {
        bumps(BumpInput {
            previous_poster: prev,
            poster: me,
            sage,
            replies_before: before,
            bump_limit: limit,
        })
    }

    #[test]
    fn replies_bump_unless_sage_self_or_over_the_limit() {
        assert!(bump("aaaa", "bbbb", false, 0, 300));
        assert!(!bump("aaaa", "aaaa", false, 0, 300), "self-bump");
        assert!(!bump("aaaa", "bbbb", true, 0, 300), "sage");
        assert!(bump("aaaa", "bbbb", false, 299, 300));
        assert!(!bump("aaaa", "bbbb", false, 300, 300), "bump limit");
    }

    #[test]
    fn bodies_are_normalised_and_bounded() {
        assert_eq!(
            PostBody::parse("a\r\nb\rc  \n\n").unwrap().as_str(),
            "a\nb\nc"
        );
        assert!(
            PostBody::parse(&"é".repeat(4096)).is_ok(),
            "the limit counts characters, not bytes"
        );
        let err = PostBody::parse(&"x".repeat(4097)).unwrap_err();
        assert!(err.to_string().contains("4097"));
        assert!(PostBody::parse("  \n ").unwrap().is_empty());
    }

    #[test]
    fn subjects_and_tags() {
        assert_eq!(parse_subject(Some("  hi ")).unwrap(), Some("hi".into()));
        assert_eq!(parse_subject(Some("   ")).unwrap(), None);
        assert!(parse_subject(Some(&"s".repeat(65))).is_err());
        assert!(parse_subject(Some("a\u{7}b")).is_err());
        assert_eq!(
            parse_tags(" Rust, rust ,,anime").unwrap(),
            vec!["rust", "anime"]
        );
        assert!(parse_tags(&"t,".repeat(9).replace("t,", "a,b,c,d,e,f,g,h,i,")).is_err());
        assert!(parse_tags(&"x".repeat(33)).is_err());
    }

    #[test]
    fn threads_need_files_and_replies_need_content() {
        assert!(check_thread_content(false)
            .unwrap_err()
            .to_string()
            .contains("file is required"));
        assert!(check_thread_content(true).is_ok());
        let empty = PostBody::parse("").unwrap();
        assert!(check_reply_content(&empty, false).is_err());
        assert!(check_reply_content(&empty, true).is_ok());
    }
}
