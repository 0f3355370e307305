//! Per-source-address limits on creating users: bulk identities cost their creator, not
//! the service. An address is kept only as a keyed hash, and only for its window.

use crate::ports::store::CreateQuota;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

const ADDRESS_DOMAIN: &[u8] = b"secret-rooms/v2/address\0";
const KEY_DOMAIN: &[u8] = b"secret-rooms/v2/address-key\0";

/// The key behind address hashes. Without it a stored hash cannot be matched to an
/// address by trying all 2^32 IPv4 ones.
#[derive(Clone)]
pub struct AddressKey([u8; 32]);

impl AddressKey {
    /// A key of its own derived from `secret` (the room-id key), so that one secret
    /// serves both and neither use can stand in for the other.
    pub fn derive(secret: &[u8]) -> Self {
        Self(mac(secret, &[KEY_DOMAIN]))
    }

    /// The hash an address is counted under: IPv4 addresses whole, IPv6 ones by their
    /// /64 prefix (one subscriber commonly holds a whole /64), an IPv4-mapped IPv6
    /// address as its IPv4 one. 16 bytes as hex.
    pub fn hash(&self, address: IpAddr) -> String {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let bytes: Vec<u8> = match address {
            IpAddr::V4(v4) => [&[4u8][..], &v4.octets()].concat(),
            IpAddr::V6(v6) => [&[6u8][..], &v6.octets()[..8]].concat(),
        };
        hex::encode(&mac(&self.0, &[ADDRESS_DOMAIN, &bytes])[..16])
    }
}

impl fmt::Debug for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddressKey(<redacted>)")
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// At most `creates` users per source address per fixed window of `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateLimit {
    pub creates: u32,
    pub window_secs: u64,
}

impl Default for CreateLimit {
    fn default() -> Self {
        // Generous enough for a household or an office behind one address; a script
        // minting identities gets 30 an hour per address.
        Self {
            creates: 30,
            window_secs: 3600,
        }
    }
}

/// A create limit and the key its addresses are hashed with.
#[derive(Clone, Debug)]
pub struct AddressLimit {
    pub key: AddressKey,
    pub limit: CreateLimit,
}

impl AddressLimit {
    /// What a create from `address` at `now` is counted against. A request with no
    /// known address (a direct invocation) is counted with all such requests.
    pub fn quota(&self, address: Option<IpAddr>, now: SystemTime) -> CreateQuota {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let window_secs = self.limit.window_secs.max(1);
        let window = secs / window_secs;
        let ends_at = (window + 1) * window_secs;
        CreateQuota {
            address: address.map_or_else(|| "unknown".to_owned(), |a| self.key.hash(a)),
            window,
            limit: self.limit.creates,
            expires_at: ends_at,
            retry_after: u32::try_from(ends_at - secs).unwrap_or(u32::MAX).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key() -> AddressKey {
        AddressKey::derive(b"0123456789abcdef0123456789abcdef")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hashes_are_keyed_and_ipv6_counts_by_its_64_prefix() {
        let a = key().hash(ip("203.0.113.7"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, key().hash(ip("203.0.113.8")));
        assert_ne!(a, AddressKey::derive(&[1u8; 32]).hash(ip("203.0.113.7")));
        assert_eq!(a, key().hash(ip("::ffff:203.0.113.7")));
        assert_eq!(
            key().hash(ip("2001:db8:1:2::1")),
            key().hash(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            key().hash(ip("2001:db8:1:2::1")),
            key().hash(ip("2001:db8:1:3::1"))
        );
        assert!(!format!("{:?}", key()).contains("0123"));
    }

    #[test]
    fn hash_matches_an_independent_hmac() {
        // Python: k = hmac.new(secret, b"secret-rooms/v2/address-key\0", sha256).digest();
        // hmac.new(k, b"secret-rooms/v2/address\0" + bytes([4, 203, 0, 113, 7]),
        // sha256).hexdigest()[:32]
        assert_eq!(key().hash(ip("203.0.113.7")), ADDRESS_VECTOR);
    }

    const ADDRESS_VECTOR: &str = "ce957b287c92dd44e0a3a52a1d06c1d6";

    #[test]
    fn quotas_follow_fixed_windows() {
        let limit = AddressLimit {
            key: key(),
            limit: CreateLimit {
                creates: 3,
                window_secs: 100,
            },
        };
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let q = limit.quota(Some(ip("203.0.113.7")), at(1_050));
        assert_eq!((q.window, q.expires_at, q.retry_after), (10, 1_100, 50));
        assert_eq!(q.limit, 3);
        let next = limit.quota(Some(ip("203.0.113.7")), at(1_100));
        assert_eq!((next.window, next.retry_after), (11, 100));
        assert_eq!(next.address, q.address);
        assert_eq!(limit.quota(None, at(1_050)).address, "unknown");
    }
}
