//! Grader for the mio echo server: black-box tests through the real binary.
//!
//! The three echo servers of this topic (labs 2.5, 2.6, 2.7) pass the same specification, so the
//! checks live in one place, `labkit::echo` (scripts/labkit/src/echo.rs); each test names the
//! requirement it checks (see README.md).

use labkit::{echo, lab_bin};

// Requirement 1: command line, `listening on`, clear errors, one thread.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    echo::rejects_bad_arguments_of(lab_bin!(), 1);
}

#[test]
fn runs_on_one_thread() {
    echo::runs_on_one_thread(lab_bin!(), 200, 1);
}

// Requirement 2: every byte comes back, in order.
#[test]
fn echoes_1_mib_byte_exact() {
    echo::echoes_1_mib_byte_exact(lab_bin!(), 2);
}

#[test]
fn flushes_the_echo_after_a_half_close() {
    echo::flushes_the_echo_after_a_half_close(lab_bin!(), 2);
}

#[test]
fn echoes_bytes_queued_while_it_was_stopped() {
    echo::echoes_bytes_queued_while_it_was_stopped(lab_bin!(), 2);
}

// Requirement 3: many clients at the same time, and a listen backlog of 1,024.
#[test]
fn serves_1000_concurrent_clients() {
    echo::serves_concurrent_clients(lab_bin!(), 1000, 3);
}

#[test]
fn holds_a_backlog_of_1024() {
    echo::holds_a_backlog_of_1024(lab_bin!(), 3);
}

// Requirement 4: one slow client does not stop the others.
#[test]
fn keeps_serving_while_a_client_never_reads() {
    echo::keeps_serving_while_a_client_never_reads(lab_bin!(), 4);
}

#[test]
fn buffers_little_for_a_client_that_never_reads() {
    echo::buffers_little_for_a_client_that_never_reads(lab_bin!(), 4);
}

// Requirement 5: resets do not kill the server, and every connection is closed.
#[test]
fn survives_abrupt_resets() {
    echo::survives_abrupt_resets(lab_bin!(), 5);
}

#[test]
fn closes_every_fd_after_clients_leave() {
    echo::closes_every_fd_after_clients_leave(lab_bin!(), 1000, 5);
}

// Requirement 6: an idle server sleeps in the kernel.
#[test]
fn sleeps_while_clients_are_idle() {
    echo::sleeps_while_clients_are_idle(lab_bin!(), 6);
}
