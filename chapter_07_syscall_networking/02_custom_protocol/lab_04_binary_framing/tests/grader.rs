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

/// Feeds `bytes` to a decoder in chunks cut at `cuts`, collecting every frame.
fn decode_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        while let Some(f) = decoder.decode(&mut buf).expect("valid frames decode") {
            frames.push(f);
        }
    }
    assert_eq!(
        decoder.decode_eof(&mut buf),
        Ok(None),
        "nothing left over at the end"
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
        assert_eq!(&out[..], &wire_of(&f)[..], "{:?}", f.msg_type);
    }
    assert_eq!(lab::HEADER_LEN, 14);
}

// Requirement 2: streaming decode.
#[test]
fn decodes_a_frame_delivered_one_byte_at_a_time() {
    let f = random_frame();
    let bytes = wire_of(&f);
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(decode_in_chunks(&bytes, &cuts), vec![f]);
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
        assert_eq!(decode_in_chunks(&bytes, &cuts), frames);
    }
}

#[test]
fn decodes_many_frames_from_one_read() {
    let frames: Vec<Frame> = (0..100).map(|_| random_frame()).collect();
    let bytes: Vec<u8> = frames.iter().flat_map(wire_of).collect();
    assert_eq!(decode_in_chunks(&bytes, &[]), frames);
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
    assert_eq!(
        decoder.decode(&mut header),
        Err(ProtocolError::FrameTooLarge { len: claimed, max })
    );
    assert!(
        header.capacity() <= capacity_before.max(64),
        "nothing allocated for the claimed {claimed} bytes"
    );

    // A length within the limit waits for the bytes without reserving them up front.
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut partial = BytesMut::from(&wire(1, 0, 7, &[])[..]);
    partial[10..14].copy_from_slice(&(lab::MAX_PAYLOAD as u32).to_be_bytes());
    assert_eq!(decoder.decode(&mut partial), Ok(None));
    assert!(
        partial.capacity() < 64 * 1024,
        "do not reserve the claimed length before it arrives"
    );
    assert_eq!(
        partial.len(),
        14,
        "an incomplete frame is left in the buffer"
    );
}

#[test]
fn rejects_unknown_magic_version_and_type() {
    let mut decoder = FrameDecoder::new(1024);
    let mut bad_magic = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert!(matches!(
        decoder.decode(&mut bad_magic),
        Err(ProtocolError::BadMagic(_))
    ));
    let version = rand::rng().random_range(2..=255u8);
    let mut v = wire(1, 0, 1, b"k");
    v[2] = version;
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&v[..])),
        Err(ProtocolError::UnsupportedVersion(version))
    );
    let t = rand::rng().random_range(8..=255u8);
    let frame = wire(t, 0, 1, b"k");
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&frame[..])),
        Err(ProtocolError::UnknownType(t))
    );
    let ok = wire(2, 0, 1, b"kv");
    assert!(
        decoder
            .decode(&mut BytesMut::from(&ok[..]))
            .unwrap()
            .is_some(),
        "a good frame still decodes"
    );
}

#[test]
fn a_stream_ending_inside_a_frame_is_truncated() {
    let bytes = wire_of(&random_frame());
    let cut = rand::rng().random_range(1..bytes.len());
    let mut decoder = FrameDecoder::new(lab::MAX_PAYLOAD);
    let mut buf = BytesMut::from(&bytes[..cut]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(
        decoder.decode_eof(&mut buf),
        Err(ProtocolError::Truncated { buffered: cut })
    );
    assert_eq!(decoder.decode_eof(&mut BytesMut::new()), Ok(None));
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
        "valid frames among the inputs decode ({frames_decoded})"
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
    stream.read_exact(&mut header).expect("a 14-byte header");
    assert_eq!(&header[..3], &[0xC7, 0x4B, 1], "magic and version");
    let len = u32::from_be_bytes(header[10..14].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("the payload");
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

#[test]
fn server_stores_and_returns_values() {
    let server = Server::start(lab_bin!(), &[]);
    let mut s = connect(&server);
    let (key, value) = (random_word(), random_word());
    s.write_all(&wire(2, 0, 11, &put(key.as_bytes(), value.as_bytes())))
        .unwrap();
    assert_eq!(
        read_frame(&mut s),
        (6, 11, vec![]),
        "Put answers Ok with the same request id"
    );
    s.write_all(&wire(1, 0, 12, key.as_bytes())).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (4, 12, value.clone().into_bytes()),
        "Get answers Value"
    );
    s.write_all(&wire(3, 0, 13, key.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s), (6, 13, vec![]), "Delete answers Ok");
    s.write_all(&wire(1, 0, 14, key.as_bytes())).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (5, 14, vec![]),
        "Get of a deleted key answers NotFound"
    );
}

#[test]
fn client_command_talks_to_the_server() {
    let server = Server::start(lab_bin!(), &[]);
    let addr = server.addr().to_string();
    let (key, value) = (random_word(), random_word());
    let out = labkit::run(lab_bin!(), &["client", &addr, "put", &key, &value]);
    assert_eq!(
        (out.code(), out.stdout_str().trim()),
        (Some(0), "OK"),
        "{}",
        out.stderr_str()
    );
    let out = labkit::run(lab_bin!(), &["client", &addr, "get", &key]);
    assert_eq!(out.stdout_str().trim(), value);
    let out = labkit::run(lab_bin!(), &["client", &addr, "get", "missing-key"]);
    assert_eq!(out.stdout_str().trim(), "(not found)");
}

#[test]
fn server_answers_pipelined_requests_sent_in_random_pieces() {
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
        assert_eq!(read_frame(&mut s), (6, 2 * i, vec![]));
        assert_eq!(
            read_frame(&mut s),
            (4, 2 * i + 1, format!("v{i}").into_bytes())
        );
    }
    writer.join().unwrap();
}

/// Reads until the server closes; returns what came (an Error frame, possibly).
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the server must close a connection after a protocol error: {e}"),
    }
}

#[test]
fn server_closes_a_connection_that_sends_an_oversized_frame() {
    let server = Server::start(lab_bin!(), &[]);
    let mut s = connect(&server);
    let mut header = wire(2, 0, 1, &[]);
    header[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&header).unwrap();
    let got = read_until_closed(&mut s);
    assert!(
        got.len() >= 14 && got[3] == 7,
        "an Error frame before closing: {got:?}"
    );
    assert!(labkit::net::is_listening(
        server.addr(),
        Duration::from_secs(2)
    ));
}

#[test]
fn server_survives_garbage_and_other_clients_are_unaffected() {
    let server = Server::start(lab_bin!(), &[]);
    let mut good = connect(&server);
    let key = random_word();
    good.write_all(&wire(2, 0, 1, &put(key.as_bytes(), b"before")))
        .unwrap();
    assert_eq!(read_frame(&mut good).0, 6);
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut bad = connect(&server);
        let garbage: Vec<u8> = (0..rng.random_range(2..2000))
            .map(|_| rng.random())
            .collect();
        let _ = bad.write_all(&garbage);
        let _ = bad.shutdown(std::net::Shutdown::Write);
        read_until_closed(&mut bad);
    }
    good.write_all(&wire(1, 0, 2, key.as_bytes())).unwrap();
    assert_eq!(
        read_frame(&mut good),
        (4, 2, b"before".to_vec()),
        "the good client is unaffected"
    );
    let mut fresh = connect(&server);
    fresh.write_all(&wire(1, 0, 3, key.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut fresh).0, 4, "new clients are served");
}
