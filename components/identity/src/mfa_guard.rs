//! The second factor's guard against guessing: wrong codes are counted
//! per user across every login challenge (see
//! [`identity_core::throttle::claim_mfa_try`]), each try is counted before
//! its code is judged, tries slow down and then the factor locks, and the
//! user is told by mail.

use gatehouse_http::{ErrorCode, Problem};
use identity_core::throttle::{self, MfaGuard, MfaRefusal};
use spin_sdk::sqlite::Connection;

use crate::db;
use crate::outbox::Outbox;

fn refused(refusal: MfaRefusal) -> Problem {
    let (seconds, detail) = match refusal {
        MfaRefusal::Wait(s) => (s, "too many wrong codes; wait before trying again"),
        MfaRefusal::Locked(s) => (
            s,
            "too many wrong codes: the second factor is locked for now; the account's owner was told by mail",
        ),
    };
    Problem::new(ErrorCode::RateLimited)
        .detail(detail)
        .header("retry-after", seconds.max(1).to_string())
}

/// Claims one try for the user: counted now, judged by the caller. 429
/// (with `Retry-After`) while tries must wait or the factor is locked,
/// and when a parallel try claimed the same slot.
pub async fn claim(conn: &Connection, user_id: &str, now: i64) -> Result<(), Problem> {
    db::exec(
        conn,
        "INSERT INTO mfa_guards (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING",
        vec![db::text(user_id)],
    )
    .await?;
    let rows = db::query(
        conn,
        "SELECT failures, next_attempt_at, locked_until FROM mfa_guards WHERE user_id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    let int = |i| {
        rows.first()
            .and_then(|r| db::get_int(r, i))
            .unwrap_or_default()
    };
    let stored = MfaGuard {
        failures: int(0),
        next_attempt_at: int(1),
        locked_until: int(2),
    };
    let next = throttle::claim_mfa_try(stored, now).map_err(refused)?;
    // Compare-and-set on the count: of two tries racing for one slot, one
    // is judged and the other waits.
    let claimed = db::exec(
        conn,
        "UPDATE mfa_guards SET failures = ?, next_attempt_at = ?, locked_until = ? WHERE user_id = ? AND failures = ?",
        vec![
            db::int(next.failures),
            db::int(next.next_attempt_at),
            db::int(next.locked_until),
            db::text(user_id),
            db::int(stored.failures),
        ],
    )
    .await?;
    if claimed == 0 {
        return Err(refused(MfaRefusal::Wait(1)));
    }
    Ok(())
}

/// A right code: the count starts over.
pub async fn passed(conn: &Connection, user_id: &str) -> Result<(), Problem> {
    db::exec(
        conn,
        "UPDATE mfa_guards SET failures = 0, next_attempt_at = 0, locked_until = 0 WHERE user_id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    Ok(())
}

/// A wrong code: the user hears of it when the slowing starts and when
/// the factor locks.
pub async fn failed(
    conn: &Connection,
    user_id: &str,
    now: i64,
    outbox: &Outbox,
) -> Result<(), Problem> {
    let rows = db::query(
        conn,
        "SELECT g.failures, g.locked_until, u.email FROM mfa_guards g JOIN users u ON u.id = g.user_id WHERE g.user_id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let failures = db::get_int(row, 0).unwrap_or_default();
    if !throttle::notify_mfa_failures(failures) {
        return Ok(());
    }
    let locked = db::get_int(row, 1).unwrap_or_default() > now;
    let what = if locked {
        "Your second factor is now locked for an hour: no code is accepted until then, not even the right one."
    } else {
        "Further tries now have to wait longer and longer, and the second factor locks if they go on."
    };
    let mail = format!(
        "Someone signed in to your Gatehouse account with the right password and then entered {failures} wrong authenticator or recovery codes.\n\n{what}\n\nIf this was not you, your password is known to someone else: reset it now, and sign out your other sessions.\n"
    );
    outbox
        .enqueue(
            conn,
            &db::get_text(row, 2),
            "mfa_failures",
            "Wrong sign-in codes for your account",
            &mail,
            now,
        )
        .await?;
    db::exec(
        conn,
        "UPDATE mfa_guards SET notified_at = ? WHERE user_id = ?",
        vec![db::int(now), db::text(user_id)],
    )
    .await?;
    Ok(())
}
