//! The server under load from another process, `ch7_io_uring-load-client`
//! (`labkit::load_client`): each side of 10,000 connections holds 10,000 file descriptors, and
//! a process may hold 20,000 here. The client opens every connection and gets a first echo
//! through each, then waits on its stdin (`--hold`) while a test looks at the server; then it
//! sends the other messages, checks every echo byte for byte, and exits 0, or prints
//! `error: ...` and exits 1.
//!
//! Two things are measured while it runs: the server's file descriptors (`/proc/<pid>/fd`), and
//! its system calls (`strace -c -f -p <pid>`, attached for the message phase only).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use labkit::echo::{random_bytes, wait_for};
use labkit::net::connect;
use labkit::process::{die_with_test, wait_timeout};
use labkit::sys::{fd_count, require_strace, status_field};
use labkit::{Server, lab_bin};

const CLIENT: &str = env!("CARGO_BIN_EXE_ch7_io_uring-load-client");
/// The client's own deadline; the test waits a little longer for it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(25);

/// The load client, started with `--hold`.
struct LoadClient {
    child: Child,
    lines: mpsc::Receiver<String>,
    connections: usize,
    messages: usize,
}

impl LoadClient {
    fn start(server: &Server, connections: usize, messages: usize) -> LoadClient {
        let mut cmd = Command::new(CLIENT);
        cmd.args(["--addr", &server.addr().to_string()])
            .args(["--connections", &connections.to_string()])
            .args(["--messages", &messages.to_string()])
            .args(["--timeout-secs", &CLIENT_TIMEOUT.as_secs().to_string()])
            .arg("--hold");
        let mut child = die_with_test(&mut cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the load client");
        // Its stdout, line by line, on a channel: every wait can have a timeout.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LoadClient {
            child,
            lines,
            connections,
            messages,
        }
    }

    /// Kills the client and fails the test with what both programs printed.
    fn fail(&mut self, server: &mut Server, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        server.fail(&format!("{why}\n--- load client stderr ---\n{stderr}"))
    }

    /// Phase 1: every connection is open and got its first echo.
    fn wait_connected(&mut self, server: &mut Server, requirement: u32) {
        match self
            .lines
            .recv_timeout(CLIENT_TIMEOUT + Duration::from_secs(5))
        {
            Ok(line) if line.starts_with("connected") => {}
            Ok(line) => self.fail(
                server,
                &format!("requirement {requirement}: client said: {line}"),
            ),
            Err(_) => self.fail(
                server,
                &format!(
                    "requirement {requirement}: the {} connections did not all get their \
                     first echo",
                    self.connections
                ),
            ),
        }
    }

    /// Phase 2: the other messages; returns how many were echoed (all of them, or it fails).
    fn finish(&mut self, server: &mut Server, requirement: u32) -> usize {
        let stdin = self.child.stdin.take().expect("piped stdin");
        let _ = (&stdin).write_all(b"go\n");
        drop(stdin);
        match wait_timeout(&mut self.child, CLIENT_TIMEOUT + Duration::from_secs(5)) {
            Some(status) if status.success() => {}
            Some(_) => self.fail(
                server,
                &format!("requirement {requirement}: the load client failed"),
            ),
            None => self.fail(
                server,
                &format!("requirement {requirement}: the load client did not finish"),
            ),
        }
        let summary = self
            .lines
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        assert!(
            summary.starts_with("echoed"),
            "requirement {requirement}: the load client's last line is {summary:?}; wanted \
             its summary, `echoed K messages in Y ms`"
        );
        self.connections * (self.messages - 1)
    }
}

/// One connection echoed once, so the server has made whatever it makes lazily; the baseline
/// is its fd count minus that connection.
fn baseline_fds(server: &mut Server, requirement: u32) -> usize {
    let mut probe: TcpStream = connect(server.addr());
    let message = random_bytes(100);
    probe.write_all(&message).expect("write the probe");
    let mut echoed = vec![0; message.len()];
    if let Err(e) = probe.read_exact(&mut echoed) {
        server.fail(&format!(
            "requirement {requirement}: no echo of a 100-byte probe: {e}"
        ));
    }
    assert!(
        echoed == message,
        "requirement {requirement}: the echo of a 100-byte probe differs from what was sent"
    );
    let baseline = fd_count(server.pid()) - 1;
    drop(probe);
    baseline
}

// Requirement 9: C10K.
#[test]
fn serves_10000_concurrent_connections_and_closes_them_all() {
    const CONNECTIONS: usize = 10_000;
    let mut server = Server::start(lab_bin!(), &[]);
    let pid = server.pid();
    let baseline = baseline_fds(&mut server, 9);
    let mut client = LoadClient::start(&server, CONNECTIONS, 4);
    client.wait_connected(&mut server, 9);
    let open = fd_count(pid);
    if open < baseline + CONNECTIONS {
        client.fail(
            &mut server,
            &format!(
                "requirement 9: all {CONNECTIONS} clients are connected, yet the server holds \
                 {open} fds (baseline {baseline}): one fd per connection is expected"
            ),
        );
    }
    client.finish(&mut server, 9);
    let closed = wait_for(Duration::from_secs(15), || fd_count(pid) <= baseline);
    if !closed {
        server.fail(&format!(
            "requirement 9: after the {CONNECTIONS} clients left, the server still holds {} fds \
             (baseline {baseline}): close a connection on end of file, reset and error",
            fd_count(pid)
        ));
    }
    if !server.is_running() {
        server.fail("requirement 9: died");
    }
}

/// `strace -c -f -p <pid>`: counts the system calls of a running process until interrupted.
struct Strace {
    child: Child,
    log: PathBuf,
}

impl Strace {
    /// Attaches to `pid` and returns once the kernel says it is traced.
    fn attach(pid: u32) -> Strace {
        let log = std::env::temp_dir().join(format!(
            "ch7-io-uring-strace-{}-{pid}.txt",
            std::process::id()
        ));
        let mut cmd = Command::new(require_strace());
        cmd.args(["-c", "-f", "-p", &pid.to_string(), "-o"])
            .arg(&log);
        let child = die_with_test(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strace");
        let mut strace = Strace { child, log };
        let traced = wait_for(Duration::from_secs(10), || {
            status_field(&pid.to_string(), "TracerPid").is_some_and(|t| t != "0")
        });
        if !traced {
            let _ = strace.child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = strace.child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!(
                "strace could not attach to the server within 10 s (run as root, or allow \
                 ptrace: `sysctl kernel.yama.ptrace_scope=0`): {stderr}"
            );
        }
        strace
    }

    /// Detaches (SIGINT, as Ctrl-C would) and returns the calls counted, by name.
    fn finish(mut self) -> BTreeMap<String, u64> {
        // SAFETY: kill(2) on a process this test started; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        if wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            panic!("strace did not stop within 10 s of SIGINT");
        }
        let summary = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        // `% time  seconds  usecs/call  calls  [errors]  syscall`: calls is the fourth column,
        // the name the last; the `total` line and the rules are skipped.
        summary
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let name = *fields.last()?;
                let calls = fields.get(3)?.parse().ok()?;
                (fields.len() >= 5 && name != "total").then(|| (name.to_string(), calls))
            })
            .collect()
    }
}

/// 1,000 connections, 16 to 25 messages each: the message phase (15,000 to 24,000 messages)
/// and the closes after it, traced. Returns the calls by name and the messages echoed
/// meanwhile.
fn traced_load(requirement: u32) -> (BTreeMap<String, u64>, usize) {
    let mut server = Server::start(lab_bin!(), &[]);
    let pid = server.pid();
    let baseline = baseline_fds(&mut server, requirement);
    let messages = 16 + random_bytes(1)[0] as usize % 10;
    let mut client = LoadClient::start(&server, 1000, messages);
    client.wait_connected(&mut server, requirement);
    let strace = Strace::attach(pid);
    let echoed = client.finish(&mut server, requirement);
    wait_for(Duration::from_secs(10), || fd_count(pid) <= baseline);
    let calls = strace.finish();
    if !server.is_running() {
        server.fail(&format!("requirement {requirement}: died under strace"));
    }
    (calls, echoed)
}

fn listing(calls: &BTreeMap<String, u64>) -> String {
    calls
        .iter()
        .map(|(name, n)| format!("{name} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// Requirement 3: accept, recv and send are requests on the ring, not system calls.
#[test]
fn does_its_socket_io_through_the_ring() {
    let (calls, echoed) = traced_load(3);
    let enters = calls.get("io_uring_enter").copied().unwrap_or(0);
    assert!(
        enters > 0,
        "requirement 3: the server echoed {echoed} messages without a single io_uring_enter \
         ({}); wanted its socket I/O submitted through the ring",
        listing(&calls)
    );
    const SOCKET_IO: [&str; 20] = [
        "read",
        "write",
        "readv",
        "writev",
        "recvfrom",
        "sendto",
        "recvmsg",
        "sendmsg",
        "recvmmsg",
        "sendmmsg",
        "accept",
        "accept4",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "sendfile",
    ];
    let direct: Vec<String> = SOCKET_IO
        .iter()
        .filter_map(|name| calls.get(*name).map(|n| format!("{name} x{n}")))
        .collect();
    assert!(
        direct.is_empty(),
        "requirement 3: while echoing {echoed} messages the server made these system calls \
         itself: {}; wanted accept, recv and send as requests on the ring (all its calls: {})",
        direct.join(", "),
        listing(&calls)
    );
}

// Requirement 4: one io_uring_enter for many requests.
#[test]
fn makes_fewer_system_calls_per_message_than_epoll() {
    let (calls, echoed) = traced_load(4);
    let total: u64 = calls.values().sum();
    let per_message = total as f64 / echoed as f64;
    eprintln!(
        "{total} system calls for {echoed} messages: {per_message:.3} per message ({})",
        listing(&calls)
    );
    assert!(
        per_message <= 1.5,
        "requirement 4: {total} system calls for {echoed} messages, {per_message:.2} per \
         message ({}); wanted at most 1.5, where an epoll server makes 2 at least (a recv and \
         a send): submit a whole batch of SQEs with one io_uring_enter, never one per SQE",
        listing(&calls)
    );
}
