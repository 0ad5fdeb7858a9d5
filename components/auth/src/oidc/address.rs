//! Which network a URL's host names, as far as its spelling tells: the
//! guest cannot resolve names (Spin gives components no DNS), so a public
//! name that resolves to a private address is not caught here. The
//! outbound allow-list (`oidc_outbound_hosts`) is what bounds names; this
//! module bounds addresses and the names that are local by definition.
//!
//! Addresses are read the way URL parsers and `inet_aton` read them, so
//! `2130706433`, `0x7f.1` and `0177.0.0.1` are all 127.0.0.1, and an IPv6
//! address that embeds an IPv4 one (`::ffff:127.0.0.1`, NAT64, 6to4) is
//! judged by the IPv4 address it carries.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Where a host is, by its spelling alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A public address, or a name only DNS can place.
    Public,
    /// 127.0.0.0/8, `::1`, `localhost` and `*.localhost`.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and unique local fc00::/7.
    Private,
    /// The carrier-grade NAT range 100.64.0.0/10 (RFC 6598).
    SharedAddressSpace,
    /// 169.254.0.0/16 and fe80::/10.
    LinkLocal,
    /// A name that only a local resolver answers: a single label
    /// (`keycloak`), `*.internal`, `*.local`, `*.localdomain`, `*.home.arpa`.
    LocalName,
    /// A cloud instance-metadata service (169.254.169.254, fd00:ec2::254,
    /// `metadata.google.internal`, …): never an identity provider.
    Metadata,
    /// 0.0.0.0/8 and `::`, which reach the machine itself.
    Unspecified,
    /// Multicast, broadcast, documentation, benchmarking and other ranges
    /// no provider is on.
    Reserved,
}

impl HostKind {
    /// Whether an operator may allow issuers on such a host (a provider
    /// run beside Gatehouse or on the same private network). Metadata
    /// services, unspecified and reserved addresses are never allowed.
    pub fn may_be_allowed(self) -> bool {
        matches!(
            self,
            HostKind::Loopback
                | HostKind::Private
                | HostKind::SharedAddressSpace
                | HostKind::LinkLocal
                | HostKind::LocalName
        )
    }

    /// The kind in words, for messages: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            HostKind::Public => "a public host",
            HostKind::Loopback => "a loopback host",
            HostKind::Private => "a private-network address",
            HostKind::SharedAddressSpace => "a carrier-grade NAT address (100.64.0.0/10)",
            HostKind::LinkLocal => "a link-local address",
            HostKind::LocalName => "a local name",
            HostKind::Metadata => "a cloud metadata service",
            HostKind::Unspecified => "an unspecified address",
            HostKind::Reserved => "a reserved address",
        }
    }
}

/// The kind of a URL host (`example.com`, `10.0.0.1`, `[::1]`), or `None`
/// when it is no host a request could be sent to: a malformed name or an
/// address spelled out of range (`256.0.0.1`, `1.2.3.4.5`).
pub fn classify(host: &str) -> Option<HostKind> {
    if let Some(inner) = host.strip_prefix('[') {
        // A zone (`%25eth0`) does not parse: link-local is refused anyway.
        let v6: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
        return Some(classify_v6(v6));
    }
    let name = host.to_ascii_lowercase();
    // One trailing dot names the same host (`localhost.`).
    let name = name.strip_suffix('.').unwrap_or(&name);
    match loose_ipv4(name) {
        Some(Ok(v4)) => return Some(classify_v4(v4)),
        Some(Err(())) => return None,
        None => {}
    }
    if !is_dns_name(name) {
        return None;
    }
    Some(classify_name(name))
}

fn classify_name(name: &str) -> HostKind {
    const METADATA: [&str; 5] = [
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    const LOCAL_SUFFIXES: [&str; 4] = [".internal", ".local", ".localdomain", ".home.arpa"];
    if METADATA.contains(&name) {
        HostKind::Metadata
    } else if name == "localhost" || name.ends_with(".localhost") {
        HostKind::Loopback
    } else if !name.contains('.') || LOCAL_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        HostKind::LocalName
    } else {
        HostKind::Public
    }
}

/// Letters, digits and hyphens in labels of 1 to 63 (punycode for other
/// scripts): what DNS resolves. Anything else is refused rather than
/// guessed at (`%31`, `_`, spaces).
fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// A host read as an IPv4 address the way URL parsers and `inet_aton` do:
/// `None` when it does not end in a number (a name), `Err` when it ends in
/// one but is no address.
fn loose_ipv4(host: &str) -> Option<Result<Ipv4Addr, ()>> {
    let parts: Vec<&str> = host.split('.').collect();
    let last = parts.last()?;
    if !is_number(last) {
        return None;
    }
    if parts.len() > 4 {
        return Some(Err(()));
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        match number(part) {
            Some(n) => numbers.push(n),
            None => return Some(Err(())),
        }
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|n| *n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return Some(Err(()));
    }
    let mut value = *last;
    for (i, n) in leading.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    Some(u32::try_from(value).map(Ipv4Addr::from).map_err(|_| ()))
}

fn is_number(part: &str) -> bool {
    match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// One part: `0x` hex, a leading `0` octal, else decimal. Long parts are
/// refused before they could overflow.
fn number(part: &str) -> Option<u64> {
    let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some("") => return Some(0),
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn classify_v4(ip: Ipv4Addr) -> HostKind {
    const METADATA: [[u8; 4]; 3] = [
        [169, 254, 169, 254], // AWS, Azure, GCP, Oracle, DigitalOcean
        [169, 254, 170, 2],   // AWS ECS task metadata
        [100, 100, 100, 200], // Alibaba Cloud
    ];
    let o = ip.octets();
    if METADATA.contains(&o) {
        return HostKind::Metadata;
    }
    match o {
        [0, ..] => HostKind::Unspecified,
        [127, ..] => HostKind::Loopback,
        [10, ..] | [192, 168, ..] => HostKind::Private,
        [172, b, ..] if (16..32).contains(&b) => HostKind::Private,
        [100, b, ..] if (64..128).contains(&b) => HostKind::SharedAddressSpace,
        [169, 254, ..] => HostKind::LinkLocal,
        [192, 0, 0 | 2, _] | [198, 51, 100, _] | [203, 0, 113, _] | [192, 88, 99, _] => {
            HostKind::Reserved
        }
        [198, b, ..] if b == 18 || b == 19 => HostKind::Reserved,
        [a, ..] if a >= 224 => HostKind::Reserved,
        _ => HostKind::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> HostKind {
    let s = ip.segments();
    if ip.is_unspecified() {
        return HostKind::Unspecified;
    }
    if ip.is_loopback() {
        return HostKind::Loopback;
    }
    if let Some(v4) = embedded_v4(&s) {
        return classify_v4(v4);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return HostKind::Metadata;
    }
    match s[0] {
        a if a & 0xfe00 == 0xfc00 => HostKind::Private,
        a if a & 0xffc0 == 0xfe80 => HostKind::LinkLocal,
        // Site-local, deprecated but still routed inside some networks.
        a if a & 0xffc0 == 0xfec0 => HostKind::Private,
        a if a & 0xff00 == 0xff00 => HostKind::Reserved,
        // Local-use NAT64 (RFC 8215).
        0x0064 if s[1] == 0xff9b && s[2] == 0x0001 => HostKind::Private,
        // Documentation, Teredo, discard-only.
        0x2001 if s[1] == 0x0db8 || s[1] == 0 => HostKind::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => HostKind::Reserved,
        _ => HostKind::Public,
    }
}

/// The IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`),
/// compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`).
fn embedded_v4(s: &[u16; 8]) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let tail_zero = |range: std::ops::Range<usize>| s[range].iter().all(|x| *x == 0);
    if tail_zero(0..5) && (s[5] == 0xffff || s[5] == 0) {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && tail_zero(2..6) {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(host: &str) -> Option<HostKind> {
        classify(host)
    }

    #[test]
    fn loopback_is_told_in_every_spelling() {
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
            "0177.0.0.01",
            "127.0.0.1.",
            "localhost",
            "LOCALHOST.",
            "idp.localhost",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::127.0.0.1]",
            "[64:ff9b::7f00:1]",
            "[2002:7f00:1::]",
        ] {
            assert_eq!(kind(host), Some(HostKind::Loopback), "{host}");
        }
    }

    #[test]
    fn private_networks_and_link_local_are_told_apart_from_public_hosts() {
        for (host, expected) in [
            ("10.0.0.1", HostKind::Private),
            ("10.1", HostKind::Private),
            ("167772161", HostKind::Private),
            ("172.16.0.1", HostKind::Private),
            ("172.31.255.255", HostKind::Private),
            ("192.168.1.10", HostKind::Private),
            ("[fd12:3456::1]", HostKind::Private),
            ("[fc00::1]", HostKind::Private),
            ("[::ffff:10.0.0.1]", HostKind::Private),
            ("100.64.0.1", HostKind::SharedAddressSpace),
            ("100.127.255.255", HostKind::SharedAddressSpace),
            ("169.254.1.1", HostKind::LinkLocal),
            ("[fe80::1]", HostKind::LinkLocal),
            ("keycloak", HostKind::LocalName),
            ("idp.corp.internal", HostKind::LocalName),
            ("printer.local", HostKind::LocalName),
            ("idp.home.arpa", HostKind::LocalName),
            ("172.32.0.1", HostKind::Public),
            ("100.128.0.1", HostKind::Public),
            ("8.8.8.8", HostKind::Public),
            ("134744072", HostKind::Public),
            ("[2606:4700::1111]", HostKind::Public),
            ("acme.eu.auth0.com", HostKind::Public),
            ("login.microsoftonline.com", HostKind::Public),
        ] {
            assert_eq!(kind(host), Some(expected), "{host}");
        }
    }

    #[test]
    fn metadata_services_unspecified_and_reserved_are_never_allowed() {
        for (host, expected) in [
            ("169.254.169.254", HostKind::Metadata),
            ("2852039166", HostKind::Metadata),
            ("0xa9fea9fe", HostKind::Metadata),
            ("[::ffff:169.254.169.254]", HostKind::Metadata),
            ("[fd00:ec2::254]", HostKind::Metadata),
            ("metadata.google.internal", HostKind::Metadata),
            ("Metadata.Google.Internal.", HostKind::Metadata),
            ("100.100.100.200", HostKind::Metadata),
            ("0.0.0.0", HostKind::Unspecified),
            ("0", HostKind::Unspecified),
            ("[::]", HostKind::Unspecified),
            ("255.255.255.255", HostKind::Reserved),
            ("224.0.0.1", HostKind::Reserved),
            ("192.0.2.1", HostKind::Reserved),
            ("[ff02::1]", HostKind::Reserved),
            ("[2001:db8::1]", HostKind::Reserved),
        ] {
            assert_eq!(kind(host), Some(expected), "{host}");
            assert!(!expected.may_be_allowed(), "{host}");
        }
        for allowed in [
            HostKind::Loopback,
            HostKind::Private,
            HostKind::SharedAddressSpace,
            HostKind::LinkLocal,
            HostKind::LocalName,
        ] {
            assert!(allowed.may_be_allowed());
        }
    }

    #[test]
    fn hosts_that_are_no_address_or_name_are_refused() {
        for host in [
            "256.0.0.1",
            "1.2.3.4.5",
            "1..1",
            "0x1.0xfffffff",
            "4294967296",
            "08.0.0.1",
            "99999999999999999999",
            "[::1",
            "[fe80::1%25eth0]",
            "[not-v6]",
            "",
            "a%31b",
            "under_score.example.com",
            "-bad.example.com",
            "exa mple.com",
        ] {
            assert_eq!(kind(host), None, "{host}");
        }
        // A number inside a name is still a name.
        assert_eq!(kind("1.2.3.example.com"), Some(HostKind::Public));
        assert_eq!(kind("0x7f.example"), Some(HostKind::Public));
    }
}
