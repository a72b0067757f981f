//! Grader for the binary framing protocol: white-box on the decoder, black-box on the server.
//! The grader encodes frames with its own code, straight from the wire format in README.md.
//! Each test is named after the requirement it checks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use labkit::{Server, lab_bin};
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Frame, FrameDecoder, MessageType, ProtocolError};

const TYPES: [MessageType; 7] = [
    MessageType::Get,
    MessageType::Put,
    MessageType::Delete,
    MessageType::Value,
    MessageType::NotFound,
    MessageType::Ok,
    MessageType::Error,
];

/// The wire format, written independently of the lab: magic C7 4B, version 1, type, flags,
/// request id, payload length, payload; big-endian.
fn wire(msg_type: u8, flags: u16, request_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0xC7, 0x4B, 1, msg_type];
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&request_id.to_be_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn random_frame() -> Frame {
    let mut rng = rand::rng();
    let len = if rng.random_range(0..10) == 0 {
        rng.random_range(0..20_000)
    } else {
        rng.random_range(0..100)
    };
    Frame {
        msg_type: TYPES[rng.random_range(0..TYPES.len())],
        flags: rng.random(),
        request_id: rng.random(),
        payload: Bytes::from((0..len).map(|_| rng.random::<u8>()).collect::<Vec<_>>()),
    }
}

fn wire_of(f: &Frame) -> Vec<u8> {
    wire(f.msg_type as u8, f.flags, f.request_id, &f.payload)
}

/// A frame in a few words, for failure messages.
fn brief(f: &Frame) -> String {
    format!(
        "{:?} id {} flags {:#06x}, {} payload bytes",
        f.msg_type,
        f.request_id,
        f.flags,
        f.payload.len()
    )
}

/// Compares decoded frames with the frames sent, and names the first difference.
fn assert_same_frames(req: &str, got: &[Frame], want: &[Frame], how: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{req}: {how}: frame {i} of {} decoded as {}; wanted {}{}",
            want.len(),
            brief(&got[i]),
            brief(&want[i]),
            if got[i].payload != want[i].payload && got[i].payload.len() == want[i].payload.len() {
                " (same length, different bytes)"
            } else {
                ""
            }
        );
    }
    assert!(
        got.len() == want.len(),
        "{req}: {how}: {} frames decoded; wanted {}",
        got.len(),
        want.len()
    );
}

/// Feeds `bytes` to a decoder in chunks cut at `cuts`, collecting every frame.
fn decode_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => panic!(
                    "requirement 2: after {} good frames and {start} bytes, decode returned \
                     {e:?}; wanted the next frame or Ok(None)",
                    frames.len()
                ),
            }
        }
    }
    let end = decoder.decode_eof(&mut buf);
    assert!(
        end == Ok(None),
        "requirement 2: at the end of {} bytes of whole frames, decode_eof returned {end:?} with \
         {} bytes left; wanted Ok(None)",
        bytes.len(),
        buf.len()
    );
    frames
}

// Requirement 1: the wire format.
#[test]
fn encode_writes_the_documented_wire_format() {
    for _ in 0..200 {
        let f = random_frame();
        let mut out = BytesMut::new();
        lab::encode(&f, &mut out);
        let want = wire_of(&f);
        if let Some(at) = (0..out.len().min(want.len())).find(|&i| out[i] != want[i]) {
            panic!(
                "requirement 1: encode({}) differs from the wire format at byte {at} ({}): got \
                 {:#04x}, wanted {:#04x} (integers are big-endian)",
                brief(&f),
                field_at(at),
                out[at],
                want[at]
            );
        }
        assert!(
            out.len() == want.len(),
            "requirement 1: encode({}) wrote {} bytes; wanted {}",
            brief(&f),
            out.len(),
            want.len()
        );
    }
    let header_len = std::hint::black_box(lab::HEADER_LEN);
    assert!(
        header_len == 14,
        "requirement 1: HEADER_LEN is {header_len}; wanted 14"
    );
}

/// The header field holding byte `at` of a frame.
fn field_at(at: usize) -> &'static str {
    match at {
        0..=1 => "magic",
        2 => "version",
        3 => "type",
        4..=5 => "flags",
        6..=9 => "request id",
        10..=13 => "payload length",
        _ => "payload",
    }
}

// Requirement 2: streaming decode.
#[test]
fn decodes_a_frame_delivered_one_byte_at_a_time() {
    let mut f = random_frame();
    if f.payload.is_empty() {
        f.payload = Bytes::from_static(b"p"); // a payload that arrives after its header
    }
    let bytes = wire_of(&f);
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    assert_same_frames(
        "requirement 2",
        &decode_in_chunks(&bytes, &cuts),
        &[f],
        "one byte per read",
    );
}

#[test]
fn decodes_frames_split_at_random_points() {
    let mut rng = rand::rng();
    for _ in 0..200 {
        let frames: Vec<Frame> = (0..rng.random_range(1..8))
            .map(|_| random_frame())
            .collect();
        let bytes: Vec<u8> = frames.iter().flat_map(wire_of).collect();
        let mut cuts: Vec<usize> = (0..rng.random_range(0..10))
            .map(|_| rng.random_range(0..=bytes.len()))
            .collect();
        cuts.sort();
        assert_same_frames(
            "requirement 2",
            &decode_in_chunks(&bytes, &cuts),
            &frames,
            &format!("{} bytes cut at {cuts:?}", bytes.len()),
        );
    }
}

#[test]
fn decodes_many_frames_from_one_read() {
    let frames: Vec<Frame> = (0..100).map(|_| random_frame()).collect();
    let bytes: Vec<u8> = frames.iter().flat_map(wire_of).collect();
    assert_same_frames(
        "requirement 2",
        &decode_in_chunks(&bytes, &[]),
        &frames,
        "100 frames in one read",
    );
}

// Requirement 3: limits and errors.
#[test]
fn rejects_an_oversized_frame_from_its_header_alone() {
    let max = rand::rng().random_range(100..10_000);
    let mut decoder = FrameDecoder::new(max);
    let claimed = rand::rng().random_range(max + 1..=u32::MAX as usize);
    let mut header = BytesMut::from(&wire(1, 0, 7, &[])[..]);
    header[10..14].copy_from_slice(&(claimed as u32).to_be_bytes());
    let capacity_before = header.capacity();
    let got = decoder.decode(&mut header);
    assert!(
        got == Err(ProtocolError::FrameTooLarge { len: claimed, max }),
        "requirement 3: a header claiming {claimed} bytes with a maximum of {max} gave {got:?}; \
         wanted FrameTooLarge {{ len: {claimed}, max: {max} }} at once"
    );
    assert!(
        header.capacity() <= capacity_before.max(64),
        "requirement 3: the buffer's capacity went from {capacity_before} to {} bytes for a \
         refused frame claiming {claimed}; wanted nothing allocated for it",
        header.capacity()
    );

    // A length within the limit waits for the bytes without reserving them up front.
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut partial = BytesMut::from(&wire(1, 0, 7, &[])[..]);
    partial[10..14].copy_from_slice(&(lab::MAX_PAYLOAD as u32).to_be_bytes());
    let got = decoder.decode(&mut partial);
    assert!(
        got == Ok(None),
        "requirement 2: a header announcing {} payload bytes, none there yet, gave {got:?}; \
         wanted Ok(None)",
        lab::MAX_PAYLOAD
    );
    assert!(
        partial.capacity() < 64 * 1024,
        "requirement 3: after a header announcing {} bytes the buffer holds {} bytes of \
         capacity; wanted under 64 KiB (do not reserve the claimed length before it arrives)",
        lab::MAX_PAYLOAD,
        partial.capacity()
    );
    assert!(
        partial.len() == 14,
        "requirement 2: an incomplete frame left {} bytes in the buffer; wanted its 14 bytes \
         left alone",
        partial.len()
    );
}

#[test]
fn rejects_unknown_magic_version_and_type() {
    let mut decoder = FrameDecoder::new(1024);
    let mut bad_magic = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    let got = decoder.decode(&mut bad_magic);
    assert!(
        matches!(got, Err(ProtocolError::BadMagic(_))),
        "requirement 3: \"GET / HTTP/1.1\" decoded as {got:?}; wanted BadMagic"
    );
    let version = rand::rng().random_range(2..=255u8);
    let mut v = wire(1, 0, 1, b"k");
    v[2] = version;
    let got = decoder.decode(&mut BytesMut::from(&v[..]));
    assert!(
        got == Err(ProtocolError::UnsupportedVersion(version)),
        "requirement 3: a frame of version {version} decoded as {got:?}; wanted \
         UnsupportedVersion({version})"
    );
    let t = rand::rng().random_range(8..=255u8);
    let frame = wire(t, 0, 1, b"k");
    let got = decoder.decode(&mut BytesMut::from(&frame[..]));
    assert!(
        got == Err(ProtocolError::UnknownType(t)),
        "requirement 3: a frame of type {t} decoded as {got:?}; wanted UnknownType({t})"
    );
    let ok = wire(2, 0, 1, b"kv");
    let got = decoder.decode(&mut BytesMut::from(&ok[..]));
    assert!(
        matches!(got, Ok(Some(_))),
        "requirement 3: a good Put frame after the errors decoded as {got:?}; wanted a frame"
    );
}

#[test]
fn a_stream_ending_inside_a_frame_is_truncated() {
    let bytes = wire_of(&random_frame());
    let cut = rand::rng().random_range(1..bytes.len());
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut buf = BytesMut::from(&bytes[..cut]);
    let got = decoder.decode(&mut buf);
    assert!(
        got == Ok(None),
        "requirement 2: the first {cut} of {} bytes of a frame decoded as {got:?}; wanted \
         Ok(None)",
        bytes.len()
    );
    let got = decoder.decode_eof(&mut buf);
    assert!(
        got == Err(ProtocolError::Truncated { buffered: cut }),
        "requirement 3: a stream ending {cut} bytes into a frame of {} gave {got:?}; wanted \
         Truncated {{ buffered: {cut} }}",
        bytes.len()
    );
    let got = decoder.decode_eof(&mut BytesMut::new());
    assert!(
        got == Ok(None),
        "requirement 3: a stream ending cleanly between frames gave {got:?}; wanted Ok(None)"
    );
}

/// The stable stand-in for a fuzzer: random bytes and mutations of valid streams, fed in
/// random chunks. The decoder may return errors, never panic, and never loop without progress.
#[test]
fn survives_100_000_random_and_mutated_inputs() {
    let mut rng = rand::rng();
    let mut frames_decoded = 0;
    for i in 0..100_000 {
        let mut bytes: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
        } else {
            let f = Frame {
                payload: Bytes::from(vec![7u8; rng.random_range(0..40)]),
                ..random_frame()
            };
            wire_of(&f)
        };
        if i % 4 == 1 {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
        }
        let mut decoder = FrameDecoder::new(rng.random_range(0..128));
        let mut buf = BytesMut::new();
        let mut rest = &bytes[..];
        'feed: while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            for _ in 0..=bytes.len() {
                match decoder.decode(&mut buf) {
                    Ok(Some(_)) => frames_decoded += 1,
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
        let _ = decoder.decode_eof(&mut buf);
    }
    assert!(
        frames_decoded > 10_000,
        "requirement 3: {frames_decoded} frames decoded from 100,000 inputs, half of them valid \
         frames; wanted over 10,000"
    );
}

// Requirement 4 and 5: the server.

fn connect(server: &Server) -> TcpStream {
    let s = labkit::net::connect(server.addr());
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one frame with the grader's own parsing.
fn read_frame(stream: &mut TcpStream) -> (u8, u32, Vec<u8>) {
    let mut header = [0u8; 14];
    stream
        .read_exact(&mut header)
        .unwrap_or_else(|e| panic!("requirement 4: no 14-byte answer header from the server: {e}"));
    assert!(
        header[..3] == [0xC7, 0x4B, 1],
        "requirement 1: an answer starts with {:02x?}; wanted magic C7 4B and version 1",
        &header[..3]
    );
    let len = u32::from_be_bytes(header[10..14].try_into().unwrap()) as usize;
    assert!(
        len <= 1 << 20,
        "requirement 1: an answer announces {len} payload bytes (is the length big-endian?)"
    );
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap_or_else(|e| {
        panic!("requirement 4: an answer announced {len} payload bytes that never came: {e}")
    });
    (
        header[3],
        u32::from_be_bytes(header[6..10].try_into().unwrap()),
        payload,
    )
}

fn put(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = (key.len() as u16).to_be_bytes().to_vec();
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

fn random_word() -> String {
    let mut rng = rand::rng();
    (0..rng.random_range(1..12))
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect()
}

/// Asserts that an answer is `(type, id, payload)`, naming the types in the message.
fn expect_answer(req: &str, got: (u8, u32, Vec<u8>), want: (u8, u32, &[u8]), what: &str) {
    const NAMES: [&str; 8] = [
        "?", "Get", "Put", "Delete", "Value", "NotFound", "Ok", "Error",
    ];
    let name = |t: u8| NAMES.get(usize::from(t)).copied().unwrap_or("unknown");
    assert!(
        (got.0, got.1, got.2.as_slice()) == want,
        "{req}: {what} was answered {} (type {}) id {} with {} payload bytes; wanted {} id {} \
         with {} bytes",
        name(got.0),
        got.0,
        got.1,
        got.2.len(),
        name(want.0),
        want.1,
        want.2.len()
    );
}

#[test]
fn server_stores_and_returns_values() {
    let r = "requirement 4";
    let server = Server::start(lab_bin!(), &[]);
    let mut s = connect(&server);
    let (key, value) = (random_word(), random_word());
    let id = rand::rng().random_range(1..u32::MAX - 10);
    s.write_all(&wire(2, 0, id, &put(key.as_bytes(), value.as_bytes())))
        .unwrap();
    expect_answer(r, read_frame(&mut s), (6, id, b""), "Put");
    s.write_all(&wire(1, 0, id + 1, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut s),
        (4, id + 1, value.as_bytes()),
        "Get of a stored key",
    );
    s.write_all(&wire(3, 0, id + 2, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut s),
        (6, id + 2, b""),
        "Delete of a stored key",
    );
    s.write_all(&wire(1, 0, id + 3, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut s),
        (5, id + 3, b""),
        "Get of a deleted key",
    );
    s.write_all(&wire(3, 0, id + 4, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut s),
        (5, id + 4, b""),
        "Delete of a key that is not there",
    );
}

#[test]
fn client_command_talks_to_the_server() {
    let r = "requirement 4";
    let server = Server::start(lab_bin!(), &[]);
    let addr = server.addr().to_string();
    let (key, value) = (random_word(), random_word());
    let out = labkit::run(lab_bin!(), &["client", &addr, "put", &key, &value]);
    assert!(
        (out.code(), out.stdout_str().trim()) == (Some(0), "OK"),
        "{r}: `client put` exited with {:?} and printed {:?}; wanted 0 and OK (stderr: {})",
        out.code(),
        out.stdout_str(),
        out.stderr_str()
    );
    let out = labkit::run(lab_bin!(), &["client", &addr, "get", &key]);
    assert!(
        out.stdout_str().trim() == value,
        "{r}: `client get` printed {:?}; wanted {value:?} (stderr: {})",
        out.stdout_str(),
        out.stderr_str()
    );
    let out = labkit::run(lab_bin!(), &["client", &addr, "get", "missing-key"]);
    assert!(
        out.stdout_str().trim() == "(not found)",
        "{r}: `client get` of a missing key printed {:?}; wanted \"(not found)\"",
        out.stdout_str()
    );
}

#[test]
fn server_answers_pipelined_requests_sent_in_random_pieces() {
    let r = "requirement 4";
    let server = Server::start(lab_bin!(), &[]);
    let mut s = connect(&server);
    let n = 200;
    let mut stream = Vec::new();
    for i in 0..n {
        let key = format!("k{i}");
        stream.extend(wire(
            2,
            0,
            2 * i,
            &put(key.as_bytes(), format!("v{i}").as_bytes()),
        ));
        stream.extend(wire(1, 0, 2 * i + 1, key.as_bytes()));
    }
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let cut = rand::rng().random_range(1..=rest.len().min(40));
                w.write_all(&rest[..cut]).unwrap();
                rest = &rest[cut..];
            }
        })
    };
    for i in 0..n {
        expect_answer(
            r,
            read_frame(&mut s),
            (6, 2 * i, b""),
            &format!("pipelined Put {i} of {n}"),
        );
        expect_answer(
            r,
            read_frame(&mut s),
            (4, 2 * i + 1, format!("v{i}").as_bytes()),
            &format!("pipelined Get {i} of {n}"),
        );
    }
    writer.join().unwrap();
}

/// Reads until the server closes; returns what came (an Error frame, possibly).
fn read_until_closed(s: &mut TcpStream, what: &str) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!(
            "requirement 5: after {what} the server must close the connection; it is still open \
             after 5 s and {} bytes ({e})",
            got.len()
        ),
    }
}

/// Requires `got` (everything the server sent before closing) to be one Error frame with a
/// UTF-8 message.
fn expect_error_frame(got: &[u8], what: &str) {
    assert!(
        got.len() >= 14 && got[..3] == [0xC7, 0x4B, 1] && got[3] == 7,
        "requirement 5: after {what} the server sent {} bytes ({:02x?}) before closing; wanted an \
         Error frame (type 7)",
        got.len(),
        &got[..got.len().min(14)]
    );
    let len = u32::from_be_bytes(got[10..14].try_into().unwrap()) as usize;
    assert!(
        got.len() == 14 + len && !got[14..].is_empty() && std::str::from_utf8(&got[14..]).is_ok(),
        "requirement 5: after {what} the Error frame announces {len} payload bytes, {} came; \
         wanted one frame whose payload is a UTF-8 message",
        got.len() - 14
    );
}

#[test]
fn server_closes_a_connection_that_sends_an_oversized_frame() {
    let server = Server::start(lab_bin!(), &[]);
    let mut s = connect(&server);
    let mut header = wire(2, 0, 1, &[]);
    header[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&header).unwrap();
    let what = "a header claiming 4 GiB";
    let got = read_until_closed(&mut s, what);
    expect_error_frame(&got, what);
    assert!(
        labkit::net::is_listening(server.addr(), Duration::from_secs(2)),
        "requirement 5: the server stopped listening after {what}"
    );
}

#[test]
fn server_answers_protocol_errors_with_an_error_frame_and_closes() {
    let server = Server::start(lab_bin!(), &[]);
    let mut bad_version = wire(1, 0, 1, b"k");
    bad_version[2] = rand::rng().random_range(2..=255);
    let key_len = rand::rng().random_range(10..1000u16);
    let mut long_key = key_len.to_be_bytes().to_vec();
    long_key.extend_from_slice(b"short");
    let cases: [(&str, Vec<u8>); 6] = [
        ("bytes with a bad magic", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("a frame of another version", bad_version),
        ("a frame of an unknown type", wire(9, 0, 1, b"k")),
        (
            "a Put whose key length passes its payload",
            wire(2, 0, 1, &long_key),
        ),
        ("a Put without a key length", wire(2, 0, 1, b"x")),
        ("an answer (Value) sent as a request", wire(4, 0, 1, b"v")),
    ];
    for (what, bytes) in cases {
        let mut s = connect(&server);
        s.write_all(&bytes).unwrap();
        let got = read_until_closed(&mut s, what);
        expect_error_frame(&got, what);
    }
    // Nothing was stored by the malformed Puts, and the server still serves.
    let mut s = connect(&server);
    s.write_all(&wire(1, 0, 5, b"short")).unwrap();
    expect_answer(
        "requirement 5",
        read_frame(&mut s),
        (5, 5, b""),
        "Get of a key only a malformed Put named",
    );
}

#[test]
fn server_survives_garbage_and_other_clients_are_unaffected() {
    let r = "requirement 5";
    let server = Server::start(lab_bin!(), &[]);
    let mut good = connect(&server);
    let key = random_word();
    good.write_all(&wire(2, 0, 1, &put(key.as_bytes(), b"before")))
        .unwrap();
    expect_answer(
        r,
        read_frame(&mut good),
        (6, 1, b""),
        "Put before the garbage",
    );
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut bad = connect(&server);
        let garbage: Vec<u8> = (0..rng.random_range(2..2000))
            .map(|_| rng.random())
            .collect();
        let _ = bad.write_all(&garbage);
        let _ = bad.shutdown(std::net::Shutdown::Write);
        read_until_closed(&mut bad, "random garbage");
    }
    good.write_all(&wire(1, 0, 2, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut good),
        (4, 2, b"before"),
        "Get on a connection opened before the garbage",
    );
    let mut fresh = connect(&server);
    fresh.write_all(&wire(1, 0, 3, key.as_bytes())).unwrap();
    expect_answer(
        r,
        read_frame(&mut fresh),
        (4, 3, b"before"),
        "Get on a new connection after the garbage",
    );
}
