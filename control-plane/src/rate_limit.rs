//! Rate limits: each verified token may make so many requests a minute, and each client
//! address may fail authentication so many times a minute, after which it is refused (429
//! with `Retry-After`) before any token it sends is looked at, so guessing secrets or
//! flooding the API from one address gets nowhere. GCRA limiters of `governor`, in memory
//! of this process (each replica limits on its own).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, DefaultClock>;

/// Keys kept before the limiters drop those that are back to a full burst.
const HOUSEKEEPING_AT: usize = 10_000;

/// A rate: so many a minute, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The sustained rate.
    pub per_minute: NonZeroU32,
    /// How many may come at once.
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_minute` a minute, `burst` at once.
    pub const fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Rate {
        Rate { per_minute, burst }
    }

    fn quota(self) -> Quota {
        Quota::per_minute(self.per_minute).allow_burst(self.burst)
    }
}

/// The platform's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests of one verified token.
    pub per_token: Rate,
    /// Failed authentications from one client address (an IPv6 client's /64).
    pub failed_auth_per_address: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).expect("positive");
        Limits {
            per_token: Rate::new(n(1200), n(200)),
            failed_auth_per_address: Rate::new(n(20), n(20)),
        }
    }
}

/// The limiters, shared by every request.
#[derive(Clone)]
pub struct RateLimits(Arc<Inner>);

struct Inner {
    tokens: Keyed<String>,
    failures: Keyed<IpAddr>,
    /// Addresses over their limit, refused until the instant given.
    refused: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(Limits::default())
    }
}

impl RateLimits {
    /// Limiters for `limits`.
    pub fn new(limits: Limits) -> RateLimits {
        RateLimits(Arc::new(Inner {
            tokens: RateLimiter::hashmap(limits.per_token.quota()),
            failures: RateLimiter::hashmap(limits.failed_auth_per_address.quota()),
            refused: Mutex::default(),
            clock: DefaultClock::default(),
        }))
    }

    /// Before a token is checked: how long `address` is still refused for failing
    /// authentication too often, if it is.
    pub fn address_refused(&self, address: IpAddr) -> Option<Duration> {
        let key = network(address);
        let now = Instant::now();
        let mut refused = self.0.refused.lock().expect("the refused addresses");
        match refused.get(&key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                refused.remove(&key);
                None
            }
            None => None,
        }
    }

    /// A failed authentication from `address`: once the address is over its limit, how
    /// long it is refused (every request from it, whatever token it sends).
    pub fn failed(&self, address: IpAddr) -> Option<Duration> {
        let key = network(address);
        let inner = &self.0;
        if inner.failures.len() > HOUSEKEEPING_AT {
            inner.failures.retain_recent();
            let now = Instant::now();
            inner
                .refused
                .lock()
                .expect("the refused addresses")
                .retain(|_, until| *until > now);
        }
        let wait = inner
            .failures
            .check_key(&key)
            .err()?
            .wait_time_from(inner.clock.now())
            // A whole second at least: `Retry-After` counts seconds.
            .max(Duration::from_secs(1));
        inner
            .refused
            .lock()
            .expect("the refused addresses")
            .insert(key, Instant::now() + wait);
        Some(wait)
    }

    /// A request of the verified token `id`: how long it must wait if it is over its limit.
    pub fn token(&self, id: &str) -> Option<Duration> {
        let inner = &self.0;
        if inner.tokens.len() > HOUSEKEEPING_AT {
            inner.tokens.retain_recent();
        }
        let id = id.to_owned();
        inner
            .tokens
            .check_key(&id)
            .err()
            .map(|n| n.wait_time_from(inner.clock.now()))
    }
}

/// The key of a client address: an IPv4 address, or an IPv6 client's /64 (one host
/// commonly holds the whole /64, so single addresses would not limit it).
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> RateLimits {
        let n = |v| NonZeroU32::new(v).unwrap();
        RateLimits::new(Limits {
            per_token: Rate::new(n(1), n(burst)),
            failed_auth_per_address: Rate::new(n(1), n(burst)),
        })
    }

    #[test]
    fn an_address_is_refused_after_its_burst_of_failures_and_others_are_not() {
        let l = limits(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.address_refused(a), None);
            assert_eq!(l.failed(a), None);
        }
        let wait = l.failed(a).expect("the fourth failure is over the limit");
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(l.address_refused(a).is_some());
        assert_eq!(l.address_refused(b), None);
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64() {
        let l = limits(1);
        assert_eq!(l.failed("2001:db8::1".parse().unwrap()), None);
        assert!(l.failed("2001:db8::ffff:2".parse().unwrap()).is_some());
        assert!(l.address_refused("2001:db8::99".parse().unwrap()).is_some());
        assert_eq!(l.address_refused("2001:db8:0:1::1".parse().unwrap()), None);
        // An IPv4 client over IPv6 is its IPv4 address.
        assert_eq!(
            network("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn each_token_has_its_own_budget() {
        let l = limits(2);
        assert_eq!(l.token("a"), None);
        assert_eq!(l.token("a"), None);
        assert!(l.token("a").is_some());
        assert_eq!(l.token("b"), None);
    }
}
