//! Bearer tokens: `ml1.<claims>.<mac>`, the claims JSON and an HMAC-SHA256 over them, both
//! base64url. The key is the cluster's (`_secrets/token_key`, replicated), so a token issued by
//! any node works on every node. Claims: the user, the kind (access or refresh), issue and
//! expiry times (Unix seconds), and a stamp of the user's password hash, so that changing the
//! password revokes every token issued before. Verifying costs one HMAC: no password hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted (a longer one is refused before any work).
pub const MAX_TOKEN_BYTES: usize = 1024;
const PREFIX: &str = "ml1.";

/// Access tokens authenticate requests; refresh tokens only get new tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "access")]
    Access,
    #[serde(rename = "refresh")]
    Refresh,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub sub: String,
    pub kind: Kind,
    pub iat: u64,
    pub exp: u64,
    /// The first 16 bytes of the user's password stamp, hex.
    pub pw: String,
}

impl Claims {
    pub fn new(user: &str, kind: Kind, now: u64, lifetime: u64, stamp: &[u8; 32]) -> Claims {
        Claims {
            sub: user.to_string(),
            kind,
            iat: now,
            exp: now.saturating_add(lifetime),
            pw: stamp_hex(stamp),
        }
    }
}

/// The token form of a password stamp.
pub fn stamp_hex(stamp: &[u8; 32]) -> String {
    stamp[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m
}

/// Signs `claims` with `key`.
pub fn issue(key: &[u8], claims: &Claims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = URL_SAFE_NO_PAD.encode(mac(key, body.as_bytes()).finalize().into_bytes());
    format!("{PREFIX}{body}.{tag}")
}

/// The claims of a token signed with `key`, of kind `kind`, not expired at `now`.
pub fn verify(key: &[u8], token: &str, kind: Kind, now: u64) -> Result<Claims, &'static str> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("token too long");
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or("not a token of this server")?;
    let (body, tag) = rest.split_once('.').ok_or("malformed token")?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| "malformed token")?;
    mac(key, body.as_bytes())
        .verify_slice(&tag)
        .map_err(|_| "token signature does not verify")?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| "malformed token")?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| "malformed token")?;
    if claims.kind != kind {
        return Err(match kind {
            Kind::Access => "a refresh token cannot authenticate requests",
            Kind::Refresh => "an access token cannot refresh",
        });
    }
    if now >= claims.exp {
        return Err("token expired");
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_never_when_tampered() {
        let key = [7u8; 32];
        let c = Claims::new("alice", Kind::Access, 1000, 60, &[1; 32]);
        let t = issue(&key, &c);
        assert_eq!(verify(&key, &t, Kind::Access, 1059), Ok(c.clone()));
        assert_eq!(verify(&key, &t, Kind::Access, 1060), Err("token expired"));
        assert!(verify(&key, &t, Kind::Refresh, 1000).is_err());
        assert!(verify(&[8u8; 32], &t, Kind::Access, 1000).is_err());
        // Another user's name in the same signature.
        let forged_body = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims::new("root", Kind::Access, 1000, 60, &[1; 32])).unwrap(),
        );
        let tag = t.rsplit_once('.').unwrap().1;
        let forged = format!("{PREFIX}{forged_body}.{tag}");
        assert_eq!(
            verify(&key, &forged, Kind::Access, 1000),
            Err("token signature does not verify")
        );
        for bad in ["", "ml1.", "ml1.a.b", "xyz", &"a".repeat(5000)] {
            assert!(verify(&key, bad, Kind::Access, 1000).is_err(), "{bad:?}");
        }
    }
}
