//! `ch7_reactor_runtime-load-client`, the benchmark's load generator. It runs as a process of
//! its own because each side of 10,000 connections holds 10,000 file descriptors; its code is
//! `labkit::load_client`, shared by chapter 7's echo labs.

fn main() -> std::process::ExitCode {
    labkit::load_client::main()
}
