//! Login throttling per account and per client address, with growing delays.
//!
//! Rule, in plain words:
//! - Three counters of failed logins, each with its own allowance of free failures:
//!   the (account, address) pair: 5; the address, across accounts (password spraying): 20;
//!   the account, across addresses (a distributed guess): 5.
//! - Past its allowance, each further failure makes the counter wait
//!   `1 s * 2^(failures - allowance)`, capped at 15 min. While any counter that applies is
//!   waiting, the attempt is refused with `resource_exhausted` and the seconds to wait, and
//!   the password is not even checked.
//! - Every attempt counts as a failure when it starts ([`LoginThrottle::begin`]), so a burst of
//!   parallel guesses is counted in full; a success undoes the address part and resets the
//!   account and the pair ([`LoginThrottle::succeeded`]).
//! - Counters forget: one that has not failed for an hour starts from zero.
//! - No lock-out: a delay is the worst that happens, never a lock. And an attacker cannot keep
//!   the owner out even with delays: the account-wide counter is skipped for an address the
//!   account has logged in from successfully within 90 days (up to 64 addresses per account,
//!   the least recently used dropped first), so only the owner's own pair counter applies
//!   there, which the attacker cannot touch from elsewhere. Only a login from a new address
//!   can be slowed by a distributed attack on the account.
//! - Usernames are counted whether they exist or not, so throttling reveals nothing.
//! - Memory is bounded: at most `max_entries` counters per map; the stalest are dropped first.
//!
//! Time is an argument: `now_ms`, milliseconds on a monotonic clock (the caller passes
//! `tokio::time::Instant` elapsed since start-up, so tests run on paused time).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
};

use super::AuthError;

/// Throttle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub pair_free_failures: u32,
    pub address_free_failures: u32,
    pub account_free_failures: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A counter idle this long is forgotten.
    pub forget_after_ms: u64,
    /// How long a successful login makes an address "known" to an account.
    pub known_address_ms: u64,
    /// Known addresses kept per account.
    pub known_addresses_per_account: usize,
    /// Counters kept per map.
    pub max_entries: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            pair_free_failures: 5,
            address_free_failures: 20,
            account_free_failures: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 15 * 60 * 1_000,
            forget_after_ms: 60 * 60 * 1_000,
            known_address_ms: 90 * 24 * 3600 * 1_000,
            known_addresses_per_account: 64,
            max_entries: 100_000,
        }
    }
}

/// One failure counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    failures: u32,
    last_ms: u64,
    blocked_until_ms: u64,
}

impl Counter {
    fn fresh(&self, p: &ThrottlePolicy, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_ms) < p.forget_after_ms
    }

    /// Milliseconds left to wait, if any.
    fn wait_ms(&self, p: &ThrottlePolicy, now_ms: u64) -> Option<u64> {
        (self.fresh(p, now_ms) && now_ms < self.blocked_until_ms).then(|| self.blocked_until_ms - now_ms)
    }

    fn fail(&mut self, p: &ThrottlePolicy, free: u32, now_ms: u64) {
        if !self.fresh(p, now_ms) {
            *self = Counter {
                failures: 0,
                last_ms: now_ms,
                blocked_until_ms: 0,
            };
        }
        self.failures = self.failures.saturating_add(1);
        self.last_ms = now_ms;
        if self.failures > free {
            let exp = (self.failures - free - 1).min(40);
            let delay = p.base_delay_ms.saturating_mul(1u64 << exp).min(p.max_delay_ms);
            self.blocked_until_ms = now_ms.saturating_add(delay);
        }
    }
}

/// IPv6 clients are grouped by /64: one host easily holds a whole /64.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The throttle state. Not thread-safe by itself: keep it behind a `Mutex` (every operation
/// is a few hash-map steps).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    pairs: HashMap<(String, Option<IpAddr>), Counter>,
    addresses: HashMap<IpAddr, Counter>,
    accounts: HashMap<String, Counter>,
    /// Account -> (address, last success).
    known: HashMap<String, Vec<(IpAddr, u64)>>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            ..Default::default()
        }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    fn is_known(&self, account: &str, addr: Option<IpAddr>, now_ms: u64) -> bool {
        let Some(addr) = addr else { return false };
        self.known.get(account).is_some_and(|v| {
            v.iter()
                .any(|(a, t)| *a == addr && now_ms.saturating_sub(*t) < self.policy.known_address_ms)
        })
    }

    /// Starts a login attempt for `username` from `addr`: refuses it while a counter that
    /// applies is waiting, otherwise counts it as a failure until [`Self::succeeded`] says
    /// otherwise.
    pub fn begin(&mut self, username: &str, addr: Option<IpAddr>, now_ms: u64) -> Result<(), AuthError> {
        let account = crate::model::normalize_username(username);
        let addr = addr.map(address_key);
        let p = self.policy;
        let pair_key = (account.clone(), addr);
        let known = self.is_known(&account, addr, now_ms);
        let waits = [
            self.pairs.get(&pair_key).and_then(|c| c.wait_ms(&p, now_ms)),
            addr.and_then(|a| self.addresses.get(&a))
                .and_then(|c| c.wait_ms(&p, now_ms)),
            if known {
                None
            } else {
                self.accounts.get(&account).and_then(|c| c.wait_ms(&p, now_ms))
            },
        ];
        if let Some(ms) = waits.into_iter().flatten().max() {
            return Err(AuthError::Throttled {
                retry_after: ms.div_ceil(1000).max(1),
            });
        }
        self.make_room(now_ms);
        self.pairs
            .entry(pair_key)
            .or_default()
            .fail(&p, p.pair_free_failures, now_ms);
        if let Some(a) = addr {
            self.addresses
                .entry(a)
                .or_default()
                .fail(&p, p.address_free_failures, now_ms);
        }
        // A known address does not feed the account-wide counter either: the owner's typos
        // must not slow the owner down elsewhere more than the pair counter does.
        if !known {
            self.accounts
                .entry(account)
                .or_default()
                .fail(&p, p.account_free_failures, now_ms);
        }
        Ok(())
    }

    /// The attempt begun for `username` from `addr` succeeded.
    pub fn succeeded(&mut self, username: &str, addr: Option<IpAddr>, now_ms: u64) {
        let account = crate::model::normalize_username(username);
        let addr = addr.map(address_key);
        self.pairs.remove(&(account.clone(), addr));
        self.accounts.remove(&account);
        if let Some(a) = addr {
            // Undo this attempt's count only: logging in with one's own account must not
            // wipe the address's record of failures against other accounts.
            if let Some(c) = self.addresses.get_mut(&a) {
                c.failures = c.failures.saturating_sub(1);
                if c.failures <= self.policy.address_free_failures {
                    c.blocked_until_ms = 0;
                }
            }
            let n = self.policy.known_addresses_per_account;
            let v = self.known.entry(account).or_default();
            v.retain(|(x, _)| *x != a);
            v.push((a, now_ms));
            if v.len() > n {
                v.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
                v.truncate(n);
            }
        }
    }

    /// Drops forgotten counters, then, if a map is still full, its stalest entries.
    fn make_room(&mut self, now_ms: u64) {
        let p = self.policy;
        if self.pairs.len() < p.max_entries
            && self.addresses.len() < p.max_entries
            && self.accounts.len() < p.max_entries
        {
            return;
        }
        self.prune(now_ms);
        evict_stalest(&mut self.pairs, p.max_entries);
        evict_stalest(&mut self.addresses, p.max_entries);
        evict_stalest(&mut self.accounts, p.max_entries);
    }

    /// Drops counters that are forgotten and known addresses that expired. Call now and then
    /// (e.g. once a minute) to keep memory small.
    pub fn prune(&mut self, now_ms: u64) {
        let p = self.policy;
        let keep = |c: &mut Counter| c.fresh(&p, now_ms) || now_ms < c.blocked_until_ms;
        self.pairs.retain(|_, c| keep(c));
        self.addresses.retain(|_, c| keep(c));
        self.accounts.retain(|_, c| keep(c));
        self.known.retain(|_, v| {
            v.retain(|(_, t)| now_ms.saturating_sub(*t) < p.known_address_ms);
            !v.is_empty()
        });
    }

    /// Number of counters held (all maps).
    pub fn len(&self) -> usize {
        self.pairs.len() + self.addresses.len() + self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps the map below `max` by dropping the least recently failed tenth.
fn evict_stalest<K: Clone + Eq + std::hash::Hash>(map: &mut HashMap<K, Counter>, max: usize) {
    if map.len() < max {
        return;
    }
    let mut ages: Vec<(u64, K)> = map.iter().map(|(k, c)| (c.last_ms, k.clone())).collect();
    ages.sort_by_key(|(t, _)| *t);
    let drop = (map.len() + 1 - max).max(max / 10);
    for (_, k) in ages.into_iter().take(drop) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    const SEC: u64 = 1000;

    fn retry(r: Result<(), AuthError>) -> Option<u64> {
        match r {
            Ok(()) => None,
            Err(AuthError::Throttled { retry_after }) => Some(retry_after),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn five_free_failures_then_exponential_delay_capped() {
        let mut t = LoginThrottle::default();
        let mut now = 0;
        for _ in 0..5 {
            assert_eq!(retry(t.begin("alice", A, now)), None);
        }
        // The 6th attempt is allowed (the 5 are free) and arms a 1 s delay.
        assert_eq!(retry(t.begin("alice", A, now)), None);
        assert_eq!(retry(t.begin("alice", A, now)), Some(1));
        assert_eq!(retry(t.begin("alice", A, now + 999)), Some(1));
        // Delays double with each failure past the allowance.
        let mut expected = 2;
        now += SEC;
        for _ in 0..12 {
            assert_eq!(retry(t.begin("alice", A, now)), None);
            let wait = retry(t.begin("alice", A, now)).unwrap();
            assert_eq!(wait, expected.min(15 * 60), "at {now}");
            now += wait * SEC;
            expected *= 2;
        }
        // Capped at 15 min.
        assert_eq!(retry(t.begin("alice", A, now)), None);
        assert_eq!(retry(t.begin("alice", A, now)), Some(900));
    }

    #[test]
    fn refused_attempts_do_not_count() {
        let mut t = LoginThrottle::default();
        for _ in 0..6 {
            t.begin("alice", A, 0).unwrap();
        }
        for _ in 0..100 {
            assert!(t.begin("alice", A, 500).is_err());
        }
        // After the 1 s wait the next failure arms 2 s, not 2^100 s.
        t.begin("alice", A, SEC).unwrap();
        assert_eq!(retry(t.begin("alice", A, SEC)), Some(2));
    }

    #[test]
    fn success_resets_the_account() {
        let mut t = LoginThrottle::default();
        for _ in 0..6 {
            t.begin("alice", A, 0).unwrap();
        }
        assert!(t.begin("alice", A, 0).is_err());
        t.begin("alice", A, 2 * SEC).unwrap();
        t.succeeded("alice", A, 2 * SEC);
        for _ in 0..5 {
            assert_eq!(retry(t.begin("alice", A, 2 * SEC)), None);
        }
    }

    #[test]
    fn a_success_below_the_allowance_leaves_no_delay() {
        let mut t = LoginThrottle::default();
        for i in 0..20 {
            t.begin(&format!("user{i}"), A, 0).unwrap();
        }
        // The 21st attempt arms the address delay, but it succeeds: the delay is undone.
        t.begin("bob", A, 0).unwrap();
        t.succeeded("bob", A, 0);
        assert_eq!(retry(t.begin("carol", A, 0)), None);
    }

    #[test]
    fn counters_are_forgotten_after_an_idle_hour() {
        let mut t = LoginThrottle::default();
        for _ in 0..7 {
            let _ = t.begin("alice", A, 0);
        }
        assert!(t.begin("alice", A, 1).is_err());
        let later = 60 * 60 * SEC + 1;
        for _ in 0..5 {
            assert_eq!(retry(t.begin("alice", A, later)), None);
        }
        t.prune(3 * later);
        assert!(t.is_empty());
    }

    #[test]
    fn usernames_are_case_insensitive_and_need_not_exist() {
        let mut t = LoginThrottle::default();
        for u in ["Ghost", "ghost", "GHOST", " ghost ", "gHoSt", "ghost"] {
            t.begin(u, A, 0).unwrap();
        }
        assert!(t.begin("ghost", A, 0).is_err());
    }

    #[test]
    fn an_attacker_elsewhere_cannot_lock_the_owner_out() {
        let mut t = LoginThrottle::default();
        // The owner logged in from A before.
        t.begin("alice", A, 0).unwrap();
        t.succeeded("alice", A, 0);
        // An attacker hammers alice from many addresses.
        let mut now = SEC;
        for i in 0..200u32 {
            let ip = Some(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)));
            let _ = t.begin("alice", ip, now);
            now += 100;
        }
        // A brand-new address is slowed down by the account counter...
        assert!(t.begin("alice", B, now).is_err());
        // ...but the owner's known address is not.
        assert_eq!(retry(t.begin("alice", A, now)), None);
        t.succeeded("alice", A, now);
        // The worst wait anywhere is the cap.
        let w = retry(t.begin("alice", Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))), now)).unwrap_or(0);
        assert!(w <= 15 * 60);
    }

    #[test]
    fn password_spraying_from_one_address_is_slowed() {
        let mut t = LoginThrottle::default();
        for i in 0..21 {
            t.begin(&format!("user{i}"), A, 0).unwrap();
        }
        // The address is over its 20 free failures, whatever the account.
        assert_eq!(retry(t.begin("someone-new", A, 0)), Some(1));
        // Another address is unaffected.
        assert_eq!(retry(t.begin("someone-new", B, 0)), None);
        // A success from A does not wipe A's record.
        t.begin("user0", A, SEC).unwrap();
        t.succeeded("user0", A, SEC);
        assert_eq!(retry(t.begin("x", A, SEC)), Some(2));
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), A.unwrap());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = LoginThrottle::new(ThrottlePolicy {
            max_entries: 100,
            ..Default::default()
        });
        for i in 0..1000u32 {
            let ip = Some(IpAddr::V4(Ipv4Addr::from(i)));
            let _ = t.begin(&format!("u{i}"), ip, u64::from(i));
        }
        assert!(t.pairs.len() <= 100 && t.addresses.len() <= 100 && t.accounts.len() <= 100);
        // The newest entries survive.
        assert!(t.accounts.contains_key("u999"));
        assert!(!t.accounts.contains_key("u0"));
    }

    #[tokio::test(start_paused = true)]
    async fn works_on_tokio_paused_time() {
        let start = tokio::time::Instant::now();
        let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap();
        let mut t = LoginThrottle::default();
        for _ in 0..6 {
            t.begin("alice", A, now_ms()).unwrap();
        }
        let wait = retry(t.begin("alice", A, now_ms())).unwrap();
        tokio::time::advance(std::time::Duration::from_secs(wait)).await;
        assert_eq!(retry(t.begin("alice", A, now_ms())), None);
    }

    /// A distributed attack pushes the account-wide delay to its cap, and the owner has
    /// logged in from many other places since: the owner's usual address is not slowed.
    #[test]
    fn a_distributed_attack_never_slows_a_known_address() {
        let mut t = LoginThrottle::default();
        let owner = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        t.begin("admin", owner, 0).unwrap();
        t.succeeded("admin", owner, 0);
        // Thirty other places the owner logged in from later (more than the old limit of 8).
        for i in 0..30u8 {
            let other = Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)));
            t.begin("admin", other, 1_000 + u64::from(i)).unwrap();
            t.succeeded("admin", other, 1_000 + u64::from(i));
        }
        // Thousands of guesses from fresh addresses, each obeying Retry-After.
        let mut now = 10 * SEC;
        for i in 0..40u32 {
            let attacker = Some(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)));
            if let Some(wait) = retry(t.begin("admin", attacker, now)) {
                now += wait * SEC;
                t.begin("admin", attacker, now).unwrap();
            }
        }
        // A new address is slowed by the account-wide counter (at its cap by now)...
        let new = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 9, 9)));
        assert_eq!(retry(t.begin("admin", new, now)), Some(15 * 60));
        // ...the owner's known address is not.
        assert_eq!(retry(t.begin("admin", owner, now)), None);
        t.succeeded("admin", owner, now);
    }
}
