//! gzip and zip containers, read as they stream by (no seeking: zip is walked through its local file
//! headers and the central directory is never needed).
//!
//! - gzip: RFC 1952 members (multi-member files are one concatenated stream, as `gunzip` reads them),
//!   CRC-32 and size checked; zero padding after the last member is ignored.
//! - zip: local headers `PK\x03\x04`; methods 0 (stored) and 8 (deflate). Entries with a data
//!   descriptor (flag bit 3) are fine for deflate (the stream ends itself), not for stored data (the
//!   end cannot be found without the central directory: the entry is opaque and the walk stops).
//!   Encrypted entries (flag bit 0, or AES method 99) and other methods are opaque. The walk stops at
//!   the central directory. Zip64 sizes are read from the local header's extra field.
//!
//! Each gzip stream and each zip entry is scanned by a nested scanner (format detection again, up to
//! `Limits::max_depth` containers deep). Bomb limits are checked on every output block: the total
//! bytes expanded by all containers of the file against `Limits::max_expanded`, and each stream's
//! (gzip file, zip entry) expansion ratio against `Limits::max_ratio` once it has produced more than
//! [`RATIO_GRACE`] bytes (the first blocks of a stream can legitimately expand far more than the
//! stream as a whole). Past a limit the container stops expanding and its status is
//! `Partial("decompression limit reached: ...")`.

use flate2::{Crc, Decompress, FlushDecompress, Status};

use crate::model::{Format, Person, ScanStatus};
use crate::scanner::{Ctx, Inner};

/// Output a stream may produce before its expansion ratio is enforced.
pub const RATIO_GRACE: u64 = 1 << 20;

const OUT_BUF: usize = 32 * 1024;

/// What a container found.
pub(crate) struct Summary {
    pub format: Format,
    pub inner_formats: Vec<Format>,
    pub status: ScanStatus,
    pub records: u64,
}

pub(crate) enum Container {
    Gzip(GzipStream),
    Zip(ZipStream),
}

impl Container {
    pub(crate) fn gzip(child_depth: u32) -> Self {
        Container::Gzip(GzipStream::new(child_depth))
    }
    pub(crate) fn zip(child_depth: u32) -> Self {
        Container::Zip(ZipStream::new(child_depth))
    }
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        match self {
            Container::Gzip(g) => g.feed(data, out, ctx),
            Container::Zip(z) => z.feed(data, out, ctx),
        }
    }
    pub(crate) fn finish(self, out: &mut dyn FnMut(Person), ctx: &mut Ctx) -> Summary {
        match self {
            Container::Gzip(g) => g.finish(out, ctx),
            Container::Zip(z) => z.finish(out, ctx),
        }
    }
}

/// Accumulates statuses: the worst level wins, reasons are kept (a few, worst first).
#[derive(Default)]
pub(crate) struct StatusAcc {
    reasons: Vec<(u8, String)>,
    more: usize,
}

impl StatusAcc {
    const KEEP: usize = 4;

    pub(crate) fn add(&mut self, s: &ScanStatus, prefix: &str) {
        let level = match s {
            ScanStatus::Complete => return,
            ScanStatus::Partial(_) => 1,
            ScanStatus::Opaque(_) => 2,
        };
        let reason = format!("{prefix}{}", s.reason().unwrap_or_default());
        if self
            .reasons
            .iter()
            .any(|(l, r)| *l == level && *r == reason)
        {
            return;
        }
        if self.reasons.len() < Self::KEEP {
            self.reasons.push((level, reason));
        } else if let Some(pos) = self.reasons.iter().position(|(l, _)| *l < level) {
            // Keep the worst reasons: replace a milder one.
            if let Some(slot) = self.reasons.get_mut(pos) {
                *slot = (level, reason);
            }
            self.more += 1;
        } else {
            self.more += 1;
        }
    }
    pub(crate) fn partial(&mut self, reason: &str) {
        self.add(&ScanStatus::Partial(reason.to_owned()), "");
    }
    pub(crate) fn status(mut self) -> ScanStatus {
        let Some(level) = self.reasons.iter().map(|(l, _)| *l).max() else {
            return ScanStatus::Complete;
        };
        self.reasons.sort_by_key(|(l, _)| std::cmp::Reverse(*l));
        let mut reason = self
            .reasons
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join("; ");
        if self.more > 0 {
            reason.push_str(&format!("; and {} more", self.more));
        }
        if level == 2 {
            ScanStatus::Opaque(reason)
        } else {
            ScanStatus::Partial(reason)
        }
    }
}

/// Checks the bomb limits after a stream has consumed `stream_in` compressed bytes and produced
/// `stream_out` (the global total is in `ctx.expanded`).
fn over_limit(stream_in: u64, stream_out: u64, ctx: &Ctx) -> Option<String> {
    let l = &ctx.limits;
    if ctx.expanded > l.max_expanded {
        return Some(format!(
            "decompression limit reached: more than {} bytes expanded; rest not scanned",
            l.max_expanded
        ));
    }
    if stream_out > RATIO_GRACE && stream_out > l.max_ratio.saturating_mul(stream_in.max(1)) {
        return Some(format!(
            "decompression limit reached: expansion ratio over {}:1; rest not scanned",
            l.max_ratio
        ));
    }
    None
}

/// Result of one inflate step over some input.
enum Inflated {
    /// Input used up (or more needed); keep going with the next chunk.
    NeedInput,
    StreamEnd,
    Corrupt,
    Limit(String),
}

/// Runs `inflate` over `input`, passing output to `inner` and checking limits on each block. Returns
/// how much input was consumed and why it stopped. `stream_in`/`stream_out` are the stream's running
/// totals for the ratio check (updated here).
#[allow(clippy::too_many_arguments)]
fn inflate_into(
    inflate: &mut Decompress,
    buf: &mut [u8],
    input: &[u8],
    inner: &mut Inner,
    crc: Option<&mut Crc>,
    stream_in: &mut u64,
    stream_out: &mut u64,
    out: &mut dyn FnMut(Person),
    ctx: &mut Ctx,
) -> (usize, Inflated) {
    let mut used_total = 0usize;
    let mut crc = crc;
    loop {
        let rest = input.get(used_total..).unwrap_or_default();
        let (in0, out0) = (inflate.total_in(), inflate.total_out());
        let res = inflate.decompress(rest, buf, FlushDecompress::None);
        let used = usize::try_from(inflate.total_in().saturating_sub(in0))
            .unwrap_or(0)
            .min(rest.len());
        let produced = usize::try_from(inflate.total_out().saturating_sub(out0))
            .unwrap_or(0)
            .min(buf.len());
        used_total += used;
        *stream_in = stream_in.saturating_add(used as u64);
        if produced > 0 {
            let block = buf.get(..produced).unwrap_or_default();
            *stream_out = stream_out.saturating_add(produced as u64);
            ctx.expanded = ctx.expanded.saturating_add(produced as u64);
            if let Some(reason) = over_limit(*stream_in, *stream_out, ctx) {
                return (used_total, Inflated::Limit(reason));
            }
            if let Some(c) = crc.as_deref_mut() {
                c.update(block);
            }
            inner.feed(block, out, ctx);
        }
        match res {
            Err(_) => return (used_total, Inflated::Corrupt),
            Ok(Status::StreamEnd) => return (used_total, Inflated::StreamEnd),
            Ok(_) => {
                if produced == buf.len() {
                    continue; // more output may be pending
                }
                if used_total >= input.len() {
                    return (used_total, Inflated::NeedInput);
                }
                if used == 0 && produced == 0 {
                    // No progress with input available: the stream is broken.
                    return (used_total, Inflated::Corrupt);
                }
            }
        }
    }
}

/// Copies up to `N` bytes into a fixed buffer; returns how many were taken.
fn fill<const N: usize>(buf: &mut [u8; N], have: &mut usize, data: &[u8]) -> usize {
    let need = N.saturating_sub(*have).min(data.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(*have..*have + need), data.get(..need)) {
        dst.copy_from_slice(src);
    }
    *have += need;
    need
}

fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b2, c, d]) => u32::from_le_bytes([a, b2, c, d]),
        _ => 0,
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    match b.get(at..at + 8) {
        Some(s) => {
            v.copy_from_slice(s);
            u64::from_le_bytes(v)
        }
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------------- gzip

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

enum GzPhase {
    Header {
        buf: [u8; 10],
        have: usize,
    },
    ExtraLen {
        flags: u8,
        buf: [u8; 2],
        have: usize,
    },
    SkipBytes {
        flags: u8,
        remaining: usize,
    },
    /// Skipping a zero-terminated FNAME or FCOMMENT field.
    SkipZ {
        flags: u8,
    },
    Body,
    Trailer {
        buf: [u8; 8],
        have: usize,
    },
    /// After a member: zero padding, another member, or the end.
    Between,
    Stopped,
}

pub(crate) struct GzipStream {
    phase: GzPhase,
    inflate: Decompress,
    crc: Crc,
    buf: Vec<u8>,
    inner: Inner,
    stream_in: u64,
    stream_out: u64,
    members: u32,
    acc: StatusAcc,
}

impl GzipStream {
    fn new(child_depth: u32) -> Self {
        GzipStream {
            phase: GzPhase::Header {
                buf: [0; 10],
                have: 0,
            },
            inflate: Decompress::new(false),
            crc: Crc::new(),
            buf: vec![0; OUT_BUF],
            inner: Inner::new(child_depth),
            stream_in: 0,
            stream_out: 0,
            members: 0,
            acc: StatusAcc::default(),
        }
    }

    /// The header phase after the optional fields still flagged in `flags`.
    fn next_header_phase(&mut self, flags: u8) -> GzPhase {
        if flags & FEXTRA != 0 {
            GzPhase::ExtraLen {
                flags: flags & !FEXTRA,
                buf: [0; 2],
                have: 0,
            }
        } else if flags & (FNAME | FCOMMENT) != 0 {
            GzPhase::SkipZ { flags }
        } else if flags & FHCRC != 0 {
            GzPhase::SkipBytes {
                flags: flags & !FHCRC,
                remaining: 2,
            }
        } else {
            self.inflate.reset(false);
            self.crc.reset();
            GzPhase::Body
        }
    }

    fn stop(&mut self, status: ScanStatus) {
        self.acc.add(&status, "");
        self.phase = GzPhase::Stopped;
    }

    fn feed(&mut self, mut data: &[u8], out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        while !data.is_empty() {
            let used: usize;
            match &mut self.phase {
                GzPhase::Stopped => return,
                GzPhase::Header { buf, have } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        let ok = buf.starts_with(&[0x1F, 0x8B, 0x08])
                            && buf.get(3).is_some_and(|f| f & 0xE0 == 0);
                        let flags = buf.get(3).copied().unwrap_or(0);
                        if ok {
                            self.phase = self.next_header_phase(flags);
                        } else if self.members == 0 {
                            self.stop(ScanStatus::Opaque(
                                "gzip: unsupported compression method or corrupt header".into(),
                            ));
                        } else {
                            self.stop(ScanStatus::Partial(
                                "gzip: corrupt member header; rest not scanned".into(),
                            ));
                        }
                    }
                }
                GzPhase::ExtraLen { flags, buf, have } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        let n = usize::from(u16::from_le_bytes(*buf));
                        self.phase = GzPhase::SkipBytes {
                            flags: *flags,
                            remaining: n,
                        };
                    }
                }
                GzPhase::SkipBytes { flags, remaining } => {
                    used = (*remaining).min(data.len());
                    *remaining -= used;
                    if *remaining == 0 {
                        let f = *flags;
                        self.phase = self.next_header_phase(f);
                    }
                }
                GzPhase::SkipZ { flags } => {
                    match data.iter().position(|c| *c == 0) {
                        Some(i) => {
                            used = i + 1;
                            // FNAME comes before FCOMMENT.
                            let f = if *flags & FNAME != 0 {
                                *flags & !FNAME
                            } else {
                                *flags & !FCOMMENT
                            };
                            self.phase = self.next_header_phase(f);
                        }
                        None => used = data.len(),
                    }
                }
                GzPhase::Body => {
                    let (n, how) = inflate_into(
                        &mut self.inflate,
                        &mut self.buf,
                        data,
                        &mut self.inner,
                        Some(&mut self.crc),
                        &mut self.stream_in,
                        &mut self.stream_out,
                        out,
                        ctx,
                    );
                    // inflate_into counted the body bytes; headers and trailers are counted below.
                    self.stream_in = self.stream_in.saturating_sub(n as u64);
                    used = n;
                    match how {
                        Inflated::NeedInput => {}
                        Inflated::StreamEnd => {
                            self.phase = GzPhase::Trailer {
                                buf: [0; 8],
                                have: 0,
                            }
                        }
                        Inflated::Corrupt => self.stop(ScanStatus::Partial(
                            "gzip: corrupt compressed data; rest not scanned".into(),
                        )),
                        Inflated::Limit(reason) => self.stop(ScanStatus::Partial(reason)),
                    }
                }
                GzPhase::Trailer { buf, have } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        let crc = le32(buf, 0);
                        let size = le32(buf, 4);
                        if crc != self.crc.sum() || size != self.crc.amount() {
                            self.acc.partial("gzip: checksum mismatch (corrupt data)");
                        }
                        self.members += 1;
                        self.phase = GzPhase::Between;
                    }
                }
                GzPhase::Between => {
                    let zeros = data.iter().take_while(|c| **c == 0).count();
                    used = zeros;
                    if zeros < data.len() {
                        if data.get(zeros) == Some(&0x1F) {
                            self.phase = GzPhase::Header {
                                buf: [0; 10],
                                have: 0,
                            };
                        } else {
                            self.stop(ScanStatus::Partial(
                                "gzip: unexpected data after the compressed stream; not scanned"
                                    .into(),
                            ));
                        }
                    }
                }
            }
            self.stream_in = self.stream_in.saturating_add(used as u64);
            data = data.get(used..).unwrap_or_default();
        }
    }

    fn finish(mut self, out: &mut dyn FnMut(Person), ctx: &mut Ctx) -> Summary {
        match &self.phase {
            GzPhase::Between | GzPhase::Stopped => {}
            GzPhase::Header { have: 0, .. } if self.members > 0 => {}
            _ => self
                .acc
                .partial("gzip: truncated (file ends inside the compressed stream)"),
        }
        let mut inner_formats = Vec::new();
        let mut records = 0;
        if self.stream_out > 0 || self.members > 0 {
            let r = self.inner.finish(out, ctx);
            inner_formats.push(r.format);
            inner_formats.extend(r.inner_formats);
            records = r.records;
            self.acc.add(&r.status, "");
        }
        Summary {
            format: Format::Gzip,
            inner_formats,
            status: self.acc.status(),
            records,
        }
    }
}

// ----------------------------------------------------------------------------------------------- zip

/// The fixed part of a local file header after its signature.
const LOCAL_HEADER: usize = 26;

#[derive(Clone, Copy)]
struct LocalHeader {
    flags: u16,
    method: u16,
    csize: u64,
    usize: u64,
    zip64: bool,
}

enum ZipPhase {
    Sig {
        buf: [u8; 4],
        have: usize,
    },
    Header {
        buf: [u8; LOCAL_HEADER],
        have: usize,
    },
    Names {
        hdr: LocalHeader,
        name_left: usize,
        name_last: u8,
        extra: Vec<u8>,
        extra_left: usize,
    },
    Stored {
        remaining: u64,
    },
    Deflate {
        remaining: Option<u64>,
        descriptor: bool,
        zip64: bool,
    },
    SkipData {
        remaining: u64,
    },
    Descriptor {
        buf: [u8; 4],
        have: usize,
        zip64: bool,
    },
    /// Central directory reached: the rest is metadata.
    Done,
    Stopped,
}

/// The entry being read.
struct Entry {
    index: u32,
    inner: Inner,
    stream_in: u64,
    stream_out: u64,
    issue: Option<ScanStatus>,
}

pub(crate) struct ZipStream {
    child_depth: u32,
    phase: ZipPhase,
    inflate: Decompress,
    buf: Vec<u8>,
    entry: Option<Entry>,
    entries: u32,
    acc: StatusAcc,
    inner_formats: Vec<Format>,
    records: u64,
}

impl ZipStream {
    fn new(child_depth: u32) -> Self {
        ZipStream {
            child_depth,
            phase: ZipPhase::Sig {
                buf: [0; 4],
                have: 0,
            },
            inflate: Decompress::new(false),
            buf: vec![0; OUT_BUF],
            entry: None,
            entries: 0,
            acc: StatusAcc::default(),
            inner_formats: Vec::new(),
            records: 0,
        }
    }

    fn stop(&mut self, reason: String, out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        self.end_entry(out, ctx);
        self.acc.partial(&reason);
        self.phase = ZipPhase::Stopped;
    }

    /// An entry that cannot be looked into.
    fn opaque_entry(&mut self, index: u32, reason: &str) {
        self.inner_formats.push(Format::Binary);
        self.acc.add(
            &ScanStatus::Opaque(reason.to_owned()),
            &format!("zip entry {index}: "),
        );
    }

    fn end_entry(&mut self, out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        let Some(e) = self.entry.take() else { return };
        let prefix = format!("zip entry {}: ", e.index);
        let r = e.inner.finish(out, ctx);
        self.records = self.records.saturating_add(r.records);
        self.inner_formats.push(r.format);
        self.inner_formats.extend(r.inner_formats);
        if let Some(issue) = &e.issue {
            self.acc.add(issue, &prefix);
        }
        self.acc.add(&r.status, &prefix);
    }

    /// After a local header (name and extra field read): decides how to read the entry's data.
    fn begin_entry(&mut self, mut hdr: LocalHeader, name_last: u8, extra: &[u8]) -> ZipPhase {
        self.entries += 1;
        let index = self.entries;
        // Zip64: real sizes in the extra field (id 1: uncompressed then compressed size, each present
        // only if the header field is 0xFFFFFFFF).
        let mut at = 0usize;
        while at + 4 <= extra.len() {
            let (id, len) = (le16(extra, at), usize::from(le16(extra, at + 2)));
            if id == 1 {
                hdr.zip64 = true;
                let mut p = at + 4;
                if hdr.usize == 0xFFFF_FFFF && p + 8 <= at + 4 + len {
                    hdr.usize = le64(extra, p);
                    p += 8;
                }
                if hdr.csize == 0xFFFF_FFFF && p + 8 <= at + 4 + len {
                    hdr.csize = le64(extra, p);
                }
            }
            at += 4 + len;
        }
        let descriptor = hdr.flags & 0x0008 != 0;
        let after_skip = |remaining: u64| ZipPhase::SkipData { remaining };
        let cannot_continue =
            "zip: the end of an entry with a data descriptor cannot be found; rest not scanned";
        // Directories.
        if name_last == b'/' && hdr.csize == 0 && !descriptor {
            self.entries -= 1;
            return ZipPhase::Sig {
                buf: [0; 4],
                have: 0,
            };
        }
        if hdr.flags & 0x0001 != 0 || hdr.method == 99 {
            self.opaque_entry(index, "encrypted zip entry");
            if descriptor {
                self.acc.partial(cannot_continue);
                return ZipPhase::Stopped;
            }
            return after_skip(hdr.csize);
        }
        match hdr.method {
            0 if descriptor => {
                self.opaque_entry(
                    index,
                    "stored entry with a data descriptor cannot be read while streaming",
                );
                self.acc.partial(cannot_continue);
                ZipPhase::Stopped
            }
            0 => {
                self.entry = Some(self.new_entry(index));
                ZipPhase::Stored {
                    remaining: hdr.csize,
                }
            }
            8 => {
                self.entry = Some(self.new_entry(index));
                self.inflate.reset(false);
                ZipPhase::Deflate {
                    remaining: (!descriptor).then_some(hdr.csize),
                    descriptor,
                    zip64: hdr.zip64,
                }
            }
            m => {
                let reason = format!("zip entry uses an unsupported compression method ({m})");
                self.opaque_entry(index, &reason);
                if descriptor {
                    self.acc.partial(cannot_continue);
                    return ZipPhase::Stopped;
                }
                after_skip(hdr.csize)
            }
        }
    }

    /// What to do after an inflate step of the current entry's data.
    fn after_inflate(
        &mut self,
        how: Inflated,
        left: Option<u64>,
        descriptor: bool,
        zip64: bool,
        out: &mut dyn FnMut(Person),
        ctx: &mut Ctx,
    ) {
        let sig = ZipPhase::Sig {
            buf: [0; 4],
            have: 0,
        };
        match how {
            Inflated::StreamEnd => {
                self.end_entry(out, ctx);
                self.phase = match left {
                    Some(r) if r > 0 => ZipPhase::SkipData { remaining: r },
                    _ if descriptor => ZipPhase::Descriptor {
                        buf: [0; 4],
                        have: 0,
                        zip64,
                    },
                    _ => sig,
                };
            }
            Inflated::NeedInput => {
                if left == Some(0) {
                    self.entry_issue("truncated compressed data");
                    self.end_entry(out, ctx);
                    self.phase = sig;
                }
            }
            Inflated::Corrupt => {
                self.entry_issue("corrupt compressed data");
                match left {
                    Some(r) => {
                        self.end_entry(out, ctx);
                        self.phase = if r > 0 {
                            ZipPhase::SkipData { remaining: r }
                        } else {
                            sig
                        };
                    }
                    None => {
                        let reason = format!(
                            "zip: cannot find the end of corrupt entry {}; rest not scanned",
                            self.entries
                        );
                        self.stop(reason, out, ctx);
                    }
                }
            }
            Inflated::Limit(reason) => self.stop(reason, out, ctx),
        }
    }

    fn entry_issue(&mut self, reason: &str) {
        if let Some(e) = &mut self.entry {
            e.issue = Some(ScanStatus::Partial(reason.to_owned()));
        }
    }

    fn new_entry(&self, index: u32) -> Entry {
        Entry {
            index,
            inner: Inner::new(self.child_depth),
            stream_in: 0,
            stream_out: 0,
            issue: None,
        }
    }

    fn feed(&mut self, mut data: &[u8], out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        while !data.is_empty() {
            let used: usize;
            match &mut self.phase {
                ZipPhase::Done | ZipPhase::Stopped => return,
                ZipPhase::Sig { buf, have } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        let sig = *buf;
                        match &sig {
                            b"PK\x03\x04" => {
                                self.phase = ZipPhase::Header {
                                    buf: [0; LOCAL_HEADER],
                                    have: 0,
                                }
                            }
                            b"PK\x01\x02" | b"PK\x05\x06" | b"PK\x06\x06" | b"PK\x06\x07" => {
                                self.phase = ZipPhase::Done
                            }
                            _ => {
                                let reason = format!(
                                    "zip: unreadable structure after entry {}; rest not scanned",
                                    self.entries
                                );
                                self.stop(reason, out, ctx);
                            }
                        }
                    }
                }
                ZipPhase::Header { buf, have } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        let hdr = LocalHeader {
                            flags: le16(buf, 2),
                            method: le16(buf, 4),
                            csize: u64::from(le32(buf, 14)),
                            usize: u64::from(le32(buf, 18)),
                            zip64: false,
                        };
                        let name_left = usize::from(le16(buf, 22));
                        let extra_left = usize::from(le16(buf, 24));
                        self.phase = ZipPhase::Names {
                            hdr,
                            name_left,
                            name_last: 0,
                            extra: Vec::new(),
                            extra_left,
                        };
                        // Zero-length name and extra: decide at once (below, on the next loop turn).
                    }
                }
                ZipPhase::Names {
                    name_left,
                    name_last,
                    extra,
                    extra_left,
                    ..
                } => {
                    if *name_left > 0 {
                        used = (*name_left).min(data.len());
                        if let Some(last) = data.get(used.saturating_sub(1)) {
                            *name_last = *last;
                        }
                        *name_left -= used;
                    } else {
                        used = (*extra_left).min(data.len());
                        extra.extend_from_slice(data.get(..used).unwrap_or_default());
                        *extra_left -= used;
                    }
                }
                ZipPhase::Stored { remaining } => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    *remaining -= n as u64;
                    used = n;
                    let mut limit = None;
                    if let Some(e) = &mut self.entry {
                        e.stream_in += n as u64;
                        e.stream_out += n as u64;
                        ctx.expanded = ctx.expanded.saturating_add(n as u64);
                        limit = over_limit(e.stream_in, e.stream_out, ctx);
                        if limit.is_none() {
                            e.inner.feed(data.get(..n).unwrap_or_default(), out, ctx);
                        }
                    }
                    if let Some(reason) = limit {
                        self.stop(reason, out, ctx);
                    }
                }
                ZipPhase::Deflate {
                    remaining,
                    descriptor,
                    zip64,
                } => {
                    let avail = match remaining {
                        Some(r) => usize::try_from(*r).unwrap_or(usize::MAX).min(data.len()),
                        None => data.len(),
                    };
                    let input = data.get(..avail).unwrap_or_default();
                    let (n, how) = match &mut self.entry {
                        Some(e) => inflate_into(
                            &mut self.inflate,
                            &mut self.buf,
                            input,
                            &mut e.inner,
                            None,
                            &mut e.stream_in,
                            &mut e.stream_out,
                            out,
                            ctx,
                        ),
                        None => (0, Inflated::Corrupt),
                    };
                    used = n;
                    if let Some(r) = remaining {
                        *r = r.saturating_sub(n as u64);
                    }
                    let (left, descriptor, zip64) = (*remaining, *descriptor, *zip64);
                    self.after_inflate(how, left, descriptor, zip64, out, ctx);
                }
                ZipPhase::SkipData { remaining } => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    *remaining -= n as u64;
                    used = n;
                    if *remaining == 0 {
                        self.phase = ZipPhase::Sig {
                            buf: [0; 4],
                            have: 0,
                        };
                    }
                }
                ZipPhase::Descriptor { buf, have, zip64 } => {
                    used = fill(buf, have, data);
                    if *have == buf.len() {
                        // Optional signature, then CRC-32 and two sizes (4 or 8 bytes each).
                        let sizes: u64 = if *zip64 { 16 } else { 8 };
                        let rest = if *buf == *b"PK\x07\x08" {
                            4 + sizes
                        } else {
                            sizes
                        };
                        self.phase = ZipPhase::SkipData { remaining: rest };
                    }
                }
            }
            data = data.get(used..).unwrap_or_default();
            // A header whose name and extra field are complete (possibly empty) starts its entry.
            if let ZipPhase::Names {
                hdr,
                name_left: 0,
                name_last,
                extra,
                extra_left: 0,
            } = &mut self.phase
            {
                let (hdr, name_last, extra) = (*hdr, *name_last, std::mem::take(extra));
                self.phase = self.begin_entry(hdr, name_last, &extra);
            }
            // Entries whose data is empty end at once.
            match &self.phase {
                ZipPhase::Stored { remaining: 0 }
                | ZipPhase::Deflate {
                    remaining: Some(0), ..
                } => {
                    if let ZipPhase::Deflate { .. } = self.phase {
                        self.entry_issue("truncated compressed data");
                    }
                    self.end_entry(out, ctx);
                    self.phase = ZipPhase::Sig {
                        buf: [0; 4],
                        have: 0,
                    };
                }
                ZipPhase::SkipData { remaining: 0 } => {
                    self.phase = ZipPhase::Sig {
                        buf: [0; 4],
                        have: 0,
                    }
                }
                _ => {}
            }
        }
    }

    fn finish(mut self, out: &mut dyn FnMut(Person), ctx: &mut Ctx) -> Summary {
        match &self.phase {
            ZipPhase::Done | ZipPhase::Stopped => {}
            ZipPhase::Stored { .. } | ZipPhase::Deflate { .. } => {
                if let Some(e) = &mut self.entry {
                    e.issue = Some(ScanStatus::Partial("truncated".into()));
                }
                self.end_entry(out, ctx);
                self.acc
                    .partial("zip: truncated (file ends inside an entry)");
            }
            _ => self
                .acc
                .partial("zip: truncated (file ends before the central directory)"),
        }
        self.end_entry(out, ctx);
        Summary {
            format: Format::Zip,
            inner_formats: self.inner_formats,
            status: self.acc.status(),
            records: self.records,
        }
    }
}
