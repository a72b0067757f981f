//! The three echo servers of this topic, and a reference tokio server, under the same load.
//!
//! `cargo bench -p ch2_echo_tokio --features solution` (or `cargo lab bench 2.7`). Without
//! `--features solution` it benchmarks your own `src/main.rs` of labs 2.5, 2.6 and 2.7.
//!
//! Each server runs in its own process, started like the grader starts it. This process is the
//! load client: N connections, each a tokio task that writes a 64-byte message and reads its
//! echo back, in a loop (a ping-pong: one message in flight per connection). We count echoes
//! per second, and read the server's resident memory and thread count from /proc while all N
//! connections are open. Client and server share the machine's cores, as on a real host where
//! the load generator is not free either.
//!
//! The servers of labs 2.5 and 2.6 belong to other packages: this bench builds them with
//! `cargo build` (same profile, same target directory, same face) before measuring.

use std::ffi::OsString;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use labkit::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connection counts to measure.
const LEVELS: [usize; 2] = [100, 1000];
/// Bytes per message.
const MESSAGE: usize = 64;
/// Measurement windows per server and level; the table shows the median.
const RUNS: usize = 3;
const WINDOW: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_millis(300);
/// Clock ticks per second of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;
/// Set in the environment of the child that plays the reference server.
const REFERENCE_ROLE: &str = "ECHO_BENCH_REFERENCE_SERVER";

fn main() {
    if std::env::var_os(REFERENCE_ROLE).is_some() {
        reference_server();
        return;
    }
    labkit::echo::raise_fd_limit(LEVELS.iter().max().unwrap() + 200);
    let face = labkit::face!();
    let [blocking, mio] = build_other_labs(face);
    let reference = std::env::current_exe().expect("path of this bench");
    let servers: [(String, Command); 4] = [
        (format!("blocking (2.5 {face})"), server_command(&blocking)),
        (format!("mio (2.6 {face})"), server_command(&mio)),
        (
            format!("tokio (2.7 {face})"),
            server_command(Path::new(labkit::lab_bin!())),
        ),
        ("tokio reference".to_string(), {
            let mut cmd = server_command(&reference);
            cmd.env(REFERENCE_ROLE, "1");
            cmd
        }),
    ];

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!();
    println!(
        "Echo servers, {MESSAGE}-byte ping-pong per connection, median of {RUNS} x {WINDOW:?} \
         after {WARM_UP:?} of warm-up"
    );
    println!(
        "client: this process (tokio, {} worker threads); each server: its own process",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "{:<24} {:>6} {:>10} {:>11} {:>8} {:>9} {:>9} {:>8}",
        "server", "conns", "msgs/s", "CPU us/msg", "RSS MiB", "KiB/conn", "virt MiB", "threads"
    );
    for level in LEVELS {
        for (name, command) in &servers {
            let row = runtime.block_on(measure(clone_command(command), level));
            match row {
                Ok(m) => println!(
                    "{:<24} {:>6} {:>10} {:>11.1} {:>8.1} {:>9.1} {:>9} {:>8}",
                    name,
                    level,
                    thousands(m.msgs_per_sec),
                    m.cpu_us_per_msg,
                    m.rss_kib as f64 / 1024.0,
                    m.rss_kib.saturating_sub(m.idle_rss_kib) as f64 / level as f64,
                    thousands(m.virt_kib / 1024),
                    m.threads
                ),
                Err(why) => println!("{name:<24} {level:>6}   not measured: {why}"),
            }
        }
    }
    println!();
    println!("CPU us/msg: the server's user + system CPU time per echo (/proc/<pid>/stat).");
    println!("RSS: resident memory with every connection open (VmRSS); KiB/conn: its growth");
    println!("over the idle server, per connection; virt: address space reserved (VmSize).");
}

/// What one server did at one level.
struct Measurement {
    msgs_per_sec: u64,
    cpu_us_per_msg: f64,
    idle_rss_kib: u64,
    rss_kib: u64,
    virt_kib: u64,
    threads: usize,
}

/// Starts the server, opens `conns` ping-pong connections, measures, then stops everything.
async fn measure(command: Command, conns: usize) -> Result<Measurement, String> {
    // Server::start waits for `listening on` (blocking the runtime thread briefly is fine here:
    // no client task exists yet). Its Drop kills the server.
    let server = std::panic::catch_unwind(AssertUnwindSafe(|| Server::start_command(command)))
        .map_err(|_| "the server did not start (see above)".to_string())?;
    let pid = server.pid();
    let idle_rss_kib = labkit::sys::status_kib(pid, "VmRSS").unwrap_or(0);

    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server.addr()))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        streams.push(stream);
    }
    let counters: Vec<Arc<AtomicU64>> = (0..conns).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(&counters)
        .map(|(stream, counter)| tokio::spawn(ping_pong(stream, counter.clone())))
        .collect();
    let total = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };

    tokio::time::sleep(WARM_UP).await;
    let (ticks_before, echoes_before) = (labkit::sys::cpu_ticks(pid).unwrap_or(0), total());
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (start, before) = (Instant::now(), total());
        tokio::time::sleep(WINDOW).await;
        let echoes = total() - before;
        rates.push((echoes as f64 / start.elapsed().as_secs_f64()) as u64);
    }
    rates.sort_unstable();
    // CPU time the server used per echo, over all windows: what a message costs the server,
    // whatever share of the cores the scheduler gave it.
    let ticks = labkit::sys::cpu_ticks(pid).unwrap_or(0) - ticks_before;
    let echoes = (total() - echoes_before).max(1);
    let measurement = Measurement {
        msgs_per_sec: rates[RUNS / 2],
        cpu_us_per_msg: ticks as f64 * 1e6 / USER_HZ / echoes as f64,
        idle_rss_kib,
        rss_kib: labkit::sys::status_kib(pid, "VmRSS").unwrap_or(0),
        virt_kib: labkit::sys::status_kib(pid, "VmSize").unwrap_or(0),
        threads: labkit::sys::thread_count(pid).unwrap_or(0),
    };
    for task in &tasks {
        task.abort();
    }
    // A task that ended before the abort met an I/O error: the server closed or reset it.
    let mut failed = 0;
    for task in tasks {
        if let Ok(Err(_)) = task.await {
            failed += 1;
        }
    }
    drop(server);
    if measurement.msgs_per_sec == 0 {
        return Err(format!(
            "no echo came back ({failed} of {conns} connections failed)"
        ));
    }
    Ok(measurement)
}

/// One connection of the load: send a message, wait for its echo, count, repeat.
async fn ping_pong(mut stream: TcpStream, counter: Arc<AtomicU64>) -> std::io::Result<()> {
    let message = [b'x'; MESSAGE];
    let mut echo = [0u8; MESSAGE];
    loop {
        stream.write_all(&message).await?;
        stream.read_exact(&mut echo).await?;
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The reference: tokio's own `io::copy` from the read half to the write half of each socket.
fn reference_server() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.to_str()?.parse().ok())
        .expect("--addr HOST:PORT");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(addr).expect("bind");
        let listener = socket.listen(1024).expect("listen");
        println!(
            "listening on {}",
            listener.local_addr().expect("local addr")
        );
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
}

/// Builds labs 2.5 and 2.6 with the same face as this bench, into this bench's target
/// directory and profile, and returns the paths of their binaries.
fn build_other_labs(face: &str) -> [PathBuf; 2] {
    // This bench runs as <target>/<profile dir>/deps/echo_servers-<hash>.
    let exe = std::env::current_exe().expect("path of this bench");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => "release",
    };
    let packages = ["ch2_echo_blocking", "ch2_echo_mio"];
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--profile", profile, "--target-dir"])
        .arg(target_dir);
    for package in packages {
        build.args(["-p", package]);
    }
    let suffix = match face {
        "src" => String::new(),
        face => {
            // Like `cargo lab verify`: without the default `src` feature, a half-done
            // src/main.rs in those labs cannot break the build of their solutions.
            let features: Vec<String> = packages.iter().map(|p| format!("{p}/{face}")).collect();
            build.args(["--no-default-features", "--features", &features.join(",")]);
            format!("-{face}")
        }
    };
    eprintln!("building the servers of labs 2.5 and 2.6 ({face})...");
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build of labs 2.5 and 2.6 failed");
    packages.map(|package| profile_dir.join(format!("{package}{suffix}")))
}

fn server_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--addr", "127.0.0.1:0"]);
    cmd
}

fn clone_command(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    copy.args(command.get_args());
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            copy.env(key, value);
        }
    }
    copy
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
