//! Password hashing (argon2id, PHC strings) and the password policy.
//!
//! Parameters: m = 19 MiB, t = 2, p = 1 (the OWASP argon2id baseline). Verifying uses the
//! parameters stored in the hash, so older hashes keep working; [`needs_rehash`] says when
//! one should be upgraded after a successful login.
//!
//! A login for an unknown user verifies the password against [`DUMMY_HASH`], made with the
//! same parameters, so it costs as much as a wrong password for a real user and the answer
//! time does not reveal which usernames exist.
//!
//! Hashing takes tens of milliseconds of CPU; async callers use [`hash_password_async`] and
//! [`verify_password_async`], which run on tokio's blocking pool.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version, password_hash::SaltString,
};
use rand::RngCore;

use super::{AuthError, Secret};

/// Minimum length in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Maximum length in bytes: bounds the work an attacker can make one request cost.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// An argon2id PHC string with the production parameters (a test checks they match), a
/// random salt and a random output (from /dev/urandom): no password is known to produce it.
/// Verifying against it fails and costs exactly one real verification.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$JbF7sBp+/sLTkUYBkBtlOA$mxrQcpFqMpSF9SuM0WwFZCvkinrrBQbvHlIKT2ohZOs";

// The floor the issue sets, kept at compile time.
const _: () = assert!(M_COST_KIB >= 19 * 1024 && T_COST >= 2 && P_COST >= 1);

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy: 12 to 1024 long, and not containing the
/// username (case-insensitively; for usernames shorter than 3 characters, not equal to it).
pub fn check_policy(username: &str, password: &str) -> Result<(), AuthError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_LEN });
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::PasswordTooShort { min: MIN_PASSWORD_LEN });
    }
    let user = username.trim().to_lowercase();
    let pass = password.to_lowercase();
    if !user.is_empty() && (pass == user || (user.chars().count() >= 3 && pass.contains(&user))) {
        return Err(AuthError::PasswordContainsUsername);
    }
    Ok(())
}

/// Hashes a password into a PHC string with a fresh 16-byte salt. Blocking (CPU-heavy).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_LEN });
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(AuthError::Hash)?;
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AuthError::Hash)?;
    Ok(hash.to_string())
}

/// Verifies a password against a stored PHC hash; `None` (unknown user) verifies against
/// [`DUMMY_HASH`] and returns `false` at the same cost. Over-long passwords are refused
/// without hashing (that answer depends on the input only, not on whether the user exists).
/// A stored hash that does not parse is an internal error, not a wrong password.
/// Blocking (CPU-heavy).
pub fn verify_password(password: &str, stored: Option<&str>) -> Result<bool, AuthError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    let (phc, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY_HASH, false),
    };
    let parsed = PasswordHash::new(phc).map_err(AuthError::Hash)?;
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(real),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(AuthError::Hash(e)),
    }
}

/// True when a stored hash was made with weaker parameters (or another algorithm) than the
/// current ones: rehash it after the next successful login.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(params) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || params.m_cost() < M_COST_KIB
        || params.t_cost() < T_COST
        || params.p_cost() < P_COST
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_async(password: Secret) -> Result<String, AuthError> {
    let slot = super::hash_limit::global().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hash_password(password.expose())
    })
    .await
    .map_err(AuthError::Join)?
}

/// [`verify_password`] on the blocking pool.
/// Both wait for a slot of [`super::hash_limit`] first (or are refused when its queue is full).
pub async fn verify_password_async(password: Secret, stored: Option<String>) -> Result<bool, AuthError> {
    let slot = super::hash_limit::global().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        verify_password(password.expose(), stored.as_deref())
    })
    .await
    .map_err(AuthError::Join)?
}

/// A random password of `len` characters from an alphabet without look-alikes, for the
/// bootstrap admin and admin resets.
pub fn generate_password(len: usize) -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let s: String = (0..len.max(MIN_PASSWORD_LEN))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    Secret::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_enforces_length_and_username() {
        assert!(matches!(
            check_policy("alice", "short"),
            Err(AuthError::PasswordTooShort { min: 12 })
        ));
        // Length counts characters, not bytes.
        assert!(check_policy("alice", &"ä".repeat(11)).is_err());
        check_policy("alice", &"ä".repeat(12)).unwrap();
        assert!(matches!(
            check_policy("alice", &"x".repeat(1025)),
            Err(AuthError::PasswordTooLong { max: 1024 })
        ));
        check_policy("alice", &"x".repeat(1024)).unwrap();
        for bad in ["administrator", "ADMINADMINADMIN", "my-Admin-password"] {
            assert!(
                matches!(check_policy("admin", bad), Err(AuthError::PasswordContainsUsername)),
                "{bad}"
            );
        }
        assert!(matches!(
            check_policy("correcthorsebatt", "CorrectHorseBatt"),
            Err(AuthError::PasswordContainsUsername)
        ));
        // A two-letter username is only refused when equal.
        check_policy("al", "totally-unrelated-al").unwrap();
        check_policy("admin", "correct horse battery staple").unwrap();
    }

    #[test]
    fn dummy_hash_uses_the_production_parameters() {
        let h = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(h.algorithm.as_str(), "argon2id");
        let p = Params::try_from(&h).unwrap();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (M_COST_KIB, T_COST, P_COST));
        assert!(!needs_rehash(DUMMY_HASH));
    }

    #[test]
    fn hash_verify_round_trip_and_unknown_user() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery staple", Some(&h)).unwrap());
        assert!(!verify_password("correct horse battery stapler", Some(&h)).unwrap());
        // Unknown user: always false, even for the password that made the dummy.
        assert!(!verify_password("correct horse battery staple", None).unwrap());
        assert!(!verify_password(&"x".repeat(2000), Some(&h)).unwrap());
        // Two hashes of one password differ (fresh salt).
        assert_ne!(h, hash_password("correct horse battery staple").unwrap());
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            verify_password("whatever-password", Some("not a phc string")),
            Err(AuthError::Hash(_))
        ));
        assert!(needs_rehash("not a phc string"));
        assert!(needs_rehash(
            "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"
        ));
    }

    #[tokio::test]
    async fn async_wrappers_run_off_the_runtime() {
        let h = hash_password_async(Secret::new("correct horse battery staple"))
            .await
            .unwrap();
        assert!(
            verify_password_async(Secret::new("correct horse battery staple"), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password_async(Secret::new("wrong wrong wrong"), Some(h))
                .await
                .unwrap()
        );
        assert!(
            !verify_password_async(Secret::new("wrong wrong wrong"), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        let a = generate_password(20);
        assert_eq!(a.expose().len(), 20);
        check_policy("admin", a.expose()).unwrap();
        assert_ne!(a.expose(), generate_password(20).expose());
        assert_eq!(generate_password(4).expose().len(), MIN_PASSWORD_LEN);
    }
}
