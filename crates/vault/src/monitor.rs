//! What operators watch: a filtered view of the audit log, the sessions open in this process, and
//! counters for a Prometheus scrape. All read-only; the audit search needs an `AdminActor`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use lockbox_store::AuditFilter;
use lockbox_types::Door;

use crate::admin::AdminActor;
use crate::error::Result;
use crate::Vault;

/// Most records one audit search returns; page further with `before_seq`.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// Filters for `Vault::audit_search`; `None` matches everything. `from`/`to` are Unix seconds,
/// inclusive; `before_seq` pages backwards from a previous page's last `seq`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub org: Option<String>,
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// One audit record for display (the chain hashes stay with `audit verify`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecordView {
    pub seq: i64,
    /// Unix seconds.
    pub time: i64,
    /// The stored RFC 3339 timestamp (sub-second precision).
    pub ts: String,
    pub door: String,
    pub action: String,
    pub outcome: String,
    pub user: String,
    pub org: String,
    pub source: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// A session open in this process.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub id: String,
    pub user: String,
    pub org: String,
    pub door: Door,
    pub source: String,
    /// Unix seconds.
    pub started: i64,
}

/// Counters since the process started. Relaxed atomics: each counter is independent.
#[derive(Debug, Default)]
pub struct Metrics {
    logins_ok_sftp: AtomicU64,
    logins_ok_https: AtomicU64,
    auth_failures_sftp: AtomicU64,
    auth_failures_https: AtomicU64,
    uploads_committed: AtomicU64,
    bytes_uploaded: AtomicU64,
    downloads: AtomicU64,
    bytes_downloaded: AtomicU64,
    password_verifications: AtomicU64,
}

impl Metrics {
    /// Counts one Argon2 verification (a real or a dummy hash): the expensive part of a login, so
    /// an operator can see a flood's cost and a test can see a refusal was cheap.
    pub(crate) fn password_verified(&self) {
        self.password_verifications.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a verdict. The CLI does not log in over a door, so it has no counter.
    pub(crate) fn login(&self, door: Door, ok: bool) {
        let counter = match (door, ok) {
            (Door::Sftp, true) => &self.logins_ok_sftp,
            (Door::Https, true) => &self.logins_ok_https,
            (Door::Sftp, false) => &self.auth_failures_sftp,
            (Door::Https, false) => &self.auth_failures_https,
            (Door::Cli, _) => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upload_committed(&self, bytes: u64) {
        self.uploads_committed.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn download_closed(&self, bytes: u64) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.bytes_downloaded.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub logins_ok_sftp: u64,
    pub logins_ok_https: u64,
    pub auth_failures_sftp: u64,
    pub auth_failures_https: u64,
    pub uploads_committed: u64,
    pub bytes_uploaded: u64,
    pub downloads: u64,
    pub bytes_downloaded: u64,
    pub active_sessions_sftp: u64,
    pub active_sessions_https: u64,
    pub password_verifications: u64,
}

impl MetricsSnapshot {
    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let by_door =
            |sftp: u64, https: u64| vec![("door=\"sftp\"", sftp), ("door=\"https\"", https)];
        let families = [
            (
                "lockbox_logins_total",
                "counter",
                "Successful logins.",
                by_door(self.logins_ok_sftp, self.logins_ok_https),
            ),
            (
                "lockbox_auth_failures_total",
                "counter",
                "Refused logins and second-factor attempts.",
                by_door(self.auth_failures_sftp, self.auth_failures_https),
            ),
            (
                "lockbox_uploads_committed_total",
                "counter",
                "Uploads committed as new file versions.",
                vec![("", self.uploads_committed)],
            ),
            (
                "lockbox_uploaded_bytes_total",
                "counter",
                "Plaintext bytes of committed uploads.",
                vec![("", self.bytes_uploaded)],
            ),
            (
                "lockbox_downloads_total",
                "counter",
                "Downloads closed.",
                vec![("", self.downloads)],
            ),
            (
                "lockbox_downloaded_bytes_total",
                "counter",
                "Plaintext bytes sent by downloads.",
                vec![("", self.bytes_downloaded)],
            ),
            (
                "lockbox_password_verifications_total",
                "counter",
                "Argon2id password verifications run (dummy ones for unknown users included).",
                vec![("", self.password_verifications)],
            ),
            (
                "lockbox_active_sessions",
                "gauge",
                "Sessions open now.",
                by_door(self.active_sessions_sftp, self.active_sessions_https),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, samples) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

impl Vault {
    /// Audit records matching `q`, newest first, at most `MAX_AUDIT_PAGE`. Holding an `AdminActor`
    /// is the permission; the search itself is not recorded (it changes nothing and would flood the
    /// log it reads).
    pub fn audit_search(
        &self,
        _actor: &AdminActor,
        q: &AuditQuery,
    ) -> Result<Vec<AuditRecordView>> {
        let filter = AuditFilter {
            actor: q.user.as_deref(),
            org: q.org.as_deref(),
            action: q.action.as_deref(),
            from: q.from,
            to: q.to,
            before_seq: q.before_seq,
            limit: q.limit.clamp(1, MAX_AUDIT_PAGE),
        };
        Ok(self
            .inner
            .store
            .search_audit(&filter)?
            .into_iter()
            .map(|(time, r)| AuditRecordView {
                detail: serde_json::from_str(&r.detail)
                    .unwrap_or(serde_json::Value::String(r.detail)),
                seq: r.seq,
                time,
                ts: r.ts,
                door: r.door,
                action: r.action,
                outcome: r.outcome,
                user: r.actor,
                org: r.org,
                source: r.source,
                target: r.target,
            })
            .collect())
    }

    /// Sessions open in this process, oldest first.
    pub fn active_sessions(&self) -> Vec<ActiveSession> {
        let mut all: Vec<ActiveSession> = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        all
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.inner.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (mut sftp, mut https) = (0, 0);
        for s in self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            match s.door {
                Door::Sftp => sftp += 1,
                Door::Https => https += 1,
                Door::Cli => {}
            }
        }
        MetricsSnapshot {
            logins_ok_sftp: get(&m.logins_ok_sftp),
            logins_ok_https: get(&m.logins_ok_https),
            auth_failures_sftp: get(&m.auth_failures_sftp),
            auth_failures_https: get(&m.auth_failures_https),
            uploads_committed: get(&m.uploads_committed),
            bytes_uploaded: get(&m.bytes_uploaded),
            downloads: get(&m.downloads),
            bytes_downloaded: get(&m.bytes_downloaded),
            active_sessions_sftp: sftp,
            active_sessions_https: https,
            password_verifications: get(&m.password_verifications),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_well_formed() {
        let text = MetricsSnapshot {
            auth_failures_sftp: 3,
            bytes_uploaded: 42,
            ..Default::default()
        }
        .render_prometheus();
        assert!(text.contains("# TYPE lockbox_auth_failures_total counter\n"));
        assert!(text.contains("lockbox_auth_failures_total{door=\"sftp\"} 3\n"));
        assert!(text.contains("lockbox_uploaded_bytes_total 42\n"));
        assert!(text.contains("# TYPE lockbox_active_sessions gauge\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<u64>().is_ok(), "{line}");
            assert!(name.starts_with("lockbox_"), "{line}");
        }
    }
}
