//! The provider's discovery document and signing keys, fetched over HTTP and cached.
//!
//! Keys are cached by `kid`. A token naming a `kid` the cache lacks refetches the JWKS (the
//! provider rotated its keys), but at most once per `min_refetch`: a stream of tokens with
//! made-up `kid`s costs the provider one request per interval, not one per token. The
//! whole set is also refetched when older than `max_age`, so retired keys leave the cache.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, jwk::Jwk};
use serde::Deserialize;
use tokio::time::Instant;

use super::config::secure_or_loopback;
use crate::{Error, Result};

/// Largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 512 * 1024;

/// The parts of `/.well-known/openid-configuration` lqx uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    #[serde(default)]
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: String,
}

/// One usable verification key.
#[derive(Clone)]
pub struct ProviderKey {
    pub key: DecodingKey,
    pub family: AlgorithmFamily,
    /// The key's own `alg`, when the JWKS states one: tokens must then use exactly it.
    pub alg: Option<Algorithm>,
}

impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKey")
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    discovery: Option<Discovery>,
    keys: HashMap<String, ProviderKey>,
    fetched: Option<Instant>,
    fetches: u64,
}

/// Discovery and JWKS of one issuer, shared by every SSO login.
pub struct ProviderKeys {
    issuer: String,
    http: reqwest::Client,
    min_refetch: Duration,
    max_age: Duration,
    cache: Mutex<Cache>,
    /// Serializes fetches: concurrent logins with a new `kid` fetch once.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKeys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("the OpenID provider's {what} could not be read: {e}"))
}

impl ProviderKeys {
    /// `ca_cert`: a PEM file of CA certificates trusted for the provider besides the web
    /// roots (a provider behind a company CA).
    pub fn new(
        issuer: &str,
        min_refetch: Duration,
        max_age: Duration,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self> {
        let mut http = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Error::invalid("auth.oidc.ca_cert", format!("cannot read {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::invalid(
                        "auth.oidc.ca_cert",
                        format!("{} holds no PEM certificate", path.display()),
                    )
                })?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // Discovery and keys come from the issuer's own URLs, not wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            // Fetches are rare (minutes apart): a fresh connection each time, never a pooled
            // one the provider closed meanwhile (a restart during key rotation).
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::internal(anyhow::anyhow!("HTTP client: {e}")))?;
        Ok(ProviderKeys {
            issuer: issuer.trim_end_matches('/').to_string(),
            http,
            min_refetch,
            max_age,
            cache: Mutex::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many times the JWKS was fetched (tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.cache().fetches
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, what: &str, url: &str) -> Result<T> {
        let resp = self.http.get(url).send().await.map_err(|e| unavailable(what, e))?;
        if !resp.status().is_success() {
            return Err(unavailable(what, format!("HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| unavailable(what, e))?;
        if body.len() > MAX_DOCUMENT {
            return Err(unavailable(what, "too large"));
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(what, e))
    }

    /// The discovery document (fetched once, then cached). Its `issuer` must be the
    /// configured one exactly (OpenID Connect Discovery 4.3), and its key URL https or loopback.
    pub async fn discovery(&self) -> Result<Discovery> {
        if let Some(d) = self.cache().discovery.clone() {
            return Ok(d);
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let d: Discovery = self.get_json("discovery document", &url).await?;
        if d.issuer.trim_end_matches('/') != self.issuer {
            return Err(unavailable(
                "discovery document",
                format!("it names issuer {:?}, not the configured {:?}", d.issuer, self.issuer),
            ));
        }
        if !secure_or_loopback(&d.jwks_uri) {
            return Err(unavailable("discovery document", "jwks_uri is not https"));
        }
        self.cache().discovery = Some(d.clone());
        Ok(d)
    }

    /// The key `kid` (`None`: the token names none, which only a one-key set answers).
    /// Refetches on a miss when the last fetch is older than `min_refetch`, and whenever
    /// the cache is older than `max_age`.
    pub async fn key(&self, kid: Option<&str>) -> Result<Option<ProviderKey>> {
        let (hit, fetched) = {
            let c = self.cache();
            (find(&c.keys, kid), c.fetched)
        };
        let stale = fetched.is_none_or(|t| t.elapsed() >= self.max_age);
        if hit.is_some() && !stale {
            return Ok(hit);
        }
        if fetched.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Ok(hit);
        }
        let _one = self.fetching.lock().await;
        // Another login may have fetched while this one waited.
        let fetched_now = self.cache().fetched;
        if fetched_now != fetched && fetched_now.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Ok(find(&self.cache().keys, kid));
        }
        match self.fetch_keys().await {
            Ok(keys) => {
                let mut c = self.cache();
                c.keys = keys;
                c.fetched = Some(Instant::now());
                c.fetches += 1;
                Ok(find(&c.keys, kid))
            }
            Err(e) => {
                // A failed fetch counts against the interval too: a provider that is down is
                // asked once per interval, not once per login.
                self.cache().fetched = Some(Instant::now());
                match hit {
                    // A provider down for a moment must not log everybody out.
                    Some(k) => {
                        tracing::warn!(issuer = %self.issuer, error = %e, "refreshing the provider's keys failed; keeping the cached ones");
                        Ok(Some(k))
                    }
                    None => Err(e),
                }
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, ProviderKey>> {
        let d = self.discovery().await?;
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let set: RawSet = self.get_json("signing keys (JWKS)", &d.jwks_uri).await?;
        let mut keys = HashMap::new();
        for (i, raw) in set.keys.into_iter().enumerate() {
            // Keys lqx cannot use (encryption keys, unknown types, symmetric keys) are skipped
            // one by one: a provider may publish more than signing keys.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
            let family = key.family();
            if family == AlgorithmFamily::Hmac {
                continue;
            }
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
            keys.insert(kid, ProviderKey { key, family, alg });
        }
        if keys.is_empty() {
            return Err(unavailable("signing keys (JWKS)", "it holds no usable signing key"));
        }
        Ok(keys)
    }
}

fn find(keys: &HashMap<String, ProviderKey>, kid: Option<&str>) -> Option<ProviderKey> {
    match kid {
        Some(k) => keys.get(k).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}
