//! Human tables by default, JSON with `--json`: the two ways the CLI answers.

use serde::Serialize;

pub struct Out {
    pub json: bool,
}

impl Out {
    /// Reports a completed change: one line for people, the object for scripts.
    pub fn done<T: Serialize>(&self, human: &str, value: &T) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
            );
        } else {
            println!("{human}");
        }
    }
}

/// Prints rows as an aligned table, or as a JSON array.
pub fn print_rows<T: Serialize>(
    out: &Out,
    rows: &[T],
    headers: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) {
    if out.json {
        println!(
            "{}",
            serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
        );
        return;
    }
    let table: Vec<Vec<String>> = rows.iter().map(&cells).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<String>| {
        let parts: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in table {
        line(row);
    }
}

/// A Unix timestamp as `YYYY-MM-DD HH:MM` UTC.
pub fn date(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}
