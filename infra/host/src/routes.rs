//! Spin's HTTP route syntax and matching.
//!
//! A route is a path of literal segments and `:name` parameters, optionally
//! ending in `/...` (a wildcard that matches any remaining path, including
//! none). Among the routes that match a request the most specific wins: an
//! exact route beats any wildcard, a route with more literal segments beats
//! one with fewer, and among wildcards the longest prefix wins.

use anyhow::{Result, bail};

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// What a match yields for Spin's request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw: String,
    /// The route without a trailing `/...` (`spin-component-route`).
    pub base: String,
    /// The part of the path after the matched prefix (`spin-path-info`).
    pub path_info: String,
    /// Named parameters (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

/// How specific a match is; compared lexicographically, greater wins.
type Specificity = (bool, usize, usize, std::cmp::Reverse<usize>);

impl Route {
    /// Parses a manifest route such as `/v1/keys/:id` or `/v1/...`.
    pub fn parse(raw: &str) -> Result<Route> {
        if !raw.starts_with('/') {
            bail!("a route must start with '/'");
        }
        let (body, wildcard) = match raw.strip_suffix("/...") {
            Some(rest) => (rest, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').skip(1) {
            if part.is_empty() {
                continue;
            }
            if part == "..." {
                bail!("'...' may only end a route");
            }
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    bail!("invalid parameter name `{part}`");
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(Route {
            raw: raw.to_string(),
            segments,
            wildcard,
        })
    }

    /// The route as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Matches a request path (without query), returning what Spin exposes.
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        // A trailing slash does not add an empty segment ("/a/" matches "/a").
        let parts: Vec<&str> = match parts.split_last() {
            Some((&"", rest)) => rest.to_vec(),
            _ => parts,
        };
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
            }
        }
        let path_info = if self.wildcard {
            let rest = &parts[self.segments.len()..];
            if rest.is_empty() {
                String::new()
            } else {
                format!("/{}", rest.join("/"))
            }
        } else {
            String::new()
        };
        let base = match self.raw.strip_suffix("/...") {
            Some("") => "/".to_string(),
            Some(base) => base.to_string(),
            None => self.raw.clone(),
        };
        Some(RouteMatch {
            raw: self.raw.clone(),
            base,
            path_info,
            params,
        })
    }

    fn specificity(&self) -> Specificity {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let params = self.segments.len() - literals;
        (
            !self.wildcard,
            self.segments.len(),
            literals,
            std::cmp::Reverse(params),
        )
    }
}

/// Picks the most specific of the routes that match `path`.
pub fn best_match<'a, T>(
    candidates: impl IntoIterator<Item = (&'a Route, T)>,
    path: &str,
) -> Option<(RouteMatch, T)> {
    candidates
        .into_iter()
        .filter_map(|(route, value)| route.matches(path).map(|m| (route.specificity(), m, value)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, m, v)| (m, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(routes: &[&str], path: &str) -> Option<String> {
        let parsed: Vec<Route> = routes.iter().map(|r| Route::parse(r).unwrap()).collect();
        best_match(parsed.iter().map(|r| (r, r.raw().to_string())), path).map(|(_, raw)| raw)
    }

    #[test]
    fn exact_route_wins_over_wildcard() {
        assert_eq!(
            pick(&["/...", "/v1/health"], "/v1/health").as_deref(),
            Some("/v1/health")
        );
    }

    #[test]
    fn longest_wildcard_prefix_wins() {
        let routes = ["/...", "/v1/...", "/v1/keys/..."];
        assert_eq!(
            pick(&routes, "/v1/keys/abc").as_deref(),
            Some("/v1/keys/...")
        );
        assert_eq!(pick(&routes, "/v1/orgs").as_deref(), Some("/v1/..."));
        assert_eq!(pick(&routes, "/other").as_deref(), Some("/..."));
    }

    #[test]
    fn wildcard_matches_its_own_prefix_with_empty_path_info() {
        let route = Route::parse("/v1/keys/...").unwrap();
        let m = route.matches("/v1/keys").unwrap();
        assert_eq!(m.path_info, "");
        assert_eq!(m.base, "/v1/keys");
        assert_eq!(route.matches("/v1/keys/a/b").unwrap().path_info, "/a/b");
        assert!(route.matches("/v1/keysx").is_none());
    }

    #[test]
    fn literal_segment_beats_parameter() {
        let routes = ["/v1/keys/:id", "/v1/keys/verify"];
        assert_eq!(
            pick(&routes, "/v1/keys/verify").as_deref(),
            Some("/v1/keys/verify")
        );
        assert_eq!(
            pick(&routes, "/v1/keys/k1").as_deref(),
            Some("/v1/keys/:id")
        );
    }

    #[test]
    fn parameters_are_captured() {
        let route = Route::parse("/v1/orgs/:org/teams/:team").unwrap();
        let m = route.matches("/v1/orgs/o1/teams/t2").unwrap();
        assert_eq!(
            m.params,
            vec![("org".into(), "o1".into()), ("team".into(), "t2".into())]
        );
        assert!(route.matches("/v1/orgs/o1/teams").is_none());
    }

    #[test]
    fn unmatched_path_yields_none() {
        assert_eq!(pick(&["/a", "/b/..."], "/c"), None);
    }

    #[test]
    fn rejects_malformed_routes() {
        assert!(Route::parse("v1").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        assert!(Route::parse("/a/:").is_err());
    }
}
