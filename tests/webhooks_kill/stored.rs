//! What the database file holds after a kill, read beside the host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};

/// The stored events, `delivery id -> event ids`, and the dispatch jobs
/// queued, `event id -> count`.
pub struct Stored {
    pub events: BTreeMap<String, Vec<String>>,
    pub jobs: BTreeMap<String, i64>,
}

/// Reads `state`'s database after checking its integrity: each GitHub
/// event keeps its body's digest (what catches a replay under a new id).
pub fn read(state: &Path) -> Result<Stored> {
    let conn =
        rusqlite::Connection::open(state.join(gatehouse_host::runtime_config::DEFAULT_DB_FILE))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(check == "ok", "integrity_check: {check}");
    let undigested: i64 = conn.query_row(
        "SELECT COUNT(*) FROM webhook_events WHERE provider = 'github' AND body_sha256 IS NULL",
        [],
        |r| r.get(0),
    )?;
    ensure!(
        undigested == 0,
        "{undigested} GitHub events without a digest"
    );
    let mut events: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows =
        conn.prepare("SELECT delivery_id, event_id FROM webhook_events ORDER BY rowid")?;
    for row in rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (delivery, event): (String, String) = row?;
        events.entry(delivery).or_default().push(event);
    }
    let mut jobs = BTreeMap::new();
    let mut rows = conn.prepare(
        "SELECT json_extract(payload, '$.event_id'), COUNT(*) FROM jobs
         WHERE kind = 'webhook.dispatch' GROUP BY 1",
    )?;
    for row in rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (event, count): (String, i64) = row?;
        jobs.insert(event, count);
    }
    Ok(Stored { events, jobs })
}

impl Stored {
    /// Each stored event once, each with its one dispatch job, and no job
    /// without its event: what the event's transaction promises.
    pub fn check_each_once(&self) -> Result<()> {
        for (delivery, ids) in &self.events {
            ensure!(ids.len() == 1, "{delivery} is stored {} times", ids.len());
            ensure!(
                self.jobs.get(&ids[0]) == Some(&1),
                "{delivery} ({}) has {:?} dispatch jobs",
                ids[0],
                self.jobs.get(&ids[0])
            );
        }
        let stored: BTreeSet<&String> = self.events.values().flatten().collect();
        for event in self.jobs.keys() {
            ensure!(
                stored.contains(event),
                "a dispatch job for {event}, never stored"
            );
        }
        Ok(())
    }

    /// The event stored for `delivery`, if one is.
    pub fn of(&self, delivery: &str) -> Option<&str> {
        self.events
            .get(delivery)
            .and_then(|ids| ids.first())
            .map(String::as_str)
    }
}
