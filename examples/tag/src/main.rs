//! `tag`: tickforge served as a library from a studio's own `main`, with
//! the built-in games and `tag` registered.
//!
//!     tag [--listen ADDR]      (default 127.0.0.1:7701)

use std::process::ExitCode;
use std::sync::Arc;
use tickforge_server::signals::ShutdownSignals;
use tickforge_server::ServerConfig;

fn main() -> ExitCode {
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:7701".parse().expect("a valid address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse())) {
            ("--listen", Some(Ok(addr))) => config.listen = addr,
            _ => {
                eprintln!("tag: usage: tag [--listen ADDR]");
                return ExitCode::from(2);
            }
        }
    }
    config.games.register(Arc::new(tickforge_example_tag::Tag));

    let signals = ShutdownSignals::block();
    let server = match tickforge_server::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tag: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("tag: listening on ws://{}/ws", server.local_addr());
    signals.wait_serving(&server);
    server.shutdown();
    match server.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tag: {e}");
            ExitCode::FAILURE
        }
    }
}
