//! Node addresses as the flags give them: `HOST:PORT`, the host a name or
//! an IP literal (IPv6 in brackets). Shared by the transport, TLS (whose
//! server name is the host) and the daemon's checks of where it listens.

/// The host of a `HOST:PORT` address, without the brackets of an IPv6
/// literal (`[::1]:7001` → `::1`).
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_comes_before_the_last_colon_without_brackets() {
        assert_eq!(host_of("10.0.0.1:7001"), "10.0.0.1");
        assert_eq!(host_of("[::1]:7001"), "::1");
        assert_eq!(host_of("node-a.example:7001"), "node-a.example");
        assert_eq!(host_of("node-a"), "node-a");
    }
}
