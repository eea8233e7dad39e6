//! API keys (and the other opaque secrets: node credentials, join tokens), and parsing of
//! the `Authorization: Bearer ...` header.
//!
//! Format: `<tag>_<prefix>_<secret>`: tag `lqx` (API key), `lqxn` (node credential) or `lqxj`
//! (join token); `prefix`, 8 characters of `a-z0-9`, public and unique, used to find the
//! record; `secret`, 32 random bytes in unpadded base64url (43 characters). The tag lets
//! secret scanners and the Bearer parser recognise a key without a lookup.
//!
//! Only SHA-256 of the whole string is stored. A slow hash is not needed: 256 bits of
//! randomness cannot be guessed, so the hash only has to be one-way. Hashes are compared in
//! constant time.

use chrono::{DateTime, Utc};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Secret, jwt::MAX_TOKEN_LEN};
use crate::model::{ApiKey, ApiKeyId, Role, User};

/// Length of the public prefix.
pub const PREFIX_LEN: usize = 8;
/// Length of the secret part (32 bytes, base64url without padding).
pub const SECRET_LEN: usize = 43;
/// Lifetime of a key created with `ttl_seconds = 0`.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);
/// Longest lifetime a key may be given.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);
/// Longest key name.
pub const MAX_NAME_LEN: usize = 64;

/// Which kind of opaque secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    ApiKey,
    NodeCredential,
    JoinToken,
}

impl SecretKind {
    pub fn tag(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "lqx",
            SecretKind::NodeCredential => "lqxn",
            SecretKind::JoinToken => "lqxj",
        }
    }
}

/// A freshly generated secret: show `secret` once, store `prefix` and `hash`.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    pub prefix: String,
    pub secret: Secret,
    /// Hex SHA-256 of the secret.
    pub hash: String,
}

/// Generates a secret of `kind`.
pub fn generate(kind: SecretKind) -> GeneratedSecret {
    use base64::Engine as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // ThreadRng is a CSPRNG (ChaCha12) seeded from the OS.
    let mut rng = rand::rng();
    let prefix: String = (0..PREFIX_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let secret = format!("{}_{prefix}_{body}", kind.tag());
    let hash = hash_secret(&secret);
    GeneratedSecret {
        prefix,
        secret: Secret::new(secret),
        hash,
    }
}

/// Hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` matches a stored hex hash, in constant time. A malformed stored hash
/// matches nothing.
pub fn verify_secret(secret: &str, stored_hash_hex: &str) -> bool {
    let Ok(stored) = hex::decode(stored_hash_hex) else {
        return false;
    };
    if stored.len() != 32 {
        return false;
    }
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    bool::from(digest.ct_eq(stored.as_slice()))
}

/// The prefix of a well-formed secret of `kind`, or `None`.
pub fn parse_secret(kind: SecretKind, s: &str) -> Option<&str> {
    let rest = s.strip_prefix(kind.tag())?.strip_prefix('_')?;
    if rest.len() != PREFIX_LEN + 1 + SECRET_LEN || !rest.is_ascii() {
        return None;
    }
    let (prefix, body) = rest.split_at(PREFIX_LEN);
    let body = body.strip_prefix('_')?;
    let prefix_ok = prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let body_ok = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (prefix_ok && body_ok).then_some(prefix)
}

/// A credential from an `Authorization` header, classified without any lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    Jwt(&'a str),
    ApiKey { prefix: &'a str, secret: &'a str },
    NodeCredential { prefix: &'a str, secret: &'a str },
}

impl std::fmt::Debug for Bearer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bearer::Jwt(_) => f.write_str("Bearer::Jwt(<redacted>)"),
            Bearer::ApiKey { prefix, .. } => write!(f, "Bearer::ApiKey({prefix})"),
            Bearer::NodeCredential { prefix, .. } => write!(f, "Bearer::NodeCredential({prefix})"),
        }
    }
}

/// Parses an `Authorization` header value: `Bearer <credential>` (scheme case-insensitive).
/// `None` or an empty value is [`AuthError::MissingCredentials`]; anything else that is not a
/// well-formed JWT, API key or node credential is [`AuthError::InvalidToken`].
pub fn parse_authorization(header: Option<&str>) -> Result<Bearer<'_>, AuthError> {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(AuthError::MissingCredentials);
    };
    if h.len() > MAX_TOKEN_LEN + 16 {
        return Err(AuthError::TokenTooLarge);
    }
    let (scheme, rest) = h.split_once(' ').ok_or(AuthError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidToken);
    }
    let token = rest.trim_start_matches(' ');
    // RFC 6750 b64token characters only.
    let charset_ok = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'='));
    if !charset_ok {
        return Err(AuthError::InvalidToken);
    }
    if let Some(prefix) = parse_secret(SecretKind::ApiKey, token) {
        return Ok(Bearer::ApiKey { prefix, secret: token });
    }
    if let Some(prefix) = parse_secret(SecretKind::NodeCredential, token) {
        return Ok(Bearer::NodeCredential { prefix, secret: token });
    }
    if token.starts_with("lqx") {
        // Looks like one of ours but malformed (or a join token, which is no bearer).
        return Err(AuthError::InvalidApiKey);
    }
    if token.bytes().filter(|&b| b == b'.').count() == 2 {
        return Ok(Bearer::Jwt(token));
    }
    Err(AuthError::InvalidToken)
}

/// Checks a presented key against its stored record (found by prefix): hash in constant
/// time, then revoked and expired.
pub fn check_key(key: &ApiKey, presented: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
    if !verify_secret(presented, &key.secret_hash) || key.revoked_at.is_some() {
        return Err(AuthError::InvalidApiKey);
    }
    if now >= key.expires_at {
        return Err(AuthError::ApiKeyExpired);
    }
    Ok(())
}

/// A key's role may be no higher than its creator's.
pub fn check_role(creator: Role, requested: Role) -> Result<(), AuthError> {
    if requested > creator {
        return Err(AuthError::RoleTooHigh { requested, creator });
    }
    Ok(())
}

/// The expiry of a key created at `now` with `ttl_seconds` (0: [`DEFAULT_TTL`]).
pub fn expiry(now: DateTime<Utc>, ttl_seconds: u64) -> Result<DateTime<Utc>, AuthError> {
    let ttl = if ttl_seconds == 0 {
        DEFAULT_TTL
    } else {
        std::time::Duration::from_secs(ttl_seconds)
    };
    if ttl > MAX_TTL {
        return Err(AuthError::Invalid {
            field: "ttl_seconds",
            why: format!("must be at most {} (366 days)", MAX_TTL.as_secs()),
        });
    }
    let d = chrono::Duration::from_std(ttl).map_err(|_| AuthError::Invalid {
        field: "ttl_seconds",
        why: "out of range".into(),
    })?;
    Ok(now + d)
}

/// Builds a new key for `creator`: checks the name, role and lifetime, generates the secret.
/// Returns the record to store and the secret to show once.
pub fn new_api_key(
    creator: &User,
    name: &str,
    role: Role,
    project_id: crate::model::ProjectId,
    ttl_seconds: u64,
    now: DateTime<Utc>,
) -> Result<(ApiKey, Secret), AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid {
            field: "name",
            why: format!("must be 1 to {MAX_NAME_LEN} printable characters"),
        });
    }
    check_role(creator.role, role)?;
    let expires_at = expiry(now, ttl_seconds)?;
    let g = generate(SecretKind::ApiKey);
    let key = ApiKey {
        id: ApiKeyId::new(),
        name: name.to_owned(),
        owner_id: creator.id,
        role,
        project_id,
        prefix: g.prefix,
        secret_hash: g.hash,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((key, g.secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn creator(role: Role) -> User {
        User {
            id: UserId::new(),
            username: "ci-owner".into(),
            email: String::new(),
            role,
            disabled: false,
            password_hash: String::new(),
            token_version: 0,
            created_at: t0(),
            updated_at: t0(),
            password_changed_at: t0(),
            last_login_at: None,
        }
    }

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        for kind in [SecretKind::ApiKey, SecretKind::NodeCredential, SecretKind::JoinToken] {
            let g = generate(kind);
            let s = g.secret.expose();
            assert_eq!(s.len(), kind.tag().len() + 1 + PREFIX_LEN + 1 + SECRET_LEN, "{kind:?}");
            assert_eq!(parse_secret(kind, s), Some(g.prefix.as_str()));
            assert_eq!(g.hash, hash_secret(s));
            assert_eq!(g.hash.len(), 64);
            assert!(verify_secret(s, &g.hash));
            assert!(!format!("{g:?}").contains(s));
        }
        let a = generate(SecretKind::ApiKey);
        let b = generate(SecretKind::ApiKey);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.prefix, b.prefix);
        // Kinds do not parse as each other.
        let n = generate(SecretKind::NodeCredential);
        assert_eq!(parse_secret(SecretKind::ApiKey, n.secret.expose()), None);
        assert_eq!(parse_secret(SecretKind::NodeCredential, a.secret.expose()), None);
    }

    #[test]
    fn malformed_secrets_do_not_parse() {
        let g = generate(SecretKind::ApiKey);
        let s = g.secret.expose();
        let upper = s.replacen(&g.prefix, &g.prefix.to_uppercase(), 1);
        for bad in [
            "",
            "lqx_",
            &s[..s.len() - 1],
            &format!("{s}A"),
            &s.replacen("lqx_", "lqy_", 1),
            &upper,
            &s.replace(&s[s.len() - 3..], "=/+"),
        ] {
            if bad != s {
                assert_eq!(parse_secret(SecretKind::ApiKey, bad), None, "{bad:?}");
            }
        }
    }

    #[test]
    fn verification_is_exact() {
        let g = generate(SecretKind::ApiKey);
        let s = g.secret.expose();
        let mut wrong = s.to_owned().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
        assert!(!verify_secret(std::str::from_utf8(&wrong).unwrap(), &g.hash));
        assert!(!verify_secret(s, "not-hex"));
        assert!(!verify_secret(s, &g.hash[..62]));
        assert!(!verify_secret(s, ""));
    }

    #[test]
    fn bearer_header_is_classified() {
        let key = generate(SecretKind::ApiKey);
        let node = generate(SecretKind::NodeCredential);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        assert_eq!(
            parse_authorization(Some(&format!("Bearer {jwt}"))).unwrap(),
            Bearer::Jwt(jwt)
        );
        assert_eq!(
            parse_authorization(Some(&format!("bearer   {jwt} "))).unwrap(),
            Bearer::Jwt(jwt)
        );
        match parse_authorization(Some(&format!("Bearer {}", key.secret.expose()))).unwrap() {
            Bearer::ApiKey { prefix, secret } => {
                assert_eq!(prefix, key.prefix);
                assert_eq!(secret, key.secret.expose());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_authorization(Some(&format!("Bearer {}", node.secret.expose()))).unwrap(),
            Bearer::NodeCredential { .. }
        ));
        assert!(matches!(parse_authorization(None), Err(AuthError::MissingCredentials)));
        assert!(matches!(
            parse_authorization(Some("  ")),
            Err(AuthError::MissingCredentials)
        ));
        for bad in [
            "Bearer",
            "Bearer ",
            "Basic YWRtaW46YWRtaW4=",
            "Token abc.def.ghi",
            "Bearer abc",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer a.b.c\u{0}",
            "Bearer a.b.c d",
            "Bearer ünï.cö.dé",
            "Bearer\ta.b.c",
        ] {
            assert!(
                matches!(parse_authorization(Some(bad)), Err(AuthError::InvalidToken)),
                "{bad:?}"
            );
        }
        let join = generate(SecretKind::JoinToken);
        assert!(matches!(
            parse_authorization(Some(&format!("Bearer {}", join.secret.expose()))),
            Err(AuthError::InvalidApiKey)
        ));
        assert!(matches!(
            parse_authorization(Some("Bearer lqx_short")),
            Err(AuthError::InvalidApiKey)
        ));
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 100));
        assert!(matches!(
            parse_authorization(Some(&huge)),
            Err(AuthError::TokenTooLarge)
        ));
        // The Debug form never shows the secret.
        let header = format!("Bearer {}", key.secret.expose());
        let b = parse_authorization(Some(&header)).unwrap();
        assert!(!format!("{b:?}").contains(key.secret.expose()));
        assert!(!format!("{:?}", Bearer::Jwt(jwt)).contains(jwt));
    }

    #[test]
    fn keys_are_created_checked_and_expire() {
        let op = creator(Role::Operator);
        let (k, secret) = new_api_key(
            &op,
            " ci deploy ",
            Role::Viewer,
            crate::model::ProjectId::DEFAULT,
            0,
            t0(),
        )
        .unwrap();
        assert_eq!(k.name, "ci deploy");
        assert_eq!(k.owner_id, op.id);
        assert_eq!(k.expires_at, t0() + chrono::Duration::days(90));
        assert_eq!(
            parse_secret(SecretKind::ApiKey, secret.expose()),
            Some(k.prefix.as_str())
        );
        check_key(&k, secret.expose(), t0()).unwrap();
        assert!(matches!(
            check_key(&k, secret.expose(), k.expires_at),
            Err(AuthError::ApiKeyExpired)
        ));
        let other = generate(SecretKind::ApiKey);
        assert!(matches!(
            check_key(&k, other.secret.expose(), t0()),
            Err(AuthError::InvalidApiKey)
        ));
        let revoked = ApiKey {
            revoked_at: Some(t0()),
            ..k.clone()
        };
        assert!(matches!(
            check_key(&revoked, secret.expose(), t0()),
            Err(AuthError::InvalidApiKey)
        ));
        // The stored record never holds the secret.
        assert!(!serde_json::to_string(&k).unwrap().contains(secret.expose()));
    }

    #[test]
    fn key_role_is_no_higher_than_the_creators() {
        for creator_role in Role::ALL {
            for requested in Role::ALL {
                let r = new_api_key(
                    &creator(creator_role),
                    "k",
                    requested,
                    crate::model::ProjectId::DEFAULT,
                    3600,
                    t0(),
                );
                assert_eq!(r.is_ok(), requested <= creator_role, "{creator_role} -> {requested}");
                if requested > creator_role {
                    assert!(matches!(r, Err(AuthError::RoleTooHigh { .. })));
                }
            }
        }
    }

    #[test]
    fn names_and_lifetimes_are_bounded() {
        let admin = creator(Role::Admin);
        assert!(matches!(
            new_api_key(&admin, "  ", Role::Viewer, crate::model::ProjectId::DEFAULT, 0, t0()),
            Err(AuthError::Invalid { field: "name", .. })
        ));
        assert!(
            new_api_key(
                &admin,
                &"n".repeat(65),
                Role::Viewer,
                crate::model::ProjectId::DEFAULT,
                0,
                t0()
            )
            .is_err()
        );
        assert!(new_api_key(&admin, "a\nb", Role::Viewer, crate::model::ProjectId::DEFAULT, 0, t0()).is_err());
        assert_eq!(expiry(t0(), 3600).unwrap(), t0() + chrono::Duration::hours(1));
        assert!(expiry(t0(), MAX_TTL.as_secs()).is_ok());
        assert!(matches!(
            expiry(t0(), MAX_TTL.as_secs() + 1),
            Err(AuthError::Invalid {
                field: "ttl_seconds",
                ..
            })
        ));
        assert!(expiry(t0(), u64::MAX).is_err());
    }
}
