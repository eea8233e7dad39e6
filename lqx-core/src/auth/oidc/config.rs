//! The `auth.oidc` settings.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::model::Role;
use crate::{Error, Result};

/// One claim-mapping rule: members of `group` get `role` (globally, or in `project`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub group: String,
    pub role: Role,
    /// A project the role holds in; none: the global role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A configured OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its tokens and discovery document state it.
    /// `https://`, or `http://` on a loopback address (tests, a provider on the same host).
    pub issuer: String,
    /// The client id the CLI logs in with (a public client: device flow and PKCE).
    pub client_id: String,
    /// The `aud` a token must hold; empty: `client_id` (an ID token's audience).
    pub audience: String,
    /// Scopes the CLI asks for.
    pub scopes: Vec<String>,
    /// Signature algorithms accepted (asymmetric only).
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// A token whose `kid` is unknown refetches the keys at most this often.
    #[serde(with = "humantime_serde")]
    pub jwks_min_refetch: Duration,
    /// Keys are refetched when older than this, whatever the tokens name.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// The claim holding the user's groups.
    pub groups_claim: String,
    /// The claim proposing the lqx username (made unique when taken).
    pub username_claim: String,
    /// Group -> role rules; a user gets the highest global role of the rules matching its
    /// groups, and the project roles of the rules naming a project.
    pub role_rules: Vec<RoleRule>,
    /// The global role of a user no rule matches; none: such users may not log in.
    pub default_role: Option<Role>,
    /// How long an SSO session may be refreshed before its user must log in at the provider
    /// again (never longer than the session's own absolute lifetime). Refreshing does not ask
    /// the provider, so this bounds how long a user removed or regrouped there keeps access.
    #[serde(with = "humantime_serde")]
    pub session_max_age: Duration,
    /// A PEM file of CA certificates trusted for the provider besides the web roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            client_id: String::new(),
            audience: String::new(),
            scopes: ["openid", "profile", "email", "groups"].map(String::from).to_vec(),
            algorithms: ["RS256", "ES256", "PS256", "EdDSA"].map(String::from).to_vec(),
            leeway: Duration::from_secs(60),
            jwks_min_refetch: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
            groups_claim: "groups".into(),
            username_claim: "preferred_username".into(),
            role_rules: Vec::new(),
            default_role: None,
            session_max_age: Duration::from_secs(8 * 3600),
            ca_cert: None,
        }
    }
}

/// Whether `url` is `https://`, or `http://` to a loopback host.
pub fn secure_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

impl OidcConfig {
    /// The audience tokens must name.
    pub fn expected_audience(&self) -> &str {
        if self.audience.is_empty() {
            &self.client_id
        } else {
            &self.audience
        }
    }

    /// The accepted algorithms, checked: known, asymmetric, at least one.
    pub fn allowed_algorithms(&self) -> Result<Vec<Algorithm>> {
        if self.algorithms.is_empty() {
            return Err(Error::invalid(
                "auth.oidc.algorithms",
                "must name at least one algorithm",
            ));
        }
        self.algorithms
            .iter()
            .map(|a| {
                let alg: Algorithm = a
                    .parse()
                    .map_err(|_| Error::invalid("auth.oidc.algorithms", format!("{a:?} is not a JWS algorithm")))?;
                if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                    // A provider's keys are public: an HMAC "signature" keyed by one proves nothing.
                    return Err(Error::invalid(
                        "auth.oidc.algorithms",
                        format!("{a} is symmetric; only public-key algorithms are accepted"),
                    ));
                }
                Ok(alg)
            })
            .collect()
    }

    /// Checks the settings (start-up).
    pub fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() || self.client_id.is_empty() {
            return Err(Error::invalid("auth.oidc", "issuer and client_id are required"));
        }
        if !secure_or_loopback(&self.issuer) {
            return Err(Error::invalid(
                "auth.oidc.issuer",
                "must be https:// (http:// only on a loopback address)",
            ));
        }
        self.allowed_algorithms()?;
        if self.leeway > Duration::from_secs(300) {
            return Err(Error::invalid("auth.oidc.leeway", "must be at most 5m"));
        }
        if self.jwks_min_refetch.is_zero() || self.jwks_max_age < self.jwks_min_refetch {
            return Err(Error::invalid(
                "auth.oidc.jwks_min_refetch",
                "must be > 0 and at most jwks_max_age",
            ));
        }
        if self.session_max_age.is_zero() {
            return Err(Error::invalid("auth.oidc.session_max_age", "must be more than 0s"));
        }
        if self.groups_claim.is_empty() || self.username_claim.is_empty() {
            return Err(Error::invalid(
                "auth.oidc",
                "groups_claim and username_claim must not be empty",
            ));
        }
        if let Some(r) = self.role_rules.iter().find(|r| r.group.is_empty()) {
            return Err(Error::invalid(
                "auth.oidc.role_rules",
                format!("a rule for role {} has no group", r.role),
            ));
        }
        if self.role_rules.is_empty() && self.default_role.is_none() {
            return Err(Error::invalid(
                "auth.oidc",
                "give role_rules or a default_role: otherwise nobody can log in",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "lqx".into(),
            default_role: Some(Role::Viewer),
            ..Default::default()
        }
    }

    #[test]
    fn symmetric_none_and_unknown_algorithms_are_refused() {
        valid().validate().unwrap();
        for bad in [
            vec!["HS256"],
            vec!["RS256", "HS512"],
            vec!["none"],
            vec!["RS999"],
            vec![],
        ] {
            let c = OidcConfig {
                algorithms: bad.iter().map(|s| s.to_string()).collect(),
                ..valid()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn issuer_must_be_https_or_loopback() {
        for (iss, ok) in [
            ("https://id.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost/realms/x", true),
            ("http://id.example.com", false),
            ("http://127.0.0.1.evil.com", false),
            ("ftp://x", false),
        ] {
            let c = OidcConfig {
                issuer: iss.into(),
                ..valid()
            };
            assert_eq!(c.validate().is_ok(), ok, "{iss}");
        }
    }

    #[test]
    fn parses_from_yaml_with_defaults() {
        let c: OidcConfig = serde_norway::from_str(
            "issuer: https://id.example.com\nclient_id: lqx\nleeway: 30s\nrole_rules:\n  - {group: ops, role: operator}\n  - {group: team-a, role: admin, project: a}\n",
        )
        .unwrap();
        assert_eq!(c.leeway, Duration::from_secs(30));
        assert_eq!(c.session_max_age, Duration::from_secs(8 * 3600));
        assert_eq!(c.expected_audience(), "lqx");
        assert_eq!(c.role_rules[1].project.as_deref(), Some("a"));
        c.validate().unwrap();
        assert!(
            serde_norway::from_str::<OidcConfig>("isuer: x").is_err(),
            "typos are refused"
        );
    }
}
