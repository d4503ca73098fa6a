//! Egress policy: which addresses a webhook request may connect to.
//!
//! Checked on the addresses a host name resolves to, at connect time, so a name that
//! resolves (or is re-bound) to an internal address is refused too. Loopback, private,
//! link-local, CGNAT, unique-local and similar ranges are refused unless the operator
//! sets `egress.allow_private_networks`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The name of the refused range `ip` is in, or `None` if it may be reached.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (127, _) => Some("loopback (127.0.0.0/8)"),
        (10, _) => Some("private (10.0.0.0/8)"),
        (172, 16..=31) => Some("private (172.16.0.0/12)"),
        (192, 168) => Some("private (192.168.0.0/16)"),
        (169, 254) => Some("link-local (169.254.0.0/16)"),
        (100, 64..=127) => Some("shared address space (100.64.0.0/10)"),
        (0, _) => Some("\"this network\" (0.0.0.0/8)"),
        (224..=239, _) => Some("multicast (224.0.0.0/4)"),
        (240..=255, _) => Some("reserved (240.0.0.0/4)"),
        _ => None,
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback (::1)")
    } else if ip.is_unspecified() {
        Some("unspecified (::)")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique local (fc00::/7)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local (fe80::/10)")
    } else if first & 0xff00 == 0xff00 {
        Some("multicast (ff00::/8)")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some("NAT64 (64:ff9b::/96)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ip: &str) -> Option<&'static str> {
        refused_range(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
    }

    #[test]
    fn refuses_internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(check(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:2800:220:1::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(check(ip), None, "{ip} must be allowed");
        }
    }
}
