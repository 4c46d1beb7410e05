//! Password hashing: argon2id with the crate's default cost, stored as a PHC string (salt and
//! parameters inside). Hashing and verifying take tens of milliseconds on purpose: callers on
//! a shard run them on the blocking pool, never on the executor. A password is never logged,
//! stored or returned; only its hash is.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("password hash failed: {e}"))
}

/// Whether `password` matches the PHC string `phc` (false for an unreadable hash).
pub fn verify(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a user's stored password hash: tokens and cached credentials carry it, so that a
/// password change makes them worthless at once.
pub fn stamp(phc: &str) -> [u8; 32] {
    Sha256::digest(phc.as_bytes()).into()
}

/// Spends about the time of a real check, for a user that does not exist (so that a refusal
/// takes as long whether the name exists or not).
pub fn verify_nobody(password: &[u8]) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash(b"no such user: dummy password").unwrap_or_default());
    let _ = verify(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash(b"correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify(b"correct horse", &h));
        assert!(!verify(b"correct horsf", &h));
        assert!(!verify(b"x", "not a hash"));
        assert_ne!(hash(b"correct horse").unwrap(), h, "salted");
        assert_eq!(stamp(&h), stamp(&h));
    }
}
