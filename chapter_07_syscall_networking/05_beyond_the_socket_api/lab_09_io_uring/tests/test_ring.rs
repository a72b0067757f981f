//! The ring itself, seen from `/proc`: the kernel describes every io_uring instance a process
//! holds in the fd's `fdinfo` (`SqMask`, `CqMask`, heads and tails, requests in flight).

use std::io::{Read, Write};

use labkit::echo::random_bytes;
use labkit::net::connect;
use labkit::{Server, lab_bin};

/// The fds of `pid` that are io_uring instances (`anon_inode:[io_uring]`), by number.
fn ring_fds(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().contains("io_uring"))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A hexadecimal field of an io_uring fdinfo (`SqMask:\t0xff`).
fn hex_field(fdinfo: &str, name: &str) -> Option<u64> {
    fdinfo.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?.trim();
        u64::from_str_radix(value.trim_start_matches("0x"), 16).ok()
    })
}

// Requirement 2: one ring of 256 submission entries and 512 completion entries.
#[test]
fn sets_up_one_ring_of_256_entries() {
    let mut server = Server::start(lab_bin!(), &[]);
    let pid = server.pid();
    // One echo first: the server has made whatever it makes lazily.
    let mut stream = connect(server.addr());
    let message = random_bytes(1 + random_bytes(1)[0] as usize * 4);
    stream.write_all(&message).expect("write to the server");
    let mut echoed = vec![0; message.len()];
    if let Err(e) = stream.read_exact(&mut echoed) {
        server.fail(&format!(
            "requirement 2: no echo of a {}-byte message: {e}",
            message.len()
        ));
    }
    assert!(
        echoed == message,
        "requirement 2: the echo differs from what was sent"
    );

    let rings = ring_fds(pid);
    assert!(
        rings.len() == 1,
        "requirement 2: the server holds {} io_uring instances (fds {rings:?} link to \
         anon_inode:[io_uring]); wanted exactly one, made with io_uring_setup",
        rings.len()
    );
    let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", rings[0]))
        .expect("read the ring's fdinfo");
    let sq = hex_field(&fdinfo, "SqMask").map(|mask| mask + 1);
    let cq = hex_field(&fdinfo, "CqMask").map(|mask| mask + 1);
    assert!(
        sq == Some(256) && cq == Some(512),
        "requirement 2: the ring has {sq:?} submission and {cq:?} completion entries \
         (/proc/{pid}/fdinfo/{}); wanted 256 and 512: io_uring_setup(256, ...) with no \
         IORING_SETUP_CQSIZE, a ring far smaller than the load it serves",
        rings[0]
    );
}
