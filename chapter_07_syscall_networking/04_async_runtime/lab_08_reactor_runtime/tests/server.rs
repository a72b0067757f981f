//! Black-box tests of the echo server written on the runtime: the same specification as the
//! other echo servers of the course (`labkit::echo`), plus a server that sleeps when idle.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use labkit::echo::random_bytes;
use labkit::net::connect;
use labkit::sys::cpu_ticks;
use labkit::{Server, echo, lab_bin};

// Requirement 4: command line, `listening on`, clear errors.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    echo::rejects_bad_arguments_with_a_clear_error(lab_bin!());
}

// Requirement 5: the echo is byte-exact, through partial writes and half-closes.
#[test]
fn echoes_1_mib_byte_exact() {
    echo::echoes_1_mib_byte_exact(lab_bin!());
}

#[test]
fn flushes_the_echo_after_a_half_close() {
    echo::flushes_the_echo_after_a_half_close(lab_bin!());
}

#[test]
fn keeps_serving_while_a_client_never_reads() {
    echo::keeps_serving_while_a_client_never_reads(lab_bin!());
}

// Requirement 6: 1,000 concurrent connections, a backlog of 1,024, resets, every fd closed.
#[test]
fn serves_1000_concurrent_clients() {
    echo::serves_concurrent_clients(lab_bin!(), 1000);
}

#[test]
fn holds_a_backlog_of_1024() {
    echo::holds_a_backlog_of_1024(lab_bin!());
}

#[test]
fn survives_abrupt_resets() {
    echo::survives_abrupt_resets(lab_bin!());
}

#[test]
fn closes_every_fd_after_clients_leave() {
    echo::closes_every_fd_after_clients_leave(lab_bin!(), 1000);
}

// Requirement 7: no busy loop while idle.
#[test]
fn idles_without_burning_cpu() {
    const IDLE: Duration = Duration::from_secs(2);
    let mut server = Server::start(lab_bin!(), &[]);
    // Progress first: ten connections are served...
    let mut clients: Vec<_> = (0..10).map(|_| connect(server.addr())).collect();
    for client in &mut clients {
        let message = random_bytes(100);
        client.write_all(&message).unwrap();
        let mut echoed = vec![0; message.len()];
        client.read_exact(&mut echoed).expect("echo");
        assert_eq!(echoed, message);
    }
    // ...then stay open and silent. The server has nothing to do: it must sleep in epoll_wait.
    let before = cpu_ticks(server.pid()).expect("/proc/<pid>/stat");
    thread::sleep(IDLE);
    let used = cpu_ticks(server.pid()).expect("/proc/<pid>/stat") - before;
    if !server.is_running() {
        server.fail("died while idle");
    }
    // 100 ticks per second of CPU: a busy loop burns tens even on a loaded machine.
    assert!(
        used <= 5,
        "the idle server used {used} clock ticks of CPU in {IDLE:?}: it must park in epoll_wait \
         (no timeout when no timer is pending), not poll in a loop"
    );
}
