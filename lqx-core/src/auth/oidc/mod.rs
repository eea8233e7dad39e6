//! Single sign-on with an OpenID provider: lqx accepts the provider's ID tokens (or JWT access
//! tokens addressed to it) and gives their holder an lqx session, as a password login does.
//!
//! - [`config`]: the `auth.oidc` settings, checked at start-up (algorithm allow-list without
//!   `none` or HS*, role rules).
//! - [`provider`]: issuer discovery and the provider's signing keys (JWKS), cached; a token
//!   naming a key the cache lacks makes it refetch, at most once per `jwks_min_refetch`, so
//!   key rotation works and forged `kid`s cannot make lqx hammer the provider.
//! - [`verify`]: the token checks: size, algorithm (allow-list, and it must match the key's
//!   type, which defeats the HS256-with-the-public-key confusion), signature, `iss`, `aud`
//!   (and `azp`), `exp`/`nbf`/`iat` against an injected clock with a leeway, `nonce`.
//! - [`mapping`]: the provider's groups to lqx roles by configured rules.
//! - [`login`]: the exchange: throttled like a password login, users linked by (issuer,
//!   subject), never by username, audited.

pub mod config;
pub mod login;
pub mod mapping;
pub mod provider;
pub mod verify;

pub use config::{OidcConfig, RoleRule};
pub use login::{SsoLogin, SsoPublicSettings};
pub use mapping::{Mapped, map_groups};
pub use provider::{Discovery, ProviderKeys};
pub use verify::{IdClaims, verify_token};
