//! `lockbox-synth --seed N --people N --out DIR [--files-per-format N] [--orgs N]`: writes the generated
//! files into DIR/<org>/<file>, plus DIR/truth.json (per file: org, name, format, persons with their
//! elements, decoys) and DIR/population.json (every invented person).

use std::path::PathBuf;
use std::process::ExitCode;

use lockbox_synth::{generate, Spec};

fn usage() -> ExitCode {
    eprintln!(
        "usage: lockbox-synth --seed N --people N --out DIR [--files-per-format N] [--orgs N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut spec = Spec::default();
    let mut seed: u64 = 1;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(v) = args.next() else { return usage() };
        let num = || v.parse::<u64>().ok();
        match (a.as_str(), num()) {
            ("--seed", Some(n)) => seed = n,
            ("--people", Some(n)) => spec.people = n as usize,
            ("--files-per-format", Some(n)) => spec.files_per_format = n as usize,
            ("--orgs", Some(n)) if n > 0 => spec.orgs = n as usize,
            ("--out", _) => out = Some(PathBuf::from(&v)),
            _ => return usage(),
        }
    }
    let Some(out) = out else { return usage() };
    let corpus = generate(seed, &spec);
    let run = || -> std::io::Result<()> {
        for f in &corpus.files {
            let dir = out.join(&f.org);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(&f.name), &f.bytes)?;
        }
        let truth: Vec<serde_json::Value> = corpus
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": format!("{}/{}", f.org, f.name),
                    "org": f.org,
                    "name": f.name,
                    "format": f.format,
                    "bytes": f.bytes.len(),
                    "persons": f.truth.persons,
                    "decoys": f.truth.decoys,
                })
            })
            .collect();
        let doc = serde_json::json!({"seed": seed, "spec": spec, "files": truth});
        std::fs::write(
            out.join("truth.json"),
            serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?,
        )?;
        std::fs::write(
            out.join("population.json"),
            serde_json::to_vec_pretty(&corpus.population).map_err(std::io::Error::other)?,
        )?;
        Ok(())
    };
    match run() {
        Ok(()) => {
            let persons: usize = corpus.files.iter().map(|f| f.truth.persons.len()).sum();
            eprintln!(
                "wrote {} files ({} person-file records, {} people) to {}",
                corpus.files.len(),
                persons,
                corpus.population.len(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lockbox-synth: {e}");
            ExitCode::FAILURE
        }
    }
}
