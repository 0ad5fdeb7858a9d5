//! SQL text into statements. Spin's `execute` runs one statement per
//! call, so a migration file is split at each `;` that ends a statement:
//! not one inside a comment (`-- …`, `/* … */`), a string (`'…'`), a
//! quoted identifier (`"…"`, `` `…` ``, `[…]`), or a trigger body (`BEGIN
//! … END`, whose `CASE … END` expressions end no body).

/// The statements of `sql`, trimmed, without their `;`; comments are kept
/// inside a statement but a statement of nothing but comments is dropped.
pub fn statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Words of the current statement seen so far, upper-cased, to spot
    // `CREATE [TEMP] TRIGGER` and its `BEGIN … END`.
    let mut words: Vec<String> = Vec::new();
    let mut in_trigger_body = false;
    // `CASE` expressions open in the trigger body: each ends at an `END`.
    let mut cases = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            quote @ (b'\'' | b'"' | b'`') => i = after_quoted(bytes, i, quote),
            b'[' => i = sql[i..].find(']').map_or(bytes.len(), |n| i + n + 1),
            b';' if !in_trigger_body => {
                push(&mut out, &sql[start..i]);
                start = i + 1;
                i += 1;
                words.clear();
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map_or(bytes.len(), |n| i + n);
                let word = sql[i..end].to_ascii_uppercase();
                if word == "BEGIN" && is_trigger(&words) {
                    in_trigger_body = true;
                    cases = 0;
                } else if word == "CASE" && in_trigger_body {
                    cases += 1;
                } else if word == "END" && in_trigger_body {
                    if cases > 0 {
                        cases -= 1;
                    } else {
                        in_trigger_body = false;
                    }
                }
                words.push(word);
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start..]);
    out
}

/// The index just past a quoted run starting at `open`; a doubled quote
/// inside stands for itself.
fn after_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn is_trigger(words: &[String]) -> bool {
    words.first().is_some_and(|w| w == "CREATE") && words.iter().take(4).any(|w| w == "TRIGGER")
}

fn push(out: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !only_comments(text) {
        out.push(text.to_string());
    }
}

fn only_comments(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |n| &r[n + 1..]).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |n| &r[n + 2..]).trim_start();
        } else {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_in_comments_strings_and_names_do_not_split() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT 'x;y', \"b;c\" INTEGER); /* ; */\nINSERT INTO t VALUES ('it''s; fine', 1);\n-- trailing comment only\n";
        let got = statements(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("-- a comment") && got[0].ends_with("INTEGER)"));
        assert_eq!(got[1], "/* ; */\nINSERT INTO t VALUES ('it''s; fine', 1)");
    }

    #[test]
    fn a_trigger_body_stays_one_statement() {
        let sql = "CREATE TRIGGER t_touch AFTER UPDATE ON t BEGIN UPDATE t SET n = n + 1; INSERT INTO log VALUES (1); END;\nCREATE INDEX i ON t (n);";
        let got = statements(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("END"));
        assert_eq!(got[1], "CREATE INDEX i ON t (n)");
    }

    #[test]
    fn a_case_expression_in_a_trigger_body_does_not_end_it() {
        let sql = "CREATE TRIGGER t_cap AFTER INSERT ON t BEGIN\n  UPDATE t SET n = CASE WHEN n > 9 THEN 9 ELSE CASE n WHEN 0 THEN 1 ELSE n END END;\n  DELETE FROM t WHERE n = 0;\nEND;\nSELECT CASE WHEN 1 THEN 2 END;\nSELECT 3;";
        let got = statements(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].ends_with("DELETE FROM t WHERE n = 0;\nEND"),
            "{got:?}"
        );
        assert_eq!(got[1], "SELECT CASE WHEN 1 THEN 2 END");
        assert_eq!(got[2], "SELECT 3");
    }

    #[test]
    fn nothing_but_comments_and_blanks_is_no_statement() {
        assert!(statements("-- only\n/* comments */\n  ;\n").is_empty());
        assert_eq!(statements("SELECT 1"), vec!["SELECT 1".to_string()]);
    }
}
