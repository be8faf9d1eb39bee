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
        Some(Command::Simulate(args)) => simulate(&args),
        Some(Command::Bench(args)) => {
            reswhis::bench::run(&args).map_err(|e| reswhis::bench::error_line(&e).into())
        }
        Some(Command::Spin) => reswhis::bench::spin(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status when a second SIGINT/SIGTERM cuts the graceful shutdown short.
const FORCED_EXIT: i32 = 130;

fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
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
    let _ = stop_rx.recv();
    log::info!("shutting down: flushing sessions (a second Ctrl-C/SIGTERM exits at once)");
    server.shutdown();
    Ok(())
}

fn simulate(args: &reswhis::config::SimulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let report = reswhis::simulate::run(args)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    eprintln!(
        "audio {:.1} s, wall {:.1} s, {} updates, transcribe {:.2} s (RTF {:.3}), mean latency {:.2} s",
        report.audio_seconds,
        report.wall_seconds,
        report.updates,
        report.transcribe_seconds,
        report.transcribe_seconds / report.audio_seconds.max(1e-9),
        mean(&report.latencies),
    );
    if let Some(wer) = report.wer {
        eprintln!(
            "WER {:.1}% against the reference beside the file",
            wer * 100.0
        );
    }
    Ok(())
}
