//! Notification deadlines, counted in calendar days from the date of discovery.

use time::{Date, Duration, Month};

pub fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Discovery + `days` calendar days.
pub fn plus_days(discovered: Date, days: u32) -> Date {
    discovered
        .checked_add(Duration::days(i64::from(days)))
        .unwrap_or(Date::MAX)
}

/// Breaches affecting fewer than 500 people: within 60 days after the end of the calendar year of
/// discovery (December 31 + 60 days: March 1, or February 29 in a leap year).
pub fn hhs_annual_deadline(discovered: Date) -> Date {
    let end =
        Date::from_calendar_date(discovered.year(), Month::December, 31).unwrap_or(discovered);
    plus_days(end, 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    #[test]
    fn deadlines() {
        assert_eq!(iso(plus_days(date!(2026 - 01 - 15), 60)), "2026-03-16");
        assert_eq!(
            iso(hhs_annual_deadline(date!(2026 - 06 - 01))),
            "2027-03-01"
        );
        assert_eq!(
            iso(hhs_annual_deadline(date!(2027 - 02 - 01))),
            "2028-02-29"
        );
    }
}
