//! Stateless captcha ids and proof-of-work challenges.
//!
//! A captcha id carries everything needed to check an answer: its expiry, a
//! random nonce and the answer itself, encrypted with a keystream
//! (HMAC-SHA-256 of the header under a key derived from the site secret),
//! the whole authenticated by a truncated HMAC under another derived key.
//! So there is no table of pending captchas that a flood of requests could
//! fill or flush: a captcha stays answerable until its own expiry, whatever
//! anyone else does, and any node of a cluster (they share the site secret
//! through the database) can check it. What must be remembered — that an id
//! was spent — is kept by [`super::Captchas`] only until the id expires.
//!
//! A proof-of-work challenge is sealed the same way, binding its expiry,
//! its cost in bits and the board it was asked for.
//!
//! Layout (then base64url without padding):
//! - picture: `1 | expires_ms (u64 BE) | nonce (8) | answer ^ keystream (CODE_LEN) | tag (16)`
//! - challenge: `2 | expires_ms | nonce (8) | bits (1) | board (8: SHA-256 of its name) | tag (16)`

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::CODE_LEN;

type HmacSha256 = Hmac<Sha256>;

const PICTURE: u8 = 1;
const CHALLENGE: u8 = 2;
const TAG: usize = 16;
const HEADER: usize = 1 + 8 + 8;

/// Keys derived from the site secret, one per use, so that no output of one
/// use (a keystream, a drawing seed) can stand in for another (a tag).
#[derive(Clone)]
pub struct Keys {
    tag: [u8; 32],
    stream: [u8; 32],
    draw: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

fn keyed(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl Keys {
    /// The keys of a site whose secret is `secret` (the same on every node).
    pub fn derive(secret: &[u8]) -> Keys {
        Keys {
            tag: keyed(secret, &[b"wani captcha tag v1"]),
            stream: keyed(secret, &[b"wani captcha keystream v1"]),
            draw: keyed(secret, &[b"wani captcha drawing v1"]),
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        let full = keyed(&self.tag, &[body]);
        let mut t = [0u8; TAG];
        t.copy_from_slice(&full[..TAG]);
        t
    }

    /// Checks the tag at the end of `raw` in constant time; answers the body.
    fn open<'a>(&self, raw: &'a [u8]) -> Option<(&'a [u8], [u8; TAG])> {
        let split = raw.len().checked_sub(TAG)?;
        let (body, tag) = raw.split_at(split);
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.tag).ok()?;
        m.update(body);
        m.verify_truncated_left(tag).ok()?;
        Some((body, tag.try_into().ok()?))
    }

    /// The seed the picture of captcha `id` is drawn from: one picture per
    /// id, however often it is fetched.
    pub fn drawing_seed(&self, id: &str) -> [u8; 32] {
        keyed(&self.draw, &[id.as_bytes()])
    }
}

/// What a valid captcha id says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub expires_ms: i64,
    pub code: String,
    /// Unique per id: the key of the spent-id set.
    pub tag: [u8; TAG],
}

/// What a valid challenge says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub expires_ms: i64,
    pub bits: u8,
    pub board: [u8; 8],
    pub tag: [u8; TAG],
}

/// The 8 bytes a challenge binds a board name to.
pub fn board_key(name: &str) -> [u8; 8] {
    let d = Sha256::digest(name.as_bytes());
    let mut k = [0u8; 8];
    k.copy_from_slice(&d[..8]);
    k
}

fn header(kind: u8, expires_ms: i64, nonce: [u8; 8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.push(kind);
    b.extend_from_slice(&expires_ms.to_be_bytes());
    b.extend_from_slice(&nonce);
    b
}

/// Seals a captcha whose answer is `code` (exactly [`CODE_LEN`] ASCII bytes).
pub fn seal_picture(keys: &Keys, expires_ms: i64, nonce: [u8; 8], code: &str) -> String {
    let mut b = header(PICTURE, expires_ms, nonce);
    let stream = keyed(&keys.stream, &[&b]);
    b.extend(code.bytes().zip(stream).map(|(c, k)| c ^ k));
    let tag = keys.tag(&b);
    b.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(b)
}

/// Opens a captcha id: `None` unless this site sealed it (expiry is the
/// caller's to check).
pub fn open_picture(keys: &Keys, id: &str) -> Option<Picture> {
    if id.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    if raw.len() != HEADER + CODE_LEN + TAG || raw[0] != PICTURE {
        return None;
    }
    let (body, tag) = keys.open(&raw)?;
    let (head, sealed) = body.split_at(HEADER);
    let stream = keyed(&keys.stream, &[head]);
    let code: Vec<u8> = sealed.iter().zip(stream).map(|(c, k)| c ^ k).collect();
    Some(Picture {
        expires_ms: i64::from_be_bytes(head[1..9].try_into().ok()?),
        code: String::from_utf8(code).ok()?,
        tag,
    })
}

/// Seals a proof-of-work challenge of `bits` for board `board`.
pub fn seal_challenge(
    keys: &Keys,
    expires_ms: i64,
    nonce: [u8; 8],
    bits: u8,
    board: &str,
) -> String {
    let mut b = header(CHALLENGE, expires_ms, nonce);
    b.push(bits);
    b.extend_from_slice(&board_key(board));
    let tag = keys.tag(&b);
    b.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(b)
}

/// Opens a challenge: `None` unless this site sealed it.
pub fn open_challenge(keys: &Keys, s: &str) -> Option<Challenge> {
    if s.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(s).ok()?;
    if raw.len() != HEADER + 1 + 8 + TAG || raw[0] != CHALLENGE {
        return None;
    }
    let (body, tag) = keys.open(&raw)?;
    Some(Challenge {
        expires_ms: i64::from_be_bytes(body[1..9].try_into().ok()?),
        bits: body[HEADER],
        board: body[HEADER + 1..HEADER + 9].try_into().ok()?,
        tag,
    })
}

/// Leading zero bits of SHA-256(`challenge` || `nonce`), both as the ASCII
/// text the page's script hashes.
pub fn work_bits(challenge: &str, nonce: &str) -> u32 {
    let d = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut bits = 0;
    for byte in d {
        if byte == 0 {
            bits += 8;
        } else {
            bits += byte.leading_zeros();
            break;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_opens_only_untouched_and_only_with_its_secret() {
        let keys = Keys::derive(b"site secret");
        let id = seal_picture(&keys, 1234, [7; 8], "ACD347");
        let p = open_picture(&keys, &id).unwrap();
        assert_eq!((p.expires_ms, p.code.as_str()), (1234, "ACD347"));
        assert!(
            !id.contains("ACD347"),
            "the answer is not readable in the id"
        );
        assert_eq!(open_picture(&Keys::derive(b"another site"), &id), None);
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            assert_eq!(
                open_picture(&keys, &URL_SAFE_NO_PAD.encode(&raw)),
                None,
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        assert_eq!(open_picture(&keys, "not an id"), None);
        let other = seal_picture(&keys, 1234, [8; 8], "ACD347");
        assert_ne!(open_picture(&keys, &other).unwrap().tag, p.tag);
    }

    #[test]
    fn a_challenge_binds_its_cost_and_board() {
        let keys = Keys::derive(b"s");
        let c = seal_challenge(&keys, 99, [1; 8], 12, "b");
        let o = open_challenge(&keys, &c).unwrap();
        assert_eq!((o.expires_ms, o.bits, o.board), (99, 12, board_key("b")));
        assert_eq!(
            open_picture(&keys, &c),
            None,
            "a challenge is not a captcha id"
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[HEADER] = 1;
        assert_eq!(
            open_challenge(&keys, &URL_SAFE_NO_PAD.encode(&raw)),
            None,
            "cheaper"
        );
    }

    #[test]
    fn work_counts_leading_zero_bits() {
        let n = (0u64..)
            .find(|n| work_bits("x", &n.to_string()) >= 8)
            .unwrap();
        assert!(work_bits("x", &n.to_string()) >= 8);
        assert_eq!(work_bits("x", "0"), work_bits("x", "0"));
    }
}
