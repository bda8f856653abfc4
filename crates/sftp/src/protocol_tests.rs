#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

/// Client-side encoder for requests, so parsing can be checked by round trip.
fn encode_request(req: &Request) -> Vec<u8> {
    let mut o = Vec::new();
    let s = |o: &mut Vec<u8>, v: &str| put_string(o, v.as_bytes());
    let hdr = |o: &mut Vec<u8>, ty: u8, id: u32| {
        o.push(ty);
        put_u32(o, id);
    };
    match req {
        Request::Init { version } => {
            o.push(SSH_FXP_INIT);
            put_u32(&mut o, *version);
        }
        Request::Open {
            id,
            path,
            pflags,
            attrs,
        } => {
            hdr(&mut o, SSH_FXP_OPEN, *id);
            s(&mut o, path);
            put_u32(&mut o, *pflags);
            attrs.encode(&mut o);
        }
        Request::Close { id, handle } => {
            hdr(&mut o, SSH_FXP_CLOSE, *id);
            put_string(&mut o, handle);
        }
        Request::Read {
            id,
            handle,
            offset,
            len,
        } => {
            hdr(&mut o, SSH_FXP_READ, *id);
            put_string(&mut o, handle);
            put_u64(&mut o, *offset);
            put_u32(&mut o, *len);
        }
        Request::Write {
            id,
            handle,
            offset,
            data,
        } => {
            hdr(&mut o, SSH_FXP_WRITE, *id);
            put_string(&mut o, handle);
            put_u64(&mut o, *offset);
            put_string(&mut o, data);
        }
        Request::Lstat { id, path } => {
            hdr(&mut o, SSH_FXP_LSTAT, *id);
            s(&mut o, path);
        }
        Request::Fstat { id, handle } => {
            hdr(&mut o, SSH_FXP_FSTAT, *id);
            put_string(&mut o, handle);
        }
        Request::Setstat { id, path, attrs } => {
            hdr(&mut o, SSH_FXP_SETSTAT, *id);
            s(&mut o, path);
            attrs.encode(&mut o);
        }
        Request::Fsetstat { id, handle, attrs } => {
            hdr(&mut o, SSH_FXP_FSETSTAT, *id);
            put_string(&mut o, handle);
            attrs.encode(&mut o);
        }
        Request::Opendir { id, path } => {
            hdr(&mut o, SSH_FXP_OPENDIR, *id);
            s(&mut o, path);
        }
        Request::Readdir { id, handle } => {
            hdr(&mut o, SSH_FXP_READDIR, *id);
            put_string(&mut o, handle);
        }
        Request::Remove { id, path } => {
            hdr(&mut o, SSH_FXP_REMOVE, *id);
            s(&mut o, path);
        }
        Request::Mkdir { id, path, attrs } => {
            hdr(&mut o, SSH_FXP_MKDIR, *id);
            s(&mut o, path);
            attrs.encode(&mut o);
        }
        Request::Rmdir { id, path } => {
            hdr(&mut o, SSH_FXP_RMDIR, *id);
            s(&mut o, path);
        }
        Request::Realpath { id, path } => {
            hdr(&mut o, SSH_FXP_REALPATH, *id);
            s(&mut o, path);
        }
        Request::Stat { id, path } => {
            hdr(&mut o, SSH_FXP_STAT, *id);
            s(&mut o, path);
        }
        Request::Rename { id, old, new } => {
            hdr(&mut o, SSH_FXP_RENAME, *id);
            s(&mut o, old);
            s(&mut o, new);
        }
        Request::Readlink { id, path } => {
            hdr(&mut o, SSH_FXP_READLINK, *id);
            s(&mut o, path);
        }
        Request::Symlink { id, target, link } => {
            hdr(&mut o, SSH_FXP_SYMLINK, *id);
            s(&mut o, target);
            s(&mut o, link);
        }
        Request::Extended { id, request } => {
            hdr(&mut o, SSH_FXP_EXTENDED, *id);
            match request {
                ExtendedRequest::PosixRename { old, new } => {
                    s(&mut o, EXT_POSIX_RENAME);
                    s(&mut o, old);
                    s(&mut o, new);
                }
                ExtendedRequest::Statvfs { path } => {
                    s(&mut o, EXT_STATVFS);
                    s(&mut o, path);
                }
                ExtendedRequest::Fstatvfs { handle } => {
                    s(&mut o, EXT_FSTATVFS);
                    put_string(&mut o, handle);
                }
                ExtendedRequest::Hardlink { old, new } => {
                    s(&mut o, EXT_HARDLINK);
                    s(&mut o, old);
                    s(&mut o, new);
                }
                ExtendedRequest::Fsync { handle } => {
                    s(&mut o, EXT_FSYNC);
                    put_string(&mut o, handle);
                }
                ExtendedRequest::Limits => s(&mut o, EXT_LIMITS),
                ExtendedRequest::Lsetstat { path, attrs } => {
                    s(&mut o, EXT_LSETSTAT);
                    s(&mut o, path);
                    attrs.encode(&mut o);
                }
                ExtendedRequest::ExpandPath { path } => {
                    s(&mut o, EXT_EXPAND_PATH);
                    s(&mut o, path);
                }
                ExtendedRequest::HomeDirectory { username } => {
                    s(&mut o, EXT_HOME_DIRECTORY);
                    s(&mut o, username);
                }
                ExtendedRequest::CopyData {
                    read_handle,
                    read_offset,
                    read_len,
                    write_handle,
                    write_offset,
                } => {
                    s(&mut o, EXT_COPY_DATA);
                    put_string(&mut o, read_handle);
                    put_u64(&mut o, *read_offset);
                    put_u64(&mut o, *read_len);
                    put_string(&mut o, write_handle);
                    put_u64(&mut o, *write_offset);
                }
                ExtendedRequest::Unknown { name } => s(&mut o, name),
            }
        }
    }
    o
}

fn parse(v: &[u8]) -> Result<Request, ParseError> {
    parse_request(Bytes::copy_from_slice(v))
}

fn full_attrs() -> Attrs {
    Attrs {
        size: Some(0x1_0000_0001),
        uid_gid: Some((1000, 100)),
        permissions: Some(0o100_644),
        atime_mtime: Some((1_700_000_000, 1_700_000_001)),
        extended: vec![
            ("foo@example.com".into(), vec![1, 2, 3]),
            ("e".into(), vec![]),
        ],
    }
}

fn all_requests() -> Vec<Request> {
    let h = b"h-0001".to_vec();
    let some = Attrs {
        permissions: Some(0o755),
        ..Attrs::default()
    };
    let ext = |request| Request::Extended { id: 200, request };
    vec![
        Request::Init { version: 3 },
        Request::Open {
            id: 1,
            path: "/upload/a.txt".into(),
            pflags: SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC,
            attrs: full_attrs(),
        },
        Request::Open {
            id: 2,
            path: "ünïcødé".into(),
            pflags: SSH_FXF_READ,
            attrs: Attrs::default(),
        },
        Request::Close {
            id: 3,
            handle: h.clone(),
        },
        Request::Read {
            id: 4,
            handle: h.clone(),
            offset: u64::MAX,
            len: 32768,
        },
        Request::Write {
            id: 5,
            handle: h.clone(),
            offset: 7,
            data: Bytes::from_static(b"hello world"),
        },
        Request::Write {
            id: 5,
            handle: h.clone(),
            offset: 0,
            data: Bytes::new(),
        },
        Request::Lstat {
            id: 6,
            path: "x".into(),
        },
        Request::Fstat {
            id: 7,
            handle: h.clone(),
        },
        Request::Setstat {
            id: 8,
            path: "x".into(),
            attrs: some.clone(),
        },
        Request::Fsetstat {
            id: 9,
            handle: h.clone(),
            attrs: full_attrs(),
        },
        Request::Opendir {
            id: 10,
            path: "/".into(),
        },
        Request::Readdir {
            id: 11,
            handle: h.clone(),
        },
        Request::Remove {
            id: 12,
            path: "gone".into(),
        },
        Request::Mkdir {
            id: 13,
            path: "dir".into(),
            attrs: some.clone(),
        },
        Request::Rmdir {
            id: 14,
            path: "dir".into(),
        },
        Request::Realpath {
            id: 15,
            path: ".".into(),
        },
        Request::Stat {
            id: 16,
            path: "".into(),
        },
        Request::Rename {
            id: 17,
            old: "a".into(),
            new: "b".into(),
        },
        Request::Readlink {
            id: 18,
            path: "l".into(),
        },
        Request::Symlink {
            id: 19,
            target: "t".into(),
            link: "l".into(),
        },
        ext(ExtendedRequest::PosixRename {
            old: "a".into(),
            new: "b".into(),
        }),
        ext(ExtendedRequest::Statvfs { path: "/".into() }),
        ext(ExtendedRequest::Fstatvfs { handle: h.clone() }),
        ext(ExtendedRequest::Hardlink {
            old: "a".into(),
            new: "b".into(),
        }),
        ext(ExtendedRequest::Fsync { handle: h.clone() }),
        ext(ExtendedRequest::Limits),
        ext(ExtendedRequest::Lsetstat {
            path: "p".into(),
            attrs: full_attrs(),
        }),
        ext(ExtendedRequest::ExpandPath { path: "~/x".into() }),
        ext(ExtendedRequest::HomeDirectory {
            username: "alice".into(),
        }),
        ext(ExtendedRequest::CopyData {
            read_handle: h.clone(),
            read_offset: 1,
            read_len: 0,
            write_handle: b"h-0002".to_vec(),
            write_offset: 2,
        }),
        ext(ExtendedRequest::Unknown {
            name: "users-groups-by-id@openssh.com".into(),
        }),
    ]
}

#[test]
fn round_trip_every_request() {
    for req in all_requests() {
        let wire = encode_request(&req);
        assert_eq!(parse(&wire).as_ref(), Ok(&req), "wire {wire:?}");
        assert_eq!(parse(&wire).unwrap().id(), req.id());
    }
}

#[test]
fn trailing_bytes_are_ignored_like_openssh() {
    let mut wire = encode_request(&Request::Stat {
        id: 1,
        path: "a".into(),
    });
    wire.extend_from_slice(b"junk");
    assert_eq!(
        parse(&wire),
        Ok(Request::Stat {
            id: 1,
            path: "a".into()
        })
    );
    // INIT may carry client extension pairs.
    let mut init = encode_request(&Request::Init { version: 3 });
    put_string(&mut init, b"ext@example.com");
    put_string(&mut init, b"1");
    assert_eq!(parse(&init), Ok(Request::Init { version: 3 }));
}

#[test]
fn every_truncation_is_an_error_with_id_once_known() {
    for req in all_requests() {
        let wire = encode_request(&req);
        for cut in 0..wire.len() {
            let err = parse(&wire[..cut]).expect_err("truncated packet parsed");
            assert_eq!(err.kind, ProtocolError::Truncated, "{req:?} cut at {cut}");
            let expect_id = if cut >= 5 && !matches!(req, Request::Init { .. }) {
                req.id()
            } else {
                None
            };
            assert_eq!(err.id, expect_id, "{req:?} cut at {cut}");
            assert_eq!(err.status_code(), StatusCode::BadMessage);
        }
    }
}

#[test]
fn path_length_limit() {
    let ok = "a".repeat(MAX_PATH_LEN);
    let wire = encode_request(&Request::Stat {
        id: 9,
        path: ok.clone(),
    });
    assert_eq!(parse(&wire), Ok(Request::Stat { id: 9, path: ok }));

    let long = "a".repeat(MAX_PATH_LEN + 1);
    let wire = encode_request(&Request::Open {
        id: 9,
        path: long,
        pflags: 1,
        attrs: Attrs::default(),
    });
    let err = parse(&wire).unwrap_err();
    assert_eq!(err.id, Some(9));
    assert_eq!(
        err.kind,
        ProtocolError::TooLong {
            what: "path",
            len: MAX_PATH_LEN as u64 + 1,
            max: MAX_PATH_LEN as u64
        }
    );
}

#[test]
fn huge_declared_length_is_too_long_not_an_allocation() {
    let mut wire = vec![SSH_FXP_WRITE];
    put_u32(&mut wire, 4);
    put_string(&mut wire, b"h");
    put_u64(&mut wire, 0);
    put_u32(&mut wire, u32::MAX);
    let err = parse(&wire).unwrap_err();
    assert_eq!(err.id, Some(4));
    assert!(matches!(
        err.kind,
        ProtocolError::TooLong {
            what: "write data",
            ..
        }
    ));

    let mut wire = vec![SSH_FXP_CLOSE];
    put_u32(&mut wire, 4);
    put_string(&mut wire, &[0u8; MAX_HANDLE_LEN + 1]);
    assert!(matches!(
        parse(&wire).unwrap_err().kind,
        ProtocolError::TooLong { what: "handle", .. }
    ));
}

#[test]
fn invalid_utf8_and_nul_rejected() {
    let mut wire = vec![SSH_FXP_STAT];
    put_u32(&mut wire, 77);
    put_string(&mut wire, b"bad\xff\xfe");
    assert_eq!(
        parse(&wire),
        Err(ParseError {
            id: Some(77),
            kind: ProtocolError::BadUtf8 { what: "path" }
        })
    );

    let mut wire = vec![SSH_FXP_RENAME];
    put_u32(&mut wire, 78);
    put_string(&mut wire, b"ok");
    put_string(&mut wire, b"a\0/etc/passwd");
    assert_eq!(
        parse(&wire),
        Err(ParseError {
            id: Some(78),
            kind: ProtocolError::NulByte { what: "new path" }
        })
    );
}

#[test]
fn write_data_is_zero_copy() {
    let payload = vec![0xabu8; 64 * 1024];
    let body = Bytes::from(encode_request(&Request::Write {
        id: 1,
        handle: b"h".to_vec(),
        offset: 0,
        data: Bytes::from(payload.clone()),
    }));
    let range = body.as_ptr_range();
    match parse_request(body.clone()).unwrap() {
        Request::Write { data, .. } => {
            assert_eq!(&data[..], &payload[..]);
            let d = data.as_ptr_range();
            assert!(
                range.start <= d.start && d.end <= range.end,
                "data was copied"
            );
            assert_eq!(d.end, range.end);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_type_carries_id() {
    let mut wire = vec![99];
    put_u32(&mut wire, 0xdead_beef);
    let err = parse(&wire).unwrap_err();
    assert_eq!(
        err,
        ParseError {
            id: Some(0xdead_beef),
            kind: ProtocolError::UnknownType(99)
        }
    );
    assert_eq!(err.status_code(), StatusCode::OpUnsupported);
    // Reply types from a client are unknown requests too.
    let mut wire = vec![SSH_FXP_STATUS];
    put_u32(&mut wire, 5);
    assert_eq!(
        parse(&wire).unwrap_err().kind,
        ProtocolError::UnknownType(SSH_FXP_STATUS)
    );
    // Too short to hold an id.
    assert_eq!(
        parse(&[99, 0, 0]).unwrap_err(),
        ParseError {
            id: None,
            kind: ProtocolError::Truncated
        }
    );
    assert_eq!(
        parse(&[]).unwrap_err(),
        ParseError {
            id: None,
            kind: ProtocolError::Truncated
        }
    );
}

#[test]
fn unknown_extension_is_a_request_not_an_error() {
    let mut wire = vec![SSH_FXP_EXTENDED];
    put_u32(&mut wire, 3);
    put_string(&mut wire, b"weird\xff");
    put_string(&mut wire, b"args");
    assert_eq!(
        parse(&wire),
        Ok(Request::Extended {
            id: 3,
            request: ExtendedRequest::Unknown {
                name: "weird\u{fffd}".into()
            }
        })
    );
}

#[test]
fn attrs_round_trip_and_reject_unknown_flags() {
    for a in [
        Attrs::default(),
        full_attrs(),
        Attrs {
            size: Some(5),
            ..Attrs::default()
        },
    ] {
        let mut buf = Vec::new();
        a.encode(&mut buf);
        let mut r = Reader {
            buf: Bytes::from(buf),
        };
        assert_eq!(Attrs::decode(&mut r), Ok(a));
        assert!(r.buf.is_empty());
    }
    let mut buf = Vec::new();
    put_u32(&mut buf, 0x10); // v4+ ACCESSTIME: layout we cannot skip
    assert_eq!(
        Attrs::decode(&mut Reader {
            buf: Bytes::from(buf)
        }),
        Err(ProtocolError::BadAttrFlags(0x10))
    );

    let mut buf = Vec::new();
    put_u32(&mut buf, SSH_FILEXFER_ATTR_EXTENDED);
    put_u32(&mut buf, MAX_ATTR_EXTENDED as u32 + 1);
    assert!(matches!(
        Attrs::decode(&mut Reader {
            buf: Bytes::from(buf)
        }),
        Err(ProtocolError::TooLong {
            what: "extended attribute count",
            ..
        })
    ));
}

#[test]
fn frame_len_bounds() {
    assert_eq!(frame_len([0, 0, 0, 0]), Err(ProtocolError::Truncated));
    assert_eq!(frame_len([0, 0, 0, 1]), Ok(1));
    assert_eq!(frame_len(MAX_PACKET_LEN.to_be_bytes()), Ok(MAX_PACKET_LEN));
    assert_eq!(
        frame_len((MAX_PACKET_LEN + 1).to_be_bytes()),
        Err(ProtocolError::TooLong {
            what: "packet",
            len: u64::from(MAX_PACKET_LEN) + 1,
            max: u64::from(MAX_PACKET_LEN)
        })
    );
    assert!(frame_len([0xff; 4]).is_err());
}

#[test]
fn limits_are_consistent() {
    assert_eq!(MAX_READ_LEN, 261_120);
    assert!(MAX_READ_LEN as usize + DATA_HEADER_LEN - 4 <= MAX_REPLY_LEN as usize);
    // A full-size WRITE with a maximal handle must fit in one packet.
    assert!(1 + 4 + 4 + MAX_HANDLE_LEN + 8 + 4 + MAX_WRITE_LEN as usize <= MAX_PACKET_LEN as usize);
    assert!(1 + 4 + 4 + MAX_HANDLE_LEN + 8 + 4 + 256 * 1024 <= MAX_PACKET_LEN as usize);
}

fn encoded(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out).unwrap();
    let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, out.len() - 4, "length prefix");
    out
}

#[test]
fn status_encoding_exact_bytes() {
    let out = encoded(&Response::status(0x0102_0304, StatusCode::NoSuchFile));
    let mut want = Vec::new();
    put_u32(&mut want, 1 + 4 + 4 + 4 + 12 + 4 + 2);
    want.push(101);
    want.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 2]);
    put_string(&mut want, b"No such file");
    put_string(&mut want, b"en");
    assert_eq!(out, want);
}

#[test]
fn version_encoding() {
    let out = encoded(&Response::Version {
        version: SFTP_VERSION,
        extensions: server_extensions(),
    });
    assert_eq!(out[4], SSH_FXP_VERSION);
    assert_eq!(&out[5..9], &[0, 0, 0, 3]);
    let mut r = Reader {
        buf: Bytes::copy_from_slice(&out[9..]),
    };
    let mut got = Vec::new();
    while !r.buf.is_empty() {
        got.push((r.utf8("n", 100).unwrap(), r.utf8("v", 100).unwrap()));
    }
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            EXT_POSIX_RENAME,
            EXT_STATVFS,
            EXT_FSTATVFS,
            EXT_FSYNC,
            EXT_LIMITS
        ]
    );
    assert!(!names.contains(&EXT_HARDLINK));
    assert_eq!(got[1].1, "2");
}

#[test]
fn handle_attrs_name_extended_encoding() {
    let out = encoded(&Response::Handle {
        id: 1,
        handle: b"abc".to_vec(),
    });
    assert_eq!(&out[4..], &[102, 0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c']);

    let out = encoded(&Response::Attrs {
        id: 2,
        attrs: full_attrs(),
    });
    assert_eq!(out[4], SSH_FXP_ATTRS);
    let mut r = Reader {
        buf: Bytes::copy_from_slice(&out[9..]),
    };
    assert_eq!(Attrs::decode(&mut r), Ok(full_attrs()));

    let entry = NameEntry {
        filename: "f".into(),
        longname: "-rw f".into(),
        attrs: full_attrs(),
    };
    let out = encoded(&Response::Name {
        id: 3,
        entries: vec![entry.clone(), entry],
    });
    assert_eq!(out[4], SSH_FXP_NAME);
    let mut r = Reader {
        buf: Bytes::copy_from_slice(&out[5..]),
    };
    assert_eq!(r.u32(), Ok(3));
    assert_eq!(r.u32(), Ok(2));
    for _ in 0..2 {
        assert_eq!(r.path("f").unwrap(), "f");
        assert_eq!(r.path("l").unwrap(), "-rw f");
        assert_eq!(Attrs::decode(&mut r), Ok(full_attrs()));
    }
    assert!(r.buf.is_empty());

    let payload = limits_reply_payload(u64::from(MAX_PACKET_LEN), 1, 2, 0);
    let out = encoded(&Response::ExtendedReply {
        id: 4,
        payload: payload.clone(),
    });
    assert_eq!(out[4], SSH_FXP_EXTENDED_REPLY);
    assert_eq!(&out[9..], &payload[..]);
    assert_eq!(payload.len(), 32);
    assert_eq!(&payload[8..16], &1u64.to_be_bytes());
}

#[test]
fn statvfs_payload_order() {
    let s = Statvfs {
        bsize: 1,
        frsize: 2,
        blocks: 3,
        bfree: 4,
        bavail: 5,
        files: 6,
        ffree: 7,
        favail: 8,
        fsid: 9,
        flag: SSH_FXE_STATVFS_ST_NOSUID,
        namemax: 255,
    };
    let p = s.encode_payload();
    assert_eq!(p.len(), 88);
    let vals: Vec<u64> = p
        .chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, [1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 255]);
}

#[test]
fn data_header_matches_full_data_encoding() {
    let data = b"some file bytes";
    let mut a = Vec::new();
    encode_data_header(&mut a, 42, data.len() as u32).unwrap();
    assert_eq!(a.len(), DATA_HEADER_LEN);
    a.extend_from_slice(data);
    let b = encoded(&Response::Data {
        id: 42,
        data: Bytes::from_static(data),
    });
    assert_eq!(a, b);

    let mut full = Vec::new();
    encode_data_header(&mut full, 1, MAX_READ_LEN).unwrap();
    let mut out = vec![9u8];
    assert!(encode_data_header(&mut out, 1, MAX_REPLY_LEN).is_err());
    assert_eq!(out, [9], "nothing written on error");
}

#[test]
fn oversized_reply_is_rejected_and_rolled_back() {
    let mut out = b"prev".to_vec();
    let r = Response::Data {
        id: 1,
        data: Bytes::from(vec![0u8; MAX_REPLY_LEN as usize]),
    };
    assert!(matches!(
        r.encode(&mut out),
        Err(ProtocolError::TooLong { what: "reply", .. })
    ));
    assert_eq!(out, b"prev");
    let max = Response::Data {
        id: 1,
        data: Bytes::from(vec![0u8; MAX_REPLY_LEN as usize - 9]),
    };
    max.encode(&mut out).unwrap();
    assert_eq!(out.len(), 4 + 4 + MAX_REPLY_LEN as usize);
}

#[test]
fn longname_format() {
    let a = Attrs {
        size: Some(1234),
        uid_gid: Some((1, 2)),
        permissions: Some(0o100_640),
        atime_mtime: Some((0, 1_700_000_000)), // 2023-11-14 22:13:20 UTC
        extended: vec![],
    };
    assert_eq!(
        longname("report.txt", &a, "alice", "staff"),
        "-rw-r-----    1 alice    staff        1234 Nov 14 22:13 report.txt"
    );
    let d = Attrs {
        permissions: Some(0o040_755),
        size: Some(4096),
        atime_mtime: Some((0, 0)),
        ..a.clone()
    };
    assert_eq!(
        longname("dir", &d, "longusername", "g"),
        "drwxr-xr-x    1 longusername g            4096 Jan  1 00:00 dir"
    );
    assert_eq!(mode_string(0o104_755), "-rwsr-xr-x");
    assert_eq!(mode_string(0o102_644), "-rw-r-Sr--");
    assert_eq!(mode_string(0o041_777), "drwxrwxrwt");
    assert_eq!(mode_string(0o120_777), "lrwxrwxrwx");
    assert_eq!(mode_string(0o644), "?rw-r--r--");
    assert!(longname("x", &Attrs::default(), "u", "g").ends_with("Jan  1 00:00 x"));
}

#[test]
fn civil_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
    assert_eq!(civil_from_days(i64::from(u32::MAX / 86_400)), (2106, 2, 7));
    assert_eq!(format_mtime(u32::MAX), "Feb  7 06:28");
    assert_eq!(format_mtime(951_868_799), "Feb 29 23:59");
    // Every day in the u32 range maps to a valid date, monotonically.
    let mut prev = (1969, 12, 31);
    for d in 0..=i64::from(u32::MAX / 86_400) {
        let c = civil_from_days(d);
        assert!((1..=12).contains(&c.1) && (1..=31).contains(&c.2));
        assert!(c > prev);
        prev = c;
    }
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn fuzz_random_and_mutated_packets_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds: Vec<Vec<u8>> = all_requests().iter().map(encode_request).collect();
    let mut ok = 0usize;
    for i in 0..200_000u32 {
        let buf: Vec<u8> = if i % 2 == 0 {
            // Pure noise, with a bias toward valid type bytes so parsing gets past the switch.
            let len = (rng.next() % 96) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(t) = v.first_mut() {
                *t = (rng.next() % 22) as u8;
            }
            v
        } else {
            // Mutations of valid packets reach the deeper fields.
            let mut v = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
            for _ in 0..=(rng.next() % 4) {
                if v.is_empty() {
                    break;
                }
                let at = (rng.next() % v.len() as u64) as usize;
                match rng.next() % 4 {
                    0 => v[at] = rng.next() as u8,
                    1 => v[at] ^= 0x80,
                    2 => v.truncate(at),
                    _ => v.insert(at, rng.next() as u8),
                }
            }
            v
        };
        if parse(&buf).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 1000, "fuzzer barely reached valid parses ({ok})");
}
