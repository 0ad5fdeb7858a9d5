//! Free text people type (names, addresses of orgs): what it may contain.

/// Whether `value` is free of characters that have no business in a name:
/// control characters (NUL, line breaks, tabs, DEL, C1) and the Unicode
/// bidirectional overrides and isolates, which make a name read
/// differently from what it is (U+202A–U+202E, U+2066–U+2069).
pub fn plain(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// Whether `value` may stand as longer prose (a description): as
/// [`plain`], but line breaks and tabs are allowed.
pub fn prose(value: &str) -> bool {
    plain(&value.replace(['\n', '\r', '\t'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_control_or_bidi_characters_are_not_plain() {
        assert!(plain("Ada Lovelace") && plain("Zoë Ñúñez 李") && plain(""));
        for bad in [
            "Ada\0",
            "Ada\nBob",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "evil\u{202E}gpj.exe",
            "iso\u{2066}late",
        ] {
            assert!(!plain(bad), "{bad:?}");
        }
    }

    #[test]
    fn prose_keeps_its_line_breaks_but_not_other_controls() {
        assert!(prose("First line.\r\nSecond\tline."));
        assert!(!prose("nul\0") && !prose("evil\u{202E}"));
    }
}
