//! Randomness from the platform's cryptographic source.

/// `N` random bytes. The platform source (WASI `random`, the OS elsewhere)
/// does not fail in practice; if it ever did, nothing secret may be made
/// from a weaker source, so this panics rather than fall back.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the platform's random source is available");
    out
}
