//! `GET /v1/metering/alerts` (org admins): the quota thresholds that fired
//! and the days of unusual spend, newest first, one page at a time.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{Problem, Response, response};
use serde::Serialize;
use serde_json::Value;
use spin_sdk::sqlite::RowResult;

use super::Threshold;
use super::notice::{SPEND_UNUSUAL, THRESHOLD_REACHED};
use crate::model::{Measure, show_amount};
use crate::org_events::require_admin;
use spin_sdk::http::Request;

/// An alert as listed: `type` says which.
#[derive(Serialize)]
#[serde(untagged)]
enum Alert {
    Threshold {
        #[serde(rename = "type")]
        kind: &'static str,
        event_id: String,
        fired_at: i64,
        quota_id: String,
        entity: String,
        meter: Option<String>,
        currency: Option<String>,
        period_start: i64,
        threshold: Option<Threshold>,
        used: Value,
        limit: Value,
    },
    Spend {
        #[serde(rename = "type")]
        kind: &'static str,
        event_id: String,
        fired_at: i64,
        currency: String,
        day_start: i64,
        amount: String,
        trailing_daily_mean: String,
    },
}

impl Alert {
    fn position(&self) -> String {
        let (Alert::Threshold {
            fired_at, event_id, ..
        }
        | Alert::Spend {
            fired_at, event_id, ..
        }) = self;
        json_position(&(fired_at, event_id))
    }
}

/// Both tables in one shape: kind, time, event, quota, entity, meter,
/// currency, period or day start, threshold key, the used or spent amount,
/// and the limit or the trailing mean. The quota's columns are NULL for
/// spend; the threshold's, for spend too.
const ALERTS: &str = "SELECT * FROM (
        SELECT 'quota' AS kind, a.fired_at AS at, a.event_id AS event_id, a.quota_id,
               q.entity_type || ':' || q.entity_id, q.meter_key, q.currency, a.period_start,
               a.threshold, a.used, a.limit_units
        FROM quota_alerts a JOIN quotas q ON q.quota_id = a.quota_id
        WHERE a.org_id = ?1 AND q.org_id = ?1
        UNION ALL
        SELECT 'spend', f.flagged_at, f.event_id, NULL, 'org:' || f.org_id, NULL, f.currency,
               f.day_start, NULL, f.amount, f.trailing_mean
        FROM spend_flags f
        WHERE f.org_id = ?1)
    WHERE (at < ?2 OR (at = ?2 AND event_id < ?3))
    ORDER BY at DESC, event_id DESC LIMIT ?4";

fn alert_of(row: &RowResult) -> Alert {
    let event_id = db::get_text(row, 2);
    let fired_at = db::get_int(row, 1).unwrap_or_default();
    let amount = |i| db::get_int(row, i).unwrap_or_default();
    if db::get_text(row, 0) == "spend" {
        let money = |i| crate::money::Amount::from_nanos(amount(i)).to_string();
        return Alert::Spend {
            kind: SPEND_UNUSUAL,
            event_id,
            fired_at,
            currency: db::get_text(row, 6),
            day_start: amount(7),
            amount: money(9),
            trailing_daily_mean: money(10),
        };
    }
    let meter = db::get_opt_text(row, 5);
    let currency = db::get_opt_text(row, 6);
    let measure = match (&meter, &currency) {
        (None, Some(c)) => Measure::Spend(c.clone()),
        _ => Measure::Meter(meter.clone().unwrap_or_default()),
    };
    Alert::Threshold {
        kind: THRESHOLD_REACHED,
        event_id,
        fired_at,
        quota_id: db::get_text(row, 3),
        entity: db::get_text(row, 4),
        meter,
        currency,
        period_start: amount(7),
        threshold: Threshold::from_key(&db::get_text(row, 8)),
        used: show_amount(&measure, amount(9)),
        limit: show_amount(&measure, amount(10)),
    }
}

/// `GET /v1/metering/alerts?limit=&cursor=`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    require_admin(&caller, "alerts")?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let (before, before_id) = page
        .json_cursor::<(i64, String)>()?
        .unwrap_or((i64::MAX, String::new()));
    let rows = tenant
        .query(
            ALERTS,
            vec![
                db::int(before),
                db::text(before_id),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let alerts = rows.iter().map(alert_of).collect();
    let page = page.page(alerts, Alert::position);
    Ok(response::json(200, &page, request_id))
}
