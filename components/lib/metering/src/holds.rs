//! Amounts held by open reservations. A hold counts toward its quota while
//! its reservation has not expired: the standings leave expired holds out
//! (see `check::standings`), so an expired reservation frees its amount at
//! its expiry, whether or not anything ran since. [`expire`] then tidies
//! up: each reserve on a meter, and each allowed consume that meets an
//! expired hold, deletes the meter's expired holds and marks their
//! reservations expired, inside its own transaction. No background runner
//! is needed.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;

use crate::reservation::State;

/// Ends the meter's reservations that expired by `now` and deletes their
/// holds. Runs inside the caller's transaction.
pub async fn expire(tenant: &Tenant<'_>, meter_key: &str, now: i64) -> Result<(), Problem> {
    tenant
        .exec(
            "UPDATE quota_reservations SET state = ?2, finished_at = ?3
             WHERE org_id = ?1 AND meter_key = ?4 AND state = ?5 AND expires_at <= ?3",
            vec![
                db::text(State::Expired.as_str()),
                db::int(now),
                db::text(meter_key),
                db::text(State::Held.as_str()),
            ],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM quota_holds WHERE org_id = ?1 AND meter_key = ?2 AND expires_at <= ?3",
            vec![db::text(meter_key), db::int(now)],
        )
        .await?;
    Ok(())
}

/// Deletes a reservation's holds, when it is committed or released.
pub async fn drop_all(tenant: &Tenant<'_>, reservation_id: &str) -> Result<(), Problem> {
    tenant
        .exec(
            "DELETE FROM quota_holds WHERE org_id = ?1 AND reservation_id = ?2",
            vec![db::text(reservation_id)],
        )
        .await
        .map(|_| ())
}
