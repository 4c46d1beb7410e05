//! A shard's authentication: its snapshot of the users and roles (read again when the
//! generation moves), its credential cache, and the checks the front ends call — Basic
//! credentials (HTTP header or MQTT CONNECT), bearer tokens, login and refresh. A password
//! check runs on the shard's blocking pool, at most `max_concurrent_password_checks` at once.

use super::cache::{self, CredentialCache, Entry, Verdict};
use super::config::SecurityConfig;
use super::directory::{self, Directory};
use super::model;
use super::password;
use super::principal::Principal;
use super::token::{self, Claims, Kind};
use crate::runtime::shard::Shard;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use glommio::channels::local_channel::{self, LocalSender};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials, or credentials that do not authenticate anyone (401).
    Unauthorized(String),
    /// Too many password checks are running on this shard: retry shortly (503).
    Busy,
    /// The node could not do what authentication needs (500).
    Internal(String),
}

impl AuthError {
    fn bad(why: &str) -> AuthError {
        AuthError::Unauthorized(why.to_string())
    }
}

/// What `POST /auth/login` and `/auth/refresh` answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// One shard's authentication state.
pub struct ShardSecurity {
    shard: Rc<Shard>,
    config: SecurityConfig,
    dir: RefCell<Rc<Directory>>,
    cache: RefCell<CredentialCache>,
    checking: Rc<Cell<usize>>,
    /// Credentials being checked now, and who waits for the outcome: many connections that
    /// arrive at once with the same new credentials cost one password hash, not a 503 each.
    in_flight: RefCell<HashMap<[u8; 32], Vec<LocalSender<()>>>>,
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    crate::storage::now_millis() / 1000
}

impl ShardSecurity {
    pub fn new(shard: Rc<Shard>) -> ShardSecurity {
        let config = shard.config().security.clone();
        let generation = directory::generation(&shard.node);
        let dir = Directory::load(&shard.node.dbs, generation);
        ShardSecurity {
            cache: RefCell::new(CredentialCache::new(config.credential_cache_entries)),
            config,
            dir: RefCell::new(Rc::new(dir)),
            checking: Rc::new(Cell::new(0)),
            in_flight: RefCell::new(HashMap::new()),
            shard,
        }
    }

    /// The runtime shard (for writes to the system tables).
    pub fn shard(&self) -> &Rc<Shard> {
        &self.shard
    }

    pub fn config(&self) -> &SecurityConfig {
        &self.config
    }

    /// The users and roles as they are now: read again from storage when a writer committed
    /// a change to a system table since the last read (one atomic load per writer otherwise).
    pub fn directory(&self) -> Rc<Directory> {
        let generation = directory::generation(&self.shard.node);
        if self.dir.borrow().generation != generation {
            let fresh = Directory::load(&self.shard.node.dbs, generation);
            *self.dir.borrow_mut() = Rc::new(fresh);
        }
        self.dir.borrow().clone()
    }

    /// Whether requests must authenticate now (some user exists).
    pub fn auth_required(&self) -> bool {
        self.directory().auth_required()
    }

    /// Authenticates an HTTP `Authorization` header value: `Basic …` or `Bearer …`.
    pub async fn authenticate_header(&self, value: &str) -> Result<Arc<Principal>, AuthError> {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.authenticate_token(rest);
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthError::bad(
                "unsupported authorization scheme (use Basic or Bearer)",
            ));
        }
        if rest.len() > 4 * (model::MAX_NAME_BYTES + model::MAX_PASSWORD_BYTES) {
            return Err(AuthError::bad("credentials too long"));
        }
        // Known credentials are found by their encoded form: no decoding on the hot path.
        let dir = self.directory();
        let key = cache::key(b"basic-header", &[rest.as_bytes()]);
        if let Some(known) = self.cached(&key, &dir) {
            return known;
        }
        let decoded = STANDARD
            .decode(rest)
            .map_err(|_| AuthError::bad("Basic credentials are not base64"))?;
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| AuthError::bad("Basic credentials are not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| AuthError::bad("Basic credentials need user:password"))?;
        self.check_once(key, &dir, user, password.as_bytes()).await
    }

    /// Authenticates a user name and password (HTTP Basic, MQTT CONNECT).
    pub async fn authenticate_password(
        &self,
        user: &str,
        password: &[u8],
    ) -> Result<Arc<Principal>, AuthError> {
        let dir = self.directory();
        let key = cache::key(b"basic", &[user.as_bytes(), password]);
        if let Some(known) = self.cached(&key, &dir) {
            return known;
        }
        self.check_once(key, &dir, user, password).await
    }

    /// The verdict on credentials not in the cache, remembered under `key`. If the same
    /// credentials are being checked already, waits for that check and takes its verdict.
    async fn check_once(
        &self,
        key: [u8; 32],
        dir: &Directory,
        user: &str,
        password: &[u8],
    ) -> Result<Arc<Principal>, AuthError> {
        let waiting = self.in_flight.borrow_mut().get_mut(&key).map(|w| {
            let (tx, rx) = local_channel::new_bounded(1);
            w.push(tx);
            rx
        });
        if let Some(rx) = waiting {
            let _ = rx.recv().await;
            let now = self.directory();
            if let Some(known) = self.cached(&key, &now) {
                return known;
            }
        }
        // Waiters wake when the entry goes: after the verdict is remembered, or when this
        // check is abandoned (its request dropped mid-await), so none waits forever.
        let _in_flight = InFlight::enter(&self.in_flight, key);
        let verdict = self.password_verdict(dir, user, password).await;
        verdict.and_then(|v| self.remember(key, dir, v))
    }

    /// Checks a user name and password against the users (a password hash: not cached).
    async fn password_verdict(
        &self,
        dir: &Directory,
        user: &str,
        password: &[u8],
    ) -> Result<Verdict, AuthError> {
        if user.len() > model::MAX_NAME_BYTES || password.len() > model::MAX_PASSWORD_BYTES {
            return Ok(Verdict::Refused);
        }
        let stored = dir.user(user).map(|u| (u.record.password.clone(), u.stamp));
        let ok = self
            .check_password(stored.as_ref().map(|s| s.0.clone()), password.to_vec())
            .await?;
        let verdict = match (ok, stored, dir.principal(user)) {
            (true, Some((_, stamp)), Some(p)) => Verdict::Allowed {
                principal: Arc::new(p),
                stamp,
                expires: None,
            },
            _ => Verdict::Refused,
        };
        Ok(verdict)
    }

    /// Authenticates the user a verified client certificate names (its common name): the
    /// TLS handshake proved the client holds the certificate's key, so no password is asked.
    pub fn authenticate_certificate(&self, name: &str) -> Result<Arc<Principal>, AuthError> {
        let dir = self.directory();
        let key = cache::key(b"certificate", &[name.as_bytes()]);
        if let Some(known) = self.cached(&key, &dir) {
            return known;
        }
        let verdict = match (dir.user(name), dir.principal(name)) {
            (Some(u), Some(p)) => Verdict::Allowed {
                principal: Arc::new(p),
                stamp: u.stamp,
                expires: None,
            },
            _ => Verdict::Refused,
        };
        self.remember(key, &dir, verdict)
    }

    /// Authenticates an access token.
    pub fn authenticate_token(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let dir = self.directory();
        let key = cache::key(b"bearer", &[token.as_bytes()]);
        if let Some(known) = self.cached(&key, &dir) {
            return known;
        }
        let (claims, stamp) = verify_token(&dir, token, Kind::Access)?;
        let principal = dir
            .principal(&claims.sub)
            .ok_or_else(|| AuthError::bad("the token's user no longer exists"))?;
        let verdict = Verdict::Allowed {
            principal: Arc::new(principal),
            stamp,
            expires: Some(claims.exp),
        };
        self.remember(key, &dir, verdict)
    }

    /// A decision remembered for `key`, checked against the current directory.
    fn cached(&self, key: &[u8; 32], dir: &Directory) -> Option<Result<Arc<Principal>, AuthError>> {
        let mut cache = self.cache.borrow_mut();
        let entry = cache.get_mut(key)?;
        if entry.generation != dir.generation && !refresh_entry(entry, dir) {
            cache.remove(key);
            return None;
        }
        match &entry.verdict {
            Verdict::Allowed { expires, .. } if expires.is_some_and(|e| now_secs() >= e) => {
                cache.remove(key);
                Some(Err(AuthError::bad("token expired")))
            }
            Verdict::Allowed { principal, .. } => Some(Ok(principal.clone())),
            Verdict::Refused => Some(Err(AuthError::bad("invalid user name or password"))),
        }
    }

    fn remember(
        &self,
        key: [u8; 32],
        dir: &Directory,
        verdict: Verdict,
    ) -> Result<Arc<Principal>, AuthError> {
        let answer = match &verdict {
            Verdict::Allowed { principal, .. } => Ok(principal.clone()),
            Verdict::Refused => Err(AuthError::bad("invalid user name or password")),
        };
        let entry = Entry {
            generation: dir.generation,
            verdict,
        };
        self.cache.borrow_mut().insert(key, entry);
        answer
    }

    /// Checks a password against a stored hash (or against nothing, as long) on the blocking
    /// pool, within the shard's bound of concurrent checks.
    async fn check_password(
        &self,
        phc: Option<String>,
        password: Vec<u8>,
    ) -> Result<bool, AuthError> {
        if self.checking.get() >= self.config.max_concurrent_password_checks {
            return Err(AuthError::Busy);
        }
        let _slot = Slot::take(&self.checking);
        let ok = glommio::executor()
            .spawn_blocking(move || match phc {
                Some(phc) => password::verify(&password, &phc),
                None => {
                    password::verify_nobody(&password);
                    false
                }
            })
            .await;
        Ok(ok)
    }

    /// `POST /auth/login`: tokens for a user name and password.
    pub async fn login(&self, user: &str, password: &[u8]) -> Result<Tokens, AuthError> {
        let principal = self.authenticate_password(user, password).await?;
        self.tokens_for(&principal.name).await
    }

    /// `POST /auth/refresh`: new tokens for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let dir = self.directory();
        let (claims, _) = verify_token(&dir, refresh_token, Kind::Refresh)?;
        self.tokens_for(&claims.sub).await
    }

    /// A new access and refresh token for `user`, signed with the cluster's key (created on
    /// first use).
    async fn tokens_for(&self, user: &str) -> Result<Tokens, AuthError> {
        let mut dir = self.directory();
        if dir.token_key().is_none() {
            super::store::create_token_key(&self.shard)
                .await
                .map_err(|(_, m)| AuthError::Internal(m))?;
            dir = self.directory();
        }
        let key = dir
            .token_key()
            .ok_or_else(|| AuthError::Internal("the token key could not be read back".into()))?;
        let stamp = dir
            .user(user)
            .ok_or_else(|| AuthError::bad("the user no longer exists"))?
            .stamp;
        let now = now_secs();
        let access = Claims::new(
            user,
            Kind::Access,
            now,
            self.config.access_token_secs,
            &stamp,
        );
        let refresh = Claims::new(
            user,
            Kind::Refresh,
            now,
            self.config.refresh_token_secs,
            &stamp,
        );
        Ok(Tokens {
            access_token: token::issue(key, &access),
            refresh_token: token::issue(key, &refresh),
            token_type: "Bearer",
            expires_in: self.config.access_token_secs,
        })
    }
}

/// A token's claims and its user's stamp, if it is signed with the cluster's key, of `kind`,
/// unexpired, and its user's password has not changed since it was issued.
fn verify_token(dir: &Directory, token: &str, kind: Kind) -> Result<(Claims, [u8; 32]), AuthError> {
    let key = dir
        .token_key()
        .ok_or_else(|| AuthError::bad("no token was ever issued by this cluster"))?;
    let claims = token::verify(key, token, kind, now_secs()).map_err(AuthError::bad)?;
    let user = dir
        .user(&claims.sub)
        .ok_or_else(|| AuthError::bad("the token's user no longer exists"))?;
    if token::stamp_hex(&user.stamp) != claims.pw {
        return Err(AuthError::bad("the token was revoked by a password change"));
    }
    Ok((claims, user.stamp))
}

/// Brings an entry decided at an older generation up to date: an allowed user whose password
/// hash is unchanged gets its current roles; anything else must be decided again (false).
fn refresh_entry(entry: &mut Entry, dir: &Directory) -> bool {
    let Verdict::Allowed {
        principal, stamp, ..
    } = &mut entry.verdict
    else {
        return false;
    };
    match (dir.user(&principal.name), dir.principal(&principal.name)) {
        (Some(u), Some(p)) if u.stamp == *stamp => {
            *principal = Arc::new(p);
            entry.generation = dir.generation;
            true
        }
        _ => false,
    }
}

/// A check in progress in `ShardSecurity::in_flight`. Dropping it removes the entry, and with
/// it the senders its waiters hold the other ends of, which wakes them.
struct InFlight<'a> {
    map: &'a RefCell<HashMap<[u8; 32], Vec<LocalSender<()>>>>,
    key: [u8; 32],
}

impl<'a> InFlight<'a> {
    fn enter(map: &'a RefCell<HashMap<[u8; 32], Vec<LocalSender<()>>>>, key: [u8; 32]) -> Self {
        map.borrow_mut().entry(key).or_default();
        InFlight { map, key }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.map.borrow_mut().remove(&self.key);
    }
}

/// One of a shard's password-check slots, given back when dropped (also when the request
/// that took it is abandoned).
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(count: &Rc<Cell<usize>>) -> Slot {
        count.set(count.get() + 1);
        Slot(count.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}
