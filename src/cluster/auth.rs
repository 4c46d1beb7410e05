//! Peer authentication: a challenge-response over the shared cluster secret. Each side sends a
//! fresh random nonce in its `Hello`; each then proves it knows the secret with
//! HMAC-SHA256(secret, label ‖ role ‖ dialer nonce ‖ acceptor nonce ‖ dialer id ‖ acceptor id).
//! Both nonces are bound into both proofs, so a proof recorded on one link is worthless on
//! another. Also resolves the secret from the configuration (inline, file or environment).

use crate::config::ClusterConfig;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const LABEL: &[u8] = b"microlith-peer-auth-v1";

/// Which side's proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

/// The cluster secret (never printed).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// Reads the secret from wherever the configuration says; `Ok(None)` if none is set.
    pub fn from_config(c: &ClusterConfig) -> Result<Option<Secret>, String> {
        let raw = if let Some(s) = &c.secret {
            s.clone()
        } else if let Some(path) = &c.secret_file {
            std::fs::read_to_string(path).map_err(|e| {
                format!("`cluster.secret_file`: cannot read {}: {e}", path.display())
            })?
        } else if let Some(var) = &c.secret_env {
            std::env::var(var).map_err(|_| {
                format!("`cluster.secret_env`: the environment variable {var} is not set")
            })?
        } else {
            return Ok(None);
        };
        let trimmed = raw.trim_end_matches(['\n', '\r']);
        if trimmed.len() < 16 {
            return Err(
                "`cluster.secret`: the cluster secret must be at least 16 bytes".to_string(),
            );
        }
        Ok(Some(Secret(trimmed.as_bytes().to_vec())))
    }

    fn mac(
        &self,
        role: Role,
        d_nonce: &[u8; 32],
        a_nonce: &[u8; 32],
        d_id: u16,
        a_id: u16,
    ) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        m.update(LABEL);
        m.update(match role {
            Role::Dialer => b"D",
            Role::Acceptor => b"A",
        });
        m.update(d_nonce);
        m.update(a_nonce);
        m.update(&d_id.to_be_bytes());
        m.update(&a_id.to_be_bytes());
        m
    }

    /// The proof of `role` for this pair of nonces and node ids.
    pub fn prove(
        &self,
        role: Role,
        d_nonce: &[u8; 32],
        a_nonce: &[u8; 32],
        d_id: u16,
        a_id: u16,
    ) -> [u8; 32] {
        self.mac(role, d_nonce, a_nonce, d_id, a_id)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Checks a proof in constant time.
    pub fn verify(
        &self,
        role: Role,
        d_nonce: &[u8; 32],
        a_nonce: &[u8; 32],
        d_id: u16,
        a_id: u16,
        proof: &[u8; 32],
    ) -> bool {
        self.mac(role, d_nonce, a_nonce, d_id, a_id)
            .verify_slice(proof)
            .is_ok()
    }
}

/// 32 random bytes from the operating system. Failing to get them is an error, never a
/// weaker nonce: a predictable one would let a recorded proof be replayed.
pub fn nonce() -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).map_err(|e| {
        format!("cannot get random bytes from the operating system for peer authentication: {e}")
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_only_with_the_same_secret_nonces_and_role() {
        let s = Secret::new(b"0123456789abcdef".to_vec());
        let other = Secret::new(b"0123456789abcdeX".to_vec());
        let (d, a) = (nonce().unwrap(), nonce().unwrap());
        assert_ne!(d, a);
        let p = s.prove(Role::Dialer, &d, &a, 1, 2);
        assert!(s.verify(Role::Dialer, &d, &a, 1, 2, &p));
        assert!(!other.verify(Role::Dialer, &d, &a, 1, 2, &p));
        assert!(!s.verify(Role::Acceptor, &d, &a, 1, 2, &p));
        assert!(!s.verify(Role::Dialer, &a, &d, 1, 2, &p));
        assert!(!s.verify(Role::Dialer, &d, &a, 1, 3, &p));
    }
}
