//! Where a run meets the org's quotas and spend: before each completion
//! and each tool call a run [`reserve`]s, and after it [`commit`]s what
//! was used. Today every reservation is granted and a commit records
//! nothing here: the tokens are on each completion and step (and summed
//! on the run), from which spend is derived. Quotas plug in here and
//! nowhere else; a refused reservation stops the run with the reason
//! given (`stop_reason`), before anything is sent.

/// What is about to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge<'a> {
    /// One completion of `model`.
    Completion {
        /// The model asked.
        model: &'a str,
    },
    /// One call of the tool named `tool`.
    ToolCall {
        /// The tool.
        tool: &'a str,
    },
}

/// A granted reservation, given back to [`commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation;

/// What a charge used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Used {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// Reserves `charge` for the run `run_id` of `org_id`; `Err` with the
/// stop reason when the org may not use it.
pub fn reserve(org_id: &str, run_id: &str, charge: Charge<'_>) -> Result<Reservation, String> {
    let _ = (org_id, run_id, charge);
    Ok(Reservation)
}

/// Settles `reservation` with what was `used`.
pub fn commit(reservation: Reservation, used: Used) {
    let _ = (reservation, used);
}
