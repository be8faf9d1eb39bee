//! The `reswhis` command: parses the command line and hands over to the library
//! (`reswhis::server`, `reswhis::simulate`, `reswhis::bench`).

use std::process::ExitCode;

use clap::Parser;

use reswhis::config::{Cli, Command, ServeArgs};
use reswhis::server::Server;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(
        "info,whisper_rs=warn,whisper_rs::whisper_logging_hook=warn,whisper_rs::ggml_logging_hook=warn",
    ))
    .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Simulate(args)) => {
            reswhis::simulate::run(&args).map(|report| eprintln!("{report}"))
        }
        Some(Command::Bench(args)) => reswhis::bench::run(&args),
        Some(Command::Spin) => reswhis::bench::spin(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", reswhis::error_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// Exit status when a second SIGINT/SIGTERM cuts the graceful shutdown short.
const FORCED_EXIT: i32 = 130;

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    // SIGINT (Ctrl-C), SIGTERM (systemd, `docker stop`, Kubernetes) and SIGHUP all stop
    // the server gracefully (ctrlc's `termination` feature); a second one exits at once.
    let signals = std::sync::atomic::AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if signals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            let _ = stop_tx.try_send(());
        } else {
            eprintln!("second stop signal: exiting now, without flushing sessions");
            std::process::exit(FORCED_EXIT);
        }
    })?;
    let server = Server::start(args)?;
    // Machine-readable, for the programs that start the server: {"listening":"HOST:PORT"}.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", server.listening_line());
        let _ = out.flush();
    }
    let _ = stop_rx.recv();
    log::info!("shutting down: flushing sessions (a second Ctrl-C/SIGTERM exits at once)");
    server.shutdown();
    Ok(())
}
