//! One SFTP session on one SSH channel. Requests are served concurrently, and a client may pipeline
//! as many as it likes: nothing is refused for being early, requests wait their turn.
//!
//! - the **reader** task parses packets and keeps draining the channel: russh's session loop blocks
//!   when a channel's queue is full, and a blocked session loop cannot process the client's window
//!   adjustments, which the writer may be waiting for (the deadlock in the design notes). So the
//!   reader never waits on the writer in the normal course: requests go into a **queue** (a run
//!   of consecutive READs on one handle, as paramiko's prefetch sends for a whole file at once, is
//!   one entry), and the **dispatcher** takes them out as in-flight permits free up. The reader
//!   waits only when a WRITE would exceed the session's write-behind budget (that drains to disk,
//!   never through the writer) or when the queue holds `MAX_QUEUED` unrelated requests, a bound on
//!   memory that no client we know of reaches;
//! - requests on an open upload handle bypass the queue and go to that upload's worker in arrival
//!   order, so a download's replies waiting for window can never hold back the writes that free
//!   the reader;
//! - each request runs on the blocking pool (vault calls do SQLite and positional file I/O), except
//!   operations on an open file, which go through that handle's own worker in arrival order: uploads
//!   need order for the encrypted writer and the running digest, and downloads must be answered in
//!   order because OpenSSH's client (as `scp`, writing in place) keeps only the contiguous prefix it
//!   received in order. A download worker still decrypts up to `READ_AHEAD` requests in parallel;
//!   only their replies are released in order;
//! - the **writer** task sends replies as they complete (out of order is fine for SFTP clients) and
//!   releases each request's permit only once its reply is handed to the channel, which bounds the
//!   memory a session can pin to `MAX_IN_FLIGHT` requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use lockbox_types::VirtualPath;
use lockbox_vault::{Entry, EntryKind, OpenMode, ReadHandle, Session, VaultError, WriteHandle};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::errors::status_of;
use crate::protocol::{
    self, encode_data_header, limits_reply_payload, longname, parse_request, server_extensions,
    Attrs, ExtendedRequest, NameEntry, Request, Response, StatusCode, Statvfs, DATA_HEADER_LEN,
    MAX_READ_LEN, MAX_REPLY_LEN, MAX_WRITE_LEN, SSH_FXF_APPEND, SSH_FXF_CREAT, SSH_FXF_EXCL,
    SSH_FXF_READ, SSH_FXF_TRUNC, SSH_FXF_WRITE,
};

/// Requests being served at once per session. OpenSSH's client keeps up to 64 in flight; twice that
/// leaves room for other clients while capping pinned memory at ~32 MiB per session.
pub const MAX_IN_FLIGHT: usize = 128;
/// Open handles per session (announced through limits@openssh.com).
pub const MAX_HANDLES: usize = 256;
/// Requests waiting for an in-flight permit, per session (entries; a run of consecutive READs is
/// one). Only when this many unrelated requests are outstanding does the reader wait.
pub const MAX_QUEUED: usize = 32_768;
/// Packet bytes of the queued requests other than READ runs (paths, attributes), per session.
const MAX_QUEUED_BYTES: usize = 4 << 20;
/// Replies to upload-handle requests not yet handed to the channel (each a few dozen bytes); they
/// take no in-flight permit, so a download stalled on the window cannot hold up an upload.
const MAX_DIRECT_REPLIES: usize = 65_536;
/// How long the reader waits for room when a client has `MAX_QUEUED` requests or
/// `MAX_DIRECT_REPLIES` replies outstanding. Only a client that stopped reading its replies gets
/// there, and while the reader waits russh's session loop cannot run its own timers, so after this
/// the session ends ("request flood") instead of holding the connection forever.
const FLOOD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long replies already queued may take to reach the client after the session ended.
const REPLY_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);
/// Writes acknowledged but not yet encrypted and stored, per session (~16 MiB with OpenSSH's
/// 255 KiB writes).
const WRITE_BEHIND: usize = 64;
/// Uploads open at once in one session; each holds a blocking thread.
const MAX_OPEN_UPLOADS: usize = 16;
/// Reads of one download decrypted concurrently; replies still leave in request order.
const READ_AHEAD: usize = 4;
/// Directory entries per READDIR reply (OpenSSH's server sends 100).
const READDIR_BATCH: usize = 100;

/// Unix mode bits presented to clients; Lockbox does not model owners or modes.
const DIR_MODE: u32 = 0o040_750;
const FILE_MODE: u32 = 0o100_640;

type Reply = (Bytes, Option<OwnedSemaphorePermit>);

enum Job {
    Read {
        id: u32,
        offset: u64,
        len: u32,
        permit: OwnedSemaphorePermit,
    },
    Write {
        id: u32,
        offset: u64,
        data: Bytes,
        permit: OwnedSemaphorePermit,
        /// The session's write-behind budget this write's payload holds until it is applied.
        slot: Option<OwnedSemaphorePermit>,
    },
    Fstat {
        id: u32,
        permit: OwnedSemaphorePermit,
    },
    Setstat {
        id: u32,
        attrs: Attrs,
        permit: OwnedSemaphorePermit,
    },
    Fsync {
        id: u32,
        permit: OwnedSemaphorePermit,
    },
    Close {
        id: u32,
        permit: OwnedSemaphorePermit,
    },
}

impl Job {
    /// The request id and permit, to answer a job that could not be routed.
    fn into_reply(self) -> (u32, OwnedSemaphorePermit) {
        match self {
            Job::Read { id, permit, .. }
            | Job::Write { id, permit, .. }
            | Job::Fstat { id, permit }
            | Job::Setstat { id, permit, .. }
            | Job::Fsync { id, permit }
            | Job::Close { id, permit } => (id, permit),
        }
    }
}

enum Handle {
    /// A download: its worker's queue, and the version's size and mtime for FSTAT.
    Read {
        jobs: mpsc::UnboundedSender<Job>,
        size: u64,
        mtime: i64,
    },
    Write(mpsc::UnboundedSender<Job>),
    Dir {
        entries: Vec<Entry>,
        pos: usize,
    },
}

/// Counters reported when the session ends.
#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    errors: AtomicUsize,
}

struct State {
    session: Arc<Session>,
    home: VirtualPath,
    handles: Mutex<HashMap<u32, Handle>>,
    next_handle: AtomicU32,
    replies: mpsc::UnboundedSender<Reply>,
    /// Bounds replies that hold no in-flight permit (upload-handle requests, VERSION, errors for
    /// malformed requests).
    direct: Arc<Semaphore>,
    stats: Stats,
    /// File workers still running; the session waits for them so interrupted uploads are saved.
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set (under the `handles` lock) when the session ends: handles opened by requests still in
    /// flight are then closed at once instead of being left in a table nobody drains.
    closing: std::sync::atomic::AtomicBool,
    /// Writes acknowledged but not yet applied, across all of this session's uploads.
    write_behind: Arc<Semaphore>,
    /// Server-wide slots for open uploads (each holds a blocking thread while open).
    upload_slots: Arc<Semaphore>,
    /// Server-wide count of open files, which shutdown waits on.
    open_files: Arc<AtomicUsize>,
}

/// What every session of one server shares: the server-wide upload slots, the count of files open
/// for transfer (a graceful shutdown waits for it to reach zero, within its grace period), and the
/// stop signal (true: end every session now; uploads still open are kept as interrupted, resumable,
/// and audited, downloads are recorded).
#[derive(Clone)]
pub struct DoorControl {
    pub upload_slots: Arc<Semaphore>,
    pub open_files: Arc<AtomicUsize>,
    /// SFTP sessions running (counted until their cleanup has recorded everything).
    pub sessions: Arc<AtomicUsize>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl DoorControl {
    /// A control for one server: `max_open_uploads` slots, never stopped unless `stop` says so.
    pub fn new(max_open_uploads: usize, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        DoorControl {
            upload_slots: Arc::new(Semaphore::new(max_open_uploads)),
            open_files: Arc::new(AtomicUsize::new(0)),
            sessions: Arc::new(AtomicUsize::new(0)),
            stop,
        }
    }

    /// SFTP sessions not yet ended.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// Files open for transfer right now, on every session of this server.
    pub fn open_files(&self) -> usize {
        self.open_files.load(Ordering::Acquire)
    }
}

/// Counts one open file for as long as its worker runs.
struct OpenFile(Arc<AtomicUsize>);

impl OpenFile {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        OpenFile(count.clone())
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once `stop` says true (or its sender is gone without saying so: never).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn encode(resp: &Response) -> Bytes {
    let mut out = Vec::new();
    match resp.encode(&mut out) {
        Ok(()) => Bytes::from(out),
        Err(e) => {
            // Only oversized replies fail to encode, and every reply we build is bounded.
            tracing::error!(error = %e, "reply could not be encoded");
            Bytes::new()
        }
    }
}

fn status(id: u32, code: StatusCode, message: impl Into<String>) -> Bytes {
    encode(&Response::Status {
        id,
        code,
        message: message.into(),
    })
}

fn ok(id: u32) -> Bytes {
    status(id, StatusCode::Ok, "Success")
}

fn error_reply(id: u32, e: &VaultError) -> Bytes {
    if matches!(e.kind(), lockbox_vault::ErrorKind::Internal) {
        tracing::error!(error = %e, "request failed");
    }
    status(id, status_of(e), e.client_message())
}

fn attrs_of(e: &Entry) -> Attrs {
    let mtime = u32::try_from(e.mtime.max(0)).unwrap_or(u32::MAX);
    Attrs {
        size: Some(e.size),
        uid_gid: Some((0, 0)),
        permissions: Some(if e.kind == EntryKind::Dir {
            DIR_MODE
        } else {
            FILE_MODE
        }),
        atime_mtime: Some((mtime, mtime)),
        extended: Vec::new(),
    }
}

fn handle_bytes(h: u32) -> Vec<u8> {
    h.to_be_bytes().to_vec()
}

fn handle_id(h: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(h).ok().map(u32::from_be_bytes)
}

/// Runs the blocking closure on the blocking pool; a panic there becomes an internal error reply.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VaultError> + Send + 'static,
) -> Result<T, VaultError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(VaultError::Config(format!("worker failed: {e}"))),
    }
}

impl State {
    fn path(&self, text: &str) -> Result<VirtualPath, VaultError> {
        Ok(VirtualPath::parse(&self.home, text)?)
    }

    fn send(&self, bytes: Bytes, permit: Option<OwnedSemaphorePermit>) {
        let _ = self.replies.send((bytes, permit));
    }

    fn insert_handle(&self, h: Handle) -> Option<u32> {
        let mut map = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_HANDLES || self.closing.load(Ordering::Acquire) {
            return None;
        }
        let id = self.next_handle.fetch_add(1, Ordering::Relaxed);
        map.insert(id, h);
        Some(id)
    }
}

/// Serves one SFTP session until the client closes the channel. `input` is the channel's read side;
/// `output` receives complete reply packets.
pub async fn serve<R, W, Fut>(
    session: Arc<Session>,
    control: DoorControl,
    mut input: R,
    mut output: W,
) where
    R: AsyncRead + Unpin + Send,
    W: FnMut(Bytes) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let _live = OpenFile::new(&control.sessions);
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Reply>();
    let mut writer = tokio::spawn(async move {
        while let Some((bytes, permit)) = reply_rx.recv().await {
            if !bytes.is_empty() && !output(bytes).await {
                break;
            }
            // Released only once the reply is with the channel: that is what bounds the memory
            // replies can pin while the client is slow to read them.
            drop(permit);
        }
    });

    let state = Arc::new(State {
        home: session.home(),
        session,
        handles: Mutex::new(HashMap::new()),
        next_handle: AtomicU32::new(1),
        replies: reply_tx,
        direct: Arc::new(Semaphore::new(MAX_DIRECT_REPLIES)),
        stats: Stats::default(),
        workers: Mutex::new(Vec::new()),
        closing: std::sync::atomic::AtomicBool::new(false),
        write_behind: Arc::new(Semaphore::new(WRITE_BEHIND)),
        upload_slots: control.upload_slots,
        open_files: control.open_files,
    });
    let mut stop = control.stop;
    let queue = Arc::new(Queue::default());
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut dispatcher = {
        let (state, queue) = (state.clone(), queue.clone());
        tokio::spawn(async move {
            while let Some(req) = queue.pop().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                dispatch(&state, req, permit);
            }
        })
    };
    let end_reason = tokio::select! {
        r = read_loop(&state, &mut input, &queue) => r,
        () = stopped(&mut stop) => "server shutting down",
    };

    let cleanup = async {
        // No more requests: those still queued are served and answered (a client that sends its
        // requests and then EOF still reads the replies), within `REPLY_DRAIN`; a client that
        // stopped reading cannot hold the session longer.
        queue.close();
        if tokio::time::timeout(REPLY_DRAIN, &mut dispatcher)
            .await
            .is_err()
        {
            dispatcher.abort();
            let _ = (&mut dispatcher).await;
        }
        // Connection over. Dropping a worker's queue ends it: a download is recorded, an upload is
        // kept as interrupted (resumable by its owner).
        let leftovers: Vec<Handle> = {
            let mut map = state.handles.lock().unwrap_or_else(|p| p.into_inner());
            state.closing.store(true, Ordering::Release);
            map.drain().map(|(_, h)| h).collect()
        };
        let interrupted = leftovers
            .iter()
            .filter(|h| matches!(h, Handle::Write(_)))
            .count();
        drop(leftovers);
        let workers: Vec<_> =
            std::mem::take(&mut *state.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in workers {
            let _ = w.await;
        }
        let detail = json!({
            "requests": state.stats.requests.load(Ordering::Relaxed),
            "errors": state.stats.errors.load(Ordering::Relaxed),
            "interrupted_uploads": interrupted,
            "end": end_reason,
        });
        let session = state.session.clone();
        let _ = tokio::task::spawn_blocking(move || session.end(detail)).await;
        drop(state);
        // Queued replies get a bounded chance to go out; a peer that stopped reading cannot hold the
        // session open.
        if tokio::time::timeout(REPLY_DRAIN, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    };
    // Keep draining the channel while cleaning up: if nobody reads it, russh's session loop stalls
    // and cannot process the window adjustments the writer is waiting for.
    let drain = async {
        let _ = tokio::io::copy(&mut input, &mut tokio::io::sink()).await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = cleanup => {}
        _ = drain => {}
    }
}

/// One entry of a session's request queue.
enum Queued {
    One {
        req: Request,
        bytes: usize,
    },
    /// READs `id + i` at `offset + i * len` for `i` in `0..count`, all on one handle: what a
    /// prefetching client sends for a whole file, kept in constant space however long it is.
    Reads {
        handle: Vec<u8>,
        id: u32,
        offset: u64,
        len: u32,
        count: u32,
    },
}

#[derive(Default)]
struct QueueInner {
    entries: std::collections::VecDeque<Queued>,
    bytes: usize,
    closed: bool,
}

/// Requests waiting for an in-flight permit, in arrival order: one producer (the reader) and one
/// consumer (the dispatcher), each woken by the other through its `Notify` (which keeps a wakeup
/// that arrives before the wait, so none is lost).
#[derive(Default)]
struct Queue {
    inner: Mutex<QueueInner>,
    /// Signalled by the reader after a push.
    ready: tokio::sync::Notify,
    /// Signalled by the dispatcher after a pop.
    space: tokio::sync::Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a request, waiting while the queue is at its bound; false when no room came within
    /// `FLOOD_WAIT`.
    async fn push(&self, req: Request, bytes: usize) -> bool {
        let mut req = Some(req);
        let mut deadline = None;
        loop {
            {
                let mut q = self.lock();
                if let Some(r) = req.take() {
                    match Self::try_push(&mut q, r, bytes) {
                        Ok(()) => {
                            drop(q);
                            self.ready.notify_one();
                            return true;
                        }
                        Err(r) => req = Some(r),
                    }
                }
            }
            let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + FLOOD_WAIT);
            if tokio::time::timeout_at(until, self.space.notified())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    fn try_push(q: &mut QueueInner, req: Request, bytes: usize) -> Result<(), Request> {
        if let Request::Read {
            id,
            handle,
            offset,
            len,
        } = &req
        {
            if let Some(Queued::Reads {
                handle: h,
                id: first,
                offset: start,
                len: l,
                count,
            }) = q.entries.back_mut()
            {
                let next_offset = u64::from(*l)
                    .checked_mul(u64::from(*count))
                    .and_then(|d| start.checked_add(d));
                if h == handle
                    && l == len
                    && *count < u32::MAX
                    && first.wrapping_add(*count) == *id
                    && next_offset == Some(*offset)
                {
                    *count += 1;
                    return Ok(());
                }
            }
            if q.entries.len() >= MAX_QUEUED {
                return Err(req);
            }
            if let Request::Read {
                id,
                handle,
                offset,
                len,
            } = req
            {
                q.entries.push_back(Queued::Reads {
                    handle,
                    id,
                    offset,
                    len,
                    count: 1,
                });
            }
            return Ok(());
        }
        // A single request larger than the byte bound is still admitted into an empty queue.
        if q.entries.len() >= MAX_QUEUED
            || (!q.entries.is_empty() && q.bytes + bytes > MAX_QUEUED_BYTES)
        {
            return Err(req);
        }
        q.bytes += bytes;
        q.entries.push_back(Queued::One { req, bytes });
        Ok(())
    }

    /// Takes the oldest request; `None` once the queue is closed and empty.
    async fn pop(&self) -> Option<Request> {
        loop {
            {
                let mut q = self.lock();
                if q.closed && q.entries.is_empty() {
                    return None;
                }
                let taken = match q.entries.front_mut() {
                    None => None,
                    Some(Queued::Reads {
                        handle,
                        id,
                        offset,
                        len,
                        count,
                    }) => {
                        let req = Request::Read {
                            id: *id,
                            handle: handle.clone(),
                            offset: *offset,
                            len: *len,
                        };
                        *id = id.wrapping_add(1);
                        *offset = offset.saturating_add(u64::from(*len));
                        *count -= 1;
                        if *count == 0 {
                            q.entries.pop_front();
                        }
                        Some(req)
                    }
                    Some(Queued::One { .. }) => match q.entries.pop_front() {
                        Some(Queued::One { req, bytes }) => {
                            q.bytes -= bytes;
                            Some(req)
                        }
                        _ => None,
                    },
                };
                if let Some(req) = taken {
                    drop(q);
                    self.space.notify_one();
                    return Some(req);
                }
            }
            self.ready.notified().await;
        }
    }

    /// No more requests will come: the dispatcher ends once the queue is empty.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.space.notify_one();
    }
}

impl State {
    /// The upload worker's queue when `handle` is an open upload.
    fn upload_queue(&self, handle: &[u8]) -> Option<mpsc::UnboundedSender<Job>> {
        let h = handle_id(handle)?;
        match self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
        {
            Some(Handle::Write(tx)) => Some(tx.clone()),
            _ => None,
        }
    }

    /// Keeps a file worker to wait for at session end; finished ones are dropped here, so a long
    /// session of many small files does not accumulate them.
    fn add_worker(&self, worker: tokio::task::JoinHandle<()>) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|w| !w.is_finished());
        workers.push(worker);
    }

    /// A reply slot for a request answered without an in-flight permit; `None` when the client
    /// left `MAX_DIRECT_REPLIES` replies unread for `FLOOD_WAIT`.
    async fn direct_slot(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(FLOOD_WAIT, self.direct.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// Why a request could not be routed straight to an upload.
enum NotRouted {
    /// Not a request on an open upload: it goes through the queue.
    Queue(Request),
    /// The client has left too many replies unread for too long.
    Flood,
}

/// Sends a request on an open upload straight to that upload's worker (see the module comment);
/// gives it back when `req` is not one.
async fn route_upload(state: &Arc<State>, req: Request) -> Result<(), NotRouted> {
    let handle = match &req {
        Request::Write { handle, .. }
        | Request::Fstat { handle, .. }
        | Request::Fsetstat { handle, .. }
        | Request::Close { handle, .. }
        | Request::Extended {
            request: ExtendedRequest::Fsync { handle },
            ..
        } => handle,
        _ => return Err(NotRouted::Queue(req)),
    };
    let Some(tx) = state.upload_queue(handle) else {
        return Err(NotRouted::Queue(req));
    };
    let Some(permit) = state.direct_slot().await else {
        return Err(NotRouted::Flood);
    };
    let job = match req {
        Request::Write {
            id, offset, data, ..
        } => {
            // Waits for earlier writes to reach the disk; that never depends on the writer.
            let slot = state.write_behind.clone().acquire_owned().await.ok();
            Job::Write {
                id,
                offset,
                data,
                permit,
                slot,
            }
        }
        Request::Fstat { id, .. } => Job::Fstat { id, permit },
        // Only the size and times are used; extended attributes (up to a packet's worth) are not
        // kept in the upload's queue.
        Request::Fsetstat { id, mut attrs, .. } => {
            attrs.extended = Vec::new();
            Job::Setstat { id, attrs, permit }
        }
        Request::Close { id, handle } => {
            if let Some(h) = handle_id(&handle) {
                state
                    .handles
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&h);
            }
            Job::Close { id, permit }
        }
        Request::Extended { id, .. } => Job::Fsync { id, permit },
        other => return Err(NotRouted::Queue(other)),
    };
    if let Err(mpsc::error::SendError(job)) = tx.send(job) {
        let (id, permit) = job.into_reply();
        state.send(
            status(id, StatusCode::Failure, "upload ended unexpectedly"),
            Some(permit),
        );
    }
    Ok(())
}

/// Reads and dispatches packets; returns why the session ended.
async fn read_loop<R: AsyncRead + Unpin>(
    state: &Arc<State>,
    input: &mut R,
    queue: &Queue,
) -> &'static str {
    let mut initialized = false;
    loop {
        let mut header = [0u8; 4];
        if input.read_exact(&mut header).await.is_err() {
            return "closed by client";
        }
        let len = match protocol::frame_len(header) {
            Ok(l) => l as usize,
            Err(e) => {
                tracing::info!(error = %e, "bad SFTP frame; ending session");
                return "bad frame length";
            }
        };
        // Filled straight from the channel; no zeroing pass over up to 256 KiB per packet.
        let mut body = BytesMut::with_capacity(len);
        while body.len() < len {
            let mut limited = (&mut *input).take((len - body.len()) as u64);
            match limited.read_buf(&mut body).await {
                Ok(0) | Err(_) => return "closed mid-packet",
                Ok(_) => {}
            }
        }
        state.stats.requests.fetch_add(1, Ordering::Relaxed);
        let req = match parse_request(body.freeze()) {
            Ok(r) => r,
            Err(e) => {
                state.stats.errors.fetch_add(1, Ordering::Relaxed);
                match e.id {
                    Some(id) if initialized => {
                        let Some(slot) = state.direct_slot().await else {
                            return "request flood";
                        };
                        state.send(status(id, e.status_code(), e.kind.to_string()), Some(slot));
                        continue;
                    }
                    _ => return "malformed packet",
                }
            }
        };
        if !initialized {
            match req {
                Request::Init { .. } => {
                    initialized = true;
                    state.send(
                        encode(&Response::Version {
                            version: protocol::SFTP_VERSION,
                            extensions: server_extensions(),
                        }),
                        None,
                    );
                    continue;
                }
                _ => return "request before INIT",
            }
        }
        if req.id().is_none() {
            return "second INIT";
        }
        match route_upload(state, req).await {
            Ok(()) => {}
            Err(NotRouted::Flood) => return "request flood",
            Err(NotRouted::Queue(req)) => {
                if !queue.push(req, len).await {
                    return "request flood";
                }
            }
        }
    }
}

/// Answers a job that no file worker took (unknown handle, or the wrong kind of handle).
fn refuse_unrouted(state: &Arc<State>, routed: Result<(), Job>, message: &str) {
    if let Err(job) = routed {
        let (id, permit) = job.into_reply();
        state.send(status(id, StatusCode::Failure, message), Some(permit));
    }
}

/// Routes one request: upload-handle operations to their ordered worker, the rest to a task.
fn dispatch(state: &Arc<State>, req: Request, permit: OwnedSemaphorePermit) {
    let handle_job = |handle: &[u8], job: Job| -> Result<(), Job> {
        let Some(h) = handle_id(handle) else {
            return Err(job);
        };
        let map = state.handles.lock().unwrap_or_else(|p| p.into_inner());
        match (map.get(&h), &job) {
            (Some(Handle::Write(tx)), _) => tx.send(job).map_err(|e| e.0),
            (Some(Handle::Read { jobs, .. }), Job::Read { .. }) => jobs.send(job).map_err(|e| e.0),
            _ => Err(job),
        }
    };
    let req = match req {
        Request::Read {
            id,
            handle,
            offset,
            len,
        } => {
            let job = Job::Read {
                id,
                offset,
                len,
                permit,
            };
            return refuse_unrouted(
                state,
                handle_job(&handle, job),
                "not a handle open for reading",
            );
        }
        Request::Write {
            id,
            handle,
            offset,
            data,
        } => {
            let job = Job::Write {
                id,
                offset,
                data,
                permit,
                slot: None,
            };
            return refuse_unrouted(
                state,
                handle_job(&handle, job),
                "not a handle open for writing",
            );
        }
        Request::Fstat { id, handle } => match handle_job(&handle, Job::Fstat { id, permit }) {
            Ok(()) => return,
            Err(Job::Fstat { permit, .. }) => {
                return spawn_request(state, Request::Fstat { id, handle }, permit);
            }
            Err(_) => return,
        },
        Request::Fsetstat { id, handle, attrs } => {
            match handle_job(&handle, Job::Setstat { id, attrs, permit }) {
                Ok(()) => return,
                Err(Job::Setstat { permit, attrs, .. }) => {
                    return spawn_request(state, Request::Fsetstat { id, handle, attrs }, permit);
                }
                Err(_) => return,
            }
        }
        Request::Extended {
            id,
            request: ExtendedRequest::Fsync { handle },
        } => {
            match handle_job(&handle, Job::Fsync { id, permit }) {
                Ok(()) => return,
                Err(Job::Fsync { permit, .. }) => {
                    // fsync on a download is meaningless but harmless.
                    state.send(ok(id), Some(permit));
                    return;
                }
                Err(_) => return,
            }
        }
        Request::Close { id, handle } => {
            let Some(h) = handle_id(&handle) else {
                state.send(
                    status(id, StatusCode::Failure, "invalid handle"),
                    Some(permit),
                );
                return;
            };
            let removed = state
                .handles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&h);
            match removed {
                // Close goes through the worker so it runs after every queued operation.
                Some(Handle::Write(tx)) | Some(Handle::Read { jobs: tx, .. }) => {
                    if let Err(mpsc::error::SendError(Job::Close { id, permit })) =
                        tx.send(Job::Close { id, permit })
                    {
                        state.send(
                            status(id, StatusCode::Failure, "file handle failed"),
                            Some(permit),
                        );
                    }
                }
                Some(Handle::Dir { .. }) => state.send(ok(id), Some(permit)),
                None => state.send(
                    status(id, StatusCode::Failure, "invalid handle"),
                    Some(permit),
                ),
            }
            return;
        }
        other => other,
    };
    spawn_request(state, req, permit);
}

fn spawn_request(state: &Arc<State>, req: Request, permit: OwnedSemaphorePermit) {
    let state = state.clone();
    tokio::spawn(async move {
        let id = req.id().unwrap_or(0);
        let reply = match handle_request(&state, req).await {
            Ok(bytes) => bytes,
            Err(e) => {
                state.stats.errors.fetch_add(1, Ordering::Relaxed);
                error_reply(id, &e)
            }
        };
        state.send(reply, Some(permit));
    });
}

fn unsupported(id: u32, what: &str) -> Bytes {
    status(
        id,
        StatusCode::OpUnsupported,
        format!("{what} is not supported by Lockbox"),
    )
}

async fn handle_request(state: &Arc<State>, req: Request) -> Result<Bytes, VaultError> {
    let session = state.session.clone();
    match req {
        Request::Open {
            id,
            path,
            pflags,
            attrs,
        } => open(state, id, &path, pflags, attrs).await,
        Request::Fstat { id, handle } => {
            let entry = {
                let map = state.handles.lock().unwrap_or_else(|p| p.into_inner());
                match handle_id(&handle).and_then(|h| map.get(&h)) {
                    Some(Handle::Read { size, mtime, .. }) => Entry {
                        name: String::new(),
                        kind: EntryKind::File,
                        size: *size,
                        mtime: *mtime,
                    },
                    Some(Handle::Dir { .. }) => Entry {
                        name: String::new(),
                        kind: EntryKind::Dir,
                        size: 0,
                        mtime: 0,
                    },
                    _ => return Ok(status(id, StatusCode::Failure, "invalid handle")),
                }
            };
            Ok(encode(&Response::Attrs {
                id,
                attrs: attrs_of(&entry),
            }))
        }
        // Attribute changes on a download handle: nothing to change.
        Request::Fsetstat { id, .. } => Ok(ok(id)),
        Request::Lstat { id, path } | Request::Stat { id, path } => {
            let p = state.path(&path)?;
            let e = blocking(move || session.stat(&p)).await?;
            Ok(encode(&Response::Attrs {
                id,
                attrs: attrs_of(&e),
            }))
        }
        Request::Setstat { id, path, attrs }
        | Request::Extended {
            id,
            request: ExtendedRequest::Lsetstat { path, attrs },
        } => {
            let p = state.path(&path)?;
            if attrs.size.is_some() {
                return Ok(status(
                    id,
                    StatusCode::OpUnsupported,
                    "changing a stored file's size is not supported; upload a new version",
                ));
            }
            match attrs.atime_mtime {
                Some((_, mtime)) => {
                    blocking(move || session.set_mtime(&p, i64::from(mtime))).await?
                }
                // Owners and modes are not modeled; check the path exists and accept.
                None => {
                    blocking(move || session.stat(&p)).await?;
                }
            }
            Ok(ok(id))
        }
        Request::Opendir { id, path } => {
            let p = state.path(&path)?;
            let entries = blocking(move || session.list_dir(&p)).await?;
            match state.insert_handle(Handle::Dir { entries, pos: 0 }) {
                Some(h) => Ok(encode(&Response::Handle {
                    id,
                    handle: handle_bytes(h),
                })),
                None => Ok(status(id, StatusCode::Failure, "too many open handles")),
            }
        }
        Request::Readdir { id, handle } => {
            let mut map = state.handles.lock().unwrap_or_else(|p| p.into_inner());
            let Some(Handle::Dir { entries, pos }) =
                handle_id(&handle).and_then(|h| map.get_mut(&h))
            else {
                return Ok(status(id, StatusCode::Failure, "invalid handle"));
            };
            let batch: Vec<NameEntry> = entries
                .iter()
                .skip(*pos)
                .take(READDIR_BATCH)
                .map(|e| {
                    let attrs = attrs_of(e);
                    NameEntry {
                        longname: longname(
                            &e.name,
                            &attrs,
                            state.session.user_name(),
                            state.session.org_name(),
                        ),
                        filename: e.name.clone(),
                        attrs,
                    }
                })
                .collect();
            if batch.is_empty() {
                return Ok(status(id, StatusCode::Eof, "End of directory"));
            }
            *pos += batch.len();
            Ok(encode(&Response::Name { id, entries: batch }))
        }
        Request::Remove { id, path } => {
            let p = state.path(&path)?;
            blocking(move || session.remove(&p)).await?;
            Ok(ok(id))
        }
        Request::Mkdir { id, path, .. } => {
            let p = state.path(&path)?;
            blocking(move || session.mkdir(&p)).await?;
            Ok(ok(id))
        }
        Request::Rmdir { id, path } => {
            let p = state.path(&path)?;
            blocking(move || session.rmdir(&p)).await?;
            Ok(ok(id))
        }
        Request::Realpath { id, path } => {
            // Lexical, clamped at the virtual root: answers "where is that", reveals nothing.
            let p = VirtualPath::normalize(&state.home, &path)?;
            let name = p.to_string();
            Ok(encode(&Response::Name {
                id,
                entries: vec![NameEntry {
                    filename: name.clone(),
                    longname: name,
                    attrs: Attrs::default(),
                }],
            }))
        }
        Request::Rename { id, old, new } => {
            let (from, to) = (state.path(&old)?, state.path(&new)?);
            // SFTP v3 rename must not overwrite (OpenSSH's server behaves the same way).
            blocking(move || session.rename(&from, &to, false)).await?;
            Ok(ok(id))
        }
        Request::Extended { id, request } => extended(state, id, request).await,
        Request::Readlink { id, .. } => Ok(unsupported(id, "reading links")),
        Request::Symlink { id, .. } => Ok(unsupported(id, "creating symbolic links")),
        Request::Init { .. }
        | Request::Read { .. }
        | Request::Write { .. }
        | Request::Close { .. } => Ok(Bytes::new()),
    }
}

async fn extended(
    state: &Arc<State>,
    id: u32,
    request: ExtendedRequest,
) -> Result<Bytes, VaultError> {
    let session = state.session.clone();
    match request {
        ExtendedRequest::PosixRename { old, new } => {
            let (from, to) = (state.path(&old)?, state.path(&new)?);
            blocking(move || session.rename(&from, &to, true)).await?;
            Ok(ok(id))
        }
        ExtendedRequest::Statvfs { .. } | ExtendedRequest::Fstatvfs { .. } => {
            let (free, total) = blocking(move || session.space()).await?;
            const BLOCK: u64 = 4096;
            let v = Statvfs {
                bsize: BLOCK,
                frsize: BLOCK,
                blocks: total / BLOCK,
                bfree: free / BLOCK,
                bavail: free / BLOCK,
                files: 0,
                ffree: 0,
                favail: 0,
                fsid: 0,
                flag: protocol::SSH_FXE_STATVFS_ST_NOSUID,
                namemax: lockbox_types::MAX_NAME_LEN as u64,
            };
            Ok(encode(&Response::ExtendedReply {
                id,
                payload: v.encode_payload(),
            }))
        }
        ExtendedRequest::Limits => Ok(encode(&Response::ExtendedReply {
            id,
            payload: limits_reply_payload(
                u64::from(MAX_REPLY_LEN),
                u64::from(MAX_READ_LEN),
                u64::from(MAX_WRITE_LEN),
                MAX_HANDLES as u64,
            ),
        })),
        ExtendedRequest::Hardlink { .. } => Ok(unsupported(id, "creating hard links")),
        ExtendedRequest::Fsync { .. } => Ok(ok(id)),
        ExtendedRequest::Lsetstat { .. } => Ok(ok(id)),
        ExtendedRequest::ExpandPath { .. } => Ok(unsupported(id, "expand-path")),
        ExtendedRequest::HomeDirectory { .. } => Ok(unsupported(id, "home-directory")),
        ExtendedRequest::CopyData { .. } => Ok(unsupported(id, "copy-data")),
        ExtendedRequest::Unknown { name } => {
            let shown: String = name.chars().take(64).collect();
            Ok(unsupported(id, &format!("extension {shown:?}")))
        }
    }
}

async fn open(
    state: &Arc<State>,
    id: u32,
    path: &str,
    pflags: u32,
    attrs: Attrs,
) -> Result<Bytes, VaultError> {
    let p = state.path(path)?;
    let session = state.session.clone();
    if pflags & SSH_FXF_WRITE == 0 {
        if pflags & SSH_FXF_READ == 0 {
            return Ok(status(
                id,
                StatusCode::Failure,
                "open needs read or write access",
            ));
        }
        let r = blocking(move || session.open_read(&p)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (size, mtime) = (r.size(), r.mtime());
        return match state.insert_handle(Handle::Read {
            jobs: tx,
            size,
            mtime,
        }) {
            Some(h) => {
                let open = OpenFile::new(&state.open_files);
                let st = state.clone();
                let worker = tokio::spawn(async move {
                    let _open = open;
                    download_worker(st, Arc::new(r), rx).await
                });
                state.add_worker(worker);
                Ok(encode(&Response::Handle {
                    id,
                    handle: handle_bytes(h),
                }))
            }
            None => {
                let _ = blocking(move || r.close()).await;
                Ok(status(id, StatusCode::Failure, "too many open handles"))
            }
        };
    }
    let mode = OpenMode {
        truncate: pflags & SSH_FXF_TRUNC != 0,
        exclusive: pflags & SSH_FXF_EXCL != 0,
        must_exist: pflags & SSH_FXF_CREAT == 0,
        resume_only: false,
    };
    let append = pflags & SSH_FXF_APPEND != 0;
    {
        let map = state.handles.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_HANDLES {
            return Ok(status(id, StatusCode::Failure, "too many open handles"));
        }
        if map
            .values()
            .filter(|h| matches!(h, Handle::Write(_)))
            .count()
            >= MAX_OPEN_UPLOADS
        {
            return Ok(status(
                id,
                StatusCode::Failure,
                "too many uploads open in this session",
            ));
        }
    }
    // Each open upload holds a blocking thread; beyond the server-wide number, an upload waits its
    // turn here (its client sees a slow OPEN) rather than being refused.
    let Ok(upload_slot) = state.upload_slots.clone().acquire_owned().await else {
        return Ok(status(id, StatusCode::Failure, "server is shutting down"));
    };
    // Counted from here: opening an update copies the committed file, which a shutdown must
    // also wait for.
    let open_file = OpenFile::new(&state.open_files);
    let mut w = blocking(move || session.open_write(&p, mode)).await?;
    if let Some((_, mtime)) = attrs.atime_mtime {
        w.set_mtime(i64::from(mtime));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    match state.insert_handle(Handle::Write(tx)) {
        Some(h) => {
            let worker = tokio::spawn(upload_worker(
                UploadJob {
                    state: state.clone(),
                    append,
                    _upload_slot: upload_slot,
                    _open: open_file,
                },
                w,
                rx,
            ));
            state.add_worker(worker);
            Ok(encode(&Response::Handle {
                id,
                handle: handle_bytes(h),
            }))
        }
        None => {
            let _ = blocking(move || w.interrupt()).await;
            Ok(status(id, StatusCode::Failure, "too many open handles"))
        }
    }
}

/// Commands from an upload's async worker to the blocking thread that owns the `WriteHandle`.
enum UploadCmd {
    Write {
        offset: u64,
        data: Bytes,
        _slot: Option<OwnedSemaphorePermit>,
    },
    Len(oneshot::Sender<u64>),
    SetMtime(i64),
    Truncate(u64, oneshot::Sender<Result<(), VaultError>>),
    Sync(oneshot::Sender<Result<(), VaultError>>),
    Commit(oneshot::Sender<Result<(), VaultError>>),
}

/// The first failed write of an upload; later writes and the close report it.
type UploadFailure = Arc<Mutex<Option<String>>>;

/// Runs on a blocking thread and applies an upload's commands in order. Returns when committed, or
/// when the command channel closes without a commit (connection lost): then the upload is kept as
/// interrupted and resumable.
fn upload_thread(
    mut w: WriteHandle,
    cmds: std::sync::mpsc::Receiver<UploadCmd>,
    append: bool,
    failure: UploadFailure,
) {
    let failed =
        |failure: &UploadFailure| failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for cmd in cmds.iter() {
        match cmd {
            UploadCmd::Write {
                offset,
                data,
                _slot,
            } => {
                if failed(&failure).is_some() {
                    continue;
                }
                let at = if append { w.len() } else { offset };
                if let Err(e) = w.write_at(at, data) {
                    if matches!(e.kind(), lockbox_vault::ErrorKind::Internal) {
                        tracing::error!(error = %e, "upload write failed");
                    }
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.client_message());
                }
            }
            UploadCmd::Len(tx) => {
                let _ = tx.send(w.len());
            }
            UploadCmd::SetMtime(t) => w.set_mtime(t),
            UploadCmd::Truncate(len, tx) => {
                let _ = tx.send(w.truncate(len));
            }
            UploadCmd::Sync(tx) => {
                let _ = tx.send(w.sync());
            }
            UploadCmd::Commit(tx) => {
                let res = match failed(&failure) {
                    None => w.commit().map(|_| ()),
                    // A write failed: the content is incomplete, so it must not become visible.
                    Some(msg) => {
                        let _ = w.interrupt();
                        Err(VaultError::InvalidInput(format!(
                            "upload not completed: an earlier write failed: {msg}"
                        )))
                    }
                };
                let _ = tx.send(res);
                return;
            }
        }
    }
    if let Err(e) = w.interrupt() {
        tracing::error!(error = %e, "could not save an interrupted upload");
    }
}

/// What an upload's worker needs besides the handle and its queue.
struct UploadJob {
    state: Arc<State>,
    append: bool,
    /// The server-wide upload slot, held while the upload is open.
    _upload_slot: OwnedSemaphorePermit,
    _open: OpenFile,
}

/// Owns one upload's request queue. Writes are acknowledged as soon as they are queued for the
/// upload thread; the reader took a write-behind slot for each (`WRITE_BEHIND` unapplied writes per
/// session, then the reader waits for the disk), so the client's pipeline never stalls on
/// encryption and disk latency and memory stays bounded. A write that cannot succeed (beyond the
/// size limit, or leaving too large a hole) is answered with its error before anything is queued,
/// and fails the upload. Nothing becomes visible before CLOSE, which waits for every queued write
/// and reports any failure.
async fn upload_worker(
    job: UploadJob,
    handle: WriteHandle,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let UploadJob {
        state,
        append,
        _upload_slot,
        _open,
    } = job;
    // The upload's length once every acknowledged write is applied (they apply in this order).
    let mut end = handle.len();
    // Where a continued interrupted upload starts; 0 for a fresh one or an update's copy (whose
    // writes may go anywhere in the file).
    let resumed_at = if handle.is_resumed() { end } else { 0 };
    let mut written = false;
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<UploadCmd>();
    let failure: UploadFailure = Arc::new(Mutex::new(None));
    let thread_failure = failure.clone();
    let thread =
        tokio::task::spawn_blocking(move || upload_thread(handle, cmd_rx, append, thread_failure));
    let failed = || failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let fail = |msg: String| {
        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(msg);
        }
    };
    let thread_gone = |id: u32| status(id, StatusCode::Failure, "upload ended unexpectedly");

    while let Some(job) = jobs.recv().await {
        match job {
            Job::Write {
                id,
                offset,
                data,
                permit,
                slot,
            } => {
                if let Some(msg) = failed() {
                    state.send(status(id, StatusCode::Failure, msg), Some(permit));
                    continue;
                }
                let at = if append { end } else { offset };
                let len = data.len() as u64;
                // Resuming clients (OpenSSH `reput`) append but still send the offset they
                // believe is the end. When their first write's offset is not ours, the client's
                // idea of what is stored differs from the upload it continues, and appending
                // anyway would splice two different prefixes into a file reported as complete:
                // refuse instead. Offset 0 is a client that ignores offsets when appending.
                let first = !written;
                written = true;
                let check = if first && append && offset != end && offset != 0 {
                    Err(VaultError::InvalidInput(format!(
                        "append at offset {offset}, but this upload holds {end} bytes; \
                         start the upload again without resuming"
                    )))
                } else if first && resumed_at > 0 && offset > resumed_at {
                    // Continuing an interrupted upload past its end: the client took its size
                    // from elsewhere (a listing of the committed file), and the hole would be
                    // committed as zeros.
                    Err(VaultError::InvalidInput(format!(
                        "write at offset {offset}, but the interrupted upload this continues holds \
                         {resumed_at} bytes; resume from {resumed_at} (what stat reports) or start again"
                    )))
                } else {
                    lockbox_vault::check_write_extent(end, at, len)
                };
                if let Err(e) = check {
                    fail(e.client_message());
                    state.send(error_reply(id, &e), Some(permit));
                    continue;
                }
                let reply = if cmd_tx
                    .send(UploadCmd::Write {
                        offset,
                        data,
                        _slot: slot,
                    })
                    .is_ok()
                {
                    end = end.max(at + len);
                    ok(id)
                } else {
                    thread_gone(id)
                };
                state.send(reply, Some(permit));
            }
            Job::Fstat { id, permit } => {
                let (tx, rx) = oneshot::channel();
                let reply = match (cmd_tx.send(UploadCmd::Len(tx)).is_ok(), rx.await) {
                    (true, Ok(size)) => {
                        let e = Entry {
                            name: String::new(),
                            kind: EntryKind::File,
                            size,
                            mtime: 0,
                        };
                        encode(&Response::Attrs {
                            id,
                            attrs: attrs_of(&e),
                        })
                    }
                    _ => thread_gone(id),
                };
                state.send(reply, Some(permit));
            }
            Job::Setstat { id, attrs, permit } => {
                if let Some((_, mtime)) = attrs.atime_mtime {
                    let _ = cmd_tx.send(UploadCmd::SetMtime(i64::from(mtime)));
                }
                let reply = match attrs.size {
                    Some(size) => {
                        let (tx, rx) = oneshot::channel();
                        match (cmd_tx.send(UploadCmd::Truncate(size, tx)).is_ok(), rx.await) {
                            (true, Ok(Ok(()))) => {
                                end = size;
                                ok(id)
                            }
                            (true, Ok(Err(e))) => error_reply(id, &e),
                            _ => thread_gone(id),
                        }
                    }
                    None => ok(id),
                };
                state.send(reply, Some(permit));
            }
            Job::Fsync { id, permit } => {
                let (tx, rx) = oneshot::channel();
                let reply = match (cmd_tx.send(UploadCmd::Sync(tx)).is_ok(), rx.await) {
                    (true, Ok(Ok(()))) => ok(id),
                    (true, Ok(Err(e))) => error_reply(id, &e),
                    _ => thread_gone(id),
                };
                state.send(reply, Some(permit));
            }
            Job::Read { id, permit, .. } => {
                state.send(
                    status(id, StatusCode::Failure, "handle is open for writing only"),
                    Some(permit),
                );
            }
            Job::Close { id, permit } => {
                let (tx, rx) = oneshot::channel();
                let reply = match (cmd_tx.send(UploadCmd::Commit(tx)).is_ok(), rx.await) {
                    (true, Ok(Ok(()))) => ok(id),
                    (true, Ok(Err(e))) => error_reply(id, &e),
                    _ => thread_gone(id),
                };
                state.send(reply, Some(permit));
                break;
            }
        }
    }
    // Without a commit, closing the command channel makes the thread keep the upload as interrupted.
    drop(cmd_tx);
    let _ = thread.await;
}

/// Decrypts one READ into a complete DATA (or EOF) reply.
fn read_reply(r: &ReadHandle, id: u32, offset: u64, len: u32) -> Result<Bytes, VaultError> {
    let len = len.min(MAX_READ_LEN) as usize;
    let mut buf = vec![0u8; DATA_HEADER_LEN + len];
    let n = r.read_at(offset, buf.get_mut(DATA_HEADER_LEN..).unwrap_or_default())?;
    if n == 0 {
        return Ok(status(id, StatusCode::Eof, "End of file"));
    }
    let mut header = Vec::with_capacity(DATA_HEADER_LEN);
    encode_data_header(&mut header, id, n as u32)
        .map_err(|e| VaultError::InvalidInput(e.to_string()))?;
    if let Some(dst) = buf.get_mut(..DATA_HEADER_LEN) {
        dst.copy_from_slice(&header);
    }
    buf.truncate(DATA_HEADER_LEN + n);
    Ok(Bytes::from(buf))
}

/// A read being decrypted: its request id (to answer even if the task fails) and the task.
type PendingRead = (
    u32,
    tokio::task::JoinHandle<(Result<Bytes, VaultError>, OwnedSemaphorePermit)>,
);

/// Owns one download: decrypts up to `READ_AHEAD` reads at once and replies strictly in request
/// order. When its queue closes (CLOSE or connection lost) it records the download in the audit log.
async fn download_worker(
    state: Arc<State>,
    handle: Arc<ReadHandle>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut pending: std::collections::VecDeque<PendingRead> = std::collections::VecDeque::new();
    // The first failed read (a damaged chunk, say) fails every later read of this handle too, in
    // reply order: answering a later read with data or EOF would let a client take a hole in
    // the file for its end ("End of file" instead of the integrity error).
    let mut failed: Option<(StatusCode, String)> = None;
    let mut finish = |id: u32,
                      done: Result<
        (Result<Bytes, VaultError>, OwnedSemaphorePermit),
        tokio::task::JoinError,
    >| {
        let (res, permit) = match done {
            Ok((res, permit)) => (res, Some(permit)),
            // The task failed and its permit went with it; the client still gets an answer.
            Err(_) => (Err(VaultError::InvalidInput("read failed".into())), None),
        };
        let reply = match (&failed, res) {
            (Some((code, msg)), _) => status(id, *code, msg.clone()),
            (None, Ok(b)) => b,
            (None, Err(e)) => {
                failed = Some((status_of(&e), e.client_message()));
                error_reply(id, &e)
            }
        };
        state.send(reply, permit);
    };
    let mut close: Option<(u32, OwnedSemaphorePermit)> = None;
    let mut queue_open = true;
    while queue_open && close.is_none() {
        tokio::select! {
            // Finished reads leave first, oldest first, so replies keep request order.
            done = async {
                match pending.front_mut() {
                    Some((_, t)) => t.await,
                    None => std::future::pending().await,
                }
            }, if !pending.is_empty() => {
                if let Some((id, _)) = pending.pop_front() {
                    finish(id, done);
                }
            }
            job = jobs.recv(), if pending.len() < READ_AHEAD => match job {
                Some(Job::Read { id, offset, len, permit }) => {
                    let h = handle.clone();
                    pending.push_back((id, tokio::task::spawn_blocking(move || (read_reply(&h, id, offset, len), permit))));
                }
                Some(Job::Close { id, permit }) => close = Some((id, permit)),
                Some(Job::Write { id, permit, .. })
                | Some(Job::Fstat { id, permit })
                | Some(Job::Setstat { id, permit, .. })
                | Some(Job::Fsync { id, permit }) => {
                    state.send(status(id, StatusCode::Failure, "handle is open for reading"), Some(permit));
                }
                None => queue_open = false,
            },
        }
    }
    // Queue closed or CLOSE received: drain in order, then record the download.
    while let Some((id, t)) = pending.pop_front() {
        finish(id, t.await);
    }
    let h = handle.clone();
    let res = blocking(move || h.close()).await;
    if let Some((id, permit)) = close {
        let reply = match res {
            Ok(()) => ok(id),
            Err(e) => error_reply(id, &e),
        };
        state.send(reply, Some(permit));
    }
}
