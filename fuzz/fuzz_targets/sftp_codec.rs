//! The SFTP codec on bytes from any peer (before and after login): a stream of frames is split by
//! `frame_len` and each body parsed; the whole input is also parsed as one body. Nothing may panic,
//! and a request that parses must encode-free round trip its id (the door answers errors by id).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lockbox_sftp::protocol::{frame_len, parse_request};

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(Bytes::copy_from_slice(data));
    let mut rest = data;
    while let Some((header, body)) = rest.split_first_chunk::<4>() {
        let Ok(len) = frame_len(*header) else { break };
        let take = (len as usize).min(body.len());
        let (frame, next) = body.split_at(take);
        match parse_request(Bytes::copy_from_slice(frame)) {
            Ok(req) => {
                // A parsed request's id is the 4 bytes after the type byte, when it has one.
                if let Some(id) = req.id() {
                    assert_eq!(frame.get(1..5), Some(&id.to_be_bytes()[..]));
                }
            }
            Err(e) => {
                if let Some(id) = e.id {
                    assert_eq!(frame.get(1..5), Some(&id.to_be_bytes()[..]));
                }
            }
        }
        rest = next;
    }
});
