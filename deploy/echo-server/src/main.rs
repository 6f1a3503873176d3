//! `echo-server` binary: parses flags / environment, logs one line when listening, serves until
//! SIGINT/SIGTERM.

use clap::Parser as _;
use echo_server::Cli;

/// Completes on Ctrl-C, or on SIGTERM on Unix.
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let listener = match tokio::net::TcpListener::bind(&cli.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo-server: cannot listen on {}: {e}", cli.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| cli.bind.clone(), |a| a.to_string());
    eprintln!("echo-server listening on {local}");
    tokio::select! {
        r = echo_server::serve(listener) => match r {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo-server: server error: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        () = shutdown_signal() => {
            eprintln!("echo-server: shutting down");
            std::process::ExitCode::SUCCESS
        }
    }
}
