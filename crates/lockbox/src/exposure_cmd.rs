//! `lockbox exposure report`: the breach exposure report and notification package.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use lockbox_exposure::{Basis, ExposureRequest, KeysExposed, PlaintextSource, Scope};
use lockbox_inventory::Fingerprinter;
use lockbox_types::FileId;
use lockbox_vault::admin::AdminActor;
use lockbox_vault::{Action, AuditEvent, Outcome, Vault};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use crate::output::Out;

#[derive(Subcommand)]
pub enum ExposureCmd {
    /// Which files and people a compromise during a window exposed, per covered entity.
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// Start of the window (RFC 3339, or YYYY-MM-DD = start of that day, UTC).
    #[arg(long)]
    from: String,
    /// End of the window (RFC 3339, or YYYY-MM-DD = end of that day, UTC).
    #[arg(long)]
    to: String,
    /// Date of discovery (YYYY-MM-DD); deadlines count from it.
    #[arg(long)]
    discovered: String,
    /// all | org:ID | user:NAME | ip:CIDR
    #[arg(long, default_value = "all")]
    scope: String,
    /// present (on the server during the window) | accessed (read during the window, from the audit log)
    #[arg(long, default_value = "present")]
    basis: String,
    /// Was the key provider compromised too? yes | no | unknown (unknown reports both views).
    #[arg(long, required = true)]
    keys_exposed: String,
    /// Days the business associate has to notify each covered entity (BAA).
    #[arg(long, default_value_t = 60)]
    ba_deadline_days: u32,
    /// Skip decrypting files for the mailing list (counts only).
    #[arg(long)]
    no_mailing_list: bool,
    /// Encrypt every file of the package to this age recipient (`age1...`); files become `NAME.age`
    /// and plaintext names and addresses never touch the disk.
    #[arg(long, value_name = "AGE_RECIPIENT")]
    encrypt_to: Option<String>,
    /// Output directory (created 0700; must be new or empty).
    #[arg(long)]
    out: PathBuf,
}

struct VaultPlaintext<'a>(&'a Vault);

impl PlaintextSource for VaultPlaintext<'_> {
    fn open(&self, file: FileId) -> std::result::Result<Box<dyn Read + '_>, String> {
        self.0
            .open_file_version(file)
            .map(|r| Box::new(r) as Box<dyn Read>)
            .map_err(|e| e.to_string())
    }
    fn fingerprinter(&self, org_name: &str) -> Fingerprinter {
        self.0.inventory_fingerprinter(org_name)
    }
}

fn parse_date(s: &str) -> Result<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).with_context(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

fn parse_instant(s: &str, end_of_day: bool) -> Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let d = parse_date(s).with_context(|| format!("{s:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    let t = if end_of_day {
        Time::from_hms(23, 59, 59)?
    } else {
        Time::MIDNIGHT
    };
    Ok(PrimitiveDateTime::new(d, t).assume_utc())
}

/// The report's inputs as text, shared by the CLI and the web UI (which parse them the same way).
pub struct ReportParams<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub discovered: &'a str,
    pub scope: &'a str,
    pub basis: &'a str,
    pub keys_exposed: &'a str,
    pub ba_deadline_days: u32,
    pub mailing_list: bool,
    pub encrypt_to: Option<&'a str>,
    pub out: &'a std::path::Path,
}

/// Parses, builds the package, and records `exposure_report` (ok or failed) for `actor`.
pub fn build_and_audit(
    vault: &Vault,
    actor: &AdminActor,
    p: &ReportParams<'_>,
) -> Result<lockbox_exposure::ExposureReport> {
    let Some(basis) = Basis::parse(p.basis) else {
        bail!("--basis must be present or accessed")
    };
    let Some(keys_exposed) = KeysExposed::parse(p.keys_exposed) else {
        bail!("--keys-exposed must be yes, no or unknown")
    };
    let scope = Scope::parse(p.scope).map_err(anyhow::Error::msg)?;
    let req = ExposureRequest {
        from: parse_instant(p.from, false)?,
        to: parse_instant(p.to, true)?,
        discovered: parse_date(p.discovered)?,
        scope,
        basis,
        keys_exposed,
        ba_deadline_days: p.ba_deadline_days,
        mailing_list: p.mailing_list,
        out_dir: p.out.to_path_buf(),
        encrypt_to: match p.encrypt_to {
            Some(r) => Some(r.trim().parse::<age::x25519::Recipient>().map_err(|e| {
                anyhow::anyhow!("--encrypt-to is not an age recipient (age1...): {e}")
            })?),
            None => None,
        },
    };
    let store = vault.report_store();
    let audit = vault.audit_log();
    let plain = VaultPlaintext(vault);
    let result = lockbox_exposure::build_report(&store, &audit, Some(&plain), &req);
    let detail = match &result {
        Ok(r) => {
            json!({"from": r.window.from, "to": r.window.to, "discovered": r.discovered, "basis": r.basis,
                        "scope": r.scope, "keys_exposed": r.keys_exposed, "files": r.totals.files,
                        "individuals": r.totals.individuals, "organizations": r.totals.organizations,
                        "mailing_list": r.mailing_list.built, "out": p.out.display().to_string()})
        }
        Err(e) => json!({"error": e.to_string(), "out": p.out.display().to_string()}),
    };
    vault.record(
        AuditEvent::new(
            actor.door,
            Action::ExposureReport,
            if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
        )
        .actor(&actor.name, "")
        .source(&actor.source)
        .target(format!("exposure:{}", p.out.display()))
        .detail(detail),
    )?;
    Ok(result?)
}

pub fn run(vault: &Vault, actor: &AdminActor, out: &Out, cmd: ExposureCmd) -> Result<()> {
    let ExposureCmd::Report(a) = cmd;
    let result = build_and_audit(
        vault,
        actor,
        &ReportParams {
            from: &a.from,
            to: &a.to,
            discovered: &a.discovered,
            scope: &a.scope,
            basis: &a.basis,
            keys_exposed: &a.keys_exposed,
            ba_deadline_days: a.ba_deadline_days,
            mailing_list: !a.no_mailing_list,
            encrypt_to: a.encrypt_to.as_deref(),
            out: &a.out,
        },
    );
    let r = result?;
    if out.json {
        out.done("", &r);
        return Ok(());
    }
    println!(
        "exposure report ({} basis, scope {}): {} files, {} distinct individuals in {} organizations",
        a.basis, r.scope, r.totals.files, r.totals.individuals, r.totals.organizations
    );
    if let Some(c) = &r.audit {
        println!(
            "audit log verified: {} records, head {}",
            c.records, c.head_hash
        );
    }
    for o in &r.organizations {
        let route = o
            .assessments
            .first()
            .map(|x| format!("{:?}", x.hhs_route))
            .unwrap_or_default();
        println!(
            "  {:<32} {:>8} individuals  {:>6} without valid address  {:>3} opaque files  HHS: {}",
            o.org_name,
            o.individuals,
            o.substitute_notice.individuals,
            o.opaque_files.len(),
            route
        );
    }
    println!("package written to {}", a.out.display());
    Ok(())
}
