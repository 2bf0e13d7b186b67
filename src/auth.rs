//! Cluster authentication: the cluster key, the challenge–response that
//! proves a node holds it, and client tokens. Pure functions, no I/O but
//! reading the key file.
//!
//! Node-to-node handshake (see `docs/protocol.md`):
//!
//! 1. opener → acceptor: `Hello { nonce: Some(n_o), .. }`
//! 2. acceptor → opener: `Challenge { nonce: n_a, proofs }`, one proof per
//!    key the acceptor holds: `HMAC-SHA256(key, "replog acceptor" | n_o |
//!    n_a | acceptor id)`.
//! 3. the opener checks a proof against its own keys (constant time) and
//!    answers with the key that matched: `Proof { proof: HMAC-SHA256(key,
//!    "replog opener" | n_a | n_o | opener id) }`.
//! 4. the acceptor checks it and only then answers `Welcome`.
//!
//! The key never crosses the wire; both nonces are fresh, so a recorded
//! handshake proves nothing the next time; the ids bind each proof to the
//! node that made it. A node holds one or two keys (newest first), and a
//! proof made with either is accepted, so a rolling restart can change the
//! key without refusing anyone.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A nonce: 32 random bytes.
pub type Nonce = [u8; 32];

/// A proof: an HMAC-SHA256.
pub type Proof = [u8; 32];

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The keys of a cluster, newest first, and where they came from.
#[derive(Clone)]
pub struct ClusterKeys {
    /// One or two keys, newest first.
    keys: Vec<Vec<u8>>,
    /// The file they were read from (for messages), or a description.
    source: PathBuf,
}

impl std::fmt::Debug for ClusterKeys {
    // Never print a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClusterKeys({} key(s) from {})",
            self.keys.len(),
            self.source.display()
        )
    }
}

/// Why a key or token file cannot be used: each names the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("{flag}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The flag that named it.
        flag: String,
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// A key file must hold one key, or two during a key change.
    #[error("--cluster-key-file: {} must hold one key, or two (the new one first, then the previous one) during a key change; it holds {count}", path.display())]
    KeyCount {
        /// Where the keys came from.
        path: PathBuf,
        /// How many it holds.
        count: usize,
    },
    /// A key too short to be a secret.
    #[error("--cluster-key-file: a key in {} is {len} bytes; use at least {MIN_KEY_BYTES} (for example: openssl rand -hex 32)", path.display())]
    ShortKey {
        /// Where the keys came from.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A token file with no token.
    #[error("{flag}: {} holds no token", path.display())]
    NoToken {
        /// The flag that named it.
        flag: String,
        /// The file.
        path: PathBuf,
    },
    /// A token too short to be a secret.
    #[error("{flag}: the token in {} is {len} bytes; use at least {MIN_KEY_BYTES} (for example: openssl rand -hex 32)", path.display())]
    ShortToken {
        /// The flag that named it.
        flag: String,
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// Why a client's connection is refused for its token: the sentence sent
/// back to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// A token that matches neither the client nor the read token.
    #[error("node {node} does not accept the token given (--token-file or REPLOG_TOKEN): give the cluster's client or read token")]
    Unknown {
        /// The refusing node.
        node: String,
    },
    /// No token where reading needs one.
    #[error("node {node} requires a token to read: give one with --token-file (or REPLOG_TOKEN)")]
    Required {
        /// The refusing node.
        node: String,
    },
}

impl ClusterKeys {
    /// Reads a key file: one key per line, newest first, at most two (the
    /// second is the previous key, accepted during a rolling change).
    /// Blank lines and surrounding white space are ignored.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
            flag: "--cluster-key-file".into(),
            path: path.to_path_buf(),
            source,
        })?;
        let keys: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect();
        Self::new(keys, path.to_path_buf())
    }

    /// Keys given directly (`--dev` makes one up).
    pub fn new(keys: Vec<Vec<u8>>, source: PathBuf) -> Result<Self, SecretError> {
        if keys.is_empty() || keys.len() > 2 {
            return Err(SecretError::KeyCount {
                path: source,
                count: keys.len(),
            });
        }
        if let Some(short) = keys.iter().find(|k| k.len() < MIN_KEY_BYTES) {
            return Err(SecretError::ShortKey {
                path: source,
                len: short.len(),
            });
        }
        Ok(ClusterKeys { keys, source })
    }

    /// A fresh random key, hex, for `--dev`.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where the keys came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The acceptor's proofs, one per key it holds.
    pub fn acceptor_proofs(
        &self,
        opener: &Nonce,
        acceptor: &Nonce,
        acceptor_id: &str,
    ) -> Vec<Proof> {
        self.keys
            .iter()
            .map(|k| mac(k, b"replog acceptor", opener, acceptor, acceptor_id))
            .collect()
    }

    /// Which of this node's keys made one of the acceptor's `proofs`, if
    /// any (constant-time comparisons).
    pub fn check_acceptor(
        &self,
        proofs: &[Proof],
        opener: &Nonce,
        acceptor: &Nonce,
        acceptor_id: &str,
    ) -> Option<usize> {
        self.keys.iter().position(|k| {
            let want = mac(k, b"replog acceptor", opener, acceptor, acceptor_id);
            proofs.iter().any(|p| bool::from(want.ct_eq(p)))
        })
    }

    /// The opener's proof, made with key `key` (the one that matched).
    pub fn opener_proof(
        &self,
        key: usize,
        acceptor: &Nonce,
        opener: &Nonce,
        opener_id: &str,
    ) -> Proof {
        mac(
            &self.keys[key],
            b"replog opener",
            acceptor,
            opener,
            opener_id,
        )
    }

    /// Whether `proof` is the opener's, made with any of this node's keys.
    pub fn check_opener(
        &self,
        proof: &Proof,
        acceptor: &Nonce,
        opener: &Nonce,
        opener_id: &str,
    ) -> bool {
        self.keys.iter().any(|k| {
            let want = mac(k, b"replog opener", acceptor, opener, opener_id);
            bool::from(want.ct_eq(proof))
        })
    }
}

/// HMAC-SHA256 of a label and the parts, each length-prefixed so that no
/// two different inputs read the same.
fn mac(key: &[u8], label: &[u8], a: &Nonce, b: &Nonce, id: &str) -> Proof {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [label, a.as_slice(), b.as_slice(), id.as_bytes()] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

/// Reads a token file: its first non-empty line, trimmed. `flag` names
/// the flag in errors.
pub fn load_token(path: &Path, flag: &str) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
        flag: flag.into(),
        path: path.to_path_buf(),
        source,
    })?;
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| SecretError::NoToken {
            flag: flag.into(),
            path: path.to_path_buf(),
        })?;
    if token.len() < MIN_KEY_BYTES {
        return Err(SecretError::ShortToken {
            flag: flag.into(),
            path: path.to_path_buf(),
            len: token.len(),
        });
    }
    Ok(token.to_string())
}

/// The id a client proves the cluster key under (see `ClusterKeys`): a
/// client has no node id, and one proof made for a client is no node's.
pub const CLIENT_OPENER: &str = "replog client";

/// What a client connection may do, from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// May append.
    pub append: bool,
    /// May list and ask for health.
    pub read: bool,
    /// May change the membership: it may append, and, on a cluster with
    /// a key, proved it holds the key.
    pub members: bool,
}

/// What `token` allows on a node requiring `client` to append and `read`
/// to read (the client token reads too). `Err` is the sentence to send
/// back when the connection is refused outright: a token that matches
/// nothing, or none where reads need one.
pub fn client_access(
    token: Option<&str>,
    client: Option<&str>,
    read: Option<&str>,
    node: &str,
) -> Result<Access, TokenRefusal> {
    let is = |expected: Option<&str>| match (token, expected) {
        (_, None) => true,
        (Some(t), Some(e)) => token_matches(t, e),
        (None, Some(_)) => false,
    };
    let append = is(client);
    let reads = is(read) || (client.is_some() && append);
    let configured = client.is_some() || read.is_some();
    let matches_one = (client.is_some() && append) || (read.is_some() && is(read));
    if token.is_some() && configured && !matches_one {
        return Err(TokenRefusal::Unknown { node: node.into() });
    }
    if !reads {
        return Err(TokenRefusal::Required { node: node.into() });
    }
    Ok(Access {
        append,
        read: reads,
        members: false,
    })
}

/// A fresh nonce.
pub fn nonce() -> Nonce {
    let mut n = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// Whether a client's token is the expected one, in constant time (both
/// are hashed first, so not even the length is compared in the clear).
pub fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> ClusterKeys {
        ClusterKeys::new(
            k.iter().map(|s| s.as_bytes().to_vec()).collect(),
            "test".into(),
        )
        .unwrap()
    }

    /// Runs the handshake; returns whether both sides accept.
    fn handshake(opener: &ClusterKeys, acceptor: &ClusterKeys) -> bool {
        let (no, na) = (nonce(), nonce());
        let proofs = acceptor.acceptor_proofs(&no, &na, "b");
        let Some(k) = opener.check_acceptor(&proofs, &no, &na, "b") else {
            return false;
        };
        let p = opener.opener_proof(k, &na, &no, "a");
        acceptor.check_opener(&p, &na, &no, "a")
    }

    #[test]
    fn the_same_key_passes_and_a_different_one_fails_both_ways() {
        let k1 = keys(&["0123456789abcdef-one"]);
        let k2 = keys(&["0123456789abcdef-two"]);
        assert!(handshake(&k1, &k1));
        assert!(!handshake(&k1, &k2));
        assert!(!handshake(&k2, &k1));
    }

    #[test]
    fn a_rolling_change_is_accepted_at_every_step() {
        let old = keys(&["0123456789abcdef-old"]);
        let both = keys(&["0123456789abcdef-new", "0123456789abcdef-old"]);
        let new = keys(&["0123456789abcdef-new"]);
        for (a, b) in [
            (&old, &both),
            (&both, &old),
            (&both, &both),
            (&both, &new),
            (&new, &both),
        ] {
            assert!(handshake(a, b));
        }
        assert!(!handshake(&old, &new), "old and new alone do not meet");
    }

    #[test]
    fn a_replayed_or_misattributed_proof_fails() {
        let k = keys(&["0123456789abcdef-key"]);
        let (no, na) = (nonce(), nonce());
        let p = k.opener_proof(0, &na, &no, "a");
        assert!(k.check_opener(&p, &na, &no, "a"));
        assert!(
            !k.check_opener(&p, &nonce(), &no, "a"),
            "a new acceptor nonce"
        );
        assert!(!k.check_opener(&p, &na, &no, "c"), "another node's id");
        // The acceptor's proof cannot be reflected as the opener's.
        let reflected = k.acceptor_proofs(&na, &no, "a")[0];
        assert!(!k.check_opener(&reflected, &na, &no, "a"));
    }

    #[test]
    fn client_tokens_grant_appends_and_reads() {
        let w = "writer-token-0123456789";
        let r = "reader-token-0123456789";
        let ok = |append, read| {
            Ok(Access {
                append,
                read,
                members: false,
            })
        };
        // Nothing configured: everything, whatever is sent.
        assert_eq!(client_access(None, None, None, "n"), ok(true, true));
        assert_eq!(client_access(Some("x"), None, None, "n"), ok(true, true));
        // Appends guarded, reads open.
        assert_eq!(client_access(None, Some(w), None, "n"), ok(false, true));
        assert_eq!(client_access(Some(w), Some(w), None, "n"), ok(true, true));
        assert!(client_access(Some("bad"), Some(w), None, "n")
            .unwrap_err()
            .to_string()
            .contains("--token-file"));
        // Both guarded: the client token reads too; the read token only reads.
        assert_eq!(
            client_access(Some(w), Some(w), Some(r), "n"),
            ok(true, true)
        );
        assert_eq!(
            client_access(Some(r), Some(w), Some(r), "n"),
            ok(false, true)
        );
        assert!(client_access(None, Some(w), Some(r), "n")
            .unwrap_err()
            .to_string()
            .contains("requires a token to read"));
        assert!(client_access(Some("bad"), Some(w), Some(r), "n").is_err());
        // Only reads guarded.
        assert_eq!(client_access(Some(r), None, Some(r), "n"), ok(true, true));
        assert!(client_access(None, None, Some(r), "n").is_err());
    }

    /// The layout `docs/protocol.md` gives a third-party implementer.
    #[test]
    fn the_proof_is_hmac_sha256_over_the_documented_layout() {
        let k = keys(&["0123456789abcdef"]);
        let (n_a, n_o) = ([2u8; 32], [1u8; 32]);
        let mut input = Vec::new();
        input.extend_from_slice(&[0, 0, 0, 13]);
        input.extend_from_slice(b"replog opener");
        input.extend_from_slice(&[0, 0, 0, 32]);
        input.extend_from_slice(&n_a);
        input.extend_from_slice(&[0, 0, 0, 32]);
        input.extend_from_slice(&n_o);
        input.extend_from_slice(&[0, 0, 0, 1]);
        input.extend_from_slice(b"1");
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"0123456789abcdef").unwrap();
        m.update(&input);
        let want: Proof = m.finalize().into_bytes().into();
        assert_eq!(k.opener_proof(0, &n_a, &n_o, "1"), want);
    }

    #[test]
    fn key_files_are_checked_and_tokens_compared() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "\n  0123456789abcdef0123  \n").unwrap();
        assert!(ClusterKeys::load(&f).is_ok());
        std::fs::write(&f, "short\n").unwrap();
        assert!(ClusterKeys::load(&f)
            .unwrap_err()
            .to_string()
            .contains("at least 16"));
        std::fs::write(&f, "").unwrap();
        assert!(ClusterKeys::load(&f)
            .unwrap_err()
            .to_string()
            .contains("one key"));
        std::fs::write(&f, "a123456789abcdef\nb123456789abcdef\nc123456789abcdef\n").unwrap();
        assert!(ClusterKeys::load(&f)
            .unwrap_err()
            .to_string()
            .contains("holds 3"));
        assert!(format!("{:?}", keys(&["0123456789abcdef-sec"])).contains("1 key(s)"));
        assert!(!format!("{:?}", keys(&["0123456789abcdef-sec"])).contains("sec"));
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cret "));
    }
}
