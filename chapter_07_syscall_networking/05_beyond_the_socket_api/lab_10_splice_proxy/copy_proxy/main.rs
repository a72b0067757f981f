//! The benchmark's rival: a copying TCP proxy as a std user writes it. Two threads per
//! connection, one per direction, each `std::io::copy(&mut from, &mut to)` (recv into an 8 KiB
//! buffer on its stack, send it out), then `shutdown(Write)` to pass the end-of-file on.
//!
//! Not a lab face: the lab's benchmark (`cargo lab bench 7.10`) runs it beside the splice
//! proxy, with the same command line: `--listen HOST:PORT --upstream HOST:PORT`.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

use clap::Parser;

/// `ch7_splice_proxy-copy [--listen HOST:PORT] --upstream HOST:PORT`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_splice_proxy-copy",
    about = "A copying TCP proxy: std::io::copy on a thread per direction"
)]
struct Args {
    /// Where to listen (port 0: the kernel picks one; the bound address is printed)
    #[arg(
        long,
        visible_alias = "addr",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7001"
    )]
    listen: SocketAddr,
    /// The server each connection is forwarded to
    #[arg(long, value_name = "HOST:PORT")]
    upstream: SocketAddr,
}

/// One direction: copy until end-of-file, pass it on; on an error, end both directions (the
/// other thread's blocked read returns).
fn forward(mut from: TcpStream, mut to: TcpStream) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}

fn serve(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let upstream = TcpStream::connect(upstream)?;
    let (client2, upstream2) = (client.try_clone()?, upstream.try_clone()?);
    thread::spawn(move || forward(client, upstream));
    thread::spawn(move || forward(upstream2, client2));
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(
        "usage: ch7_splice_proxy-copy [--listen HOST:PORT] --upstream HOST:PORT",
    ) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "ch7_splice_proxy-copy: cannot listen on {}: {e}",
                args.listen
            );
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => {
            eprintln!("ch7_splice_proxy-copy: {e}");
            return ExitCode::from(1);
        }
    }
    for client in listener.incoming() {
        match client.and_then(|client| serve(client, args.upstream)) {
            Ok(()) => {}
            Err(e) => eprintln!("ch7_splice_proxy-copy: {e}"),
        }
    }
    ExitCode::SUCCESS
}
