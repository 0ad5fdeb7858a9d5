//! How [`crate::verify`] reads a request's headers, whatever HTTP types
//! the caller has.

use std::borrow::Cow;

/// A request's headers, looked up by name without regard to ASCII case
/// (HTTP field names are case-insensitive, and senders and proxies spell
/// them differently).
pub trait Headers {
    /// The value of the first header called `name`, compared without regard
    /// to ASCII case; `None` when absent or not valid text.
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.as_slice().header(name)
    }
}

/// Headers read through a closure, for callers whose HTTP type is not a
/// list of pairs. The closure is given the name in lowercase and must
/// itself look it up without regard to case.
pub struct HeaderFn<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Headers for HeaderFn<F> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        (self.0)(&name.to_ascii_lowercase()).map(Cow::Owned)
    }
}
