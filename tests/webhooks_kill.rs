//! The host killed with SIGKILL in the middle of a load of Stripe and
//! GitHub deliveries, twice, each time started again on the same SQLite
//! files: every delivery that was answered `200` is in the inbox exactly
//! once, with the job that hands it to its handler, the one answered right
//! before the kill included; and a provider's retry of any delivery (one
//! that was answered, or one cut off by the kill) answers as a duplicate
//! or is stored now, never twice, as does a GitHub body sent again under
//! a new delivery id.
//!
//! The host runs as a child process (`gatehouse-host up`, as `scripts/up`
//! runs it), killed by the client thread that reads the round's
//! [`load::KILL_AFTER`]th `200`, at once: the kill lands right after an
//! answer and during other writes, mid-transaction or with an answer
//! written but not yet sent. Deliveries are signed up front by stripe-node
//! and octokit (`tests/webhook-signers`), each with its own id, and posted
//! by several client threads at once.
//!
//! What this proves is that a delivery survives a crash of the process
//! once it is answered. It does not cover a power loss: the host runs
//! SQLite in WAL mode with `synchronous = NORMAL`, so a commit is in the
//! WAL (in the OS's cache) before the answer, not necessarily on the disk.

#[path = "webhooks_kill/host.rs"]
mod host;
#[path = "webhooks_kill/load.rs"]
mod load;
#[path = "webhooks_kill/setup.rs"]
mod setup;
#[path = "webhooks_kill/stored.rs"]
mod stored;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use gatehouse_tests::TempDir;
use serde_json::json;

use host::Host;
use load::{Delivery, Sent};

/// Deliveries a round holds: far more than are sent before its kill, so
/// the load is still running when it comes.
const ROUND: usize = 1200;
const ROUNDS: usize = 2;

/// What the rounds left, as the senders saw it.
#[derive(Default)]
struct Seen {
    /// Delivery id -> the event id its `200` named.
    answered: BTreeMap<String, String>,
    /// Delivery ids posted without an answer.
    cut: Vec<String>,
}

#[test]
fn a_host_killed_twice_mid_load_keeps_every_acknowledged_delivery_once_and_retries_find_them()
-> Result<()> {
    let state = TempDir::new("webhooks-kill")?;
    let setup = setup::prepare(state.path())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut all = load::signed(&setup, 0, ROUND * ROUNDS, now)?;
    let mut rounds = Vec::new();
    while !all.is_empty() {
        let rest = all.split_off(ROUND.min(all.len()));
        rounds.push(Arc::new(std::mem::replace(&mut all, rest)));
    }

    let mut seen = Seen::default();
    for deliveries in &rounds {
        let host = Host::start(state.path())?;
        let round = load::until_killed(&host, deliveries)?;
        drop(host);
        for (n, sent) in &round.outcomes {
            let delivery = &deliveries[*n].id;
            match sent {
                Sent::Acknowledged(id) => seen.answered.insert(delivery.clone(), id.clone()),
                Sent::Cut => {
                    seen.cut.push(delivery.clone());
                    None
                }
            };
        }
        // Straight after the kill: the delivery whose answer it followed
        // is in the file, and so is every other one answered so far.
        let stored = stored::read(state.path())?;
        stored.check_each_once()?;
        let last = &deliveries[round.last_answered].id;
        ensure!(
            stored.of(last) == seen.answered.get(last).map(String::as_str),
            "{last}, answered right before the kill, is not stored as answered"
        );
        for (delivery, id) in &seen.answered {
            ensure!(
                stored.of(delivery) == Some(id.as_str()),
                "{delivery} answered as {id}, stored as {:?}",
                stored.events.get(delivery)
            );
        }
        ensure!(
            stored.events.len() <= seen.answered.len() + seen.cut.len(),
            "{} stored, {} answered, {} cut off",
            stored.events.len(),
            seen.answered.len(),
            seen.cut.len()
        );
        eprintln!(
            "killed after {} answered deliveries in all; {} cut off",
            seen.answered.len(),
            seen.cut.len()
        );
    }
    ensure!(
        seen.cut.len() == ROUNDS * (load::CLIENTS - 1),
        "{:?}",
        seen.cut
    );

    // Started again on the same files: the inbox reads them.
    let host = Host::start(state.path())?;
    let by_id: BTreeMap<&str, &Delivery> = rounds
        .iter()
        .flat_map(|r| r.iter())
        .map(|d| (d.id.as_str(), d))
        .collect();
    for (delivery, id) in seen.answered.iter().step_by(97) {
        let read = gatehouse_tests::get(
            &host.url(&format!("/v1/webhooks/events/{id}")),
            &[("authorization", &format!("Bearer {}", setup.session))],
        )?;
        ensure!(read.status == 200, "{}", read.text());
        let read = read.json()?;
        ensure!(read["delivery_id"] == delivery.as_str(), "{read}");
        ensure!(read["payload"].is_object(), "{read}");
    }
    retries_find_them(&host, state.path(), &seen, &by_id)?;
    let stored = stored::read(state.path())?;
    stored.check_each_once()?;
    ensure!(
        stored.events.len() == seen.answered.len() + seen.cut.len(),
        "{} stored after the retries, {} posted",
        stored.events.len(),
        seen.answered.len() + seen.cut.len()
    );
    Ok(())
}

/// The providers retry: an answered delivery is a duplicate of what was
/// stored; a cut-off one is either that or stored now, once; a GitHub body
/// under a new delivery id is the event its body was stored as.
fn retries_find_them(
    host: &Host,
    state: &Path,
    seen: &Seen,
    by_id: &BTreeMap<&str, &Delivery>,
) -> Result<()> {
    let agent = load::agent();
    let base = host.url("");
    let before = stored::read(state)?;
    for (delivery, id) in seen.answered.iter().step_by(13) {
        let answer = load::post(&agent, &base, by_id[delivery.as_str()])?.context("an answer")?;
        ensure!(
            answer == json!({"id": id, "duplicate": true}),
            "{delivery}: {answer}"
        );
    }
    let github = seen
        .answered
        .iter()
        .filter(|(d, _)| !d.starts_with("evt_"))
        .step_by(7);
    for (n, (delivery, id)) in github.enumerate() {
        let original = by_id[delivery.as_str()];
        let headers: Vec<(String, String)> = original
            .headers
            .iter()
            .map(
                |(name, value)| match name.eq_ignore_ascii_case("x-github-delivery") {
                    true => (name.clone(), format!("0d15ea5e-0000-4000-8000-{n:012}")),
                    false => (name.clone(), value.clone()),
                },
            )
            .collect();
        let answer = load::post_with(&agent, &base, original, &headers)?.context("an answer")?;
        ensure!(
            answer == json!({"id": id, "duplicate": true}),
            "{delivery} replayed: {answer}"
        );
    }
    for delivery in &seen.cut {
        let answer = load::post(&agent, &base, by_id[delivery.as_str()])?.context("an answer")?;
        let expected = match before.of(delivery) {
            Some(id) => json!({"id": id, "duplicate": true}),
            None => json!({"id": answer["id"], "duplicate": false}),
        };
        ensure!(answer == expected, "{delivery}: {answer}");
    }
    Ok(())
}
