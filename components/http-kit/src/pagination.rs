//! Cursor (keyset) pagination: `?limit=&cursor=`, answered with
//! `{"items": [...], "next_cursor": "..."}`. A cursor is an opaque,
//! URL-safe encoding of the last position returned; clients must not parse it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::{ErrorCode, FieldError, Problem};

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items a page may hold.
pub const MAX_LIMIT: u32 = 200;
/// The longest cursor accepted. Positions are small (a key, or a timestamp
/// and a key); a longer cursor was not made by us.
pub const MAX_CURSOR_LEN: usize = 512;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items wanted, 1..=MAX_LIMIT.
    pub limit: u32,
    /// The position the client's cursor encodes (already decoded): the
    /// page continues after it.
    pub cursor: Option<String>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

fn invalid(pointer: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(pointer, "invalid", message)])
}

/// Encodes a position as a cursor.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// The position of a structured key (e.g. `(created_at, id)`) as a string
/// for [`encode_cursor`] or [`PageRequest::page`].
pub fn json_position<P: Serialize>(position: &P) -> String {
    // Serializing plain data (numbers, strings, tuples) cannot fail; an
    // empty position would be refused when it comes back, never misread.
    serde_json::to_string(position).unwrap_or_default()
}

fn bad_cursor() -> Problem {
    invalid("/cursor", "cursor is not valid")
}

fn decode_cursor(cursor: &str) -> Result<String, Problem> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad_cursor());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

impl PageRequest {
    /// Reads `limit` and `cursor` from a query string (other keys ignored).
    pub fn from_query(query: Option<&str>) -> Result<PageRequest, Problem> {
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "limit" => {
                    limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            invalid(
                                "/limit",
                                &format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                "cursor" => cursor = Some(decode_cursor(value)?),
                _ => {}
            }
        }
        Ok(PageRequest { limit, cursor })
    }

    /// The cursor's position as a structured key written by
    /// [`json_position`]; a cursor that does not hold one is `invalid_query`.
    pub fn json_cursor<P: DeserializeOwned>(&self) -> Result<Option<P>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| serde_json::from_str(c).map_err(|_| bad_cursor()))
            .transpose()
    }

    /// Rows to fetch: one more than the limit, to learn whether more exist.
    pub fn fetch_count(&self) -> u32 {
        self.limit + 1
    }

    /// Builds the page from up to `limit + 1` rows fetched in order.
    pub fn page<T>(&self, mut rows: Vec<T>, position: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(&position(r)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_without_a_query() -> anyhow::Result<()> {
        let p = PageRequest::from_query(None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!((p.limit, p.cursor), (DEFAULT_LIMIT, None));
        Ok(())
    }

    #[test]
    fn limit_out_of_range_is_invalid_query() {
        for q in ["limit=0", "limit=201", "limit=x", "limit=-1"] {
            let p = PageRequest::from_query(Some(q)).unwrap_err();
            assert_eq!((p.status, p.code), (400, "invalid_query"));
            assert_eq!(p.errors[0].pointer, "/limit");
        }
    }

    #[test]
    fn malformed_cursor_is_invalid_query() {
        let too_long = format!("cursor={}", "A".repeat(MAX_CURSOR_LEN + 1));
        let padded = format!("cursor={}=", encode_cursor("ab"));
        for q in ["cursor=***", "cursor=", "cursor=_w", &padded, &too_long] {
            let p = PageRequest::from_query(Some(q)).unwrap_err();
            assert_eq!((p.status, p.code), (400, "invalid_query"), "{q}");
            assert_eq!(p.errors[0].pointer, "/cursor");
        }
    }

    #[test]
    fn structured_positions_round_trip_and_garbage_is_refused() -> anyhow::Result<()> {
        let position = (1_700_000_000_i64, "key_1".to_string());
        let cursor = encode_cursor(&json_position(&position));
        let req = PageRequest::from_query(Some(&format!("cursor={cursor}")))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let back: Option<(i64, String)> =
            req.json_cursor().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(back, Some(position));
        let plain = PageRequest::from_query(Some(&format!("cursor={}", encode_cursor("k"))))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(
            plain.json_cursor::<(i64, String)>().unwrap_err().code,
            "invalid_query"
        );
        Ok(())
    }

    #[test]
    fn page_serializes_items_and_next_cursor() -> anyhow::Result<()> {
        let page = PageRequest::from_query(Some("limit=1"))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .page(vec!["a", "b"], |s| s.to_string());
        let json = serde_json::to_value(&page)?;
        assert_eq!(
            json,
            serde_json::json!({"items": ["a"], "next_cursor": encode_cursor("a")})
        );
        Ok(())
    }

    #[test]
    fn pages_round_trip_through_the_cursor() -> anyhow::Result<()> {
        let all: Vec<u32> = (1..=5).collect();
        let req = PageRequest::from_query(Some("limit=2")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let first = req.page(all[..3].to_vec(), |n| n.to_string());
        assert_eq!(first.items, vec![1, 2]);
        let cursor = first.next_cursor.expect("more pages");
        let next = PageRequest::from_query(Some(&format!("limit=2&cursor={cursor}")))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(next.cursor.as_deref(), Some("2"));
        let last = next.page(all[4..].to_vec(), |n| n.to_string());
        assert_eq!(last.next_cursor, None);
        Ok(())
    }
}
