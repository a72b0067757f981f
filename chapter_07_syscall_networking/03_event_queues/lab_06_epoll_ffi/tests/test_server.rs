//! Black-box tests of the echo server: the same specification as chapter 2's echo servers
//! (the checks live in `labkit::echo`), now on your own epoll wrapper.

use labkit::{echo, lab_bin};

// Requirement 5: command line, `listening on`, clear errors.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    echo::rejects_bad_arguments_of(lab_bin!(), 5);
}

// Requirement 6: every byte comes back, in order, through partial writes and half-closes.
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

// Requirement 7: a backlog of 1,024, resets survived, every fd closed.
#[test]
fn holds_a_backlog_of_1024() {
    echo::holds_a_backlog_of_1024(lab_bin!(), 7);
}

#[test]
fn survives_abrupt_resets() {
    echo::survives_abrupt_resets(lab_bin!(), 7);
}

#[test]
fn closes_every_fd_after_clients_leave() {
    echo::closes_every_fd_after_clients_leave(lab_bin!(), 1000, 7);
}

// Requirement 9: one thread, asleep in epoll_wait while nothing happens.
#[test]
fn runs_on_one_thread() {
    echo::runs_on_one_thread(lab_bin!(), 200, 9);
}

#[test]
fn sleeps_while_clients_are_idle() {
    echo::sleeps_while_clients_are_idle(lab_bin!(), 9);
}
