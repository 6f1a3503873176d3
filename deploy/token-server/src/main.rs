//! `token-server` binary: parses flags / environment, logs to stderr, serves until SIGINT/SIGTERM.

use clap::Parser as _;
use token_server::{run, Cli, DEFAULT_SECRET};

/// Minimal logger: one line per record on stderr, `<unix secs> <LEVEL> <message>`.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{} {} {}",
                token_server::now_unix(),
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Completes on Ctrl-C, or on SIGTERM (what `docker stop` and Kubernetes send) on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    log::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let cli = Cli::parse();
    if cli.secret == DEFAULT_SECRET {
        log::warn!("using the built-in development secret; set TOKEN_SECRET or --secret");
    }
    let listener = match tokio::net::TcpListener::bind(&cli.bind).await {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", cli.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| cli.bind.clone(), |a| a.to_string());
    log::info!(
        "token-server listening on {local} (token ttl {}s)",
        cli.ttl_seconds
    );
    match run(listener, cli.config(), shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
