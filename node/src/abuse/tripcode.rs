//! Tripcodes: `name#secret` in the name field is shown as `name !abc123def0`,
//! a hash of the secret keyed by the site's secret, so the same secret
//! gives the same tripcode on this site (across restarts) and nobody can
//! compute it elsewhere or recover the secret from it.

use sha2::{Digest, Sha256};

/// Longest name shown, in characters (a slip name's limit).
pub const MAX_NAME_CHARS: usize = 20;

/// The name to show for a name field, or `None` for an anonymous post.
/// Control characters and `!` are dropped and the name is cut to its limit:
/// a typed name can never contain what a tripcode looks like, so
/// `Bob !3493f5f6c0` typed in the field is not the tripcode of `Bob#secret`
/// ([`split`] tells them apart when the post is drawn).
pub fn display_name(field: &str, site_secret: &[u8]) -> Option<String> {
    let (name, secret) = match field.split_once('#') {
        Some((n, s)) => (n, Some(s)),
        None => (field, None),
    };
    let name: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '!')
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_string();
    match secret.filter(|s| !s.is_empty()) {
        Some(secret) => {
            let name = if name.is_empty() { "Anonymous" } else { &name };
            Some(format!("{name} !{}", trip(secret, site_secret)))
        }
        None => (!name.is_empty()).then_some(name),
    }
}

/// A shown name and its tripcode (`!` and 10 hex digits), if it has one.
/// Only [`display_name`] writes `!` into a name (typed names and slip names
/// cannot hold one), so a `!` here is a real tripcode.
pub fn split(shown: &str) -> (&str, Option<&str>) {
    match shown.rsplit_once(" !") {
        Some((name, trip)) if trip.len() == 10 && trip.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (name, Some(&shown[name.len() + 1..]))
        }
        _ => (shown, None),
    }
}

fn trip(secret: &str, site_secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(site_secret);
    h.update(b"\0trip\0");
    h.update(secret.as_bytes());
    hex::encode(&h.finalize()[..5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tripcodes_are_stable_keyed_and_hide_the_secret() {
        let a = display_name("kana#hunter2", b"site").unwrap();
        assert!(
            a.starts_with("kana !") && a.len() == "kana !".len() + 10,
            "{a}"
        );
        assert!(!a.contains("hunter2"));
        assert_eq!(Some(a.clone()), display_name("kana#hunter2", b"site"));
        assert_ne!(Some(a.clone()), display_name("kana#hunter3", b"site"));
        assert_ne!(Some(a), display_name("kana#hunter2", b"other site"));
        assert!(display_name("#x", b"s").unwrap().starts_with("Anonymous !"));
        assert_eq!(display_name("  ", b"s"), None);
        assert_eq!(display_name("plain", b"s").as_deref(), Some("plain"));
        assert_eq!(
            display_name(&"n".repeat(50), b"s").unwrap().len(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn a_typed_name_cannot_look_like_a_tripcode() {
        let real = display_name("Bob#mysecret", b"site").unwrap();
        let (name, trip) = split(&real);
        assert_eq!(name, "Bob");
        let trip = trip.expect("a tripcode");
        let forged = display_name(&format!("Bob {trip}"), b"site").unwrap();
        assert_ne!(forged, real);
        assert_eq!(split(&forged).1, None, "{forged:?}");
        assert_eq!(split("Bob"), ("Bob", None));
    }
}
