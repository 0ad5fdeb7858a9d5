//! Cursor (keyset) pagination: `?limit=&cursor=`, answered with
//! `{"items": [...], "next_cursor": "..."}`. A cursor is an opaque,
//! URL-safe encoding of the last position returned; clients must not parse it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::problem::{ErrorCode, FieldError, Problem};

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items a page may hold.
pub const MAX_LIMIT: u32 = 200;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items wanted, 1..=MAX_LIMIT.
    pub limit: u32,
    /// Position after which to continue, decoded.
    pub after: Option<String>,
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

impl PageRequest {
    /// Reads `limit` and `cursor` from a query string (other keys ignored).
    pub fn from_query(query: Option<&str>) -> Result<PageRequest, Problem> {
        let mut limit = DEFAULT_LIMIT;
        let mut after = None;
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
                "cursor" => {
                    let bytes = URL_SAFE_NO_PAD
                        .decode(value)
                        .map_err(|_| invalid("/cursor", "cursor is not valid"))?;
                    let position = String::from_utf8(bytes)
                        .map_err(|_| invalid("/cursor", "cursor is not valid"))?;
                    after = Some(position);
                }
                _ => {}
            }
        }
        Ok(PageRequest { limit, after })
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
        assert_eq!((p.limit, p.after), (DEFAULT_LIMIT, None));
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
        let p = PageRequest::from_query(Some("cursor=***")).unwrap_err();
        assert_eq!(p.errors[0].pointer, "/cursor");
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
        assert_eq!(next.after.as_deref(), Some("2"));
        let last = next.page(all[4..].to_vec(), |n| n.to_string());
        assert_eq!(last.next_cursor, None);
        Ok(())
    }
}
