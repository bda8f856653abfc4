//! What the vault learns from a file's plaintext as it streams in, in one pass: its SHA-256 and its PHI
//! inventory (people as keyed fingerprints, data elements, format and scan status). Large uploads do
//! this on their own thread so it runs in parallel with encryption and disk writes.

use std::collections::HashMap;

use bytes::Bytes;
use lockbox_inventory::fingerprint::FingerprintHashBuilder;
use lockbox_inventory::{Fingerprinter, Limits, PersonRecord, ScanResult, Scanner};
use sha2::{Digest, Sha256};

/// Uploads larger than this analyse content on their own thread; smaller ones are not worth a thread.
const THREAD_AFTER: u64 = 4 * 1024 * 1024;
/// Chunks queued for the content thread (~16 MiB with 255 KiB writes); a full queue makes the writer
/// wait instead of growing memory.
const QUEUE: usize = 64;

/// One pass over a file's plaintext.
pub(crate) struct ContentAnalysis {
    hasher: Sha256,
    /// `None` after the classifier panicked: a parser bug must never fail an upload, so the file is
    /// then recorded as partially scanned and the digest continues.
    scanner: Option<Scanner>,
    fingerprinter: Fingerprinter,
    /// People found, merged by identity within the file (the same member on several claims is one).
    people: People,
}

/// Keyed by the fingerprints themselves: secret-keyed HMAC outputs, so a plain multiplicative hash is
/// safe (an uploader cannot choose colliding keys) and much cheaper than SipHash over 96 bytes.
type People = HashMap<
    (Option<[u8; 32]>, Option<[u8; 32]>, Option<[u8; 32]>),
    PersonRecord,
    FingerprintHashBuilder,
>;

/// What the analysis produced.
pub(crate) struct ContentFindings {
    pub(crate) sha256: String,
    pub(crate) scan: ScanResult,
    pub(crate) people: Vec<PersonRecord>,
}

impl ContentAnalysis {
    /// `org`: the organization the file belongs to (scopes organization-local identifiers).
    pub(crate) fn new(fingerprint_key: [u8; 32], org: &str) -> Self {
        ContentAnalysis {
            hasher: Sha256::new(),
            scanner: Some(Scanner::new(Limits::default())),
            fingerprinter: Fingerprinter::scoped(fingerprint_key, org),
            people: HashMap::default(),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        let Some(scanner) = self.scanner.as_mut() else {
            return;
        };
        let (fp, people) = (&self.fingerprinter, &mut self.people);
        let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scanner.feed(data, &mut |p| merge(people, fp.record(&p)));
        }));
        if fed.is_err() {
            tracing::error!(
                "the PHI classifier failed on this file; it is recorded as partially scanned"
            );
            self.scanner = None;
        }
    }

    pub(crate) fn finish(self) -> ContentFindings {
        let ContentAnalysis {
            hasher,
            scanner,
            fingerprinter,
            mut people,
        } = self;
        let failed = |bytes: u64| ScanResult {
            format: lockbox_inventory::Format::Binary,
            inner_formats: Vec::new(),
            status: lockbox_inventory::ScanStatus::Partial(
                "classifier error: the file was only partly scanned".into(),
            ),
            records: 0,
            persons: 0,
            element_counts: Default::default(),
            bytes,
        };
        let scan = match scanner {
            Some(scanner) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                scanner.finish(&mut |p| merge(&mut people, fingerprinter.record(&p)))
            }))
            .unwrap_or_else(|_| failed(0)),
            None => failed(0),
        };
        ContentFindings {
            sha256: hex::encode(hasher.finalize()),
            scan,
            people: people.into_values().collect(),
        }
    }
}

fn merge(people: &mut People, r: PersonRecord) {
    let key = (r.fp_ssn, r.fp_name_dob, r.fp_other);
    match people.get_mut(&key) {
        Some(existing) => {
            existing.elements = existing.elements.union(r.elements);
            if r.state.is_some() {
                existing.state = r.state;
            }
        }
        None => {
            people.insert(key, r);
        }
    }
}

/// Feeds an upload's in-order content to the analysis, moving it to a thread once the upload is big.
pub(crate) enum ContentTap {
    Inline(Box<ContentAnalysis>),
    Thread {
        tx: std::sync::mpsc::SyncSender<Bytes>,
        join: std::thread::JoinHandle<ContentFindings>,
    },
    /// Content did not arrive in order from offset 0 (or the upload was resumed): the stored file is
    /// analysed at commit instead.
    Unavailable,
}

impl ContentTap {
    pub(crate) fn new(fingerprint_key: [u8; 32], org: &str) -> Self {
        ContentTap::Inline(Box::new(ContentAnalysis::new(fingerprint_key, org)))
    }

    /// `seen_after` is how many in-order bytes have been seen including `data`.
    pub(crate) fn update(&mut self, data: &Bytes, seen_after: u64) {
        match self {
            ContentTap::Inline(a) if seen_after > THREAD_AFTER => {
                let ContentTap::Inline(mut a) = std::mem::replace(self, ContentTap::Unavailable)
                else {
                    return;
                };
                a.update(data);
                let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(QUEUE);
                let spawned = std::thread::Builder::new()
                    .name("lockbox-content".into())
                    .spawn(move || {
                        for chunk in rx {
                            a.update(&chunk);
                        }
                        a.finish()
                    });
                if let Ok(join) = spawned {
                    *self = ContentTap::Thread { tx, join };
                }
            }
            ContentTap::Inline(a) => a.update(data),
            ContentTap::Thread { tx, .. } => {
                if tx.send(data.clone()).is_err() {
                    *self = ContentTap::Unavailable;
                }
            }
            ContentTap::Unavailable => {}
        }
    }

    pub(crate) fn finish(self) -> Option<ContentFindings> {
        match self {
            ContentTap::Inline(a) => Some(a.finish()),
            ContentTap::Thread { tx, join } => {
                drop(tx);
                join.join().ok()
            }
            ContentTap::Unavailable => None,
        }
    }
}
