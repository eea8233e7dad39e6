//! JWT access and refresh tokens (jsonwebtoken 11).
//!
//! - Algorithm pinned to HS256. Only the control plane issues and verifies these tokens
//!   (agents use node credentials, CI uses API keys), so a shared secret is enough: no
//!   public key needs to leave the server. HMAC-SHA256 verifies in a few microseconds,
//!   and there is no asymmetric key an HS256 token could be confused with.
//!   Validation accepts exactly `[HS256]`; any other `alg` (none, HS384, RS256, ...) is refused.
//! - Key: at least 32 random bytes, generated at first start into `<data dir>/jwt.key`
//!   (mode 0600, base64url), or configured (all replicas of an HA control plane share it).
//!   Shorter keys are refused.
//! - Claims: sub, username, email, role, iss, aud, iat, nbf, exp, jti, typ (access |
//!   refresh: they never pass for each other), sid (login session), ver (the user's token
//!   version: bumping it kills every older token at once).
//! - Tokens over 8 KiB are refused before any parsing.
//! - Time is an argument: the library's own clock checks are off and exp/nbf/iat are checked
//!   here against `now`, with a small leeway.
//!
//! jsonwebtoken 11 picks its crypto provider from its features (`rust_crypto` xor
//! `aws_lc_rs`) and panics at run time when both or neither are on. lqx-core enables
//! `rust_crypto` only (Cargo.toml), and [`install_crypto_provider`] installs that provider
//! explicitly, so a second backend switched on by feature unification elsewhere in the
//! workspace cannot make signing panic. Call it at start-up; [`JwtManager::new`] calls it too.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Once,
    time::Duration,
};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AuthError, Secret};
use crate::model::{Role, SessionId, User, UserId};

/// The one algorithm accepted.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
/// Minimum signing key length in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Length of generated keys.
pub const GENERATED_KEY_LEN: usize = 64;
/// Longest token accepted; longer ones are refused before parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// File name of the generated key in the data dir.
pub const KEY_FILE: &str = "jwt.key";

/// Installs jsonwebtoken's RustCrypto provider for the process. Idempotent; call at start-up
/// (and in tests, through [`JwtManager::new`]).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means a provider is installed already (by an earlier call in this process).
        let _ =
            jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
    });
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The claims of every lqx token. All fields are required; times are integer seconds since
/// the epoch (strings or floats are refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub typ: TokenType,
    /// The login session (refresh-token family) this token belongs to.
    pub sid: SessionId,
    /// The user's token version when issued.
    pub ver: u64,
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The user facts a token is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub token_version: u64,
}

impl From<&User> for TokenSubject {
    fn from(u: &User) -> Self {
        TokenSubject {
            user_id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role,
            token_version: u.token_version,
        }
    }
}

/// An access and a refresh token, with their claims (the refresh `jti` goes into the session
/// record).
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub access: Claims,
    pub refresh: Claims,
}

/// Token settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Clock skew tolerated on exp, nbf and iat.
    pub leeway: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            issuer: "lqx".into(),
            audience: "lqx-api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            leeway: Duration::from_secs(30),
        }
    }
}

/// HS256 key material: at least [`MIN_KEY_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(<{} bytes redacted>)", self.0.len())
    }
}

impl SigningKey {
    /// A key from raw bytes; refuses fewer than [`MIN_KEY_LEN`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AuthError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(AuthError::KeyTooShort {
                len: bytes.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(SigningKey(bytes))
    }

    /// A fresh random key of [`GENERATED_KEY_LEN`] bytes.
    pub fn generate() -> Self {
        let mut b = vec![0u8; GENERATED_KEY_LEN];
        // ThreadRng is a CSPRNG (ChaCha12) seeded from the OS.
        rand::rng().fill_bytes(&mut b);
        SigningKey(b)
    }

    /// A key from configuration: base64 (url-safe or standard, padding optional) of at least
    /// [`MIN_KEY_LEN`] bytes. Surrounding whitespace is ignored.
    pub fn from_base64(s: &str) -> Result<Self, AuthError> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let s = s.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .or_else(|_| STANDARD_NO_PAD.decode(s))
            .map_err(|_| AuthError::KeyEncoding)?;
        Self::from_bytes(bytes)
    }

    /// The url-safe base64 form (as written to `jwt.key`).
    pub fn to_base64(&self) -> Secret {
        Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0))
    }

    /// Loads `<data_dir>/jwt.key`, or creates it (0600) with a fresh key on first start.
    /// Refuses a key file that group or others can read, and a short key. Two processes
    /// starting at once agree on one key: the file appears atomically (hard link of a fully
    /// written temporary file) and the loser reads the winner's. Blocking: call at start-up.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, AuthError> {
        let path = data_dir.join(KEY_FILE);
        match Self::load(&path) {
            Ok(k) => return Ok(k),
            Err(AuthError::KeyFile { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Self::generate();
        let tmp = data_dir.join(format!(".{KEY_FILE}.{}", Uuid::new_v4().simple()));
        let io = |source| AuthError::KeyFile {
            path: path.clone(),
            source,
        };
        write_private(&tmp, format!("{}\n", key.to_base64().expose()).as_bytes()).map_err(io)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a new JWT signing key");
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(&path),
            Err(e) => Err(io(e)),
        }
    }

    /// Loads a key file written by [`SigningKey::load_or_generate`].
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let io = |source| AuthError::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        check_private_mode(path, &meta)?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_base64(&text)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(unix)]
fn check_private_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthError::KeyFileMode {
            path: PathBuf::from(path),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_: &Path, _: &std::fs::Metadata) -> Result<(), AuthError> {
    Ok(())
}

/// Issues and verifies lqx tokens.
pub struct JwtManager {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: JwtConfig,
    /// Access tokens whose signature and claims already checked out, by exact token text:
    /// a client sends the same token with every request until it expires, so each request
    /// after the first only redoes the type and time checks.
    verified: std::sync::Mutex<std::collections::HashMap<Box<str>, Claims>>,
}

/// Verified access tokens kept at most; past this the memo starts over.
const VERIFIED_MAX: usize = 50_000;

impl fmt::Debug for JwtManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtManager")
            .field("key", &"<redacted>")
            .field("config", &self.config)
            .finish()
    }
}

impl JwtManager {
    pub fn new(key: &SigningKey, config: JwtConfig) -> Self {
        install_crypto_provider();
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        // Presence only: the library checks these five; serde checks the rest (all fields of
        // `Claims` are required), and time is checked in `verify` against the given `now`.
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = true;
        validation.leeway = config.leeway.as_secs();
        JwtManager {
            encoding: EncodingKey::from_secret(&key.0),
            decoding: DecodingKey::from_secret(&key.0),
            validation,
            config,
            verified: Default::default(),
        }
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Issues an access and a refresh token for `subject` in login session `session`.
    pub fn issue_pair(
        &self,
        subject: &TokenSubject,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let (access_token, access) = self.issue(subject, session, TokenType::Access, now)?;
        let (refresh_token, refresh) = self.issue(subject, session, TokenType::Refresh, now)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            access,
            refresh,
        })
    }

    /// Issues one token.
    pub fn issue(
        &self,
        subject: &TokenSubject,
        session: SessionId,
        typ: TokenType,
        now: DateTime<Utc>,
    ) -> Result<(Secret, Claims), AuthError> {
        let ttl = match typ {
            TokenType::Access => self.config.access_ttl,
            TokenType::Refresh => self.config.refresh_ttl,
        };
        let iat = now.timestamp();
        let claims = Claims {
            sub: subject.user_id,
            username: subject.username.clone(),
            email: subject.email.clone(),
            role: subject.role,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4(),
            typ,
            sid: session,
            ver: subject.token_version,
        };
        let token =
            jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding).map_err(AuthError::Signing)?;
        Ok((Secret::new(token), claims))
    }

    /// Verifies an access token at `now`. The caller still checks the session and the user's
    /// token version (`session::check_access`).
    pub fn verify_access(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Access, now)
    }

    /// Verifies a refresh token at `now`; the caller then decides on the rotation
    /// (`session::decide_refresh`).
    pub fn verify_refresh(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Refresh, now)
    }

    /// Signature, algorithm, issuer, audience, claim shapes, type and time.
    pub fn verify(&self, token: &str, expected: TokenType, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenTooLarge);
        }
        let known = self.memo().get(token).cloned();
        let claims = match known {
            Some(c) => c,
            None => {
                let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                    .map_err(|e| {
                        // The kind only (never the token) helps an operator see attacks in the log.
                        tracing::debug!(reason = ?e.kind(), "token rejected");
                        AuthError::InvalidToken
                    })?
                    .claims;
                if claims.typ == TokenType::Access {
                    let mut m = self.memo();
                    if m.len() >= VERIFIED_MAX {
                        m.clear();
                    }
                    m.insert(token.into(), claims.clone());
                }
                claims
            }
        };
        self.check_type_and_time(claims, expected, now)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Box<str>, Claims>> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_type_and_time(
        &self,
        claims: Claims,
        expected: TokenType,
        now: DateTime<Utc>,
    ) -> Result<Claims, AuthError> {
        if claims.typ != expected {
            return Err(AuthError::WrongTokenType {
                expected: expected.as_str(),
            });
        }
        let now = now.timestamp();
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(0);
        if now > claims.exp.saturating_add(leeway) {
            return Err(AuthError::TokenExpired);
        }
        if claims.nbf > now.saturating_add(leeway) || claims.iat > now.saturating_add(leeway) {
            return Err(AuthError::TokenNotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(b"0123456789abcdef0123456789abcdef-test-key".to_vec()).unwrap()
    }

    fn manager() -> JwtManager {
        JwtManager::new(&key(), JwtConfig::default())
    }

    fn subject() -> TokenSubject {
        TokenSubject {
            user_id: UserId::new(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            role: Role::Operator,
            token_version: 3,
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    /// Signs `header.payload` with HMAC-SHA256 under `secret`, as an attacker who knows a
    /// key (or none) would.
    fn forge(header: &serde_json::Value, payload: &serde_json::Value, secret: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let msg = format!("{}.{}", b64(header), b64(payload));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(msg.as_bytes());
        format!("{msg}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn valid_payload() -> serde_json::Value {
        let (_, c) = manager()
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap();
        serde_json::to_value(c).unwrap()
    }

    fn hs256() -> serde_json::Value {
        json!({"alg": "HS256", "typ": "JWT"})
    }

    #[test]
    fn issue_and_verify_a_pair() {
        let m = manager();
        let sid = SessionId::new();
        let s = subject();
        let pair = m.issue_pair(&s, sid, t0()).unwrap();
        let a = m.verify_access(pair.access_token.expose(), t0()).unwrap();
        assert_eq!(a, pair.access);
        assert_eq!((a.sub, a.role, a.ver, a.sid), (s.user_id, Role::Operator, 3, sid));
        assert_eq!(a.exp - a.iat, 15 * 60);
        assert_eq!(a.iss, "lqx");
        let r = m.verify_refresh(pair.refresh_token.expose(), t0()).unwrap();
        assert_eq!(r.exp - r.iat, 7 * 24 * 3600);
        assert_eq!(r.typ, TokenType::Refresh);
        assert_ne!(a.jti, r.jti);
        assert!(!format!("{pair:?}").contains(pair.access_token.expose()));
    }

    #[test]
    fn forged_valid_token_is_accepted_so_the_battery_tests_the_right_thing() {
        // The helper produces exactly what the library does: a sanity check for `forge`.
        let tok = forge(&hs256(), &valid_payload(), &key().0);
        manager().verify_access(&tok, t0()).unwrap();
    }

    #[test]
    fn attack_alg_none() {
        let p = valid_payload();
        for alg in ["none", "None", "NONE"] {
            let unsigned = format!("{}.{}.", b64(&json!({"alg": alg, "typ": "JWT"})), b64(&p));
            assert!(
                matches!(manager().verify_access(&unsigned, t0()), Err(AuthError::InvalidToken)),
                "{alg}"
            );
            // With a (bogus) signature attached too.
            let signed = forge(&json!({"alg": alg}), &p, &key().0);
            assert!(
                matches!(manager().verify_access(&signed, t0()), Err(AuthError::InvalidToken)),
                "{alg}"
            );
        }
    }

    #[test]
    fn attack_other_algorithms_are_refused_even_with_the_right_key() {
        let p = valid_payload();
        let m = manager();
        // A genuinely valid HS384 / HS512 signature with the server's own key.
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let tok = jsonwebtoken::encode(&Header::new(alg), &p, &EncodingKey::from_secret(&key().0)).unwrap();
            assert!(
                matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)),
                "{alg:?}"
            );
        }
        // Asymmetric algorithms: the classic confusion attack signs with the "public key" as an
        // HMAC secret; here the header alone must already be refused.
        for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
            let tok = forge(&json!({"alg": alg, "typ": "JWT"}), &p, &key().0);
            assert!(
                matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)),
                "{alg}"
            );
        }
    }

    #[test]
    fn attack_different_key() {
        let other = SigningKey::generate();
        let tok = JwtManager::new(&other, JwtConfig::default())
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap()
            .0;
        assert!(matches!(
            manager().verify_access(tok.expose(), t0()),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn attack_tampered_payload() {
        let m = manager();
        let tok = m
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap()
            .0;
        let parts: Vec<&str> = tok.expose().split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = json!("admin");
        let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert!(matches!(m.verify_access(&tampered, t0()), Err(AuthError::InvalidToken)));
        // A flipped signature bit fails too.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert!(matches!(m.verify_access(&flipped, t0()), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn attack_expired_with_leeway() {
        let m = manager();
        let tok = m
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap()
            .0;
        let exp = t0() + chrono::Duration::minutes(15);
        m.verify_access(tok.expose(), exp).unwrap();
        m.verify_access(tok.expose(), exp + chrono::Duration::seconds(30))
            .unwrap();
        assert!(matches!(
            m.verify_access(tok.expose(), exp + chrono::Duration::seconds(31)),
            Err(AuthError::TokenExpired)
        ));
        // A refresh token expires after 7 days.
        let r = m
            .issue(&subject(), SessionId::new(), TokenType::Refresh, t0())
            .unwrap()
            .0;
        assert!(matches!(
            m.verify_refresh(r.expose(), t0() + chrono::Duration::days(8)),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn attack_nbf_and_iat_in_the_future() {
        let m = manager();
        let tok = m
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap()
            .0;
        m.verify_access(tok.expose(), t0() - chrono::Duration::seconds(30))
            .unwrap();
        assert!(matches!(
            m.verify_access(tok.expose(), t0() - chrono::Duration::seconds(31)),
            Err(AuthError::TokenNotYetValid)
        ));
        let mut p = valid_payload();
        p["nbf"] = json!(t0().timestamp() + 3600);
        let tok = forge(&hs256(), &p, &key().0);
        assert!(matches!(m.verify_access(&tok, t0()), Err(AuthError::TokenNotYetValid)));
    }

    #[test]
    fn attack_times_given_as_strings_or_floats_or_missing() {
        let m = manager();
        for (field, value) in [
            ("exp", json!((t0().timestamp() + 900).to_string())),
            ("nbf", json!(t0().timestamp().to_string())),
            ("iat", json!(t0().timestamp().to_string())),
            ("exp", json!(1.75e9 + 900.5)),
            ("exp", json!(null)),
        ] {
            let mut p = valid_payload();
            p[field] = value.clone();
            let tok = forge(&hs256(), &p, &key().0);
            assert!(
                matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)),
                "{field}={value}"
            );
        }
        for field in [
            "exp", "nbf", "iat", "sub", "iss", "aud", "jti", "typ", "sid", "ver", "role",
        ] {
            let mut p = valid_payload();
            p.as_object_mut().unwrap().remove(field);
            let tok = forge(&hs256(), &p, &key().0);
            assert!(
                matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)),
                "without {field}"
            );
        }
    }

    #[test]
    fn attack_wrong_issuer_or_audience() {
        let m = manager();
        for (field, value) in [
            ("iss", json!("evil")),
            ("aud", json!("other-api")),
            ("aud", json!(["other-api"])),
            ("iss", json!(["lqx"])),
        ] {
            let mut p = valid_payload();
            p[field] = value.clone();
            let tok = forge(&hs256(), &p, &key().0);
            assert!(
                matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)),
                "{field}={value}"
            );
        }
        // The same key under another issuer configuration is refused.
        let other = JwtManager::new(
            &key(),
            JwtConfig {
                issuer: "someone-else".into(),
                ..JwtConfig::default()
            },
        );
        let tok = other
            .issue(&subject(), SessionId::new(), TokenType::Access, t0())
            .unwrap()
            .0;
        assert!(matches!(
            m.verify_access(tok.expose(), t0()),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn attack_oversized_token_refused_before_parsing() {
        let mut p = valid_payload();
        p["username"] = json!("a".repeat(MAX_TOKEN_LEN));
        let tok = forge(&hs256(), &p, &key().0);
        assert!(tok.len() > MAX_TOKEN_LEN);
        assert!(matches!(
            manager().verify_access(&tok, t0()),
            Err(AuthError::TokenTooLarge)
        ));
        let junk = "x".repeat(1 << 20);
        assert!(matches!(
            manager().verify_access(&junk, t0()),
            Err(AuthError::TokenTooLarge)
        ));
    }

    #[test]
    fn attack_garbage() {
        let m = manager();
        for g in [
            "",
            ".",
            "..",
            "a.b.c",
            "Bearer x",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9..",
            "\u{0}\u{1}.\u{2}.\u{3}",
            "ünïcödé.ünïcödé.ünïcödé",
            "a.b.c.d.e",
        ] {
            assert!(
                matches!(m.verify_access(g, t0()), Err(AuthError::InvalidToken)),
                "{g:?}"
            );
        }
        // Valid JSON of the wrong shape, correctly signed.
        let tok = forge(&hs256(), &json!([1, 2, 3]), &key().0);
        assert!(matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)));
        let mut p = valid_payload();
        p["role"] = json!("root");
        let tok = forge(&hs256(), &p, &key().0);
        assert!(matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn access_and_refresh_never_pass_for_each_other() {
        let m = manager();
        let pair = m.issue_pair(&subject(), SessionId::new(), t0()).unwrap();
        assert!(matches!(
            m.verify_access(pair.refresh_token.expose(), t0()),
            Err(AuthError::WrongTokenType { expected: "access" })
        ));
        assert!(matches!(
            m.verify_refresh(pair.access_token.expose(), t0()),
            Err(AuthError::WrongTokenType { expected: "refresh" })
        ));
        let mut p = valid_payload();
        p["typ"] = json!("id");
        let tok = forge(&hs256(), &p, &key().0);
        assert!(matches!(m.verify_access(&tok, t0()), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn a_remembered_token_still_expires_and_keeps_its_type() {
        let m = manager();
        let pair = m.issue_pair(&subject(), SessionId::new(), t0()).unwrap();
        let token = pair.access_token.expose();
        assert!(m.verify_access(token, t0()).is_ok());
        assert!(m.verify_access(token, t0()).is_ok(), "second use, from the memo");
        assert!(matches!(
            m.verify_refresh(token, t0()),
            Err(AuthError::WrongTokenType { expected: "refresh" })
        ));
        let late = t0() + chrono::Duration::seconds(15 * 60 + 61);
        assert!(matches!(m.verify_access(token, late), Err(AuthError::TokenExpired)));
        // A token differing in one character of its signature is checked afresh.
        let mut forged = token.to_string();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(m.verify_access(&forged, t0()), Err(AuthError::InvalidToken)));
        // Another key's manager never sees this one's memo.
        let other = JwtManager::new(
            &SigningKey::from_bytes(b"another-key-another-key-another-key!".to_vec()).unwrap(),
            JwtConfig::default(),
        );
        assert!(matches!(other.verify_access(token, t0()), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn short_and_malformed_keys_are_refused() {
        assert!(matches!(
            SigningKey::from_bytes(vec![7; 31]),
            Err(AuthError::KeyTooShort { len: 31, min: 32 })
        ));
        SigningKey::from_bytes(vec![7; 32]).unwrap();
        assert!(matches!(
            SigningKey::from_base64("c2hvcnQ"),
            Err(AuthError::KeyTooShort { .. })
        ));
        assert!(matches!(
            SigningKey::from_base64("not base64 !!"),
            Err(AuthError::KeyEncoding)
        ));
        let k = SigningKey::generate();
        assert_eq!(k.0.len(), GENERATED_KEY_LEN);
        assert_eq!(SigningKey::from_base64(k.to_base64().expose()).unwrap(), k);
        let standard = base64::engine::general_purpose::STANDARD.encode(&k.0);
        assert_eq!(SigningKey::from_base64(&format!(" {standard}\n")).unwrap(), k);
        assert!(!format!("{k:?}").contains(k.to_base64().expose()));
        assert!(!format!("{:?}", manager()).contains("0123456789abcdef"));
    }

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("lqx-jwt-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_file_is_generated_once_private_and_reloaded() {
        let dir = temp_dir();
        let k1 = SigningKey::load_or_generate(&dir).unwrap();
        let k2 = SigningKey::load_or_generate(&dir).unwrap();
        assert_eq!(k1, k2, "the second start reads the first key");
        let path = dir.join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                SigningKey::load_or_generate(&dir),
                Err(AuthError::KeyFileMode { mode: 0o644, .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(KEY_FILE)]);
        // A short key in the file is refused at start-up.
        std::fs::write(&path, "c2hvcnQ\n").unwrap();
        assert!(matches!(
            SigningKey::load_or_generate(&dir),
            Err(AuthError::KeyTooShort { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = temp_dir();
        let keys: Vec<SigningKey> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SigningKey::load_or_generate(&dir).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
