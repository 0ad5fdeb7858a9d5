//! Passwords: the policy a new password must meet, and argon2id hashing
//! with OWASP's parameters (19 MiB, 2 passes, 1 lane).
//!
//! The policy follows NIST SP 800-63B: a length floor, a generous ceiling,
//! no composition rules, and a check against the most common passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest accepted password, in characters.
pub const MIN_LENGTH: usize = 10;
/// Longest accepted password, in characters (bounds hashing work).
pub const MAX_LENGTH: usize = 128;

/// OWASP's argon2id memory cost, KiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// OWASP's argon2id passes.
pub const ITERATIONS: u32 = 2;
/// OWASP's argon2id lanes.
pub const PARALLELISM: u32 = 1;

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Fewer than [`MIN_LENGTH`] characters.
    TooShort,
    /// More than [`MAX_LENGTH`] characters.
    TooLong,
    /// Among the most common passwords.
    Common,
    /// Contains the account's email name.
    ContainsEmail,
}

impl Weakness {
    /// Stable code for field errors.
    pub fn code(self) -> &'static str {
        match self {
            Weakness::TooShort => "too_short",
            Weakness::TooLong => "too_long",
            Weakness::Common => "too_common",
            Weakness::ContainsEmail => "contains_email",
        }
    }

    /// Message for people.
    pub fn message(self) -> String {
        match self {
            Weakness::TooShort => format!("password must have at least {MIN_LENGTH} characters"),
            Weakness::TooLong => format!("password must have at most {MAX_LENGTH} characters"),
            Weakness::Common => "password is one of the most common passwords".to_string(),
            Weakness::ContainsEmail => "password must not contain your email name".to_string(),
        }
    }
}

/// Lower-cased, from public lists of the most used (and breached) passwords.
const COMMON: &[&str] = &[
    "123456",
    "123456789",
    "12345678",
    "password",
    "qwerty123",
    "qwerty1",
    "111111",
    "12345",
    "secret",
    "123123",
    "1234567890",
    "1234567",
    "000000",
    "qwerty",
    "abc123",
    "password1",
    "iloveyou",
    "11111111",
    "dragon",
    "monkey",
    "123123123",
    "123321",
    "qwertyuiop",
    "00000000",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "654321",
    "666666",
    "987654321",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "welcome",
    "welcome1",
    "letmein",
    "shadow",
    "superman",
    "michael",
    "master",
    "admin",
    "admin123",
    "administrator",
    "passw0rd",
    "password123",
    "password12",
    "password1234",
    "p@ssw0rd",
    "p@ssword",
    "qwe123",
    "zaq12wsx",
    "trustno1",
    "starwars",
    "whatever",
    "freedom",
    "hello123",
    "charlie",
    "aa123456",
    "access",
    "flower",
    "hottie",
    "loveme",
    "zaq1zaq1",
    "asdfghjkl",
    "asdfgh",
    "1234qwer",
    "qwer1234",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "computer",
    "internet",
    "changeme",
    "changeme123",
    "default",
    "mustang",
    "jennifer",
    "jordan23",
    "pokemon",
    "liverpool",
    "chelsea",
    "arsenal",
    "batman",
    "summer",
    "winter2024",
    "summer2024",
    "spring2025",
    "autumn2025",
    "winter2025",
    "summer2025",
    "password2024",
    "password2025",
    "password2026",
    "1111111111",
    "0987654321",
    "abcdef123",
    "abcd1234",
    "abc12345",
    "iloveyou1",
    "lovely",
    "qazwsx",
    "qazwsxedc",
    "1qazxsw2",
    "123qweasd",
    "123qwe",
    "qweasdzxc",
    "test1234",
    "testtest",
    "letmein123",
    "welcome123",
];

/// Checks `password` against the policy; every weakness found is listed.
pub fn check(password: &str, email: &str) -> Vec<Weakness> {
    let mut weaknesses = Vec::new();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        weaknesses.push(Weakness::TooShort);
    }
    if length > MAX_LENGTH {
        weaknesses.push(Weakness::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str())
        || COMMON.contains(&lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '!'))
    {
        weaknesses.push(Weakness::Common);
    }
    let name = email.split('@').next().unwrap_or_default().to_lowercase();
    if name.chars().count() >= 4 && lower.contains(&name) {
        weaknesses.push(Weakness::ContainsEmail);
    }
    weaknesses
}

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&crate::random::bytes::<16>()).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters succeeds")
        .to_string()
}

/// Whether `password` matches the stored PHC string. A malformed stored
/// hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same work as a real verification, for logins whose account
/// does not exist, so response times do not reveal which emails are known.
pub fn verify_nothing(password: &str) {
    let _ = verify(password, DECOY);
}

/// A well-formed hash with today's parameters that no password matches:
/// verifying against it costs a full argon2id run.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9sRKrkTjpZ3OhlPSIkhENH1MWr0ISmxQb0QLJsQMTE8";

/// Whether a stored hash uses weaker parameters than today's and should be
/// replaced at the next successful login.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with(&format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}$"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_owasp_argon2id_parameters_and_verifies() {
        let stored = hash("correct horse battery staple");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery staple", &stored));
        assert!(!verify("correct horse battery stapler", &stored));
        assert!(!needs_rehash(&stored));
        assert_ne!(stored, hash("correct horse battery staple"), "salts differ");
    }

    #[test]
    fn malformed_or_weaker_hashes_are_handled() {
        assert!(!verify("x", "not a hash"));
        assert!(needs_rehash("$argon2id$v=19$m=4096,t=3,p=1$abc$def"));
        // The decoy must parse, or `verify_nothing` would skip the work.
        assert!(PasswordHash::new(DECOY).is_ok());
        assert!(!needs_rehash(DECOY));
        verify_nothing("anything");
    }

    #[test]
    fn policy_lists_every_weakness() {
        assert_eq!(check("short", "a@b.c"), vec![Weakness::TooShort]);
        assert_eq!(check("Password123", "a@b.c"), vec![Weakness::Common]);
        assert_eq!(check("qwertyuiop", "a@b.c"), vec![Weakness::Common]);
        assert_eq!(
            check("margaret-in-spring", "margaret@example.com"),
            vec![Weakness::ContainsEmail]
        );
        assert_eq!(check(&"x".repeat(129), "a@b.c"), vec![Weakness::TooLong]);
        assert!(check("violet-tractor-umbrella", "ada@example.com").is_empty());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(check("ääääääääää", "a@b.c"), vec![]);
    }
}
