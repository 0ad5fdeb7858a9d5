//! Passes over every column of [`crate::sealed::COLUMNS`]: values sealed
//! the old way sealed again with their owner's data key (the master key
//! rewrap), and an org's values sealed again with its newest data key
//! (its data key rotation). Each write is a compare-and-set on the text
//! it read, so a value written meanwhile is kept.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use identity_core::sealed::SealingKey;
use spin_sdk::sqlite::Connection;

use crate::sealed::{Binding, COLUMNS, Column, PREFIX, seal_with};
use crate::sealing::{open, open_old_way, seal};

fn binding<'a>(column: &Column, org_id: &'a str, row: &'a str) -> Binding<'a> {
    if column.kind.org_owned() {
        Binding::org(column.kind, org_id, row)
    } else {
        Binding::deployment(column.kind, row)
    }
}

/// Seals every value still sealed the old way with its owner's newest
/// data key: how many it sealed again. One that opens under neither
/// master key is left as it is (and logged).
pub async fn old_way_values(conn: &Connection, now: i64) -> Result<usize, Problem> {
    let mut resealed = 0;
    for column in &COLUMNS {
        let Column {
            table,
            id,
            column: col,
            ..
        } = column;
        let org = if column.kind.org_owned() {
            "org_id"
        } else {
            "''"
        };
        let rows = db::query(
            conn,
            &format!("SELECT {org}, {id}, {col} FROM {table} WHERE {col} LIKE 'v1.%'"),
            vec![],
        )
        .await?;
        for row in &rows {
            let (org_id, row_id, old) = (
                db::get_text(row, 0),
                db::get_text(row, 1),
                db::get_text(row, 2),
            );
            let binding = binding(column, &org_id, &row_id);
            let Some(plain) = open_old_way(&binding, &old).await? else {
                eprintln!("secrets: {table}.{col} of {row_id} opens under neither master key");
                continue;
            };
            let sealed = seal(conn, &binding, &plain, now).await?;
            resealed += db::exec(
                conn,
                &format!("UPDATE {table} SET {col} = ? WHERE {id} = ? AND {col} = ?"),
                vec![db::text(sealed), db::text(&row_id), db::text(old)],
            )
            .await? as usize;
        }
    }
    Ok(resealed)
}

/// Seals every value of the tenant's org not sealed with data key
/// `newest` (`key`) with it, the old way's included: how many it sealed
/// again. One that does not open is left as it is (and logged): its data
/// key version then stays.
pub async fn org_values(
    tenant: &Tenant<'_>,
    conn: &Connection,
    newest: i64,
    key: &SealingKey,
) -> Result<usize, Problem> {
    let org_id = tenant.org_id().to_string();
    let mut resealed = 0;
    for column in COLUMNS.iter().filter(|c| c.kind.org_owned()) {
        let Column {
            table,
            id,
            column: col,
            ..
        } = column;
        let rows = tenant
            .query(
                &format!(
                    "SELECT {id}, {col} FROM {table}
                     WHERE org_id = ?1 AND {col} IS NOT NULL AND {col} NOT LIKE ?2"
                ),
                vec![db::text(format!("{PREFIX}{newest}.%"))],
            )
            .await?;
        for row in &rows {
            let (row_id, old) = (db::get_text(row, 0), db::get_text(row, 1));
            let binding = binding(column, &org_id, &row_id);
            let Some(plain) = open(conn, &binding, &old).await? else {
                eprintln!("secrets: {table}.{col} of {row_id} in {org_id} does not open");
                continue;
            };
            let sealed = seal_with(key, newest, &binding, &plain);
            resealed += tenant
                .exec(
                    &format!(
                        "UPDATE {table} SET {col} = ?2 WHERE org_id = ?1 AND {id} = ?3 AND {col} = ?4"
                    ),
                    vec![db::text(sealed), db::text(&row_id), db::text(old)],
                )
                .await? as usize;
        }
    }
    Ok(resealed)
}

/// A condition on `org_data_keys` rows of org `?1`: no value of the
/// org's in another table is sealed with that version.
pub fn unused_by_other_values() -> String {
    COLUMNS
        .iter()
        .filter(|c| c.kind.org_owned())
        .map(|Column { table, column, .. }| {
            format!(
                " AND NOT EXISTS (SELECT 1 FROM {table} v WHERE v.org_id = ?1
                   AND v.{column} LIKE '{PREFIX}' || org_data_keys.version || '.%')"
            )
        })
        .collect()
}
