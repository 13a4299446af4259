//! Password hashing: argon2id at the OWASP minimum (m = 19 456 KiB, t = 2, p = 1).
//! Hashing is CPU-bound, so it runs on the blocking pool, never on the async runtime.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// Each hash takes 19 MiB and a core for tens of milliseconds; at most this many run at once
/// (per process), so a burst of sign-ins queues instead of exhausting memory.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new((cores * 2).max(2))
    })
}

/// Why `password` is too easy to guess, or `None`. zxcvbn estimates the guesses an attacker
/// needs (dictionaries, names, dates, keyboard patterns, the person's own `inputs`); fewer
/// than about 10^10 (score below 3) is refused.
pub fn weakness(password: &str, inputs: &[&str]) -> Option<String> {
    // Whole inputs and their words: "ada.lovelace@example.com" also gives "ada", "lovelace".
    let words: Vec<String> = inputs
        .iter()
        .flat_map(|i| {
            std::iter::once(i.to_lowercase()).chain(
                i.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() >= 3)
                    .map(str::to_lowercase),
            )
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &words);
    if (estimate.score() as u8) >= 3 {
        return None;
    }
    let warning = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
        .unwrap_or_default();
    Some(format!(
        "this password is too easy to guess{warning}; add a few more unrelated words"
    ))
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (salt and parameters included).
pub async fn hash(password: String) -> Result<String, argon2::password_hash::Error> {
    let _permit = permits()
        .acquire()
        .await
        .expect("the hashing semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .expect("password hashing task panicked")
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    let Ok(_permit) = permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let phc = hash("correct horse battery staple".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple".into(), phc.clone()).await);
        assert!(!verify("wrong horse battery staple".into(), phc).await);
    }

    #[tokio::test]
    async fn same_password_gets_a_fresh_salt_each_time() {
        let a = hash("a long enough password".into()).await.unwrap();
        let b = hash("a long enough password".into()).await.unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn guessable_passwords_are_refused_and_strong_ones_pass() {
        assert!(weakness("qwertyuiopasdfgh", &[]).is_some());
        assert!(weakness("iloveyouiloveyou", &[]).is_some());
        assert_eq!(weakness("granite orchard 4 lanterns", &[]), None);
    }

    #[tokio::test]
    async fn malformed_hash_never_matches() {
        assert!(!verify("anything".into(), "not a phc string".into()).await);
    }
}
