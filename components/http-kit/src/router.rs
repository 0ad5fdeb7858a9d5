//! Matching `(method, path)` inside a component: split the path into
//! segments and `match` on them; a known path with an unknown method gets
//! 405 with `Allow`.
//!
//! ```
//! use gatehouse_http::router::segments;
//! match (http::Method::GET, segments("/v1/keys/k1").as_slice()) {
//!     (m, ["v1", "keys", id]) if m == http::Method::GET => assert_eq!(*id, "k1"),
//!     _ => unreachable!(),
//! }
//! ```

use crate::problem::Problem;

/// The non-empty segments of a path (query excluded).
pub fn segments(path: &str) -> Vec<&str> {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// 405 for a path that exists with other methods, else 404.
pub fn fallback(allowed: Option<&[&str]>) -> Problem {
    match allowed {
        Some(methods) => Problem::method_not_allowed(methods),
        None => Problem::not_found().detail("no route matches this path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_ignore_slashes_and_query() {
        assert_eq!(segments("/v1//health/?x=1"), vec!["v1", "health"]);
        assert!(segments("/").is_empty());
    }

    #[test]
    fn fallback_distinguishes_405_from_404() {
        assert_eq!(fallback(Some(&["GET"])).status, 405);
        assert_eq!(fallback(None).status, 404);
    }
}
