//! Authentication and authorization.
//!
//! Security model, in short:
//! - Users log in with a password (argon2id, [`password`]); login is throttled per account and
//!   per client address ([`throttle`]) and answers an unknown user as slowly as a wrong
//!   password.
//! - A login yields an access token (15 min) and a refresh token (7 days), HS256 JWTs with a
//!   pinned algorithm and a key of at least 32 random bytes ([`jwt`]). Refresh tokens rotate
//!   and work once; a replayed one revokes its whole login session ([`session`]).
//! - Every request's access token is checked against its session and its user (token version,
//!   disabled, role), so logout, password or role changes, disabling and deleting take effect
//!   at once ([`session::check_access`]).
//! - CI and automation use API keys: opaque 256-bit secrets stored as SHA-256, compared in
//!   constant time, with a role no higher than their creator's and an expiry ([`apikey`]).
//! - One table says what every RPC needs, and which role holds which permission ([`rbac`]); an
//!   RPC missing from it is denied and stops the server from starting. "No credential" is
//!   `unauthenticated`, "not enough" is `permission_denied`.
//! - Secrets (passwords, tokens, keys) are [`Secret`]s or records with hand-written `Debug`:
//!   they never reach logs, audit entries or error messages.

pub mod apikey;
pub mod audit;
pub mod audit_volume;
mod error;
pub mod hash_limit;
pub mod jwt;
pub mod oidc;
pub mod password;
pub mod projects;
pub mod rbac;
pub mod service;
pub mod session;
pub mod throttle;

pub use apikey::{Bearer, SecretKind, parse_authorization};
pub use audit::AuditNote;
pub use error::{AuthError, Secret};
pub use jwt::{Claims, JwtConfig, JwtManager, SigningKey, TokenPair, TokenSubject, TokenType, install_crypto_provider};
pub use rbac::{Access, Caller, authorize, check_complete, required, role_allows};
pub use service::{AuthMethod, AuthService, AuthSettings, Principal};
pub use session::{RefreshDecision, SessionPolicy, check_access, decide_refresh};
pub use throttle::{LoginThrottle, ThrottlePolicy};
