//! Email addresses as accounts use them.

/// Lower-cased, trimmed: the form lookups and uniqueness use.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately plain check: one `@`, a non-empty local part, a domain
/// with an inner dot, no spaces or control characters (a NUL or a line
/// break would reach mail headers), at most 254 characters (RFC 5321's
/// path limit). Whether the address works is proven by the verification mail.
pub fn valid_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_check_is_plain_but_firm() {
        assert!(valid_email("ada@example.com"));
        assert!(valid_email(" Ada.Lovelace+test@Example.co.uk "));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@.example.com",
            "ada@example.com.",
            "ada\0@example.com",
            "ada@example.com\0",
            "ada@exa\u{7f}mple.com",
            "ada@example.com\r\nBcc: x@example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(!valid_email(&format!("{}@example.com", "a".repeat(250))));
    }

    #[test]
    fn normalization_ignores_case_and_surrounding_space() {
        assert_eq!(normalize_email(" Ada@Example.COM "), "ada@example.com");
    }
}
