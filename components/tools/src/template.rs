//! Arguments filled into a tool's configuration: `{{name}}` in a static
//! tool's strings, `{name}` in an HTTP tool's URL (URL-encoded). Filling
//! is text substitution only: nothing in a template or an argument runs.

use serde_json::{Map, Value};

/// One placeholder found in a template: its name and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The argument it names.
    pub name: String,
    /// Where it starts in the template.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
}

/// Whether `name` may be a placeholder's: 1 to 64 of `A-Z a-z 0-9 _ -`.
fn placeholder_name(name: &str) -> bool {
    crate::model::valid_name(name)
}

/// The placeholders `open name close` in `text`, in order. Text between
/// the delimiters that is no valid name is not a placeholder.
pub fn placeholders(text: &str, open: &str, close: &str) -> Vec<Placeholder> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(open).map(|i| from + i) {
        let inner = at + open.len();
        let Some(len) = text[inner..].find(close) else {
            break;
        };
        let name = &text[inner..inner + len];
        if placeholder_name(name) {
            let end = inner + len + close.len();
            found.push(Placeholder {
                name: name.to_string(),
                start: at,
                end,
            });
            from = end;
        } else {
            from = at + open.len().max(1);
        }
    }
    found
}

/// An argument as text: a string as itself, `null` or a missing one as
/// nothing, anything else as its JSON.
pub fn argument_text(arguments: &Map<String, Value>, name: &str) -> String {
    match arguments.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `text` with each placeholder replaced by `fill(name)`.
fn substitute(text: &str, open: &str, close: &str, mut fill: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text, open, close) {
        out.push_str(&text[last..p.start]);
        out.push_str(&fill(&p.name));
        last = p.end;
    }
    out.push_str(&text[last..]);
    out
}

/// A static tool's result: every string in `template` (values, not keys)
/// with its `{{name}}` placeholders filled from `arguments`.
pub fn fill_static(template: &Value, arguments: &Map<String, Value>) -> Value {
    match template {
        Value::String(s) => Value::String(substitute(s, "{{", "}}", |name| {
            argument_text(arguments, name)
        })),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| fill_static(v, arguments)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_static(v, arguments)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every `{{name}}` in a static template's strings, with the JSON pointer
/// of the string (below `base`) it is in.
pub fn static_placeholders(template: &Value, base: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect_static(template, base.to_string(), &mut out);
    out
}

fn collect_static(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            for p in placeholders(s, "{{", "}}") {
                out.push((p.name, pointer.clone()));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_static(v, format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let token = k.replace('~', "~0").replace('/', "~1");
                collect_static(v, format!("{pointer}/{token}"), out);
            }
        }
        _ => {}
    }
}

/// `text` percent-encoded for a URL's path segment or query value: every
/// byte but ASCII letters, digits, `-`, `_` and `~` (a `.` too, so an
/// argument cannot be a `..` segment; `/`, `?`, `#`, `&` and `=` so it
/// cannot add segments or parameters).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP tool's URL with its `{name}` placeholders filled, URL-encoded.
pub fn fill_url(url: &str, arguments: &Map<String, Value>) -> String {
    substitute(url, "{", "}", |name| {
        url_encode(&argument_text(arguments, name))
    })
}

/// Where a URL's authority ends: placeholders before it could choose the
/// host, so they are refused there.
pub fn authority_end(url: &str) -> usize {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn static_strings_are_filled_and_nothing_else_changes() {
        let template = json!({
            "text": "Hello {{name}}, you are {{age}}",
            "list": ["{{name}}", 3, null, {"{{name}}": "{{missing}}!"}],
            "odd": "{{not a name}} {{",
        });
        let filled = fill_static(&template, &args(json!({"name": "Ada", "age": 36})));
        assert_eq!(
            filled,
            json!({
                "text": "Hello Ada, you are 36",
                "list": ["Ada", 3, null, {"{{name}}": "!"}],
                "odd": "{{not a name}} {{",
            })
        );
    }

    #[test]
    fn an_argument_holding_a_placeholder_is_not_filled_again() {
        let filled = fill_static(&json!("{{a}}{{b}}"), &args(json!({"a": "{{b}}", "b": "x"})));
        assert_eq!(filled, json!("{{b}}x"));
    }

    #[test]
    fn url_arguments_cannot_add_segments_parameters_or_hosts() {
        let url = "https://api.example.com/weather/{city}?units={units}";
        let filled = fill_url(
            url,
            &args(json!({"city": "../admin/x?y=1#z", "units": "a&b=c d"})),
        );
        assert_eq!(
            filled,
            "https://api.example.com/weather/%2E%2E%2Fadmin%2Fx%3Fy%3D1%23z?units=a%26b%3Dc%20d"
        );
        assert_eq!(url_encode("Zürich"), "Z%C3%BCrich");
    }

    #[test]
    fn placeholders_are_found_with_their_pointers_and_the_authority_is_told_apart() {
        let found =
            static_placeholders(&json!({"a/b": ["x {{one}}", "{{two}}"]}), "/config/result");
        assert_eq!(
            found,
            vec![
                ("one".to_string(), "/config/result/a~1b/0".to_string()),
                ("two".to_string(), "/config/result/a~1b/1".to_string()),
            ]
        );
        let url = "https://{host}.example.com/p/{id}";
        let end = authority_end(url);
        let names: Vec<_> = placeholders(url, "{", "}")
            .into_iter()
            .map(|p| (p.name, p.start < end))
            .collect();
        assert_eq!(names, vec![("host".into(), true), ("id".into(), false)]);
        assert_eq!(
            authority_end("https://a.example"),
            "https://a.example".len()
        );
    }
}
