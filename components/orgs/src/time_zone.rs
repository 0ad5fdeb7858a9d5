//! An org's time zone: the IANA zone its calendar periods (quota days,
//! weeks and months) follow.

use crate::fields::Fields;

/// The zone of an org that names none.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// The IANA database's own spelling of `name` (matched without regard to
/// case), when the database bundled into the component knows it. The
/// bundled copy decides, not a host's: a component has no filesystem to
/// read one from, and every component that reads the name must agree on
/// what it means.
fn canonical(name: &str) -> Option<String> {
    let zone = jiff::tz::TimeZone::get(name).ok()?;
    Some(zone.iana_name().unwrap_or(name).to_string())
}

/// `name` must be a zone the bundled database knows.
pub fn check_time_zone(fields: &mut Fields, name: &str) {
    if canonical(name).is_none() {
        fields.push(
            "/time_zone",
            "unknown_time_zone",
            "time_zone must be an IANA time zone name such as Europe/Berlin or UTC",
        );
    }
}

/// The name stored for a zone that passed [`check_time_zone`]: the
/// database's spelling, so one zone is always stored under one name.
pub fn stored_time_zone(name: &str) -> String {
    canonical(name).unwrap_or_else(|| name.to_string())
}
