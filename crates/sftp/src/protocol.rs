//! SFTP version 3 wire codec (draft-ietf-secsh-filexfer-02 plus OpenSSH's PROTOCOL extensions): framing, request parsing, and reply encoding, with no I/O.
//!
//! Everything here treats the peer as hostile: every length is checked against a
//! named bound before anything is allocated, and malformed input becomes a
//! [`ProtocolError`], never a panic. Once a request id has been read, parse errors
//! carry it ([`ParseError::id`]) so the server can answer with a STATUS instead of
//! dropping the session.

use bytes::Bytes;

/// The only protocol version we speak. OpenSSH clients also speak only 3, and later
/// drafts change the ATTRS layout incompatibly, so negotiating anything else is unsafe.
pub const SFTP_VERSION: u32 = 3;

/// Largest packet body (the value of the length prefix) we accept from a client.
/// OpenSSH's SFTP_MAX_MSG_LENGTH is 256 KiB; the extra 2 KiB lets a client that fills a
/// full 256 KiB of WRITE data (some ignore limits@openssh.com) still get through, while
/// keeping per-packet buffering bounded.
pub const MAX_PACKET_LEN: u32 = 256 * 1024 + 2048;

/// Largest reply body we emit. OpenSSH's client kills the session ("Received message
/// too long") on anything above its SFTP_MAX_MSG_LENGTH of 256 KiB.
pub const MAX_REPLY_LEN: u32 = 256 * 1024;

/// Largest DATA payload we return for one READ, as announced in limits@openssh.com
/// (261120, same as OpenSSH). Leaves room for the DATA header under [`MAX_REPLY_LEN`].
/// Parsing does not reject bigger READ lengths: the server clamps them, which is legal
/// because SFTP READ may always return fewer bytes than asked.
pub const MAX_READ_LEN: u32 = 256 * 1024 - 1024;

/// Largest WRITE payload we announce in limits@openssh.com. Parsing accepts WRITEs up
/// to the packet bound, since clients that never ask for limits send 256 KiB chunks.
pub const MAX_WRITE_LEN: u32 = 256 * 1024 - 1024;

/// Largest path or file name we accept, in bytes: Linux PATH_MAX. Anything longer could
/// never be opened anyway, and bounding it caps per-request allocations.
pub const MAX_PATH_LEN: usize = 4096;

/// Largest file handle we accept. Our handles are short opaque tokens (the draft caps
/// handles at 256 bytes), so a longer one is garbage and not worth a lookup.
pub const MAX_HANDLE_LEN: usize = 256;

/// Largest extension name (SSH_FXP_EXTENDED request names, ATTRS extended types).
/// Real names are short ASCII like "posix-rename@openssh.com".
pub const MAX_EXTENSION_NAME_LEN: usize = 256;

/// Most ATTRS extended pairs we accept, so an attacker-chosen count cannot make us loop
/// or allocate per entry before running out of bytes.
pub const MAX_ATTR_EXTENDED: usize = 64;

// Packet types.
pub const SSH_FXP_INIT: u8 = 1;
pub const SSH_FXP_VERSION: u8 = 2;
pub const SSH_FXP_OPEN: u8 = 3;
pub const SSH_FXP_CLOSE: u8 = 4;
pub const SSH_FXP_READ: u8 = 5;
pub const SSH_FXP_WRITE: u8 = 6;
pub const SSH_FXP_LSTAT: u8 = 7;
pub const SSH_FXP_FSTAT: u8 = 8;
pub const SSH_FXP_SETSTAT: u8 = 9;
pub const SSH_FXP_FSETSTAT: u8 = 10;
pub const SSH_FXP_OPENDIR: u8 = 11;
pub const SSH_FXP_READDIR: u8 = 12;
pub const SSH_FXP_REMOVE: u8 = 13;
pub const SSH_FXP_MKDIR: u8 = 14;
pub const SSH_FXP_RMDIR: u8 = 15;
pub const SSH_FXP_REALPATH: u8 = 16;
pub const SSH_FXP_STAT: u8 = 17;
pub const SSH_FXP_RENAME: u8 = 18;
pub const SSH_FXP_READLINK: u8 = 19;
pub const SSH_FXP_SYMLINK: u8 = 20;
pub const SSH_FXP_STATUS: u8 = 101;
pub const SSH_FXP_HANDLE: u8 = 102;
pub const SSH_FXP_DATA: u8 = 103;
pub const SSH_FXP_NAME: u8 = 104;
pub const SSH_FXP_ATTRS: u8 = 105;
pub const SSH_FXP_EXTENDED: u8 = 200;
pub const SSH_FXP_EXTENDED_REPLY: u8 = 201;

// ATTRS flags (v3).
pub const SSH_FILEXFER_ATTR_SIZE: u32 = 0x0000_0001;
pub const SSH_FILEXFER_ATTR_UIDGID: u32 = 0x0000_0002;
pub const SSH_FILEXFER_ATTR_PERMISSIONS: u32 = 0x0000_0004;
pub const SSH_FILEXFER_ATTR_ACMODTIME: u32 = 0x0000_0008;
pub const SSH_FILEXFER_ATTR_EXTENDED: u32 = 0x8000_0000;
const KNOWN_ATTR_FLAGS: u32 = SSH_FILEXFER_ATTR_SIZE
    | SSH_FILEXFER_ATTR_UIDGID
    | SSH_FILEXFER_ATTR_PERMISSIONS
    | SSH_FILEXFER_ATTR_ACMODTIME
    | SSH_FILEXFER_ATTR_EXTENDED;

// OPEN pflags.
pub const SSH_FXF_READ: u32 = 0x0000_0001;
pub const SSH_FXF_WRITE: u32 = 0x0000_0002;
pub const SSH_FXF_APPEND: u32 = 0x0000_0004;
pub const SSH_FXF_CREAT: u32 = 0x0000_0008;
pub const SSH_FXF_TRUNC: u32 = 0x0000_0010;
pub const SSH_FXF_EXCL: u32 = 0x0000_0020;

// statvfs@openssh.com f_flag bits (OpenSSH PROTOCOL 4.4).
pub const SSH_FXE_STATVFS_ST_RDONLY: u64 = 0x1;
pub const SSH_FXE_STATVFS_ST_NOSUID: u64 = 0x2;

// File type bits of `Attrs::permissions` (OpenSSH sends the full st_mode).
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFSOCK: u32 = 0o140_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFBLK: u32 = 0o060_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFCHR: u32 = 0o020_000;
pub const S_IFIFO: u32 = 0o010_000;

/// Everything that can be wrong with bytes from the peer (or with a reply too big to send).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("packet truncated")]
    Truncated,
    #[error("{what} too long: {len} bytes, max {max}")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{what} is not valid UTF-8")]
    BadUtf8 { what: &'static str },
    /// OpenSSH's server passes paths to C APIs, where an embedded NUL silently
    /// shortens the name; refusing it avoids acting on a different path than was checked.
    #[error("{what} contains a NUL byte")]
    NulByte { what: &'static str },
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// Unknown ATTRS bits may announce fields we cannot skip, so the rest of the
    /// packet would be misparsed.
    #[error("unsupported attribute flags {0:#x}")]
    BadAttrFlags(u32),
}

/// A request that could not be parsed. `id` is set when the request id was read
/// before the failure, in which case the server should reply with
/// `STATUS(id, self.status_code())`; without an id the stream is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SFTP request (id {id:?})")]
pub struct ParseError {
    pub id: Option<u32>,
    #[source]
    pub kind: ProtocolError,
}

impl ParseError {
    /// The STATUS code OpenSSH's server would answer this error with.
    pub fn status_code(&self) -> StatusCode {
        match self.kind {
            ProtocolError::UnknownType(_) => StatusCode::OpUnsupported,
            _ => StatusCode::BadMessage,
        }
    }
}

/// v3 status codes. Later drafts add more, but a v3 client would not understand them.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    NoConnection = 6,
    ConnectionLost = 7,
    OpUnsupported = 8,
}

impl StatusCode {
    /// OpenSSH's wording, so clients that print the message look familiar.
    pub fn default_message(self) -> &'static str {
        match self {
            StatusCode::Ok => "Success",
            StatusCode::Eof => "End of file",
            StatusCode::NoSuchFile => "No such file",
            StatusCode::PermissionDenied => "Permission denied",
            StatusCode::Failure => "Failure",
            StatusCode::BadMessage => "Bad message",
            StatusCode::NoConnection => "No connection",
            StatusCode::ConnectionLost => "Connection lost",
            StatusCode::OpUnsupported => "Operation unsupported",
        }
    }
}

/// v3 ATTRS. `permissions` is the full st_mode (type bits included), as OpenSSH sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub uid_gid: Option<(u32, u32)>,
    pub permissions: Option<u32>,
    /// (atime, mtime) in seconds since the epoch; v3 only has 32 bits.
    pub atime_mtime: Option<(u32, u32)>,
    pub extended: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    /// Appends the wire form. The flags word is derived from which fields are set, so
    /// it can never disagree with the fields that follow.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= SSH_FILEXFER_ATTR_SIZE;
        }
        if self.uid_gid.is_some() {
            flags |= SSH_FILEXFER_ATTR_UIDGID;
        }
        if self.permissions.is_some() {
            flags |= SSH_FILEXFER_ATTR_PERMISSIONS;
        }
        if self.atime_mtime.is_some() {
            flags |= SSH_FILEXFER_ATTR_ACMODTIME;
        }
        if !self.extended.is_empty() {
            flags |= SSH_FILEXFER_ATTR_EXTENDED;
        }
        put_u32(out, flags);
        if let Some(size) = self.size {
            put_u64(out, size);
        }
        if let Some((uid, gid)) = self.uid_gid {
            put_u32(out, uid);
            put_u32(out, gid);
        }
        if let Some(perm) = self.permissions {
            put_u32(out, perm);
        }
        if let Some((atime, mtime)) = self.atime_mtime {
            put_u32(out, atime);
            put_u32(out, mtime);
        }
        if !self.extended.is_empty() {
            put_u32(out, len_u32(self.extended.len()));
            for (name, data) in &self.extended {
                put_string(out, name.as_bytes());
                put_string(out, data);
            }
        }
    }

    fn decode(r: &mut Reader) -> Result<Attrs, ProtocolError> {
        let flags = r.u32()?;
        if flags & !KNOWN_ATTR_FLAGS != 0 {
            return Err(ProtocolError::BadAttrFlags(flags));
        }
        let mut a = Attrs::default();
        if flags & SSH_FILEXFER_ATTR_SIZE != 0 {
            a.size = Some(r.u64()?);
        }
        if flags & SSH_FILEXFER_ATTR_UIDGID != 0 {
            a.uid_gid = Some((r.u32()?, r.u32()?));
        }
        if flags & SSH_FILEXFER_ATTR_PERMISSIONS != 0 {
            a.permissions = Some(r.u32()?);
        }
        if flags & SSH_FILEXFER_ATTR_ACMODTIME != 0 {
            a.atime_mtime = Some((r.u32()?, r.u32()?));
        }
        if flags & SSH_FILEXFER_ATTR_EXTENDED != 0 {
            let count = r.u32()?;
            if to_usize(count) > MAX_ATTR_EXTENDED {
                return Err(ProtocolError::TooLong {
                    what: "extended attribute count",
                    len: u64::from(count),
                    max: MAX_ATTR_EXTENDED as u64,
                });
            }
            for _ in 0..count {
                let name = r.utf8("extended attribute name", MAX_EXTENSION_NAME_LEN)?;
                let data = r.string("extended attribute data", to_usize(MAX_PACKET_LEN))?;
                a.extended.push((name, data.to_vec()));
            }
        }
        Ok(a)
    }
}

/// A parsed client request. Every variant but `Init` carries the client's request id,
/// which the reply must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Any extension pairs after the version are ignored, as OpenSSH does.
    Init {
        version: u32,
    },
    Open {
        id: u32,
        path: String,
        pflags: u32,
        attrs: Attrs,
    },
    Close {
        id: u32,
        handle: Vec<u8>,
    },
    /// `len` is what the client asked for; the server must clamp it to [`MAX_READ_LEN`].
    Read {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    /// `data` is a slice of the packet body passed to [`parse_request`], not a copy.
    Write {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        data: Bytes,
    },
    Lstat {
        id: u32,
        path: String,
    },
    Fstat {
        id: u32,
        handle: Vec<u8>,
    },
    Setstat {
        id: u32,
        path: String,
        attrs: Attrs,
    },
    Fsetstat {
        id: u32,
        handle: Vec<u8>,
        attrs: Attrs,
    },
    Opendir {
        id: u32,
        path: String,
    },
    Readdir {
        id: u32,
        handle: Vec<u8>,
    },
    Remove {
        id: u32,
        path: String,
    },
    Mkdir {
        id: u32,
        path: String,
        attrs: Attrs,
    },
    Rmdir {
        id: u32,
        path: String,
    },
    /// v3 REALPATH is the path alone (the control byte and compose paths are v6).
    Realpath {
        id: u32,
        path: String,
    },
    Stat {
        id: u32,
        path: String,
    },
    Rename {
        id: u32,
        old: String,
        new: String,
    },
    Readlink {
        id: u32,
        path: String,
    },
    /// Fields are in wire order with OpenSSH's meaning: OpenSSH sends the link target
    /// first and the new link's path second, the reverse of the draft's
    /// (linkpath, targetpath). Every deployed client follows OpenSSH.
    Symlink {
        id: u32,
        target: String,
        link: String,
    },
    Extended {
        id: u32,
        request: ExtendedRequest,
    },
}

impl Request {
    pub fn id(&self) -> Option<u32> {
        match self {
            Request::Init { .. } => None,
            Request::Open { id, .. }
            | Request::Close { id, .. }
            | Request::Read { id, .. }
            | Request::Write { id, .. }
            | Request::Lstat { id, .. }
            | Request::Fstat { id, .. }
            | Request::Setstat { id, .. }
            | Request::Fsetstat { id, .. }
            | Request::Opendir { id, .. }
            | Request::Readdir { id, .. }
            | Request::Remove { id, .. }
            | Request::Mkdir { id, .. }
            | Request::Rmdir { id, .. }
            | Request::Realpath { id, .. }
            | Request::Stat { id, .. }
            | Request::Rename { id, .. }
            | Request::Readlink { id, .. }
            | Request::Symlink { id, .. }
            | Request::Extended { id, .. } => Some(*id),
        }
    }
}

/// SSH_FXP_EXTENDED requests we recognise (OpenSSH PROTOCOL section 4, plus the
/// draft-ietf-secsh-filexfer-extensions ones some clients send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendedRequest {
    /// "posix-rename@openssh.com": rename that replaces an existing target.
    PosixRename { old: String, new: String },
    /// "statvfs@openssh.com"
    Statvfs { path: String },
    /// "fstatvfs@openssh.com"
    Fstatvfs { handle: Vec<u8> },
    /// "hardlink@openssh.com"
    Hardlink { old: String, new: String },
    /// "fsync@openssh.com"
    Fsync { handle: Vec<u8> },
    /// "limits@openssh.com"
    Limits,
    /// "lsetstat@openssh.com": SETSTAT that does not follow symlinks.
    Lsetstat { path: String, attrs: Attrs },
    /// "expand-path@openssh.com": REALPATH that also expands `~`.
    ExpandPath { path: String },
    /// "home-directory"
    HomeDirectory { username: String },
    /// "copy-data": server-side copy between two open handles; `read_len` 0 means to EOF.
    CopyData {
        read_handle: Vec<u8>,
        read_offset: u64,
        read_len: u64,
        write_handle: Vec<u8>,
        write_offset: u64,
    },
    /// Not an error: the server should answer SSH_FX_OP_UNSUPPORTED. The name is
    /// lossily decoded since it is only used for that reply and for logging.
    Unknown { name: String },
}

pub const EXT_POSIX_RENAME: &str = "posix-rename@openssh.com";
pub const EXT_STATVFS: &str = "statvfs@openssh.com";
pub const EXT_FSTATVFS: &str = "fstatvfs@openssh.com";
pub const EXT_HARDLINK: &str = "hardlink@openssh.com";
pub const EXT_FSYNC: &str = "fsync@openssh.com";
pub const EXT_LIMITS: &str = "limits@openssh.com";
pub const EXT_LSETSTAT: &str = "lsetstat@openssh.com";
pub const EXT_EXPAND_PATH: &str = "expand-path@openssh.com";
pub const EXT_HOME_DIRECTORY: &str = "home-directory";
pub const EXT_COPY_DATA: &str = "copy-data";

/// The extensions advertised in our VERSION reply, with OpenSSH's version strings.
/// hardlink@openssh.com is deliberately absent because the server refuses links.
pub fn server_extensions() -> Vec<(String, String)> {
    [
        (EXT_POSIX_RENAME, "1"),
        (EXT_STATVFS, "2"),
        (EXT_FSTATVFS, "2"),
        (EXT_FSYNC, "1"),
        (EXT_LIMITS, "1"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

/// Validates a packet's 4-byte big-endian length prefix and returns the body length to
/// read next. Rejecting oversized lengths here, before reading, is what bounds memory.
pub fn frame_len(header: [u8; 4]) -> Result<u32, ProtocolError> {
    let len = u32::from_be_bytes(header);
    if len == 0 {
        // A body must hold at least the type byte.
        return Err(ProtocolError::Truncated);
    }
    if len > MAX_PACKET_LEN {
        return Err(ProtocolError::TooLong {
            what: "packet",
            len: u64::from(len),
            max: u64::from(MAX_PACKET_LEN),
        });
    }
    Ok(len)
}

/// Parses one packet body (type byte and payload, without the length prefix).
///
/// Taking `Bytes` lets WRITE data be returned as a slice of `body` with no copy.
/// Bytes after the last field are ignored, as OpenSSH's server does, so clients that
/// append fields we do not know still work.
pub fn parse_request(body: Bytes) -> Result<Request, ParseError> {
    let mut r = Reader { buf: body };
    let ty = r.u8().map_err(|kind| ParseError { id: None, kind })?;
    if ty == SSH_FXP_INIT {
        let version = r.u32().map_err(|kind| ParseError { id: None, kind })?;
        return Ok(Request::Init { version });
    }
    // Every other request carries an id right after the type, including types we do
    // not know, so reading it first lets even unsupported requests get a STATUS.
    let id = r.u32().map_err(|kind| ParseError { id: None, kind })?;
    parse_with_id(ty, id, &mut r).map_err(|kind| ParseError { id: Some(id), kind })
}

fn parse_with_id(ty: u8, id: u32, r: &mut Reader) -> Result<Request, ProtocolError> {
    Ok(match ty {
        SSH_FXP_OPEN => Request::Open {
            id,
            path: r.path("path")?,
            pflags: r.u32()?,
            attrs: Attrs::decode(r)?,
        },
        SSH_FXP_CLOSE => Request::Close {
            id,
            handle: r.handle()?,
        },
        SSH_FXP_READ => Request::Read {
            id,
            handle: r.handle()?,
            offset: r.u64()?,
            len: r.u32()?,
        },
        SSH_FXP_WRITE => Request::Write {
            id,
            handle: r.handle()?,
            offset: r.u64()?,
            data: r.string("write data", to_usize(MAX_PACKET_LEN))?,
        },
        SSH_FXP_LSTAT => Request::Lstat {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_FSTAT => Request::Fstat {
            id,
            handle: r.handle()?,
        },
        SSH_FXP_SETSTAT => Request::Setstat {
            id,
            path: r.path("path")?,
            attrs: Attrs::decode(r)?,
        },
        SSH_FXP_FSETSTAT => Request::Fsetstat {
            id,
            handle: r.handle()?,
            attrs: Attrs::decode(r)?,
        },
        SSH_FXP_OPENDIR => Request::Opendir {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_READDIR => Request::Readdir {
            id,
            handle: r.handle()?,
        },
        SSH_FXP_REMOVE => Request::Remove {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_MKDIR => Request::Mkdir {
            id,
            path: r.path("path")?,
            attrs: Attrs::decode(r)?,
        },
        SSH_FXP_RMDIR => Request::Rmdir {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_REALPATH => Request::Realpath {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_STAT => Request::Stat {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_RENAME => Request::Rename {
            id,
            old: r.path("old path")?,
            new: r.path("new path")?,
        },
        SSH_FXP_READLINK => Request::Readlink {
            id,
            path: r.path("path")?,
        },
        SSH_FXP_SYMLINK => Request::Symlink {
            id,
            target: r.path("symlink target")?,
            link: r.path("link path")?,
        },
        SSH_FXP_EXTENDED => Request::Extended {
            id,
            request: parse_extended(r)?,
        },
        other => return Err(ProtocolError::UnknownType(other)),
    })
}

fn parse_extended(r: &mut Reader) -> Result<ExtendedRequest, ProtocolError> {
    let name = r.string("extension name", MAX_EXTENSION_NAME_LEN)?;
    Ok(match name.as_ref() {
        b"posix-rename@openssh.com" => ExtendedRequest::PosixRename {
            old: r.path("old path")?,
            new: r.path("new path")?,
        },
        b"statvfs@openssh.com" => ExtendedRequest::Statvfs {
            path: r.path("path")?,
        },
        b"fstatvfs@openssh.com" => ExtendedRequest::Fstatvfs {
            handle: r.handle()?,
        },
        b"hardlink@openssh.com" => ExtendedRequest::Hardlink {
            old: r.path("old path")?,
            new: r.path("new path")?,
        },
        b"fsync@openssh.com" => ExtendedRequest::Fsync {
            handle: r.handle()?,
        },
        b"limits@openssh.com" => ExtendedRequest::Limits,
        b"lsetstat@openssh.com" => ExtendedRequest::Lsetstat {
            path: r.path("path")?,
            attrs: Attrs::decode(r)?,
        },
        b"expand-path@openssh.com" => ExtendedRequest::ExpandPath {
            path: r.path("path")?,
        },
        b"home-directory" => ExtendedRequest::HomeDirectory {
            username: r.path("username")?,
        },
        b"copy-data" => ExtendedRequest::CopyData {
            read_handle: r.handle()?,
            read_offset: r.u64()?,
            read_len: r.u64()?,
            write_handle: r.handle()?,
            write_offset: r.u64()?,
        },
        other => ExtendedRequest::Unknown {
            name: String::from_utf8_lossy(other).into_owned(),
        },
    })
}

/// One entry of a NAME reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub filename: String,
    /// `ls -l` style line; see [`longname`]. OpenSSH's `ls -l` prints it verbatim.
    pub longname: String,
    pub attrs: Attrs,
}

/// A server reply. [`Response::encode`] writes the complete framed packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Version {
        version: u32,
        extensions: Vec<(String, String)>,
    },
    Status {
        id: u32,
        code: StatusCode,
        message: String,
    },
    Handle {
        id: u32,
        handle: Vec<u8>,
    },
    /// For large reads prefer [`encode_data_header`], which avoids staging the data.
    Data {
        id: u32,
        data: Bytes,
    },
    Name {
        id: u32,
        entries: Vec<NameEntry>,
    },
    Attrs {
        id: u32,
        attrs: Attrs,
    },
    /// `payload` follows the id verbatim; its layout depends on the extension.
    ExtendedReply {
        id: u32,
        payload: Vec<u8>,
    },
}

impl Response {
    /// A STATUS with OpenSSH's standard message for `code`.
    pub fn status(id: u32, code: StatusCode) -> Response {
        Response::Status {
            id,
            code,
            message: code.default_message().to_owned(),
        }
    }

    /// Appends the framed packet (length prefix included) to `out`.
    ///
    /// Fails with `TooLong` if the body would exceed [`MAX_REPLY_LEN`], leaving `out`
    /// as it was; the caller can then send fewer NAME entries or less DATA.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        framed(out, |out| match self {
            Response::Version {
                version,
                extensions,
            } => {
                out.push(SSH_FXP_VERSION);
                put_u32(out, *version);
                for (name, data) in extensions {
                    put_string(out, name.as_bytes());
                    put_string(out, data.as_bytes());
                }
            }
            Response::Status { id, code, message } => {
                out.push(SSH_FXP_STATUS);
                put_u32(out, *id);
                put_u32(out, *code as u32);
                put_string(out, message.as_bytes());
                // Language tag; v3 clients ignore it but OpenSSH always sends one.
                put_string(out, b"en");
            }
            Response::Handle { id, handle } => {
                out.push(SSH_FXP_HANDLE);
                put_u32(out, *id);
                put_string(out, handle);
            }
            Response::Data { id, data } => {
                out.push(SSH_FXP_DATA);
                put_u32(out, *id);
                put_string(out, data);
            }
            Response::Name { id, entries } => {
                out.push(SSH_FXP_NAME);
                put_u32(out, *id);
                put_u32(out, len_u32(entries.len()));
                for e in entries {
                    put_string(out, e.filename.as_bytes());
                    put_string(out, e.longname.as_bytes());
                    e.attrs.encode(out);
                }
            }
            Response::Attrs { id, attrs } => {
                out.push(SSH_FXP_ATTRS);
                put_u32(out, *id);
                attrs.encode(out);
            }
            Response::ExtendedReply { id, payload } => {
                out.push(SSH_FXP_EXTENDED_REPLY);
                put_u32(out, *id);
                out.extend_from_slice(payload);
            }
        })
    }
}

/// Bytes written by [`encode_data_header`]: length, type, id and data length.
pub const DATA_HEADER_LEN: usize = 4 + 1 + 4 + 4;

/// Appends the framing of a DATA reply carrying `data_len` bytes; the caller must then
/// append exactly `data_len` bytes of file data to `out`. This lets the server read
/// from the file straight into the output buffer instead of staging the data and
/// copying it into a [`Response::Data`].
///
/// Fails with `TooLong`, writing nothing, if the packet would exceed [`MAX_REPLY_LEN`].
pub fn encode_data_header(out: &mut Vec<u8>, id: u32, data_len: u32) -> Result<(), ProtocolError> {
    let max = MAX_REPLY_LEN - (DATA_HEADER_LEN as u32 - 4);
    if data_len > max {
        return Err(ProtocolError::TooLong {
            what: "DATA reply",
            len: u64::from(data_len),
            max: u64::from(max),
        });
    }
    put_u32(out, 1 + 4 + 4 + data_len);
    out.push(SSH_FXP_DATA);
    put_u32(out, id);
    put_u32(out, data_len);
    Ok(())
}

/// limits@openssh.com reply payload (OpenSSH PROTOCOL 4.8); zero means "no limit".
/// Announce [`MAX_REPLY_LEN`] as `max_packet`, as OpenSSH does: it is the bound both
/// sides enforce, whereas [`MAX_PACKET_LEN`] is only our leniency on input.
pub fn limits_reply_payload(
    max_packet: u64,
    max_read: u64,
    max_write: u64,
    max_open_handles: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    for v in [max_packet, max_read, max_write, max_open_handles] {
        put_u64(&mut out, v);
    }
    out
}

/// statvfs@openssh.com / fstatvfs@openssh.com reply (OpenSSH PROTOCOL 4.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statvfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    /// `SSH_FXE_STATVFS_ST_*` bits.
    pub flag: u64,
    pub namemax: u64,
}

impl Statvfs {
    /// The EXTENDED_REPLY payload: the 11 fields in declaration order.
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(88);
        for v in [
            self.bsize,
            self.frsize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.files,
            self.ffree,
            self.favail,
            self.fsid,
            self.flag,
            self.namemax,
        ] {
            put_u64(&mut out, v);
        }
        out
    }
}

/// An `ls -l` line in OpenSSH's layout, e.g.
/// `-rw-r-----    1 alice    staff        1234 Nov 14 22:13 report.txt`.
///
/// The link count is always 1 (we do not track it) and the date is always
/// `Mon DD HH:MM` in UTC: `ls` switches to the year for old files, but this codec has
/// no clock to decide what "old" is.
pub fn longname(name: &str, attrs: &Attrs, owner: &str, group: &str) -> String {
    let mode = mode_string(attrs.permissions.unwrap_or(0));
    let size = attrs.size.unwrap_or(0);
    let mtime = attrs.atime_mtime.map_or(0, |(_, m)| m);
    let date = format_mtime(mtime);
    format!("{mode}    1 {owner:<8} {group:<8} {size:>8} {date} {name}")
}

fn mode_string(mode: u32) -> String {
    let kind = match mode & S_IFMT {
        S_IFDIR => 'd',
        S_IFREG => '-',
        S_IFLNK => 'l',
        S_IFCHR => 'c',
        S_IFBLK => 'b',
        S_IFIFO => 'p',
        S_IFSOCK => 's',
        _ => '?',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    // The execute column doubles as the setuid/setgid/sticky indicator, as in ls.
    let exec =
        |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

fn format_mtime(secs: u32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    let (_, month, day) = civil_from_days(days);
    let mon = MONTHS
        .get(usize::try_from(month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("???");
    format!("{mon} {day:>2} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic
/// Gregorian calendar (Howard Hinnant's algorithm), to avoid a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in small fixed ranges by construction.
    (
        year,
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

/// Cursor over peer bytes. Every read checks the remaining length first, so malformed
/// input surfaces as `Truncated`/`TooLong` rather than a panic.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated);
        }
        Ok(self.buf.split_to(n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b.as_ref()).map_err(|_| ProtocolError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Checks the declared length against `max` before looking at the data, so a huge
    /// claimed length is reported as such rather than as truncation.
    fn string(&mut self, what: &'static str, max: usize) -> Result<Bytes, ProtocolError> {
        let len = self.u32()?;
        if to_usize(len) > max {
            return Err(ProtocolError::TooLong {
                what,
                len: u64::from(len),
                max: max as u64,
            });
        }
        self.take(to_usize(len))
    }

    fn utf8(&mut self, what: &'static str, max: usize) -> Result<String, ProtocolError> {
        let raw = self.string(what, max)?;
        let s = std::str::from_utf8(&raw).map_err(|_| ProtocolError::BadUtf8 { what })?;
        if s.contains('\0') {
            return Err(ProtocolError::NulByte { what });
        }
        Ok(s.to_owned())
    }

    fn path(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        self.utf8(what, MAX_PATH_LEN)
    }

    fn handle(&mut self) -> Result<Vec<u8>, ProtocolError> {
        Ok(self.string("handle", MAX_HANDLE_LEN)?.to_vec())
    }
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Saturates instead of truncating: a saturated length can only belong to a packet far
/// beyond [`MAX_REPLY_LEN`], which [`framed`] then rejects.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_u32(out, len_u32(s.len()));
    out.extend_from_slice(s);
}

/// Writes a length placeholder, lets `body` append, then patches the length in, so
/// no encoder has to compute sizes up front.
fn framed(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), ProtocolError> {
    let start = out.len();
    put_u32(out, 0);
    body(out);
    let body_len = out.len() - start - 4;
    if body_len > to_usize(MAX_REPLY_LEN) {
        out.truncate(start);
        return Err(ProtocolError::TooLong {
            what: "reply",
            len: body_len as u64,
            max: u64::from(MAX_REPLY_LEN),
        });
    }
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len_u32(body_len).to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
