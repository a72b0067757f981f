//! The load client the grader and the benchmark run in a separate process: each side of 10,000
//! connections needs 10,000 file descriptors. Its code is shared by chapter 7's echo labs and
//! lives in `labkit::load_client`.

fn main() -> std::process::ExitCode {
    labkit::load_client::main()
}
