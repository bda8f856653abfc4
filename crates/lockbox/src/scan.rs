//! `lockbox scan FILE...`: the PHI classifier on local files, for offline use. Prints what was found
//! per file (format, status, counts; with `--json` also each person's elements and state). No values
//! are printed and nothing is stored.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use lockbox_inventory::{Element, Limits, Scanner};
use serde_json::json;

use crate::output::Out;

pub fn run(out: &Out, files: &[PathBuf]) -> Result<()> {
    let mut reports = Vec::new();
    for path in files {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut scanner = Scanner::new(Limits::default());
        let mut people: Vec<serde_json::Value> = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut record = |p: lockbox_inventory::Person| {
            people.push(json!({
                "elements": p.elements().iter().map(Element::as_str).collect::<Vec<_>>(),
                "state": p.state(),
            }));
        };
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            scanner.feed(buf.get(..n).unwrap_or_default(), &mut record);
        }
        let result = scanner.finish(&mut record);
        if !out.json {
            let inner = if result.inner_formats.is_empty() {
                String::new()
            } else {
                format!(
                    " [{}]",
                    result
                        .inner_formats
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            println!(
                "{}: {}{}, {}{}, {} records, {} people",
                path.display(),
                result.format.as_str(),
                inner,
                result.status.as_str(),
                result
                    .status
                    .reason()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                result.records,
                result.persons
            );
            for (e, n) in &result.element_counts {
                println!("  {:<24} {n}", e.as_str());
            }
        }
        reports.push(json!({
            "file": path.display().to_string(),
            "format": result.format.as_str(),
            "inner_formats": result.inner_formats.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            "status": result.status.as_str(),
            "reason": result.status.reason(),
            "records": result.records,
            "persons": result.persons,
            "element_counts": result.element_counts.iter().map(|(e, n)| (e.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "people": people,
            "bytes": result.bytes,
        }));
    }
    if out.json {
        println!("{}", serde_json::Value::Array(reports));
    }
    Ok(())
}
