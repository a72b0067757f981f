//! The C10K test: 10,000 connections open at the same time, each exchanging several random
//! messages with the server, every echo checked byte for byte.
//!
//! The clients live in another process, `ch7_epoll_ffi-c10k-client` (labkit::load_client): each side
//! of 10,000 connections holds 10,000 file descriptors, and a process may hold 20,000 here. The
//! client opens every connection and gets a first echo through each, then waits on its stdin
//! while this test counts the server's fds; then it sends the other messages and exits 0, or
//! prints `error: ...` and exits 1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use labkit::echo::{random_bytes, wait_for};
use labkit::net::connect;
use labkit::process::wait_timeout;
use labkit::sys::fd_count;
use labkit::{Server, lab_bin};

const CLIENT: &str = env!("CARGO_BIN_EXE_ch7_epoll_ffi-c10k-client");
const CONNECTIONS: usize = 10_000;
const MESSAGES: usize = 4;
/// The client's own deadline; this test waits a little longer for it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(25);

/// The client's stdout, line by line, on a channel (so every wait can have a timeout).
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills the client and fails with what both programs printed.
fn fail(server: &mut Server, client: &mut Child, why: &str) -> ! {
    let _ = client.kill();
    let _ = client.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = client.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    server.fail(&format!("{why}\n--- client stderr ---\n{stderr}"))
}

/// One connection echoed once, so the server has created whatever it creates lazily; the
/// baseline is its fd count minus that connection.
fn baseline_fds(server: &Server) -> usize {
    let mut probe: TcpStream = connect(server.addr());
    let message = random_bytes(100);
    probe.write_all(&message).unwrap();
    let mut echoed = vec![0; message.len()];
    probe.read_exact(&mut echoed).expect("echo of the probe");
    assert!(
        echoed == message,
        "requirement 8: the echo of a {}-byte probe differs from what was sent",
        message.len()
    );
    let baseline = fd_count(server.pid()) - 1;
    drop(probe);
    baseline
}

// Requirement 8: C10K.
#[test]
fn serves_10000_concurrent_connections_and_closes_them_all() {
    let mut server = Server::start(lab_bin!(), &[]);
    let pid = server.pid();
    let baseline = baseline_fds(&server);

    let mut client = Command::new(CLIENT)
        .args(["--addr", &server.addr().to_string()])
        .args(["--connections", &CONNECTIONS.to_string()])
        .args(["--messages", &MESSAGES.to_string()])
        .args(["--timeout-secs", &CLIENT_TIMEOUT.as_secs().to_string()])
        .arg("--hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the load client");
    let stdout = lines(client.stdout.take().unwrap());

    // Phase 1: every connection is open and got its first echo.
    match stdout.recv_timeout(CLIENT_TIMEOUT + Duration::from_secs(5)) {
        Ok(line) if line.starts_with("connected") => {}
        Ok(line) => fail(&mut server, &mut client, &format!("client said: {line}")),
        Err(_) => fail(
            &mut server,
            &mut client,
            &format!("the {CONNECTIONS} connections did not all get their first echo"),
        ),
    }
    let open = fd_count(pid);
    if open < baseline + CONNECTIONS {
        fail(
            &mut server,
            &mut client,
            &format!(
                "all {CONNECTIONS} clients are connected, yet the server holds {open} fds \
                 (baseline {baseline}): one fd per connection is expected"
            ),
        );
    }

    // Phase 2: the other messages, then the client closes everything (half FIN, half RST).
    client.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = wait_timeout(&mut client, CLIENT_TIMEOUT + Duration::from_secs(5));
    match status {
        Some(status) if status.success() => {}
        Some(_) => fail(&mut server, &mut client, "the load client failed"),
        None => fail(&mut server, &mut client, "the load client did not finish"),
    }
    let summary = stdout
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    assert!(
        summary.starts_with("echoed"),
        "requirement 8: the load client's last line is {summary:?}; wanted its summary, \
         `echoed K messages in Y ms`"
    );
    eprintln!("{summary}");

    let closed = wait_for(Duration::from_secs(15), || fd_count(pid) <= baseline);
    if !closed {
        server.fail(&format!(
            "after the {CONNECTIONS} clients left, the server still holds {} fds (baseline \
             {baseline}): close a connection on end of file, reset and error",
            fd_count(pid)
        ));
    }
    if !server.is_running() {
        server.fail("died");
    }
}
