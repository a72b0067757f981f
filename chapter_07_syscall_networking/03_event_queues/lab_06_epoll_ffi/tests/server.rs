//! Black-box tests of the echo server: the same specification as chapter 2's echo servers
//! (the checks live in `labkit::echo`), now on your own epoll wrapper.

use labkit::{echo, lab_bin};

// Requirement 5: command line, `listening on`, clear errors.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    echo::rejects_bad_arguments_with_a_clear_error(lab_bin!());
}

// Requirement 6: every byte comes back, in order, through partial writes and half-closes.
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

// Requirement 7: a backlog of 1,024, resets survived, every fd closed.
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
