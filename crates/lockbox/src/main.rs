//! The `lockbox` binary: `serve` runs the doors; every other subcommand administers the same data
//! directory through the vault API (so the CLI obeys the same rules and leaves the same audit trail).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use lockbox_types::{PermissionSet, Role};
use lockbox_vault::admin::{AdminActor, GrantSubject, Subject};
use lockbox_vault::Vault;
use serde_json::json;

mod config;
mod exposure_cmd;
mod output;
mod scan;
mod serve;
mod web_exposure;

use output::{print_rows, Out};

#[derive(Parser)]
#[command(
    name = "lockbox",
    version,
    about = "Lockbox: secure managed file transfer for health data"
)]
struct Cli {
    /// Data directory (SQLite metadata, encrypted blobs, SSH host key).
    #[arg(long, env = "LOCKBOX_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Key-encryption key file; must be outside the data directory.
    #[arg(long, env = "LOCKBOX_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Optional TOML configuration file.
    #[arg(long, env = "LOCKBOX_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SFTP).
    Serve(serve::ServeArgs),
    /// Organizations (tenants).
    #[command(subcommand)]
    Org(OrgCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// SSH public keys of users.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Groups of users within an organization.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Shared folders.
    #[command(subcommand)]
    Folder(FolderCmd),
    /// Permissions of users and groups on folders.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The PHI inventory of stored files.
    #[command(subcommand)]
    Inventory(InventoryCmd),
    /// Breach exposure reports and notification packages.
    #[command(subcommand)]
    Exposure(exposure_cmd::ExposureCmd),
    /// Copy the metadata and the ciphertext to DIR, consistently, while the server runs. The key
    /// file is never included: back it up separately.
    Backup {
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Fill an empty data directory from a backup made by `lockbox backup` (with --key-file the
    /// key the backup was made under).
    Restore { from: PathBuf },
    /// Check every stored blob against the metadata: missing, wrong size, failing authentication,
    /// orphaned. Decrypts in memory only; exits 1 if anything is wrong.
    VerifyStorage,
    /// The key-encryption key.
    #[command(subcommand)]
    KeyProvider(KeyProviderCmd),
    /// Scan local files for PHI without storing anything (offline).
    Scan {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InventoryCmd {
    /// Scan stored files that have no inventory from the current classifier.
    Rescan,
    /// Show what is known about one stored file: ORG/FOLDER/PATH (home folders are `home.USER`).
    Show { path: String },
}

#[derive(Subcommand)]
enum OrgCmd {
    Create {
        name: String,
    },
    List,
    /// Change an organization's login policy.
    SetPolicy {
        name: String,
        /// `on`: SFTP password logins of the organization's users also ask for a code from their
        /// authenticator app (keyboard-interactive); users without one are refused until they sign
        /// in to the web UI once. SSH key logins are unaffected.
        #[arg(long)]
        sftp_password_totp: OnOff,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        matches!(self, OnOff::On)
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

#[derive(Subcommand)]
enum UserCmd {
    Create {
        #[arg(long)]
        org: String,
        name: String,
        #[arg(long, default_value = "transfer")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    SetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Clear failed logins and any lockout.
    Unlock {
        name: String,
    },
    /// Remove the user's authenticator app and recovery codes; they set up a new one at their next
    /// browser sign-in (for a lost phone, including the last administrator's).
    ResetMfa {
        name: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Add an OpenSSH public key (one line, as in authorized_keys) from a file.
    Add {
        user: String,
        file: PathBuf,
    },
    List {
        user: String,
    },
    Remove {
        user: String,
        fingerprint: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    Create {
        #[arg(long)]
        org: String,
        name: String,
    },
    AddMember {
        #[arg(long)]
        org: Option<String>,
        group: String,
        user: String,
    },
    List {
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand)]
enum FolderCmd {
    Create {
        #[arg(long)]
        org: String,
        name: String,
    },
    List {
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Args)]
struct GrantTarget {
    #[arg(long)]
    org: String,
    #[arg(long)]
    folder: String,
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    user: Option<String>,
    #[arg(long)]
    group: Option<String>,
}

impl GrantTarget {
    fn subject(&self) -> GrantSubject<'_> {
        match (&self.user, &self.group) {
            (Some(u), _) => GrantSubject::User(u),
            (None, Some(g)) => GrantSubject::Group(g),
            (None, None) => GrantSubject::User(""),
        }
    }
}

#[derive(Subcommand)]
enum GrantCmd {
    Add {
        #[command(flatten)]
        target: GrantTarget,
        /// Comma-separated: list,read,write,delete,mkdir,rename, or all.
        #[arg(long)]
        perms: String,
    },
    Remove {
        #[command(flatten)]
        target: GrantTarget,
    },
    List {
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyProviderCmd {
    /// Replace the key-encryption key: a new key wraps every stored data key, the old key is
    /// retired from the key file, audited. Needs the server stopped; if cut, run it again to
    /// continue. Back up the key file again afterwards.
    Rotate,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain; names the first bad record.
    Verify,
    /// Print every record.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

/// First line of stdin, without the line ending.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

fn run(cli: Cli) -> Result<()> {
    let settings = config::Settings::load(
        cli.config.as_deref(),
        cli.data_dir.clone(),
        cli.key_file.clone(),
    )?;
    let out = Out { json: cli.json };
    if let Command::Scan { files } = &cli.command {
        return scan::run(&out, files);
    }
    if let Command::Serve(args) = cli.command {
        return serve::run(settings, args);
    }
    if let Command::KeyProvider(KeyProviderCmd::Rotate) = &cli.command {
        let r = lockbox_vault::keys::rotate_key(settings.vault_config())?;
        out.done(
            &format!(
                "key rotated{}: {} file keys and {} upload keys re-wrapped; key check value {} (was {}); \
                 back up {} again, the old copy no longer opens this data",
                if r.resumed { " (continued an interrupted rotation)" } else { "" },
                r.rewrapped_file_keys,
                r.rewrapped_upload_keys,
                r.new_check,
                r.old_check,
                settings.key_file.display()
            ),
            &r,
        );
        return Ok(());
    }
    if let Command::Restore { from } = &cli.command {
        let report = lockbox_vault::backup::restore(from, &settings.data_dir, &settings.key_file)?;
        // Opening checks the key again and completes the data directory (shards, audit reserve).
        let (vault, _) = Vault::open(settings.vault_config())?;
        let verified = vault.audit_verify()?;
        vault.note_restore(from, &report)?;
        out.done(
            &format!(
                "restored {} files ({} bytes of ciphertext) into {}; audit log OK: {} records",
                report.files,
                report.ciphertext_bytes,
                report.data_dir.display(),
                verified.records
            ),
            &report,
        );
        return Ok(());
    }
    let (vault, _) = Vault::open(settings.vault_config())?;
    let actor = AdminActor::cli();
    match cli.command {
        Command::Serve(_)
        | Command::Scan { .. }
        | Command::Restore { .. }
        | Command::KeyProvider(_) => {
            unreachable!("handled above")
        }
        Command::Backup { out: dir } => {
            let r = vault.backup_to(&dir)?;
            out.done(
                &format!(
                    "backup written to {}: {} files, {} bytes of ciphertext, {} audit records{}\n\
                     the key file is NOT in the backup: back up {} separately (key check value {})",
                    r.dir.display(),
                    r.files,
                    r.ciphertext_bytes,
                    r.audit_records,
                    if r.deleted_during_backup > 0 {
                        format!(
                            " ({} deleted while the backup ran, recorded as deleted)",
                            r.deleted_during_backup
                        )
                    } else {
                        String::new()
                    },
                    settings.key_file.display(),
                    r.kek_check
                ),
                &r,
            );
        }
        Command::VerifyStorage => {
            let r = vault.verify_storage()?;
            if r.problems.is_empty() {
                out.done(
                    &format!(
                        "storage OK: {} files ({} bytes) authenticated, {} blobs on disk",
                        r.files_checked, r.bytes_checked, r.blobs_on_disk
                    ),
                    &r,
                );
            } else {
                if out.json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    for p in &r.problems {
                        let file = p.file_id.map(|f| format!(" file #{f}")).unwrap_or_default();
                        eprintln!("{}: blob {}{file}: {}", p.kind, p.blob, p.detail);
                    }
                }
                bail!(
                    "storage check found {} problem(s) in {} files",
                    r.problems.len(),
                    r.files_checked
                );
            }
        }
        Command::Inventory(InventoryCmd::Rescan) => {
            let r = vault.rescan_inventory(&actor)?;
            out.done(
                &format!(
                    "rescanned {} files ({} partial, {} opaque, {} failed)",
                    r.scanned, r.partial, r.opaque, r.failed
                ),
                &r,
            );
        }
        Command::Inventory(InventoryCmd::Show { path }) => {
            let v = vault.inventory_show(&path)?;
            if out.json {
                out.done("", &v);
            } else {
                println!("{}  ({} bytes, sha256 {})", v.path, v.size, v.sha256);
                let inner = if v.inner_formats.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", v.inner_formats.join(", "))
                };
                println!(
                    "format {}{}, scan {}{}",
                    v.format,
                    inner,
                    v.status,
                    v.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                println!("{} records, {} people", v.records, v.persons);
                for (e, n) in &v.element_counts {
                    println!("  {e:<24} {n}");
                }
                let states: Vec<String> = v
                    .persons_by_state
                    .iter()
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect();
                println!("people by state: {}", states.join(", "));
            }
        }
        Command::Exposure(cmd) => exposure_cmd::run(&vault, &actor, &out, cmd)?,
        Command::Org(OrgCmd::Create { name }) => {
            let org = vault.create_org(&actor, &name)?;
            out.done(&format!("created organization {}", org.name), &org);
        }
        Command::Org(OrgCmd::List) => {
            let orgs = vault.list_orgs()?;
            print_rows(
                &out,
                &orgs,
                &["NAME", "CREATED", "SFTP_PASSWORD_TOTP"],
                |o| {
                    vec![
                        o.name.clone(),
                        output::date(o.created_at),
                        on_off(o.sftp_password_totp).to_owned(),
                    ]
                },
            );
        }
        Command::Org(OrgCmd::SetPolicy {
            name,
            sftp_password_totp,
        }) => {
            vault.set_org_sftp_password_totp(&actor, &name, sftp_password_totp.is_on())?;
            let org = vault.org(&name)?;
            out.done(
                &format!(
                    "organization {}: sftp password logins need a TOTP code: {}",
                    org.name,
                    on_off(org.sftp_password_totp)
                ),
                &org,
            );
        }
        Command::User(cmd) => user(&vault, &actor, &out, cmd)?,
        Command::Key(KeyCmd::Add { user, file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read public key file {}", file.display()))?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .with_context(|| format!("{} holds no public key", file.display()))?;
            let key = vault.add_key(&actor, &user, line)?;
            out.done(
                &format!(
                    "added {} key {} for {}",
                    key.algorithm, key.fingerprint, user
                ),
                &key,
            );
        }
        Command::Key(KeyCmd::List { user }) => {
            let keys = vault.list_keys(&user)?;
            print_rows(
                &out,
                &keys,
                &["FINGERPRINT", "TYPE", "COMMENT", "ADDED"],
                |k| {
                    vec![
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        k.comment.clone(),
                        output::date(k.created_at),
                    ]
                },
            );
        }
        Command::Key(KeyCmd::Remove { user, fingerprint }) => {
            vault.remove_key(&actor, &user, &fingerprint)?;
            out.done(
                &format!("removed key {fingerprint} of {user}"),
                &json!({"removed": fingerprint}),
            );
        }
        Command::Group(GroupCmd::Create { org, name }) => {
            let g = vault.create_group(&actor, &org, &name)?;
            out.done(&format!("created group {} in {}", g.name, org), &g);
        }
        Command::Group(GroupCmd::AddMember { org, group, user }) => {
            let org = match org {
                Some(o) => o,
                None => vault.user(&user)?.org_name,
            };
            vault.add_group_member(&actor, &org, &group, &user)?;
            out.done(
                &format!("added {user} to group {group}"),
                &json!({"group": group, "user": user}),
            );
        }
        Command::Group(GroupCmd::List { org }) => {
            let groups = vault.list_groups(&org)?;
            let rows: Vec<_> = groups
                .iter()
                .map(|(g, m)| json!({"name": g.name, "members": m}))
                .collect();
            print_rows(&out, &rows, &["GROUP", "MEMBERS"], |r| {
                vec![
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["members"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default(),
                ]
            });
        }
        Command::Folder(FolderCmd::Create { org, name }) => {
            let f = vault.create_folder(&actor, &org, &name)?;
            out.done(&format!("created folder {} in {}", f.name, org), &f);
        }
        Command::Folder(FolderCmd::List { org }) => {
            let orgs = vault.list_orgs()?;
            let folders = vault.list_folders(org.as_deref())?;
            let org_name = |id| {
                orgs.iter()
                    .find(|o| o.id == id)
                    .map(|o| o.name.clone())
                    .unwrap_or_default()
            };
            print_rows(
                &out,
                &folders,
                &["ORG", "FOLDER", "HOME OF", "CREATED"],
                |f| {
                    vec![
                        org_name(f.org_id),
                        f.name.clone(),
                        if f.home_of.is_some() {
                            f.name.trim_start_matches("home.").to_owned()
                        } else {
                            String::new()
                        },
                        output::date(f.created_at),
                    ]
                },
            );
        }
        Command::Grant(GrantCmd::Add { target, perms }) => {
            let perms = PermissionSet::parse(&perms)?;
            vault.grant(&actor, &target.org, &target.folder, target.subject(), perms)?;
            out.done(
                &format!("granted {perms} on {}/{}", target.org, target.folder),
                &json!({"org": target.org, "folder": target.folder, "perms": perms.names()}),
            );
        }
        Command::Grant(GrantCmd::Remove { target }) => {
            vault.revoke(&actor, &target.org, &target.folder, target.subject())?;
            out.done(
                &format!("removed grant on {}/{}", target.org, target.folder),
                &json!({"org": target.org, "folder": target.folder, "removed": true}),
            );
        }
        Command::Grant(GrantCmd::List { org }) => {
            let grants = vault.list_grants(org.as_deref())?;
            print_rows(&out, &grants, &["FOLDER", "SUBJECT", "PERMISSIONS"], |g| {
                let kind = match g.subject {
                    Subject::User(_) => "user",
                    Subject::Group(_) => "group",
                };
                vec![
                    g.folder_name.clone(),
                    format!("{kind}:{}", g.subject_name),
                    g.perms.to_string(),
                ]
            });
        }
        Command::Audit(AuditCmd::Verify) => {
            let report = vault.audit_verify()?;
            out.done(
                &format!(
                    "audit log OK: {} records, head {}",
                    report.records, report.head_hash
                ),
                &report,
            );
        }
        Command::Audit(AuditCmd::Export { format }) => {
            if format != "jsonl" {
                bail!("unknown export format {format:?} (supported: jsonl)");
            }
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let n = vault.audit_export_jsonl(&mut lock)?;
            lock.flush()?;
            vault.note_audit_export(&actor, n)?;
        }
    }
    Ok(())
}

fn user(vault: &Vault, actor: &AdminActor, out: &Out, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Create {
            org,
            name,
            role,
            password_stdin,
        } => {
            let role = Role::parse(&role)?;
            let pw = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let u = vault.create_user(actor, &org, &name, role, pw.as_deref())?;
            out.done(
                &format!(
                    "created {} user {} in {} (home folder /home)",
                    role.as_str(),
                    u.name,
                    u.org_name
                ),
                &u,
            );
        }
        UserCmd::SetPassword { name, .. } => {
            let pw = read_password()?;
            vault.set_password(actor, &name, &pw)?;
            out.done(&format!("password set for {name}"), &json!({"user": name}));
        }
        UserCmd::List { org } => {
            let users = vault.list_users(org.as_deref())?;
            let now = now_unix();
            print_rows(
                out,
                &users,
                &["ORG", "USER", "ROLE", "STATE", "FAILED"],
                |u| {
                    let state = if u.disabled {
                        "disabled"
                    } else if u.locked_until.is_some_and(|t| t > now) {
                        "locked"
                    } else {
                        "active"
                    };
                    vec![
                        u.org_name.clone(),
                        u.name.clone(),
                        u.role.as_str().into(),
                        state.into(),
                        u.failed_logins.to_string(),
                    ]
                },
            );
        }
        UserCmd::Unlock { name } => {
            vault.unlock_user(actor, &name)?;
            out.done(
                &format!("unlocked {name}"),
                &json!({"user": name, "unlocked": true}),
            );
        }
        UserCmd::ResetMfa { name } => {
            vault.reset_totp(actor, &name)?;
            out.done(
                &format!("two-step sign-in reset for {name}; they enrol again at their next browser sign-in"),
                &json!({"user": name, "mfa_reset": true}),
            );
        }
        UserCmd::Disable { name } => {
            vault.set_user_disabled(actor, &name, true)?;
            out.done(
                &format!("disabled {name}"),
                &json!({"user": name, "disabled": true}),
            );
        }
        UserCmd::Enable { name } => {
            vault.set_user_disabled(actor, &name, false)?;
            out.done(
                &format!("enabled {name}"),
                &json!({"user": name, "disabled": false}),
            );
        }
    }
    Ok(())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line: the chain of causes, most specific last, skipping causes whose text an
            // outer error already includes (thiserror wrappers repeat their source).
            let mut msg = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&text);
                }
            }
            if json {
                let _ = writeln!(std::io::stdout(), "{}", json!({"error": msg}));
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
