//! `cargo lab bench 7.10` (or `cargo bench -p ch7_splice_proxy --no-default-features --features
//! solution`)
//!
//! Forwarding throughput and CPU cost of this lab's splice proxy against a copying proxy
//! (`ch7_splice_proxy-copy`: a thread per direction, `std::io::copy`), both run as processes
//! with the same command line, and the same traffic without a proxy for the machine's ceiling.
//! This process is the client and the upstream: client threads send 1 GiB in total through the
//! proxy as fast as they can, the upstream reads and discards it.
//!
//! Per run: the wall time from the first byte sent to the upstream's last end-of-file gives the
//! throughput; the proxy's user and system CPU time over the run (`/proc/<pid>/stat`, fields 14
//! and 15, in clock ticks) gives its CPU seconds per GiB. The proxies alternate; the table
//! shows the median of five runs each.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use labkit::Server;

const GIB: u64 = 1 << 30;
/// Bytes forwarded per run, split evenly between the connections.
const TOTAL: u64 = GIB;
const RUNS: usize = 5;
const CONNECTIONS: [usize; 2] = [1, 4];
/// The size of each `write` of the clients and each `read` of the upstream.
const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, Copy)]
enum Proxy {
    Splice,
    Copy,
    /// No proxy: the client talks to the upstream directly, for the ceiling of the machine.
    Direct,
}

impl Proxy {
    fn name(self) -> &'static str {
        match self {
            Proxy::Splice => "splice (lab)",
            Proxy::Copy => "copy (std::io::copy)",
            Proxy::Direct => "none (client -> upstream)",
        }
    }

    fn binary(self) -> Option<&'static str> {
        match self {
            Proxy::Splice => Some(labkit::lab_bin!()),
            Proxy::Copy => Some(env!("CARGO_BIN_EXE_ch7_splice_proxy-copy")),
            Proxy::Direct => None,
        }
    }
}

/// One run's measurements.
#[derive(Debug, Clone, Copy)]
struct Run {
    seconds: f64,
    user_ticks: u64,
    system_ticks: u64,
}

/// An upstream that reads every connection to its end and discards the bytes.
fn start_sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0; CHUNK];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// User and system CPU ticks of `pid`, fields 14 and 15 of `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    (fields[11].parse().unwrap(), fields[12].parse().unwrap())
}

fn run_once(proxy: Proxy, sink: SocketAddr, connections: usize) -> Run {
    let server = proxy.binary().map(|binary| {
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", "127.0.0.1:0", "--upstream"])
            .arg(sink.to_string());
        Server::start_command(cmd)
    });
    let target = server.as_ref().map_or(sink, Server::addr);
    let streams: Vec<TcpStream> = (0..connections)
        .map(|_| TcpStream::connect(target).expect("connect"))
        .collect();
    let each = TOTAL / connections as u64;
    let ticks = || {
        server
            .as_ref()
            .map_or((0, 0), |server| cpu_ticks(server.pid()))
    };
    let (user_before, system_before) = ticks();
    let started = Instant::now();
    thread::scope(|scope| {
        for mut stream in streams {
            scope.spawn(move || {
                let block = vec![0x5a; CHUNK];
                let mut left = each;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    stream
                        .write_all(&block[..n])
                        .expect("send through the proxy");
                    left -= n as u64;
                }
                // The proxy passes the end-of-file on; the sink then closes, and the proxy
                // closes our side: reading that end means every byte reached the sink.
                stream.shutdown(Shutdown::Write).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .unwrap();
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let (user_after, system_after) = ticks();
    Run {
        seconds,
        user_ticks: user_after - user_before,
        system_ticks: system_after - system_before,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // SAFETY: sysconf takes an integer and touches no memory.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let sink = start_sink();
    println!(
        "Forwarding {} GiB per run, client -> proxy -> upstream on loopback, median of {RUNS} runs",
        TOTAL / GIB
    );
    println!();
    println!("| proxy | connections | GiB/s | CPU s per GiB | user s per GiB | system s per GiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for connections in CONNECTIONS {
        let mut runs: Vec<(Proxy, Vec<Run>)> = [Proxy::Splice, Proxy::Copy, Proxy::Direct]
            .into_iter()
            .map(|proxy| (proxy, Vec::new()))
            .collect();
        for _ in 0..RUNS {
            for (proxy, results) in &mut runs {
                results.push(run_once(*proxy, sink, connections));
            }
        }
        for (proxy, results) in runs {
            let gib = TOTAL as f64 / GIB as f64;
            let per_gib = |ticks: fn(&Run) -> u64| {
                median(
                    results
                        .iter()
                        .map(|r| ticks(r) as f64 / ticks_per_second / gib)
                        .collect(),
                )
            };
            let throughput = median(results.iter().map(|r| gib / r.seconds).collect());
            if proxy.binary().is_none() {
                println!(
                    "| {} | {connections} | {throughput:.2} | | | |",
                    proxy.name()
                );
                continue;
            }
            println!(
                "| {} | {connections} | {throughput:.2} | {:.3} | {:.3} | {:.3} |",
                proxy.name(),
                per_gib(|r| r.user_ticks + r.system_ticks),
                per_gib(|r| r.user_ticks),
                per_gib(|r| r.system_ticks),
            );
        }
    }
}
