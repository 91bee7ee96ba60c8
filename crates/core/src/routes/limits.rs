//! A route's limits: the body size, a token-bucket rate limit per client address (429 with
//! `Retry-After`) and the time a blocking call may take. The buckets live in memory, bounded:
//! a full bucket is the same as none, so idle ones are dropped first when the map is full.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::RouteSpec;
use crate::config::ServerConfig;

/// The most buckets kept at once (route × client address).
pub const MAX_BUCKETS: usize = 100_000;

/// The largest body `spec` takes: its own bound, else the server's input bound.
pub fn max_body(spec: &RouteSpec, config: &ServerConfig) -> u64 {
    let server = config.max_input_bytes as u64;
    spec.limits.max_body_bytes.map_or(server, |b| b.min(server))
}

/// How long a blocking call through `spec` may take before the caller gets 202 with the run
/// id: its own timeout, else the server's blocking timeout.
pub fn blocking_timeout(spec: &RouteSpec, config: &ServerConfig) -> Duration {
    let server = config.blocking_timeout;
    spec.limits
        .timeout_seconds
        .map_or(server, |s| Duration::from_secs(s).min(server))
}

type BucketKey = (String, String, IpAddr);

struct Bucket {
    tokens: f64,
    last: Instant,
    /// When the bucket is full again if nothing more is taken (then it is the same as none).
    full_at: Instant,
}

/// The routes' token buckets, per (namespace, route, client address).
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from the bucket of (`namespace`, `route`, `client`), refilled at
    /// `rate` per second up to `burst`. `Err` holds how long until a token is there.
    pub fn take(
        &self,
        namespace: &str,
        route: &str,
        client: IpAddr,
        rate: f64,
        burst: u32,
    ) -> Result<(), Duration> {
        self.take_at(namespace, route, client, rate, burst, Instant::now())
    }

    fn take_at(
        &self,
        namespace: &str,
        route: &str,
        client: IpAddr,
        rate: f64,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        if !(rate.is_finite() && rate > 0.0) {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), route.to_string(), client);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_BUCKETS {
            evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
            full_at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.full_at = now + Duration::from_secs_f64((burst - bucket.tokens) / rate);
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Forgets the buckets of routes not in `live` (deleted or disabled ones).
    pub fn keep_routes(&self, live: &HashSet<(String, String)>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|(ns, route, _), _| live.contains(&(ns.clone(), route.clone())));
    }

    /// How many buckets are kept.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room: drops the full buckets (the same as none); if none is full, the half that
/// was used least recently.
fn evict(buckets: &mut HashMap<BucketKey, Bucket>, now: Instant) {
    buckets.retain(|_, b| b.full_at > now);
    if buckets.len() >= MAX_BUCKETS {
        let mut lasts: Vec<Instant> = buckets.values().map(|b| b.last).collect();
        let middle = lasts.len() / 2;
        let (_, cut, _) = lasts.select_nth_unstable(middle);
        let cut = *cut;
        buckets.retain(|_, b| b.last > cut);
    }
}

/// `Retry-After`'s whole seconds for a wait (at least 1).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at("demo", "r", ip, 2.0, 3, t0).is_ok());
        }
        let wait = limiter.take_at("demo", "r", ip, 2.0, 3, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_seconds(wait), 1);
        // Another address and another route have buckets of their own.
        assert!(limiter.take_at("demo", "r", other, 2.0, 3, t0).is_ok());
        assert!(limiter.take_at("demo", "r2", ip, 2.0, 3, t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.take_at("demo", "r", ip, 2.0, 3, t1).is_ok());
        assert!(limiter.take_at("demo", "r", ip, 2.0, 3, t1).is_err());
        // A deleted route's buckets go.
        let live: HashSet<(String, String)> = [("demo".to_string(), "r".to_string())].into();
        limiter.keep_routes(&live);
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS as u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(limiter.take_at("demo", "r", ip, 1.0, 5, t0).is_ok());
        }
        assert_eq!(limiter.len(), MAX_BUCKETS);
        // Full: a new address makes room by dropping the least recently used half.
        let t1 = t0 + Duration::from_millis(1);
        let newcomer: IpAddr = "192.168.1.1".parse().unwrap();
        limiter.take_at("demo", "r", newcomer, 1.0, 5, t1).unwrap();
        assert!(limiter.len() <= MAX_BUCKETS / 2 + 1, "{}", limiter.len());
        // Buckets that filled up again are the same as none: dropped first.
        let mut i = 0u32;
        while limiter.len() < MAX_BUCKETS {
            i += 1;
            let ip = IpAddr::from((u32::MAX - i).to_be_bytes());
            limiter.take_at("demo", "r", ip, 1.0, 5, t1).unwrap();
        }
        let later = t1 + Duration::from_secs(10);
        limiter
            .take_at("demo", "r", "192.168.1.2".parse().unwrap(), 1.0, 5, later)
            .unwrap();
        assert_eq!(limiter.len(), 1);
    }
}
