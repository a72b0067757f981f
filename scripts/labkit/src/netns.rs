//! A private network per test, for the graders of raw sockets (labs 7.2 and 7.3).
//!
//! A raw socket sees every packet of its network namespace, and opening one needs
//! `CAP_NET_RAW`. [`private_network!`](crate::private_network) gives each test both without
//! sudo: the test runs again, alone, in a child process that `unshare(1)` puts in a new network
//! namespace (only `lo`, brought up here), and for a user who is not root in a new user
//! namespace too, where that user is root and holds `CAP_NET_RAW` over the new network only.
//! A capture then sees the test's own traffic and nothing else: not PostgreSQL, not Redis, not
//! the other tests running beside it.
//!
//! ```ignore
//! #[test]
//! fn pings_localhost() {
//!     labkit::private_network!();
//!     // From here on: a network of our own, with CAP_NET_RAW.
//! }
//! ```

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::run_command;

/// Set in the child to the name of the test it runs.
const CHILD_ENV: &str = "LABKIT_PRIVATE_NETWORK";
/// How long the child may run: a test's own deadlines are shorter.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the calling test in a private network namespace: expands to an early `return` in the
/// parent (after checking that the child passed) and to nothing in the child.
#[macro_export]
macro_rules! private_network {
    () => {{
        fn here() {}
        let path = ::std::any::type_name_of_val(&here);
        if !$crate::netns::enter(path) {
            return;
        }
    }};
}

/// Whether this process runs a test inside its private network (set up by [`enter`]).
pub fn inside() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// `here_path` is the path of a function nested in the test (`crate::module::test::here`).
/// In the child: brings `lo` up and returns true (run the test body). In the parent: runs the
/// test again in a child inside a new network namespace, fails with the child's output if the
/// child fails, and returns false (the test is done).
#[doc(hidden)]
pub fn enter(here_path: &str) -> bool {
    let path = here_path.strip_suffix("::here").unwrap_or(here_path);
    // libtest names a test by its path without the crate: `module::test`.
    let test = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var(CHILD_ENV).is_ok_and(|name| name == test) {
        bring_loopback_up();
        return true;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut cmd = Command::new(crate::sys::require_tool("unshare"));
    if !crate::sys::is_root() {
        // A user namespace where this user is root: CAP_NET_RAW over the new network only.
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.arg("--net")
        .arg("--")
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_command(cmd, b"", CHILD_TIMEOUT);
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    if stderr.starts_with("unshare:") {
        panic!(
            "this test needs a private network namespace, and unshare(1) failed: {}; run the \
             tests as root, or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1 \
             and kernel.apparmor_restrict_unprivileged_userns=0)",
            stderr.trim()
        );
    }
    if !stdout.contains("1 passed") {
        panic!(
            "{}",
            child_failure(&stdout, &stderr).unwrap_or_else(|| format!(
                "the test, run in its private network namespace, did not pass (exit {:?}):\n{stdout}{stderr}",
                out.code()
            ))
        );
    }
    false
}

/// The child's panic message and what the test printed, without libtest's frame.
fn child_failure(stdout: &str, stderr: &str) -> Option<String> {
    let start = stdout.find("---- ")?;
    let body = &stdout[start..];
    let body = body.split_once('\n').map_or("", |(_, rest)| rest);
    let end = body.find("\n\nfailures:").unwrap_or(body.len());
    let mut message = body[..end].trim_end().to_string();
    if !stderr.trim().is_empty() {
        message.push('\n');
        message.push_str(stderr.trim_end());
    }
    Some(message)
}

/// `ip link set lo up`, with one ioctl: a new network namespace starts with `lo` down.
fn bring_loopback_up() {
    // SAFETY: a datagram socket used only for the two ioctls and closed right after; `ifreq` is
    // zeroed, then named "lo" (NUL-terminated), and the kernel reads and writes only within it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "test setup: socket for the ioctl failed: {}",
            std::io::Error::last_os_error()
        );
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let up = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        req.ifr_ifru.ifru_flags = up;
        let rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(rc, 0, "test setup: bringing lo up failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;

    use super::*;

    /// A packet socket on every interface of this network namespace, with a short timeout.
    fn packet_socket() -> OwnedFd {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            )
        };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: tv lives across the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        fd
    }

    /// Payloads of the UDP packets captured until `until`, as seen on a packet socket.
    fn captured(fd: &OwnedFd, until: Instant) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 28 {
                seen.push(buf[28..n as usize].to_vec());
            }
        }
        seen
    }

    /// Datagrams sent on the host's loopback until dropped.
    struct HostNoise {
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        sender: Option<std::thread::JoinHandle<()>>,
    }

    impl HostNoise {
        fn start() -> HostNoise {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            let sender = std::thread::spawn(move || {
                let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
                let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = tx.send_to(b"host-noise", rx.local_addr().unwrap());
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            HostNoise {
                stop,
                sender: Some(sender),
            }
        }
    }

    impl Drop for HostNoise {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(sender) = self.sender.take() {
                let _ = sender.join();
            }
        }
    }

    #[test]
    fn a_capture_in_the_private_network_sees_its_own_traffic_only() {
        // The parent sends on the host's loopback all the while the child captures.
        let _noise = (!inside()).then(HostNoise::start);
        crate::private_network!();
        assert!(inside());
        let capture = packet_socket();
        // The parent's datagrams flow on the host's lo all along: none may show up here.
        let own = format!("own-{}", std::process::id());
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(own.as_bytes(), rx.local_addr().unwrap())
            .unwrap();
        let seen = captured(&capture, Instant::now() + Duration::from_millis(500));
        assert!(
            seen.iter().any(|p| p == own.as_bytes()),
            "the capture missed the test's own datagram on the private lo"
        );
        assert!(
            !seen.iter().any(|p| p.starts_with(b"host-")),
            "the capture in the private network saw the host's loopback traffic"
        );
    }
}
