//! State breach-notification rules, shipped as data.
//!
//! The table lives in `rules/state_rules.json` (embedded at build time) and can be replaced by an
//! operator-supplied file with the same shape. Every entry carries `verified`: a rule that counsel
//! has not confirmed is surfaced as such in the report, never silently trusted. No state-specific
//! logic lives in code: thresholds, comparison operators and day counts all come from the table.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A calendar date as `(year, month, day)`.
pub type Date = (i32, u8, u8);

const EMBEDDED_JSON: &str = include_str!("../rules/state_rules.json");

/// How a resident count is compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdOp {
    /// Strictly more than the threshold.
    #[serde(rename = ">")]
    Gt,
    /// The threshold or more.
    #[serde(rename = ">=")]
    Ge,
}

impl ThresholdOp {
    /// Whether `count` meets `threshold` under this operator.
    pub fn met(self, count: u64, threshold: u64) -> bool {
        match self {
            ThresholdOp::Gt => count > threshold,
            ThresholdOp::Ge => count >= threshold,
        }
    }

    /// Plain-language description, e.g. "more than 500 residents".
    pub fn describe(self, threshold: u64) -> String {
        match (self, threshold) {
            (ThresholdOp::Ge, 1) => "any affected resident".to_string(),
            (ThresholdOp::Gt, t) => format!("more than {} residents", grouped(t)),
            (ThresholdOp::Ge, t) => format!("{} or more residents", grouped(t)),
        }
    }
}

/// 10000 -> "10,000".
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn default_op() -> ThresholdOp {
    ThresholdOp::Gt
}

/// One state's row in the rules table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRule {
    /// USPS two-letter code, upper case.
    pub state: String,
    /// Who receives the regulator notice; "Attorney General" when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ag_authority: Option<String>,
    /// Resident count for the regulator notice; `None` = no regulator notice in the table.
    #[serde(default)]
    pub ag_threshold: Option<u64>,
    #[serde(default = "default_op")]
    pub ag_threshold_op: ThresholdOp,
    /// Calendar days from discovery; `None` = no fixed number known.
    #[serde(default)]
    pub ag_deadline_days: Option<u32>,
    #[serde(default)]
    pub individual_deadline_days: Option<u32>,
    /// Resident count for consumer reporting agency notice; `None` = none in the table.
    #[serde(default)]
    pub cra_threshold: Option<u64>,
    #[serde(default = "default_op")]
    pub cra_threshold_op: ThresholdOp,
    /// The table says HIPAA-regulated entities are exempt (or deemed compliant).
    #[serde(default)]
    pub hipaa_exempt: bool,
    /// Where the row comes from ("reference", "engineer", "counsel", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub notes: String,
    /// Confirmed by counsel. Defaults to false: an unmarked row is unverified.
    #[serde(default)]
    pub verified: bool,
}

/// The whole versioned table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRules {
    version: String,
    #[serde(default)]
    source_note: String,
    states: Vec<StateRule>,
}

/// One notice a state's law may require, evaluated for one covered entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateObligation {
    pub state: String,
    /// "Affected residents", "Attorney General", "Consumer reporting agencies", ...
    pub authority: String,
    /// Plain-language trigger, e.g. "250 or more residents".
    pub threshold: String,
    /// Residents of the state counted for this covered entity.
    pub residents: u64,
    /// Last day for the notice, computed from discovery; `None` = no fixed deadline in the table.
    pub deadline: Option<Date>,
    pub deadline_days: Option<u32>,
    /// What this obligation means and what is uncertain about it.
    pub note: String,
    /// The table's notes for the state (same for every obligation of that state).
    pub rule_notes: String,
    pub hipaa_exempt: bool,
    pub verified: bool,
}

impl StateObligation {
    /// The deadline as `YYYY-MM-DD`.
    pub fn deadline_iso(&self) -> Option<String> {
        self.deadline.map(format_date)
    }
}

/// Why a rules table could not be loaded.
#[derive(Debug)]
pub enum RulesError {
    Io(std::io::Error),
    Parse(serde_json::Error),
    Invalid(String),
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::Io(e) => write!(f, "cannot read state rules table: {e}"),
            RulesError::Parse(e) => write!(
                f,
                "state rules table is not valid JSON of the expected shape: {e}"
            ),
            RulesError::Invalid(m) => write!(f, "state rules table is invalid: {m}"),
        }
    }
}

impl std::error::Error for RulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RulesError::Io(e) => Some(e),
            RulesError::Parse(e) => Some(e),
            RulesError::Invalid(_) => None,
        }
    }
}

impl StateRules {
    /// The table shipped with this build. A parse failure is a build defect caught by the unit tests.
    #[allow(clippy::expect_used)]
    pub fn embedded() -> StateRules {
        Self::from_json(EMBEDDED_JSON)
            .expect("embedded state_rules.json must parse (see rules tests)")
    }

    /// Load an operator-supplied table.
    pub fn from_file(path: impl AsRef<Path>) -> Result<StateRules, RulesError> {
        let text = std::fs::read_to_string(path.as_ref()).map_err(RulesError::Io)?;
        Self::from_json(&text)
    }

    /// Parse and validate a table from JSON text.
    pub fn from_json(text: &str) -> Result<StateRules, RulesError> {
        let mut rules: StateRules = serde_json::from_str(text).map_err(RulesError::Parse)?;
        if rules.version.trim().is_empty() {
            return Err(RulesError::Invalid("empty version".into()));
        }
        let mut seen = BTreeSet::new();
        for rule in &mut rules.states {
            let code = rule.state.trim().to_ascii_uppercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(RulesError::Invalid(format!(
                    "bad state code {:?}",
                    rule.state
                )));
            }
            if !seen.insert(code.clone()) {
                return Err(RulesError::Invalid(format!("state {code} listed twice")));
            }
            rule.state = code;
        }
        Ok(rules)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn source_note(&self) -> &str {
        &self.source_note
    }

    pub fn states(&self) -> &[StateRule] {
        &self.states
    }

    pub fn rule(&self, state: &str) -> Option<&StateRule> {
        let code = state.trim().to_ascii_uppercase();
        self.states.iter().find(|r| r.state == code)
    }

    /// The notices `state`'s law may require when `residents` of it are affected (for one covered
    /// entity), with deadlines counted in calendar days from `discovered`. A state missing from the
    /// table yields one unverified "consult counsel" obligation rather than nothing.
    pub fn applicable(
        &self,
        state: &str,
        residents: u64,
        discovered: Date,
    ) -> Vec<StateObligation> {
        let code = state.trim().to_ascii_uppercase();
        if residents == 0 {
            return Vec::new();
        }
        let valid_discovery = is_valid_date(discovered);
        let date_warning = if valid_discovery {
            String::new()
        } else {
            " Discovery date is not a valid calendar date, so no deadline was computed.".to_string()
        };
        let deadline = |days: Option<u32>| days.and_then(|d| add_days(discovered, i64::from(d)));
        let Some(rule) = self.rule(&code) else {
            return vec![StateObligation {
                state: code.clone(),
                authority: "State law (not in rules table)".into(),
                threshold: "unknown".into(),
                residents,
                deadline: None,
                deadline_days: None,
                note: format!(
                    "No entry for {code} in state rules table version {}; consult counsel about this \
                     jurisdiction's breach-notification statute.",
                    self.version
                ),
                rule_notes: String::new(),
                hipaa_exempt: false,
                verified: false,
            }];
        };
        let exempt_note = if rule.hipaa_exempt {
            format!(
                " The table marks HIPAA-regulated entities as exempt in {code}; confirm before relying on it."
            )
        } else {
            String::new()
        };
        let days_note = |days: Option<u32>| {
            match days {
            Some(d) => format!("Within {d} calendar days of discovery (the statute's clock may start at a different event)."),
            None => "No fixed state deadline in the table: without unreasonable delay; the HIPAA 60-day limit still applies.".to_string(),
        }
        };
        let make = |authority: String, threshold: String, days: Option<u32>, note: String| {
            StateObligation {
                state: code.clone(),
                authority,
                threshold,
                residents,
                deadline: deadline(days),
                deadline_days: days,
                note: format!("{note}{exempt_note}{date_warning}"),
                rule_notes: rule.notes.clone(),
                hipaa_exempt: rule.hipaa_exempt,
                verified: rule.verified,
            }
        };

        let mut out = vec![make(
            "Affected residents".into(),
            "any affected resident".into(),
            rule.individual_deadline_days,
            days_note(rule.individual_deadline_days),
        )];
        if let Some(t) = rule.ag_threshold {
            if rule.ag_threshold_op.met(residents, t) {
                let authority = rule
                    .ag_authority
                    .clone()
                    .unwrap_or_else(|| "Attorney General".into());
                out.push(make(
                    authority,
                    rule.ag_threshold_op.describe(t),
                    rule.ag_deadline_days,
                    days_note(rule.ag_deadline_days),
                ));
            }
        }
        if let Some(t) = rule.cra_threshold {
            if rule.cra_threshold_op.met(residents, t) {
                out.push(make(
                    "Consumer reporting agencies".into(),
                    rule.cra_threshold_op.describe(t),
                    None,
                    "Nationwide consumer reporting agencies; timing per statute (not in the table).".into(),
                ));
            }
        }
        out
    }
}

/// `YYYY-MM-DD`.
pub fn format_date((y, m, d): Date) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Whether `(y, m, d)` names a real calendar day.
pub fn is_valid_date((y, m, d): Date) -> bool {
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

// Days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's civil-date algorithms.
fn days_from_civil((y, m, d): Date) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Option<Date> {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some((
        i32::try_from(y).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(d).ok()?,
    ))
}

/// `date` plus `days` calendar days; `None` for an invalid date.
pub fn add_days(date: Date, days: i64) -> Option<Date> {
    if !is_valid_date(date) {
        return None;
    }
    civil_from_days(days_from_civil(date).checked_add(days)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const DISC: Date = (2026, 11, 15);

    fn authorities(v: &[StateObligation]) -> Vec<&str> {
        v.iter().map(|o| o.authority.as_str()).collect()
    }

    fn has_ag(v: &[StateObligation]) -> bool {
        v.iter().any(|o| o.authority.contains("Attorney General"))
    }

    #[test]
    fn embedded_table_parses_and_is_sane() {
        let r = StateRules::from_json(EMBEDDED_JSON).expect("embedded table must parse");
        assert_eq!(r.version(), "2026-11-01");
        assert!(r.source_note().contains("counsel"));
        for code in ["CA", "TX", "FL", "AZ"] {
            assert!(r.rule(code).is_some(), "{code} missing");
        }
        // Nothing in the shipped table is confirmed by counsel yet.
        assert!(r.states().iter().all(|s| !s.verified));
        assert!(r.states().iter().all(|s| !s.notes.is_empty()));
        let _ = StateRules::embedded();
    }

    #[test]
    fn texas_250_inclusive() {
        let r = StateRules::embedded();
        assert!(!has_ag(&r.applicable("TX", 249, DISC)));
        let v = r.applicable("TX", 250, DISC);
        let ag = v
            .iter()
            .find(|o| o.authority == "Attorney General")
            .unwrap();
        assert_eq!(ag.threshold, "250 or more residents");
        assert_eq!(ag.deadline, Some((2026, 12, 15)));
        let ind = &v[0];
        assert_eq!(ind.authority, "Affected residents");
        assert_eq!(ind.deadline, Some((2027, 1, 14)));
        assert!(!ag.verified);
    }

    #[test]
    fn florida_500_inclusive_cra_over_1000() {
        let r = StateRules::embedded();
        assert!(!has_ag(&r.applicable("FL", 499, DISC)));
        assert!(has_ag(&r.applicable("FL", 500, DISC)));
        let at_1000 = r.applicable("FL", 1000, DISC);
        assert!(!authorities(&at_1000).contains(&"Consumer reporting agencies"));
        let at_1001 = r.applicable("FL", 1001, DISC);
        assert!(authorities(&at_1001).contains(&"Consumer reporting agencies"));
    }

    #[test]
    fn california_strictly_more_than_500() {
        let r = StateRules::embedded();
        let at_500 = r.applicable("CA", 500, DISC);
        assert_eq!(authorities(&at_500), vec!["Affected residents"]);
        let at_501 = r.applicable("ca", 501, DISC);
        let ag = at_501
            .iter()
            .find(|o| o.authority == "Attorney General")
            .unwrap();
        assert_eq!(ag.threshold, "more than 500 residents");
        assert_eq!(ag.deadline, None, "no fixed CA deadline in the table");
        assert_eq!(ag.state, "CA");
    }

    #[test]
    fn arizona_over_1000_and_hipaa_exempt_surfaced() {
        let r = StateRules::embedded();
        let at_1000 = r.applicable("AZ", 1000, DISC);
        assert!(!has_ag(&at_1000));
        assert!(at_1000.iter().all(|o| o.hipaa_exempt));
        let at_1001 = r.applicable("AZ", 1001, DISC);
        assert!(has_ag(&at_1001));
        assert!(authorities(&at_1001).contains(&"Consumer reporting agencies"));
        assert!(at_1001
            .iter()
            .all(|o| o.hipaa_exempt && o.note.contains("HIPAA")));
        assert!(at_1001
            .iter()
            .any(|o| o.threshold == "more than 1,000 residents"));
        let ag = at_1001
            .iter()
            .find(|o| o.authority == "Attorney General")
            .unwrap();
        assert_eq!(ag.deadline, Some((2026, 12, 30)));
    }

    #[test]
    fn zero_residents_and_unknown_state() {
        let r = StateRules::embedded();
        assert!(r.applicable("TX", 0, DISC).is_empty());
        let v = r.applicable("zz", 3, DISC);
        assert_eq!(v.len(), 1);
        assert!(!v[0].verified);
        assert!(v[0].note.contains("consult counsel"));
    }

    #[test]
    fn dates_across_month_and_year_ends() {
        assert_eq!(add_days((2026, 12, 15), 30), Some((2027, 1, 14)));
        assert_eq!(add_days((2026, 1, 31), 30), Some((2026, 3, 2)));
        assert_eq!(add_days((2028, 1, 31), 30), Some((2028, 3, 1))); // leap year
        assert_eq!(add_days((2026, 11, 1), 60), Some((2026, 12, 31)));
        assert_eq!(add_days((2026, 11, 2), 60), Some((2027, 1, 1)));
        assert_eq!(add_days((2100, 2, 28), 1), Some((2100, 3, 1))); // not a leap year
        assert_eq!(add_days((2000, 2, 28), 1), Some((2000, 2, 29))); // is one
        assert_eq!(add_days((2026, 12, 31), 365), Some((2027, 12, 31)));
        assert_eq!(add_days((2026, 2, 30), 1), None);
        assert_eq!(add_days((2026, 13, 1), 1), None);
        for (days, start) in [
            (0i64, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (20_407, (2025, 11, 15)),
        ] {
            assert_eq!(civil_from_days(days), Some(start));
            assert_eq!(days_from_civil(start), days);
        }
        let r = StateRules::embedded();
        let v = r.applicable("TX", 300, (2026, 12, 20));
        assert_eq!(v[0].deadline, Some((2027, 2, 18)));
        assert_eq!(v[0].deadline_iso().as_deref(), Some("2027-02-18"));
        assert_eq!(v[1].deadline, Some((2027, 1, 19)));
        let bad = r.applicable("TX", 300, (2026, 2, 30));
        assert!(bad
            .iter()
            .all(|o| o.deadline.is_none() && o.note.contains("not a valid")));
    }

    #[test]
    fn operator_table_from_file_and_validation() {
        let dir = std::env::temp_dir().join(format!("lockbox-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.json");
        std::fs::write(
            &path,
            r#"{"version":"2027-01-01","states":[{"state":"tx","ag_threshold":100,"ag_threshold_op":">=",
               "ag_deadline_days":10,"individual_deadline_days":null,"notes":"counsel-approved","verified":true}]}"#,
        )
        .unwrap();
        let r = StateRules::from_file(&path).unwrap();
        assert_eq!(r.version(), "2027-01-01");
        let v = r.applicable("TX", 100, DISC);
        assert!(v.iter().all(|o| o.verified));
        assert_eq!(v[1].deadline, Some((2026, 11, 25)));
        assert_eq!(v[0].deadline, None);
        std::fs::write(
            &path,
            r#"{"version":"x","states":[{"state":"TX"},{"state":"tx"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            StateRules::from_file(&path),
            Err(RulesError::Invalid(_))
        ));
        std::fs::write(
            &path,
            r#"{"version":"x","states":[{"state":"TX","ag_threshold_op":"<"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            StateRules::from_file(&path),
            Err(RulesError::Parse(_))
        ));
        assert!(matches!(
            StateRules::from_file(dir.join("missing.json")),
            Err(RulesError::Io(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
