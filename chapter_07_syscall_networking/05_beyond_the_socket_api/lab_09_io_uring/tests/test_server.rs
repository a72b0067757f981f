//! Black-box tests of the echo server: the specification every echo server of the course
//! passes (the checks live in `labkit::echo`), now with the I/O done by the kernel on the
//! server's behalf, into and out of buffers the server lends it.

use std::net::TcpStream;

use labkit::net::connect;
use labkit::{Server, echo, lab_bin};

// Requirement 1: command line, `listening on`, clear errors.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    echo::rejects_bad_arguments_of(lab_bin!(), 1);
}

// Requirement 5: a buffer per connection, the kernel's until the completion is reaped. A
// thousand clients send at once, so a thousand recvs complete in the same few batches.
#[test]
fn echoes_1000_concurrent_clients_each_its_own_bytes() {
    echo::serves_concurrent_clients(lab_bin!(), 1000, 5);
}

// Requirement 6: every byte comes back, in order, through short sends and half-closes, and a
// client that does not read is not read either.
#[test]
fn echoes_1_mib_byte_exact() {
    echo::echoes_1_mib_byte_exact(lab_bin!(), 6);
}

#[test]
fn flushes_the_echo_after_a_half_close() {
    echo::flushes_the_echo_after_a_half_close(lab_bin!(), 6);
}

#[test]
fn echoes_bytes_queued_while_it_was_stopped() {
    echo::echoes_bytes_queued_while_it_was_stopped(lab_bin!(), 6);
}

#[test]
fn keeps_serving_while_a_client_never_reads() {
    echo::keeps_serving_while_a_client_never_reads(lab_bin!(), 6);
}

#[test]
fn buffers_little_for_a_client_that_never_reads() {
    echo::buffers_little_for_a_client_that_never_reads(lab_bin!(), 6);
}

// Requirement 7: end of file and errors close the connection; resets do not kill the server.
#[test]
fn closes_every_fd_after_clients_leave() {
    echo::closes_every_fd_after_clients_leave(lab_bin!(), 1000, 7);
}

#[test]
fn survives_abrupt_resets() {
    echo::survives_abrupt_resets(lab_bin!(), 7);
}

/// With completion I/O an error is a CQE like any other: a client that resets while the
/// server's recv waits on its socket completes that recv with `res = -ECONNRESET`. Clients are
/// echoed once (so each has a recv in flight), then all reset at once; the server must close
/// those connections and serve the next client.
#[test]
fn survives_resets_while_its_recvs_are_in_flight() {
    let mut server = Server::start(lab_bin!(), &[]);
    for round in 0..3 {
        let mut streams: Vec<TcpStream> = (0..50).map(|_| connect(server.addr())).collect();
        echo::exchange_messages(&mut streams, 7);
        for stream in streams {
            echo::reset(stream);
        }
        let mut next = connect(server.addr());
        echo::exchange_messages(std::slice::from_mut(&mut next), 7);
        if !server.is_running() {
            server.fail(&format!(
                "requirement 7: died after 50 clients reset while their recvs were in flight \
                 (round {round}): a CQE's res is -errno on failure, never a length"
            ));
        }
    }
}

// Requirement 8: a ring smaller than the load. 1,024 connections wait in the backlog while the
// server is stopped; then it accepts them in one burst, more CQEs than its completion queue
// holds and more recvs than its submission queue holds.
#[test]
fn holds_a_backlog_of_1024() {
    echo::holds_a_backlog_of_1024(lab_bin!(), 8);
}

// Requirement 10: one thread, asleep in io_uring_enter while nothing happens.
#[test]
fn runs_on_one_thread() {
    echo::runs_on_one_thread(lab_bin!(), 200, 10);
}

#[test]
fn sleeps_while_clients_are_idle() {
    echo::sleeps_while_clients_are_idle(lab_bin!(), 10);
}
