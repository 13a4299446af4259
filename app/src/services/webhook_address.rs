//! Where a webhook may be delivered: only to addresses on the public internet. Checked when
//! an endpoint is registered (a clear 422) and again, by the delivery worker, on the very
//! addresses it connects to, so a name that resolves publicly at registration and privately
//! later (DNS rebinding) still never reaches the platform's own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a name may take to resolve before the endpoint is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a destination is refused, in words for the endpoint's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Whether `ip` is a public unicast address: not loopback, private, shared (CGNAT),
/// link-local, documentation, benchmarking, multicast, reserved, or an IPv6 form that embeds
/// one of those (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network", 0.0.0.0/8
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (:: and ::1 included).
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64: 64:ff9b::/96 reaches the embedded IPv4 address; 64:ff9b:1::/48 is local use.
        return s[2..6] == [0; 4] && is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in bits 16-48.
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    let refused = s[0] == 0x0100 && s[1..4] == [0; 3] // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] & 0xe000) != 0x2000; // outside global unicast 2000::/3
    !refused
}

/// The public addresses `host` resolves to, or why it is refused: it does not resolve, or
/// any of its addresses is not public (one private answer is enough to refuse, since the
/// client could pick it).
pub async fn resolve_public(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Refused(format!("the host {host} did not resolve within 5 seconds")))?
        .map_err(|_| Refused(format!("the host {host} does not resolve to an address")))?;
    let addrs: Vec<SocketAddr> = lookup.collect();
    if addrs.is_empty() {
        return Err(Refused(format!(
            "the host {host} does not resolve to an address"
        )));
    }
    if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused(format!(
            "the host {host} resolves to a private or reserved address ({}); webhooks go to public addresses only",
            private.ip()
        )));
    }
    Ok(addrs)
}

/// Checks a webhook URL's destination: its literal address, or every address its name
/// resolves to, must be public. The URL is parsed as browsers and HTTP clients do, so
/// `https://0x7f000001/` and `https://2130706433/` are the loopback address they are.
pub async fn check_destination(url: &str) -> Result<(), Refused> {
    let parsed = url::Url::parse(url).map_err(|e| Refused(format!("not a valid URL: {e}")))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    match parsed.host() {
        Some(url::Host::Ipv4(v4)) => literal(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => literal(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => resolve_public(name, port).await.map(drop),
        None => Err(Refused("the URL has no host".into())),
    }
}

fn literal(ip: IpAddr) -> Result<(), Refused> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused(format!(
            "the address {ip} is private or reserved; webhooks go to public addresses only"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_purpose_range_is_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff05::1:3",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass_in_every_form() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "223.255.255.254",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn literal_and_numeric_hosts_are_read_as_clients_read_them() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://[::ffff:7f00:1]/",
            "https://localhost/",
            "https://localhost./",
        ] {
            let refused = check_destination(url).await;
            assert!(refused.is_err(), "{url} must be refused");
        }
        assert!(check_destination("https://93.184.216.34/hook")
            .await
            .is_ok());
    }
}
