//! Administration: organizations, users, keys, groups, folders and grants. Every change is validated
//! here (names, organization boundaries, password strength) and recorded in the audit log.

use lockbox_audit::{Action, Event, Outcome};
pub use lockbox_store::{FolderRow, GrantRow, GroupRow, OrgRow, SshKeyRow, Subject, UserRow};
use lockbox_types::{Door, EntityName, PermissionSet, Role};
use serde_json::json;

use crate::auth::{check_password_strength, hash_password, parse_public_key};
use crate::error::{Result, VaultError};
use crate::{Vault, HOME_MOUNT};

/// Who is administering: recorded as the actor of every admin event.
#[derive(Debug, Clone)]
pub struct AdminActor {
    pub name: String,
    pub door: Door,
    pub source: String,
}

impl AdminActor {
    /// The local operator running the CLI against the data directory.
    pub fn cli() -> Self {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        AdminActor {
            name: format!("cli:{}", who.chars().take(32).collect::<String>()),
            door: Door::Cli,
            source: "local".into(),
        }
    }
}

impl Vault {
    /// The admin identity of a logged-in administrator (the web console). Refused unless the user
    /// has the admin role and, for a token login, the token has the admin scope.
    pub fn admin_actor(&self, principal: &crate::Principal) -> Result<AdminActor> {
        if principal.role() != Role::Admin {
            return Err(VaultError::PermissionDenied(
                "administration needs an admin account".into(),
            ));
        }
        if principal.scopes().is_some_and(|s| !s.admin) {
            return Err(VaultError::PermissionDenied(
                "API token lacks the admin scope".into(),
            ));
        }
        Ok(AdminActor {
            name: principal.user_name().to_owned(),
            door: principal.door(),
            source: principal.source().to_string(),
        })
    }
}

/// Who a grant is for, by name.
pub enum GrantSubject<'a> {
    User(&'a str),
    Group(&'a str),
}

/// Home folders are stored under a reserved prefix so they never collide with shared folders.
fn home_folder_name(user: &str) -> String {
    format!("{HOME_MOUNT}.{user}")
}

fn is_reserved_folder_name(name: &str) -> bool {
    name == HOME_MOUNT || name.starts_with("home.")
}

impl Vault {
    pub(crate) fn admin_event(
        &self,
        actor: &AdminActor,
        action: Action,
        org: &str,
        target: String,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.audit_strict(
            Event::new(actor.door, action, Outcome::Ok)
                .actor(&actor.name, org)
                .source(&actor.source)
                .target(target)
                .detail(detail),
        )
    }

    pub fn org(&self, name: &str) -> Result<OrgRow> {
        self.inner
            .store
            .org_by_name(name)?
            .ok_or_else(|| VaultError::NoSuch(format!("organization {name:?}")))
    }

    pub fn user(&self, name: &str) -> Result<UserRow> {
        self.inner
            .store
            .user_by_name(name)?
            .ok_or_else(|| VaultError::NoSuch(format!("user {name:?}")))
    }

    pub fn create_org(&self, actor: &AdminActor, name: &str) -> Result<OrgRow> {
        let name = EntityName::parse("organization name", name)?;
        let org = self.inner.store.create_org(name.as_str())?;
        self.admin_event(
            actor,
            Action::OrgCreated,
            &org.name,
            format!("org:{}", org.name),
            json!({}),
        )?;
        Ok(org)
    }

    pub fn list_orgs(&self) -> Result<Vec<OrgRow>> {
        Ok(self.inner.store.list_orgs()?)
    }

    /// Sets whether SFTP password logins of the organization's users also need a TOTP or recovery
    /// code (keyboard-interactive). Key logins are unaffected; browser sign-in always needs one.
    /// Applies from the next login; sessions already open are not cut.
    pub fn set_org_sftp_password_totp(
        &self,
        actor: &AdminActor,
        org: &str,
        on: bool,
    ) -> Result<()> {
        let o = self.org(org)?;
        if !self.inner.store.set_org_sftp_password_totp(o.id, on)? {
            return Err(VaultError::NoSuch(format!("organization {org:?}")));
        }
        self.admin_event(
            actor,
            Action::OrgPolicySet,
            &o.name,
            format!("org:{}", o.name),
            json!({"sftp_password_totp": on, "before": o.sftp_password_totp}),
        )
    }

    pub fn create_user(
        &self,
        actor: &AdminActor,
        org: &str,
        name: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<UserRow> {
        let name = EntityName::parse("user name", name)?;
        let org = self.org(org)?;
        let hash = match password {
            Some(pw) => {
                check_password_strength(name.as_str(), pw, &self.inner.config.auth)?;
                Some(hash_password(pw)?)
            }
            None => None,
        };
        let user = self.inner.store.create_user_with_home(
            org.id,
            name.as_str(),
            role,
            hash.as_deref(),
            &home_folder_name(name.as_str()),
        )?;
        self.admin_event(
            actor,
            Action::UserCreated,
            &org.name,
            format!("user:{}", user.name),
            json!({"role": role.as_str(), "password": password.is_some()}),
        )?;
        Ok(user)
    }

    pub fn list_users(&self, org: Option<&str>) -> Result<Vec<UserRow>> {
        let org_id = org.map(|o| self.org(o)).transpose()?.map(|o| o.id);
        Ok(self.inner.store.list_users(org_id)?)
    }

    pub fn set_password(&self, actor: &AdminActor, user: &str, password: &str) -> Result<()> {
        let u = self.user(user)?;
        check_password_strength(&u.name, password, &self.inner.config.auth)?;
        self.inner
            .store
            .set_password_hash(u.id, &hash_password(password)?)?;
        self.admin_event(
            actor,
            Action::UserPasswordSet,
            &u.org_name,
            format!("user:{}", u.name),
            json!({}),
        )
    }

    pub fn set_user_disabled(&self, actor: &AdminActor, user: &str, disabled: bool) -> Result<()> {
        let u = self.user(user)?;
        self.inner.store.set_disabled(u.id, disabled)?;
        let action = if disabled {
            Action::UserDisabled
        } else {
            Action::UserEnabled
        };
        self.admin_event(
            actor,
            action,
            &u.org_name,
            format!("user:{}", u.name),
            json!({}),
        )
    }

    pub fn unlock_user(&self, actor: &AdminActor, user: &str) -> Result<()> {
        let u = self.user(user)?;
        self.inner.store.clear_login_failures(u.id)?;
        self.admin_event(
            actor,
            Action::UserUnlocked,
            &u.org_name,
            format!("user:{}", u.name),
            json!({"failed_logins_before": u.failed_logins}),
        )
    }

    pub fn add_key(&self, actor: &AdminActor, user: &str, openssh_line: &str) -> Result<SshKeyRow> {
        let u = self.user(user)?;
        let key = parse_public_key(openssh_line)?;
        let row = self.inner.store.add_ssh_key(
            u.id,
            &key.algorithm,
            &key.fingerprint,
            &key.openssh,
            &key.comment,
        )?;
        self.admin_event(
            actor,
            Action::KeyAdded,
            &u.org_name,
            format!("user:{}", u.name),
            json!({"fingerprint": row.fingerprint, "algorithm": row.algorithm}),
        )?;
        Ok(row)
    }

    pub fn list_keys(&self, user: &str) -> Result<Vec<SshKeyRow>> {
        let u = self.user(user)?;
        Ok(self.inner.store.list_ssh_keys(u.id)?)
    }

    pub fn remove_key(&self, actor: &AdminActor, user: &str, fingerprint: &str) -> Result<()> {
        let u = self.user(user)?;
        self.inner.store.remove_ssh_key(u.id, fingerprint)?;
        self.admin_event(
            actor,
            Action::KeyRemoved,
            &u.org_name,
            format!("user:{}", u.name),
            json!({"fingerprint": fingerprint}),
        )
    }

    pub fn create_group(&self, actor: &AdminActor, org: &str, name: &str) -> Result<GroupRow> {
        let name = EntityName::parse("group name", name)?;
        let org = self.org(org)?;
        let g = self.inner.store.create_group(org.id, name.as_str())?;
        self.admin_event(
            actor,
            Action::GroupCreated,
            &org.name,
            format!("group:{}", g.name),
            json!({}),
        )?;
        Ok(g)
    }

    pub fn add_group_member(
        &self,
        actor: &AdminActor,
        org: &str,
        group: &str,
        user: &str,
    ) -> Result<()> {
        let org = self.org(org)?;
        let g = self
            .inner
            .store
            .group_by_name(org.id, group)?
            .ok_or_else(|| {
                VaultError::NoSuch(format!("group {group:?} in organization {:?}", org.name))
            })?;
        let u = self.user(user)?;
        if u.org_id != org.id {
            return Err(VaultError::InvalidInput(format!(
                "user {:?} belongs to organization {:?}, not {:?}",
                u.name, u.org_name, org.name
            )));
        }
        self.inner.store.add_group_member(g.id, u.id)?;
        self.admin_event(
            actor,
            Action::GroupMemberAdded,
            &org.name,
            format!("group:{}", g.name),
            json!({"user": u.name}),
        )
    }

    pub fn list_groups(&self, org: &str) -> Result<Vec<(GroupRow, Vec<String>)>> {
        let org = self.org(org)?;
        Ok(self.inner.store.list_groups(org.id)?)
    }

    pub fn create_folder(&self, actor: &AdminActor, org: &str, name: &str) -> Result<FolderRow> {
        let name = EntityName::parse("folder name", name)?;
        if is_reserved_folder_name(name.as_str()) {
            return Err(VaultError::InvalidInput(format!(
                "folder name {:?} is reserved for home folders",
                name.as_str()
            )));
        }
        let org = self.org(org)?;
        let f = self.inner.store.create_folder(org.id, name.as_str())?;
        self.admin_event(
            actor,
            Action::FolderCreated,
            &org.name,
            format!("folder:{}", f.name),
            json!({}),
        )?;
        Ok(f)
    }

    pub fn list_folders(&self, org: Option<&str>) -> Result<Vec<FolderRow>> {
        let org_id = org.map(|o| self.org(o)).transpose()?.map(|o| o.id);
        Ok(self.inner.store.list_folders(org_id)?)
    }

    fn resolve_grant(
        &self,
        org: &str,
        folder: &str,
        subject: &GrantSubject<'_>,
    ) -> Result<(OrgRow, FolderRow, Subject, String)> {
        let org = self.org(org)?;
        let f = self
            .inner
            .store
            .folder_by_name(org.id, folder)?
            .ok_or_else(|| {
                VaultError::NoSuch(format!("folder {folder:?} in organization {:?}", org.name))
            })?;
        let (subject, label) = match subject {
            GrantSubject::User(name) => {
                let u = self.user(name)?;
                // Tenants are isolated: a grant can never reach across organizations.
                if u.org_id != org.id {
                    return Err(VaultError::InvalidInput(format!(
                        "user {:?} belongs to organization {:?}, not {:?}",
                        u.name, u.org_name, org.name
                    )));
                }
                (Subject::User(u.id), format!("user:{}", u.name))
            }
            GrantSubject::Group(name) => {
                let g = self
                    .inner
                    .store
                    .group_by_name(org.id, name)?
                    .ok_or_else(|| {
                        VaultError::NoSuch(format!("group {name:?} in organization {:?}", org.name))
                    })?;
                (Subject::Group(g.id), format!("group:{}", g.name))
            }
        };
        Ok((org, f, subject, label))
    }

    pub fn grant(
        &self,
        actor: &AdminActor,
        org: &str,
        folder: &str,
        subject: GrantSubject<'_>,
        perms: PermissionSet,
    ) -> Result<()> {
        if perms.is_empty() {
            return Err(VaultError::InvalidInput(
                "a grant needs at least one permission".into(),
            ));
        }
        let (org, f, subject, label) = self.resolve_grant(org, folder, &subject)?;
        self.inner.store.set_grant(f.id, subject, perms)?;
        self.admin_event(
            actor,
            Action::GrantSet,
            &org.name,
            format!("folder:{}", f.name),
            json!({"subject": label, "perms": perms.names()}),
        )
    }

    pub fn revoke(
        &self,
        actor: &AdminActor,
        org: &str,
        folder: &str,
        subject: GrantSubject<'_>,
    ) -> Result<()> {
        let (org, f, subject, label) = self.resolve_grant(org, folder, &subject)?;
        self.inner.store.remove_grant(f.id, subject)?;
        self.admin_event(
            actor,
            Action::GrantRemoved,
            &org.name,
            format!("folder:{}", f.name),
            json!({"subject": label}),
        )
    }

    pub fn list_grants(&self, org: Option<&str>) -> Result<Vec<GrantRow>> {
        let org_id = org.map(|o| self.org(o)).transpose()?.map(|o| o.id);
        Ok(self.inner.store.list_grants(org_id)?)
    }

    /// Records that the audit log was exported (who took a copy of the evidence, and when).
    pub fn note_audit_export(&self, actor: &AdminActor, records: u64) -> Result<()> {
        self.admin_event(
            actor,
            Action::AuditExported,
            "",
            "audit_log".into(),
            json!({"records": records}),
        )
    }
}
