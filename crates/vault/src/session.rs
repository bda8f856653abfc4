//! A logged-in user's view of the vault and every file operation on it. Each operation resolves the
//! virtual path against the user's mounts (their home folder as `/home`, and each folder of their
//! organization they hold a grant on), names the permission it needs, and is refused otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lockbox_audit::{Action, Event, Outcome};
use lockbox_crypto::{DataKey, WrappedKey};
use lockbox_store::{now_unix, BlobId, FolderRow, StoreError};
use lockbox_types::{Door, Permission, PermissionSet, VirtualPath};
use serde_json::json;

use crate::auth::Principal;
use crate::error::{Result, VaultError};
use crate::transfer::{ReadHandle, UploadContext, WriteHandle};
use crate::{Vault, HOME_MOUNT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// What a client may learn about a name: kind, size and modification time. Nothing else is modeled
/// (no owners or Unix modes; doors present fixed ones).
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: i64,
}

/// How a file is opened for writing.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMode {
    /// Discard existing content (and any interrupted upload) first.
    pub truncate: bool,
    /// Fail if a file already exists at the path.
    pub exclusive: bool,
    /// Fail if nothing exists at the path (opening without "create").
    pub must_exist: bool,
    /// Without truncation, continue the caller's interrupted upload if there is one, and otherwise
    /// start empty rather than from the committed file's content. For resumable-upload APIs whose
    /// client sends a whole new file from the offset it is given: starting it from the old
    /// version's content would splice the two.
    pub resume_only: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) folder: FolderRow,
    pub(crate) perms: PermissionSet,
    pub(crate) name: String,
}

enum Resolved {
    Root,
    Top(Mount),
    Inside {
        mount: Mount,
        parent: String,
        name: String,
    },
}

/// Who is acting, for audit records written by handles after the session call returned.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub(crate) user: String,
    pub(crate) org: String,
    pub(crate) door: Door,
    pub(crate) source: String,
    pub(crate) session_id: String,
}

impl Actor {
    pub(crate) fn event(&self, action: Action, outcome: Outcome) -> Event {
        Event::new(self.door, action, outcome)
            .actor(&self.user, &self.org)
            .source(&self.source)
    }
}

/// What an API token's scope must allow for an operation.
#[derive(Clone, Copy)]
enum Scope {
    Read,
    Write,
}

/// A logged-in user's session. Registered in the vault's active-session list from `open_session`
/// until `end` or drop, whichever comes first.
pub struct Session {
    vault: Vault,
    principal: Principal,
    actor: Arc<Actor>,
    ended: AtomicBool,
}

impl Vault {
    /// Opens a session for an accepted login. The `Principal` can only come from an accepted verdict.
    pub fn open_session(&self, principal: Principal) -> Result<Session> {
        let mut id = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let actor = Actor {
            user: principal.user.name.clone(),
            org: principal.user.org_name.clone(),
            door: principal.door,
            source: principal.source.to_string(),
            session_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        };
        self.audit_strict(
            actor
                .event(Action::SessionStarted, Outcome::Ok)
                .detail(json!({"session": actor.session_id})),
        )?;
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                actor.session_id.clone(),
                crate::ActiveSession {
                    id: actor.session_id.clone(),
                    user: actor.user.clone(),
                    org: actor.org.clone(),
                    door: actor.door,
                    source: actor.source.clone(),
                    started: now_unix(),
                },
            );
        Ok(Session {
            vault: self.clone(),
            principal,
            actor: Arc::new(actor),
            ended: AtomicBool::new(false),
        })
    }
}

/// `(parent, name)` of a path inside a folder: `a/b/c` → (`a/b`, `c`).
fn split_rel(inner: &VirtualPath) -> Option<(String, String)> {
    let name = inner.file_name()?.to_owned();
    let parent = inner
        .parent()
        .map(|p| p.relative_string())
        .unwrap_or_default();
    Some((parent, name))
}

impl Session {
    pub fn user_name(&self) -> &str {
        &self.principal.user.name
    }

    pub fn org_name(&self) -> &str {
        &self.principal.user.org_name
    }

    pub fn session_id(&self) -> &str {
        &self.actor.session_id
    }

    /// The directory a client starts in.
    pub fn home(&self) -> VirtualPath {
        VirtualPath::root().join(HOME_MOUNT).unwrap_or_default()
    }

    /// Records the end of the session. Doors call this when the connection closes; only the first
    /// call records.
    pub fn end(&self, detail: serde_json::Value) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unregister();
        let mut d = detail;
        if let Some(obj) = d.as_object_mut() {
            obj.insert("session".into(), json!(self.actor.session_id));
        }
        self.vault.audit(
            self.actor
                .event(Action::SessionEnded, Outcome::Ok)
                .detail(d),
        );
    }

    fn unregister(&self) {
        self.vault
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.actor.session_id);
    }

    /// Refuses an operation an API token's scopes do not cover (interactive logins have no scopes;
    /// their limit is the grants alone), recording the refusal.
    fn require_scope(&self, scope: Scope, path: &VirtualPath) -> Result<()> {
        let Some(scopes) = self.principal.scopes else {
            return Ok(());
        };
        let (allowed, name) = match scope {
            Scope::Read => (scopes.read, "read"),
            Scope::Write => (scopes.write, "write"),
        };
        if allowed {
            return Ok(());
        }
        self.vault.audit(
            self.actor
                .event(Action::AccessDenied, Outcome::Denied)
                .target(path.to_string())
                .detail(json!({"needs_scope": name, "session": self.actor.session_id})),
        );
        Err(VaultError::PermissionDenied(format!(
            "API token lacks the {name} scope"
        )))
    }

    fn mounts(&self) -> Result<Vec<Mount>> {
        let user = &self.principal.user;
        // Administrators manage; they never see partner files, whatever door they came through
        // (SFTP refuses them at login; the HTTPS door admits them for the admin console). Every file
        // operation resolves through here, so this one check covers them all.
        if user.role == lockbox_types::Role::Admin {
            return Err(VaultError::PermissionDenied(
                "administrators do not transfer files; use a partner account".into(),
            ));
        }
        let rows = self.vault.inner.store.folders_for_user(user.id)?;
        Ok(rows
            .into_iter()
            // Defense in depth: the query already restricts to the user's organization.
            .filter(|(f, _)| f.org_id == user.org_id)
            .map(|(folder, perms)| {
                // Their own home folder is `/home`; any other folder (including someone else's
                // home folder shared with them) appears under its stored name.
                let name = if folder.home_of == Some(user.id) {
                    HOME_MOUNT.to_owned()
                } else {
                    folder.name.clone()
                };
                Mount {
                    folder,
                    perms,
                    name,
                }
            })
            .collect())
    }

    fn resolve(&self, path: &VirtualPath) -> Result<Resolved> {
        let Some((first, inner)) = path.split_first() else {
            return Ok(Resolved::Root);
        };
        let mount = self
            .mounts()?
            .into_iter()
            .find(|m| m.name == first)
            .ok_or_else(|| VaultError::NotFound(path.to_string()))?;
        match split_rel(&inner) {
            None => Ok(Resolved::Top(mount)),
            Some((parent, name)) => Ok(Resolved::Inside {
                mount,
                parent,
                name,
            }),
        }
    }

    fn resolve_inside(&self, path: &VirtualPath, what: &str) -> Result<(Mount, String, String)> {
        match self.resolve(path)? {
            Resolved::Inside {
                mount,
                parent,
                name,
            } => Ok((mount, parent, name)),
            Resolved::Root | Resolved::Top(_) => Err(VaultError::PermissionDenied(format!(
                "cannot {what} {path}: it is a top-level folder"
            ))),
        }
    }

    /// Refuses unless the mount grants `perm`, recording the refusal.
    fn require(&self, mount: &Mount, perm: Permission, path: &VirtualPath) -> Result<()> {
        if mount.perms.contains(perm) {
            return Ok(());
        }
        self.vault.audit(
            self.actor
                .event(Action::AccessDenied, Outcome::Denied)
                .target(format!("{}:{}", mount.folder.name, path))
                .detail(json!({"needs": perm.as_str(), "session": self.actor.session_id})),
        );
        Err(VaultError::PermissionDenied(format!(
            "{path} (needs {} permission)",
            perm.as_str()
        )))
    }

    fn dir_exists(&self, mount: &Mount, rel: &str) -> Result<bool> {
        if rel.is_empty() {
            return Ok(true);
        }
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        Ok(self
            .vault
            .inner
            .store
            .dir_exists(mount.folder.id, parent, name)?)
    }

    fn require_parent(&self, mount: &Mount, parent: &str, path: &VirtualPath) -> Result<()> {
        if self.dir_exists(mount, parent)? {
            Ok(())
        } else {
            Err(VaultError::NotFound(
                path.parent().unwrap_or_default().to_string(),
            ))
        }
    }

    pub(crate) fn target(&self, mount: &Mount, path: &VirtualPath) -> String {
        format!("{}:{}", mount.folder.name, path)
    }

    pub fn stat(&self, path: &VirtualPath) -> Result<Entry> {
        self.require_scope(Scope::Read, path)?;
        let dir = |name: &str, mtime| Entry {
            name: name.to_owned(),
            kind: EntryKind::Dir,
            size: 0,
            mtime,
        };
        match self.resolve(path)? {
            Resolved::Root => Ok(dir("/", self.principal.user.created_at)),
            Resolved::Top(m) => Ok(dir(&m.name, m.folder.created_at)),
            Resolved::Inside {
                mount,
                parent,
                name,
            } => {
                if ![Permission::List, Permission::Read, Permission::Write]
                    .iter()
                    .any(|p| mount.perms.contains(*p))
                {
                    return self
                        .require(&mount, Permission::List, path)
                        .map(|_| unreachable_entry());
                }
                let store = &self.vault.inner.store;
                // With `write` alone (a drop box) a user learns nothing about others' files; they
                // only see their own interrupted upload below.
                let may_see = mount.perms.contains(Permission::List)
                    || mount.perms.contains(Permission::Read);
                if !may_see {
                    if let Some(up) = store
                        .upload_for(mount.folder.id, &parent, &name, self.principal.user.id)?
                        .filter(|u| u.resumable)
                    {
                        return Ok(Entry {
                            name,
                            kind: EntryKind::File,
                            size: up.size,
                            mtime: up.updated_at,
                        });
                    }
                    return Err(VaultError::NotFound(path.to_string()));
                }
                // An interrupted upload is invisible to everyone, except that its owner can see how
                // far it got, which is what resuming clients (`reput`, `lftp put -c`) ask before
                // continuing. It wins over a committed file at the same path: opening that path for
                // writing without truncation continues the interrupted upload, so this is the size
                // the client's offsets must start from (telling it the committed file's size made
                // `reput` splice the two).
                if mount.perms.contains(Permission::Write) {
                    if let Some(up) = store
                        .upload_for(mount.folder.id, &parent, &name, self.principal.user.id)?
                        .filter(|u| u.resumable)
                    {
                        return Ok(Entry {
                            name,
                            kind: EntryKind::File,
                            size: up.size,
                            mtime: up.updated_at,
                        });
                    }
                }
                if let Some(f) = store.live_file(mount.folder.id, &parent, &name)? {
                    return Ok(Entry {
                        name,
                        kind: EntryKind::File,
                        size: f.size,
                        mtime: f.mtime,
                    });
                }
                if let Some(created) = store.dir_created_at(mount.folder.id, &parent, &name)? {
                    return Ok(dir(&name, created));
                }
                Err(VaultError::NotFound(path.to_string()))
            }
        }
    }

    pub fn list_dir(&self, path: &VirtualPath) -> Result<Vec<Entry>> {
        self.require_scope(Scope::Read, path)?;
        let (mount, rel) = match self.resolve(path)? {
            Resolved::Root => {
                return Ok(self
                    .mounts()?
                    .into_iter()
                    .map(|m| Entry {
                        name: m.name,
                        kind: EntryKind::Dir,
                        size: 0,
                        mtime: m.folder.created_at,
                    })
                    .collect())
            }
            Resolved::Top(m) => (m, String::new()),
            Resolved::Inside {
                mount,
                parent,
                name,
            } => {
                let rel = if parent.is_empty() {
                    name
                } else {
                    format!("{parent}/{name}")
                };
                (mount, rel)
            }
        };
        self.require(&mount, Permission::List, path)?;
        if !self.dir_exists(&mount, &rel)? {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", &rel));
            if self
                .vault
                .inner
                .store
                .live_file(mount.folder.id, parent, name)?
                .is_some()
            {
                return Err(VaultError::InvalidInput(format!(
                    "{path} is not a directory"
                )));
            }
            return Err(VaultError::NotFound(path.to_string()));
        }
        let store = &self.vault.inner.store;
        let mut out: Vec<Entry> = store
            .list_dirs(mount.folder.id, &rel)?
            .into_iter()
            .map(|d| Entry {
                name: d.name,
                kind: EntryKind::Dir,
                size: 0,
                mtime: d.created_at,
            })
            .collect();
        out.extend(
            store
                .list_files(mount.folder.id, &rel)?
                .into_iter()
                .map(|f| Entry {
                    name: f.name,
                    kind: EntryKind::File,
                    size: f.size,
                    mtime: f.mtime,
                }),
        );
        Ok(out)
    }

    pub fn open_read(&self, path: &VirtualPath) -> Result<ReadHandle> {
        self.require_scope(Scope::Read, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "read")?;
        self.require(&mount, Permission::Read, path)?;
        let store = &self.vault.inner.store;
        let Some(file) = store.live_file(mount.folder.id, &parent, &name)? else {
            if store.dir_exists(mount.folder.id, &parent, &name)? {
                return Err(VaultError::InvalidInput(format!("{path} is a directory")));
            }
            return Err(VaultError::NotFound(path.to_string()));
        };
        ReadHandle::open(
            &self.vault,
            self.actor.clone(),
            file,
            self.target(&mount, path),
        )
    }

    pub fn open_write(&self, path: &VirtualPath, mode: OpenMode) -> Result<WriteHandle> {
        self.require_scope(Scope::Write, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "write")?;
        self.require(&mount, Permission::Write, path)?;
        self.require_parent(&mount, &parent, path)?;
        let inner = &self.vault.inner;
        let store = &inner.store;
        let folder = mount.folder.id;
        if store.dir_exists(folder, &parent, &name)? {
            return Err(VaultError::InvalidInput(format!("{path} is a directory")));
        }
        let live = store.live_file(folder, &parent, &name)?;
        if mode.exclusive && live.is_some() {
            return Err(VaultError::AlreadyExists(path.to_string()));
        }
        // Refused up front, before anything is staged, while the disk is under its floor.
        self.vault.check_space_for_upload()?;
        let ctx = UploadContext {
            actor: self.actor.clone(),
            target: self.target(&mount, path),
        };
        let user = self.principal.user.id;
        let mut pending = store.upload_for(folder, &parent, &name, user)?;
        if let Some(up) = pending.as_ref().filter(|u| !u.resumable) {
            // An interrupted update of the committed file (left by a crash): never a prefix of
            // anything a client sends, so it goes, and this open starts as if it were not there.
            drop(crate::transfer::UploadLease::take(&self.vault, up)?);
            if let Some(blob) = store.delete_upload(up.id)? {
                self.vault.remove_blob_after_commit(blob);
            }
            pending = None;
        }
        if mode.must_exist && live.is_none() && pending.is_none() {
            return Err(VaultError::NotFound(path.to_string()));
        }
        if let Some(up) = pending {
            if !mode.truncate {
                return WriteHandle::resume(&self.vault, ctx, up);
            }
            // Starting over: the interrupted upload's ciphertext and key go away, unless another
            // handle is writing it right now.
            drop(crate::transfer::UploadLease::take(&self.vault, &up)?);
            if let Some(blob) = store.delete_upload(up.id)? {
                self.vault.remove_blob_after_commit(blob);
            }
        }
        let blob = BlobId::random();
        let key = DataKey::generate();
        let wrapped: WrappedKey = inner.keys.wrap(&key, &blob.0)?;
        let file = inner.blobs.create(blob)?;
        // Opening an existing file without truncation means "modify it": the upload starts as a
        // copy of its content, which is not resumable.
        let copy_of = live.filter(|_| !mode.truncate && !mode.resume_only);
        let resumable = copy_of.is_none();
        let wrapped = wrapped.to_vec();
        let staged = lockbox_store::StagedBlob {
            blob,
            wrapped_key: &wrapped,
            resumable,
        };
        let up = match store.create_upload(folder, &parent, &name, user, staged) {
            Ok(up) => up,
            Err(e) => {
                self.vault.remove_blob_after_commit(blob);
                return Err(match e {
                    StoreError::Conflict { .. } => {
                        VaultError::AlreadyExists(format!("an upload to {path} in progress"))
                    }
                    other => other.into(),
                });
            }
        };
        let upload_id = up.id;
        let opened = WriteHandle::create(&self.vault, ctx, up, file, key).and_then(|mut handle| {
            if let Some(existing) = copy_of {
                let reader =
                    ReadHandle::open(&self.vault, self.actor.clone(), existing, String::new())?;
                handle.copy_from(&reader)?;
            }
            Ok(handle)
        });
        if opened.is_err() {
            // Nobody will ever write or resume this staging row; leaving it would hide a phantom
            // upload in the folder (and keep `rmdir` from removing it).
            if let Ok(Some(blob)) = store.delete_upload(upload_id) {
                self.vault.remove_blob_after_commit(blob);
            }
        }
        opened
    }

    pub fn remove(&self, path: &VirtualPath) -> Result<()> {
        self.require_scope(Scope::Write, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "remove")?;
        self.require(&mount, Permission::Delete, path)?;
        let inner = &self.vault.inner;
        let store = &inner.store;
        match store.live_file(mount.folder.id, &parent, &name)? {
            Some(f) => {
                let blob = store.delete_file(f.id, self.principal.user.id)?;
                // The wrapped key is gone from the database already; removing the ciphertext is
                // housekeeping and must not turn a completed delete into an error.
                self.vault.remove_blob_after_commit(blob);
                self.vault.audit(
                    self.actor
                        .event(Action::FileDeleted, Outcome::Ok)
                        .target(self.target(&mount, path))
                        .detail(json!({"file_id": f.id.0, "size": f.size, "sha256": f.sha256, "session": self.actor.session_id})),
                );
                Ok(())
            }
            None => {
                if let Some(up) =
                    store.upload_for(mount.folder.id, &parent, &name, self.principal.user.id)?
                {
                    drop(crate::transfer::UploadLease::take(&self.vault, &up)?);
                    if let Some(blob) = store.delete_upload(up.id)? {
                        self.vault.remove_blob_after_commit(blob);
                    }
                    self.vault.audit(
                        self.actor
                            .event(Action::UploadAbandoned, Outcome::Ok)
                            .target(self.target(&mount, path))
                            .detail(json!({"size": up.size, "session": self.actor.session_id})),
                    );
                    return Ok(());
                }
                if store.dir_exists(mount.folder.id, &parent, &name)? {
                    return Err(VaultError::InvalidInput(format!(
                        "{path} is a directory; use rmdir"
                    )));
                }
                Err(VaultError::NotFound(path.to_string()))
            }
        }
    }

    pub fn mkdir(&self, path: &VirtualPath) -> Result<()> {
        self.require_scope(Scope::Write, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "create")?;
        self.require(&mount, Permission::Mkdir, path)?;
        self.require_parent(&mount, &parent, path)?;
        match self
            .vault
            .inner
            .store
            .create_dir(mount.folder.id, &parent, &name)
        {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(VaultError::AlreadyExists(path.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        self.vault.audit(
            self.actor
                .event(Action::DirCreated, Outcome::Ok)
                .target(self.target(&mount, path))
                .detail(json!({"session": self.actor.session_id})),
        );
        Ok(())
    }

    pub fn rmdir(&self, path: &VirtualPath) -> Result<()> {
        self.require_scope(Scope::Write, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "remove")?;
        self.require(&mount, Permission::Delete, path)?;
        // An upload handle that was never closed leaves a hidden, resumable staging upload, so a
        // folder can list as empty and still refuse `rmdir`. The caller's own such uploads that no
        // session has open go with the directory (audited, like `rm` of a partial upload), in the
        // same transaction and only if nothing else is left in it. Leases are held meanwhile, so a
        // session resuming one right now is not cut off.
        let store = &self.vault.inner.store;
        let dir = lockbox_store::join_rel(&parent, &name);
        let mut leases = Vec::new();
        let mut discarded = Vec::new();
        for up in store.uploads_in_dir(mount.folder.id, &dir)? {
            if up.user_id == self.principal.user.id {
                if let Ok(lease) = crate::transfer::UploadLease::take(&self.vault, &up) {
                    leases.push(lease);
                    discarded.push(up);
                }
            }
        }
        let ids: Vec<_> = discarded.iter().map(|u| u.id).collect();
        match store.remove_dir(mount.folder.id, &parent, &name, &ids) {
            Ok(blobs) => {
                for blob in blobs {
                    self.vault.remove_blob_after_commit(blob);
                }
            }
            Err(StoreError::Conflict { .. }) => return Err(VaultError::NotEmpty(path.to_string())),
            Err(StoreError::NotFound { .. }) => return Err(VaultError::NotFound(path.to_string())),
            Err(e) => return Err(e.into()),
        }
        drop(leases);
        for up in &discarded {
            self.vault.audit(
                self.actor
                    .event(Action::UploadAbandoned, Outcome::Ok)
                    .target(format!("{}/{}", self.target(&mount, path), up.name))
                    .detail(json!({"size": up.size, "reason": "directory removed", "session": self.actor.session_id})),
            );
        }
        self.vault.audit(
            self.actor
                .event(Action::DirRemoved, Outcome::Ok)
                .target(self.target(&mount, path))
                .detail(json!({"session": self.actor.session_id})),
        );
        Ok(())
    }

    /// Moves a file or directory. Needs `rename` where it comes from and `write` where it goes when
    /// that is another folder. `replace` overwrites an existing destination file (POSIX rename).
    pub fn rename(&self, from: &VirtualPath, to: &VirtualPath, replace: bool) -> Result<()> {
        self.require_scope(Scope::Write, from)?;
        let (src, sparent, sname) = self.resolve_inside(from, "rename")?;
        let (dst, dparent, dname) = self.resolve_inside(to, "rename onto")?;
        self.require(&src, Permission::Rename, from)?;
        if dst.folder.id != src.folder.id {
            // Moving content into another folder makes it readable there and removes it here: the
            // mover must be allowed to read and delete it at the source, and to write at the target.
            self.require(&src, Permission::Read, from)?;
            self.require(&src, Permission::Delete, from)?;
            self.require(&dst, Permission::Write, to)?;
        }
        if replace
            && self
                .vault
                .inner
                .store
                .live_file(dst.folder.id, &dparent, &dname)?
                .is_some()
        {
            // Overwriting destroys the existing file's key: that is a delete.
            self.require(&dst, Permission::Delete, to)?;
        }
        self.require_parent(&dst, &dparent, to)?;
        let inner = &self.vault.inner;
        let store = &inner.store;
        let map = |e: StoreError| match e {
            StoreError::Conflict { .. } => VaultError::AlreadyExists(to.to_string()),
            StoreError::NotFound { .. } => VaultError::NotFound(from.to_string()),
            other => other.into(),
        };
        if let Some(f) = store.live_file(src.folder.id, &sparent, &sname)? {
            let replaced = store
                .rename_file(
                    f.id,
                    dst.folder.id,
                    &dparent,
                    &dname,
                    replace,
                    self.principal.user.id,
                )
                .map_err(map)?;
            if let Some(blob) = replaced {
                self.vault.remove_blob_after_commit(blob);
            }
        } else if store.dir_exists(src.folder.id, &sparent, &sname)? {
            if dst.folder.id != src.folder.id {
                return Err(VaultError::Unsupported(
                    "directories can only be moved within their folder".into(),
                ));
            }
            let moving = if sparent.is_empty() {
                sname.clone()
            } else {
                format!("{sparent}/{sname}")
            };
            if dparent == moving || dparent.starts_with(&format!("{moving}/")) {
                return Err(VaultError::InvalidInput(
                    "cannot move a directory into itself".into(),
                ));
            }
            store
                .rename_dir(src.folder.id, (&sparent, &sname), (&dparent, &dname))
                .map_err(map)?;
        } else {
            return Err(VaultError::NotFound(from.to_string()));
        }
        self.vault.audit(
            self.actor
                .event(Action::Renamed, Outcome::Ok)
                .target(self.target(&src, from))
                .detail(json!({"to": self.target(&dst, to), "replace": replace, "session": self.actor.session_id})),
        );
        Ok(())
    }

    /// Sets a committed file's modification time (clients preserving times, `touch`).
    pub fn set_mtime(&self, path: &VirtualPath, mtime: i64) -> Result<()> {
        self.require_scope(Scope::Write, path)?;
        let (mount, parent, name) = self.resolve_inside(path, "change")?;
        self.require(&mount, Permission::Write, path)?;
        let store = &self.vault.inner.store;
        match store.live_file(mount.folder.id, &parent, &name)? {
            Some(f) => Ok(store.set_file_mtime(f.id, mtime)?),
            None if store.dir_exists(mount.folder.id, &parent, &name)? => Ok(()),
            None => Err(VaultError::NotFound(path.to_string())),
        }
    }

    /// Free and total bytes of the storage, for `df`.
    pub fn space(&self) -> Result<(u64, u64)> {
        Ok(self.vault.inner.blobs.space()?)
    }

    pub(crate) fn now() -> i64 {
        now_unix()
    }
}

impl Drop for Session {
    /// A door that loses a session without calling `end` must not leave it listed as active.
    fn drop(&mut self) {
        self.unregister();
    }
}

/// `require` on a mount without the permission always errs; this only satisfies the type checker.
fn unreachable_entry() -> Entry {
    Entry {
        name: String::new(),
        kind: EntryKind::File,
        size: 0,
        mtime: 0,
    }
}
