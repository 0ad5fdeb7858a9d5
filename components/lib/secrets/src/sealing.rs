//! The Spin side of [`crate::sealed`]: values of other capabilities
//! sealed and opened with their owner's data key.
//!
//! Every write seals the new way. Values sealed the old way (`v1.`) open
//! under `master_key`, or `previous_master_key` while a master key
//! rotation is under way; they are not sealed again when read, but by a
//! job-like pass: the operator's `POST /v1/admin/secrets/$rewrap` seals
//! every one of them again (after rewrapping the data keys), and an org's
//! data key rotation job (`secrets.reencrypt`) seals the org's. After a
//! rewrap, no value needs `previous_master_key`.

use gatehouse_auth::tenant::Tenant;
use gatehouse_http::{ErrorCode, Problem};
use identity_core::sealed::SealingKey;
use spin_sdk::sqlite::Connection;

use crate::deployment;
use crate::envelope::KEY_PURPOSE;
use crate::sealed::{Binding, Owner, Stored, open_legacy, parse, seal_with};
use crate::store::{keks_for, key_of, newest_key_under, previous_master};

/// The actor of the org contexts sealing reads data keys in.
const ACTOR: &str = "sealing";

/// `plain` sealed for `binding` with its owner's newest data key (made
/// now if it has none); 503 without a usable master key.
pub async fn seal(
    conn: &Connection,
    binding: &Binding<'_>,
    plain: &[u8],
    now: i64,
) -> Result<String, Problem> {
    let detail = binding.kind.unavailable();
    let (version, key) = match binding.owner {
        Owner::Org(org_id) => {
            let kek = keks_for(detail).await?;
            newest_key_under(&Tenant::for_job(conn, org_id, ACTOR), &kek, now).await?
        }
        Owner::Deployment => deployment::newest(conn, detail, now).await?,
    };
    Ok(seal_with(&key, version, binding, plain))
}

/// What `stored` holds for `binding`; `None` when it does not open for it
/// (sealed for another row, kind or owner, altered, or its data key
/// gone). 503 without a usable master key; an error when a data key does
/// not open under either master key.
pub async fn open(
    conn: &Connection,
    binding: &Binding<'_>,
    stored: &str,
) -> Result<Option<Vec<u8>>, Problem> {
    let detail = binding.kind.unavailable();
    let (version, sealed) = match parse(stored) {
        None => return Ok(None),
        Some(Stored::Legacy(sealed)) => return open_old_way(binding, sealed).await,
        Some(Stored::Enveloped { version, sealed }) => (version, sealed),
    };
    let context = binding.context(version);
    match binding.owner {
        Owner::Org(org_id) => {
            let kek = keks_for(detail).await?;
            let tenant = Tenant::for_job(conn, org_id, ACTOR);
            Ok(key_of(&tenant, &kek, version)
                .await?
                .and_then(|key| key.open(&sealed, &context)))
        }
        Owner::Deployment => {
            let Some(key) = deployment::key(conn, version, detail).await? else {
                return Ok(None);
            };
            if let Some(plain) = key.open(&sealed, &context) {
                return Ok(Some(plain));
            }
            // A remembered key may be stale (a database restored under a
            // running instance): once more with the key as stored.
            deployment::forget(version);
            Ok(deployment::key(conn, version, detail)
                .await?
                .and_then(|key| key.open(&sealed, &context)))
        }
    }
}

/// A value sealed the old way, opened under the current master key or
/// the previous one.
pub(crate) async fn open_old_way(
    binding: &Binding<'_>,
    sealed: &str,
) -> Result<Option<Vec<u8>>, Problem> {
    let current = spin_sdk::variables::get("master_key")
        .await
        .unwrap_or_default();
    if SealingKey::derive(&current, KEY_PURPOSE).is_err() {
        eprintln!("the master_key variable is not 32 bytes of base64");
        return Err(Problem::new(ErrorCode::Unavailable).detail(binding.kind.unavailable()));
    }
    if let Some(plain) = open_legacy(&current, binding, sealed) {
        return Ok(Some(plain));
    }
    Ok(previous_master()
        .await
        .and_then(|previous| open_legacy(&previous, binding, sealed)))
}
