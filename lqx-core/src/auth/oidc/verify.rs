//! Verifying a provider's token. Every failure but expiry is the one `InvalidToken`, as for
//! lqx's own tokens: the caller learns nothing about which check failed (the log says, at
//! debug level, without the token).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::config::OidcConfig;
use super::provider::ProviderKeys;
use crate::auth::AuthError;
use crate::auth::jwt::MAX_TOKEN_LEN;

/// What lqx takes from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub issuer: String,
    pub subject: String,
    /// The `username_claim` (may be empty: the caller falls back to the subject).
    pub username: String,
    pub email: String,
    /// The `groups_claim`: a list of strings, or one string.
    pub groups: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

fn reject(why: &'static str) -> AuthError {
    tracing::debug!(reason = why, "provider token rejected");
    AuthError::InvalidToken
}

fn int(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        // Integer seconds only (a float or string time is refused, as for lqx's tokens).
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| reject("time claim is not an integer")),
        Some(_) => Err(reject("time claim is not a number")),
    }
}

fn string(claims: &Map<String, Value>, name: &str) -> String {
    claims.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Verifies `token` against the provider's keys and `config` at `now`. `nonce`: the one the
/// client sent with its authorization request (browser flow); a token carrying a nonce is
/// only accepted with the matching one, so a token minted for another login cannot be
/// replayed here without it.
pub async fn verify_token(
    token: &str,
    config: &OidcConfig,
    keys: &ProviderKeys,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IdClaims, crate::Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TokenTooLarge.into());
    }
    // `none` and unknown algorithms fail to parse here.
    let header = jsonwebtoken::decode_header(token).map_err(|_| reject("malformed header"))?;
    let allowed = config.allowed_algorithms()?;
    if !allowed.contains(&header.alg) {
        return Err(reject("algorithm not allowed").into());
    }
    let key = keys
        .key(header.kid.as_deref())
        .await?
        .ok_or_else(|| reject("unknown key id"))?;
    // The algorithm must fit the key: an RSA key never verifies an HS256 token (the
    // public-key-as-HMAC-secret confusion), nor an RS256 key a PS256 one it was not made for.
    if key.family != header.alg.family() || key.alg.is_some_and(|a| a != header.alg) {
        return Err(reject("algorithm does not match the key").into());
    }
    let claims = decode(token, &key.key, header.alg)?;
    check_claims(&claims, config, nonce, now).map_err(Into::into)
}

fn decode(token: &str, key: &jsonwebtoken::DecodingKey, alg: Algorithm) -> Result<Map<String, Value>, AuthError> {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    // Signature only: the claims are checked below, time against the given `now`.
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| {
            tracing::debug!(reason = ?e.kind(), "provider token rejected");
            AuthError::InvalidToken
        })
}

/// The claim checks after the signature.
pub fn check_claims(
    claims: &Map<String, Value>,
    config: &OidcConfig,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IdClaims, AuthError> {
    let issuer = string(claims, "iss");
    if issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
        return Err(reject("wrong issuer"));
    }
    let audience: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(reject("no audience")),
    };
    if !audience.contains(&config.expected_audience()) {
        return Err(reject("wrong audience"));
    }
    // OpenID Connect Core 3.1.3.7: with several audiences, the authorized party must be us.
    let azp = claims.get("azp").and_then(Value::as_str);
    if (audience.len() > 1 || azp.is_some()) && azp != Some(config.client_id.as_str()) {
        return Err(reject("wrong authorized party"));
    }
    let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(0);
    let now = now.timestamp();
    let exp = int(claims, "exp")?.ok_or_else(|| reject("no exp"))?;
    let iat = int(claims, "iat")?.ok_or_else(|| reject("no iat"))?;
    if now > exp.saturating_add(leeway) {
        return Err(AuthError::TokenExpired);
    }
    let nbf = int(claims, "nbf")?;
    if iat > now.saturating_add(leeway) || nbf.is_some_and(|n| n > now.saturating_add(leeway)) {
        return Err(AuthError::TokenNotYetValid);
    }
    let token_nonce = claims.get("nonce").and_then(Value::as_str);
    if token_nonce != nonce {
        return Err(reject("nonce mismatch"));
    }
    let subject = string(claims, "sub");
    if subject.is_empty() {
        return Err(reject("no subject"));
    }
    let groups = match claims.get(&config.groups_claim) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(IdClaims {
        issuer,
        subject,
        username: string(claims, &config.username_claim),
        email: string(claims, "email"),
        groups,
        expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "lqx".into(),
            ..Default::default()
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        let mut base = json!({"iss": "https://id.example.com", "aud": "lqx", "sub": "u1",
            "iat": 1000, "exp": 1600, "groups": ["a", "b"]});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        base.as_object().unwrap().clone()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn claim_checks() {
        let c = config();
        let ok = check_claims(&claims(json!({})), &c, None, at(1200)).unwrap();
        assert_eq!((ok.subject.as_str(), ok.groups.len()), ("u1", 2));
        let bad = |v: Value, nonce: Option<&str>, now: i64| check_claims(&claims(v), &c, nonce, at(now)).unwrap_err();
        assert!(matches!(
            bad(json!({"iss": "https://evil"}), None, 1200),
            AuthError::InvalidToken
        ));
        assert!(matches!(
            bad(json!({"aud": "other"}), None, 1200),
            AuthError::InvalidToken
        ));
        assert!(
            matches!(
                bad(json!({"aud": ["lqx", "other"]}), None, 1200),
                AuthError::InvalidToken
            ),
            "no azp"
        );
        check_claims(
            &claims(json!({"aud": ["lqx", "other"], "azp": "lqx"})),
            &c,
            None,
            at(1200),
        )
        .unwrap();
        assert!(matches!(
            bad(json!({"azp": "other"}), None, 1200),
            AuthError::InvalidToken
        ));
        // Leeway 60 s.
        check_claims(&claims(json!({})), &c, None, at(1660)).unwrap();
        assert!(matches!(bad(json!({}), None, 1661), AuthError::TokenExpired));
        assert!(matches!(bad(json!({}), None, 939), AuthError::TokenNotYetValid));
        assert!(matches!(
            bad(json!({"nbf": 1300}), None, 1200),
            AuthError::TokenNotYetValid
        ));
        assert!(matches!(
            bad(json!({"exp": "1600"}), None, 1200),
            AuthError::InvalidToken
        ));
        assert!(matches!(
            bad(json!({"exp": 1600.5}), None, 1200),
            AuthError::InvalidToken
        ));
        assert!(matches!(bad(json!({"sub": ""}), None, 1200), AuthError::InvalidToken));
        // Nonce: required when the token has one, and must match.
        check_claims(&claims(json!({"nonce": "n1"})), &c, Some("n1"), at(1200)).unwrap();
        assert!(matches!(
            bad(json!({"nonce": "n1"}), None, 1200),
            AuthError::InvalidToken
        ));
        assert!(matches!(
            bad(json!({"nonce": "n1"}), Some("n2"), 1200),
            AuthError::InvalidToken
        ));
        assert!(matches!(bad(json!({}), Some("n2"), 1200), AuthError::InvalidToken));
    }
}
