//! Secrets handed to clients (session ids, API keys) and how they are stored: random bytes
//! from the operating system, kept in the database only as a SHA-256 digest. The secrets
//! carry 256 bits of entropy, so a fast hash is enough (a slow password hash buys nothing
//! against guessing, and would cost a hash per request).

use sha2::{Digest, Sha256};

/// `bytes` random bytes from the operating system, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    hex::encode(buf)
}

/// `bytes` random bytes from the operating system, in standard base64 (with padding).
pub fn random_base64(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// `len` random characters from `a-z0-9`, for public identifiers such as key prefixes.
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    // 256 is not a multiple of 36; the slight bias is harmless for a public, unique prefix.
    buf.iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two digests in time independent of where they differ.
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_distinct() {
        let a = random_hex(32);
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex(32));
        let p = random_alnum(10);
        assert_eq!(p.len(), 10);
        assert!(p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn digests_compare() {
        assert!(digests_equal(&sha256("x"), &sha256("x")));
        assert!(!digests_equal(&sha256("x"), &sha256("y")));
        assert!(!digests_equal(&[1, 2], &[1]));
    }
}
