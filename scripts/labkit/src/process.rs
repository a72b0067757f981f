//! Running the lab's binary: one-shot commands with a timeout, and long-running servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a one-shot command may run before the grader kills it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to print `listening on <addr>`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The exit code; `None` when a signal ended the process (a panic is code 101).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `bin args...` to completion (at most [`RUN_TIMEOUT`]) with empty stdin.
pub fn run(bin: &str, args: &[&str]) -> Output {
    run_with_stdin(bin, args, &[])
}

/// Runs `bin args...` feeding `stdin`, and returns its output. Panics, with what the program
/// printed so far, if it does not finish within [`RUN_TIMEOUT`].
pub fn run_with_stdin(bin: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    run_command(cmd, stdin, RUN_TIMEOUT)
}

/// Makes the process `cmd` starts die (SIGKILL) when the thread that starts it ends, the
/// test's thread, or when the test executable itself is killed: a grader stopped by a timeout
/// or by Ctrl-C never leaves a lab server running behind it. Every spawn in labkit does this.
pub fn die_with_test(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2),
    // getppid(2) and raise(3), which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then no signal would come.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        })
    }
}

/// Runs a prepared command with a timeout. Stdout and stderr are drained on their own threads
/// so a chatty child can never block on a full pipe while we wait for it.
pub fn run_command(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = die_with_test(&mut cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let input = stdin.to_vec();
    let mut child_stdin = child.stdin.take().expect("stdin is piped");
    let writer = thread::spawn(move || {
        // A program that exits without reading its input closes the pipe: not our concern.
        let _ = child_stdin.write_all(&input);
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = wait_timeout(&mut child, timeout);
    let _ = writer.join();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{cmd:?} did not finish within {timeout:?} (killed)\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Waits for `child` at most `timeout`; kills it and returns `None` when time runs out.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A server process started from the lab's binary with `--addr 127.0.0.1:0`.
///
/// The server must print `listening on <addr>` on stdout once it accepts connections;
/// [`Server::start`] waits for that line (never for a fixed sleep). Everything the server
/// prints is kept and shown if the test fails. Dropping the `Server` kills the process.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    name: String,
}

impl Server {
    /// Starts `bin --addr 127.0.0.1:0 args...` and waits for its `listening on` line.
    pub fn start(bin: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(bin);
        cmd.args(["--addr", "127.0.0.1:0"]).args(args);
        Server::start_command(cmd)
    }

    /// Starts a prepared command (which must make the server print `listening on <addr>`).
    pub fn start_command(mut cmd: Command) -> Server {
        let name = format!("{cmd:?}");
        let mut child = die_with_test(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        follow(stdout, log.clone(), Some(tx));
        follow(stderr, log.clone(), None);

        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            name,
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(mpsc::RecvTimeoutError::Timeout) => server.fail(&format!(
                "did not print `listening on <addr>` within {STARTUP_TIMEOUT:?}"
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                server.fail("exited before printing `listening on <addr>`")
            }
        }
        server
    }

    /// The address the server announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr, interleaved by line).
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGKILL and reaps the process: the crash half of a crash-recovery test.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the server to stop (SIGTERM) and waits for it at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        wait_timeout(&mut self.child, timeout)
    }

    /// Panics with `why` and the server's output so far.
    pub fn fail(&mut self, why: &str) -> ! {
        self.kill();
        panic!(
            "server {} {why}\n--- server output ---\n{}",
            self.name,
            self.output()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("--- output of server {} ---\n{}", self.name, self.output());
        }
    }
}

/// Copies lines of a child's pipe into `log`; on stdout, reports the `listening on` address.
fn follow(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    mut listening: Option<mpsc::Sender<SocketAddr>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            log.lock().unwrap().push_str(&text);
            if let Some(addr) = parse_listening(&text)
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(addr);
            }
            line.clear();
        }
    });
}

/// Finds `listening on <addr>` in a line (anywhere, so log prefixes are tolerated).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let word = rest.split_whitespace().next()?;
    let word = word
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    word.trim_end_matches(['/', ',', '.']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(parse_listening("listening on 127.0.0.1:4000\n"), Some(a));
        assert_eq!(
            parse_listening("INFO server: listening on http://127.0.0.1:4000/"),
            Some(a)
        );
        assert_eq!(parse_listening("listening on [::1]:80").unwrap().port(), 80);
        assert_eq!(parse_listening("listening on nothing"), None);
        assert_eq!(parse_listening("ready"), None);
    }

    #[test]
    fn run_captures_output_and_exit_code() {
        let out = run("sh", &["-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!(out.code(), Some(3));
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
    }

    /// The helper's side of the next test: starts a server, says its pid, then waits to be
    /// killed.
    fn start_server_and_wait() -> ! {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo listening on 127.0.0.1:9; exec sleep 600"]);
        let server = Server::start_command(cmd);
        println!("server pid {}", server.pid());
        std::io::stdout().flush().unwrap();
        std::mem::forget(server); // its Drop would kill it: we want the kernel to
        thread::sleep(Duration::from_secs(600));
        std::process::exit(0)
    }

    /// Whether `pid` still runs (a zombie waiting for its reaper does not).
    fn is_running(pid: u32) -> bool {
        crate::sys::process_state(pid).is_some_and(|state| state != 'Z')
    }

    #[test]
    fn a_server_dies_with_the_test_executable_that_started_it() {
        const HELPER: &str = "LABKIT_TEST_START_SERVER";
        if std::env::var_os(HELPER).is_some() {
            start_server_and_wait();
        }
        // A test executable (this one, running only this test) starts a server, then is killed
        // with SIGKILL, as a timeout would: no Drop, no cleanup code runs.
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                "process::tests::a_server_dies_with_the_test_executable_that_started_it",
                "--exact",
                "--nocapture",
            ])
            .env(HELPER, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(helper.stdout.take().unwrap()).lines();
        let pid: u32 = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("server pid ")?.parse().ok())
            .expect("the helper prints its server's pid");
        assert!(is_running(pid), "the server should run while its test does");
        helper.kill().unwrap();
        helper.wait().unwrap();
        let gone = crate::wait::until(Duration::from_secs(5), || !is_running(pid));
        if !gone {
            // SAFETY: kill(2) on a pid we started; it is ours to clean up.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        assert!(
            gone,
            "server {pid} outlived the test executable that started it"
        );
    }

    #[test]
    fn run_feeds_stdin() {
        let out = run_with_stdin("cat", &[], b"hello");
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    #[should_panic(expected = "did not finish")]
    fn run_kills_a_hung_command() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        run_command(cmd, &[], Duration::from_millis(100));
    }

    #[test]
    fn server_waits_for_its_listening_line() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo booting >&2; echo 'listening on 127.0.0.1:9'; sleep 30",
        ]);
        let mut server = Server::start_command(cmd);
        assert_eq!(server.addr().port(), 9);
        assert!(server.is_running());
        server.kill();
        assert!(!server.is_running());
    }

    #[test]
    #[should_panic(expected = "exited before printing")]
    fn server_that_dies_fails_fast() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo oops >&2; exit 1"]);
        Server::start_command(cmd);
    }
}
