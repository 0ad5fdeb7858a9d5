//! Sign-in throttling: growing delays, never a lockout of the real user.
//!
//! Failures are counted over a window three ways. Per (email, client
//! address): the owner mistyping or one attacker on one account; after a
//! few free failures each further try waits twice as long as the last
//! (from [`FIRST_DELAY_SECONDS`]), up to [`MAX_DELAY_SECONDS`]. Per email across addresses (one account
//! attacked from many) and per address across emails (one address trying
//! many accounts): the same growing delay after a larger allowance, but
//! only for devices that never signed in to the account; a device that
//! did (same address and user agent) keeps signing in with the right
//! password while strangers wait. No rule refuses a try outright, so
//! nobody can lock a user out by failing on purpose.

/// Failures per (email, address) before tries wait.
pub const PAIR_FREE: i64 = 5;
/// Failures per email, across addresses, before unknown devices wait.
pub const EMAIL_FREE: i64 = 20;
/// Failures per address, across emails, before unknown devices wait.
pub const ADDRESS_FREE: i64 = 50;
/// The first wait, once the free failures are spent: long enough to stop
/// a script, short enough for a person who mistyped.
pub const FIRST_DELAY_SECONDS: i64 = 15;
/// The longest wait between tries.
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;
/// The window failures are counted in.
pub const WINDOW_SECONDS: i64 = 15 * 60;

/// Failures of one kind within the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// How many.
    pub count: i64,
    /// Unix seconds of the newest.
    pub last_at: i64,
}

/// What the window holds about a sign-in about to be tried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recent {
    /// Failures for this email from this address.
    pub pair: Failures,
    /// Failures for this email from any address.
    pub email: Failures,
    /// Failures from this address for any email.
    pub address: Failures,
    /// Whether this address and user agent signed in to the account before.
    pub known_device: bool,
}

/// The wait after `excess` failures past an allowance: 15 s, 30 s, 60 s,
/// … up to [`MAX_DELAY_SECONDS`].
pub fn delay(excess: i64) -> i64 {
    let exponent = u32::try_from(excess.clamp(0, 20)).unwrap_or(20);
    (FIRST_DELAY_SECONDS << exponent).min(MAX_DELAY_SECONDS)
}

fn wait_for(failures: Failures, free: i64, now: i64) -> i64 {
    if failures.count < free {
        return 0;
    }
    (failures.last_at + delay(failures.count - free) - now).max(0)
}

/// Seconds to wait before this try may be judged; `None` when it may
/// proceed now.
pub fn wait(recent: &Recent, now: i64) -> Option<i64> {
    let mut wait = wait_for(recent.pair, PAIR_FREE, now);
    if !recent.known_device {
        wait = wait
            .max(wait_for(recent.email, EMAIL_FREE, now))
            .max(wait_for(recent.address, ADDRESS_FREE, now));
    }
    (wait > 0).then_some(wait)
}

/// Wrong second-factor codes per user, across challenges, before each
/// further try waits.
pub const MFA_FREE: i64 = 5;
/// Tries since the last right code at which the second factor locks.
pub const MFA_LOCK_AFTER: i64 = 10;
/// How long the first lock of a second factor refuses every try; each try
/// after it locks again, twice as long, up to [`MFA_MAX_LOCK_SECONDS`].
pub const MFA_LOCK_SECONDS: i64 = 3600;
/// The longest lock.
pub const MFA_MAX_LOCK_SECONDS: i64 = 32 * 3600;

/// A user's second-factor guard as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaGuard {
    /// Tries since the last right code (each counted before it is judged).
    pub failures: i64,
    /// No try before this (0: none due).
    pub next_attempt_at: i64,
    /// Every try refused until this (0: not locked).
    pub locked_until: i64,
}

/// Why a second-factor try may not be judged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    /// Too many wrong codes lately: wait this many seconds.
    Wait(i64),
    /// The factor is locked for this many more seconds.
    Locked(i64),
}

/// Claims a try: the guard to store before judging the code (so parallel
/// tries are each counted), or why no try may be judged now. A right code
/// then stores [`MfaGuard::default`].
pub fn claim_mfa_try(guard: MfaGuard, now: i64) -> Result<MfaGuard, MfaRefusal> {
    if guard.locked_until > now {
        return Err(MfaRefusal::Locked(guard.locked_until - now));
    }
    if guard.next_attempt_at > now {
        return Err(MfaRefusal::Wait(guard.next_attempt_at - now));
    }
    let failures = guard.failures + 1;
    Ok(MfaGuard {
        failures,
        next_attempt_at: if failures >= MFA_FREE {
            now + delay(failures - MFA_FREE)
        } else {
            0
        },
        locked_until: if failures >= MFA_LOCK_AFTER {
            let doublings = u32::try_from((failures - MFA_LOCK_AFTER).clamp(0, 5)).unwrap_or(5);
            now + (MFA_LOCK_SECONDS << doublings).min(MFA_MAX_LOCK_SECONDS)
        } else {
            0
        },
    })
}

/// Whether the user hears of a wrong code that brought the count to
/// `failures`: when the slowing starts (someone knows the password) and
/// when the factor locks.
pub fn notify_mfa_failures(failures: i64) -> bool {
    failures == MFA_FREE || failures == MFA_LOCK_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(count: i64, last_at: i64) -> Failures {
        Failures { count, last_at }
    }

    #[test]
    fn delays_double_and_stop_growing_at_the_cap() {
        assert_eq!((delay(0), delay(1), delay(4)), (15, 30, 240));
        assert_eq!(
            (delay(6), delay(30)),
            (MAX_DELAY_SECONDS, MAX_DELAY_SECONDS)
        );
        assert_eq!(delay(-3), 15);
    }

    #[test]
    fn a_few_mistakes_cost_nothing_then_each_try_waits_longer() {
        let mut recent = Recent {
            pair: failures(PAIR_FREE - 1, 100),
            ..Recent::default()
        };
        assert_eq!(wait(&recent, 100), None);
        recent.pair = failures(PAIR_FREE, 100);
        assert_eq!(wait(&recent, 100), Some(15));
        assert_eq!(wait(&recent, 115), None, "the wait is over");
        recent.pair = failures(PAIR_FREE + 3, 100);
        assert_eq!(wait(&recent, 101), Some(119));
    }

    #[test]
    fn an_attack_on_the_account_from_elsewhere_never_stops_a_known_device() {
        let attacked = Recent {
            email: failures(500, 100),
            address: failures(0, 0),
            pair: failures(0, 0),
            known_device: true,
        };
        assert_eq!(wait(&attacked, 100), None);
        let stranger = Recent {
            known_device: false,
            ..attacked
        };
        assert_eq!(wait(&stranger, 100), Some(MAX_DELAY_SECONDS));
    }

    #[test]
    fn many_accounts_tried_from_one_address_slow_that_address_for_strangers() {
        let spraying = Recent {
            address: failures(ADDRESS_FREE + 2, 100),
            ..Recent::default()
        };
        assert_eq!(wait(&spraying, 100), Some(60));
        let owner = Recent {
            known_device: true,
            ..spraying
        };
        assert_eq!(wait(&owner, 100), None);
    }

    #[test]
    fn second_factor_tries_slow_down_then_lock_and_a_right_code_clears_them() {
        let mut guard = MfaGuard::default();
        for n in 1..MFA_FREE {
            guard = claim_mfa_try(guard, 100).unwrap_or_default();
            assert_eq!((guard.failures, guard.next_attempt_at), (n, 0));
        }
        guard = claim_mfa_try(guard, 100).unwrap_or_default();
        assert_eq!(
            guard.next_attempt_at, 115,
            "the fifth wrong try starts the wait"
        );
        assert_eq!(claim_mfa_try(guard, 100), Err(MfaRefusal::Wait(15)));
        let mut now = 115;
        while guard.failures < MFA_LOCK_AFTER - 1 {
            guard = claim_mfa_try(guard, now).unwrap_or_default();
            now = guard.next_attempt_at;
        }
        assert_eq!(guard.locked_until, 0);
        guard = claim_mfa_try(guard, now).unwrap_or_default();
        assert_eq!(guard.locked_until, now + MFA_LOCK_SECONDS);
        assert_eq!(
            claim_mfa_try(guard, now + 60),
            Err(MfaRefusal::Locked(MFA_LOCK_SECONDS - 60))
        );
        let after = claim_mfa_try(guard, guard.locked_until).unwrap_or_default();
        assert_eq!(
            after.locked_until,
            guard.locked_until + 2 * MFA_LOCK_SECONDS,
            "each try after a lock locks again, for longer"
        );
        let (mut late, mut at) = (after, after.locked_until);
        for _ in 0..10 {
            at = late.locked_until;
            late = claim_mfa_try(late, at).unwrap_or_default();
        }
        assert_eq!(
            late.locked_until - at,
            MFA_MAX_LOCK_SECONDS,
            "locks stop growing"
        );
        assert!(notify_mfa_failures(MFA_FREE) && notify_mfa_failures(MFA_LOCK_AFTER));
        assert!(!notify_mfa_failures(MFA_FREE + 1));
    }
}
