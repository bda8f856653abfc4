//! The single call into the state rules table (`rules.rs` + `rules/state_rules.json`, versioned data
//! maintained separately): state attorney-general and other obligations per state and resident count.

use serde::Serialize;

use crate::rules::StateRules;

/// Which rules table was applied.
#[derive(Debug, Clone, Serialize)]
pub struct RulesInfo {
    /// Version of the rules table, or `None` if no table was available.
    pub version: Option<String>,
    pub applied: bool,
    pub note: String,
}

pub fn rules_info(rules: &StateRules) -> RulesInfo {
    RulesInfo {
        version: Some(rules.version().to_owned()),
        applied: true,
        note: rules.source_note().to_owned(),
    }
}

/// The obligations `state`'s law imposes when `residents` of it are affected (one covered entity),
/// as JSON objects (serialized `rules::StateObligation`).
pub fn state_obligations(
    rules: &StateRules,
    state: &str,
    residents: u64,
    discovered: time::Date,
) -> Vec<serde_json::Value> {
    let d = (
        discovered.year(),
        u8::from(discovered.month()),
        discovered.day(),
    );
    rules
        .applicable(state, residents, d)
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect()
}
