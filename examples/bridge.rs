//! The switchboard bridge: runs adapters and routes from a TOML config.
//!
//! ```text
//! cargo run --release --example bridge                        # built-in default config
//! cargo run --release --example bridge -- --config FILE.toml  # your config
//! cargo run --release --example bridge -- --config FILE.toml --check
//! cargo run --release --example bridge -- --print-default-config
//! ```
//!
//! Logs go to stderr (`RUST_LOG` filters, default `info`). SIGINT/SIGTERM shut
//! down gracefully. A config error prints every problem with file, line and
//! key, and exits with status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchboard::{Bridge, BridgeError, DEFAULT_CONFIG};

#[derive(Parser, Debug)]
#[command(
    name = "bridge",
    about = "Bridge messages between DDS, CoAP, MQTT, HTTP and WebSocket."
)]
struct Args {
    /// The TOML configuration file (default: the built-in default config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Validate the configuration, print every error, and exit (2 on errors).
    #[arg(long)]
    check: bool,
    /// Print the built-in default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let bridge = match &args.config {
        Some(path) => Bridge::from_config_file(path),
        None => Bridge::from_toml_str(DEFAULT_CONFIG),
    };
    let bridge = match bridge {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            let n = match &e {
                BridgeError::Config(c) => c.0.len(),
                _ => 1,
            };
            eprintln!("{n} error(s) in the configuration; nothing started.");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = bridge.worker_threads() {
        rt.worker_threads(n);
    }
    let runtime = match rt.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let handle = match bridge.start().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "The bridge could not start.");
                return ExitCode::FAILURE;
            }
        };
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(workers, "Bridge running.");
        wait_for_signal().await;
        tracing::info!("Shutting down.");
        match handle.shutdown().await {
            Ok(()) => {
                tracing::info!("Stopped.");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "Shutdown failed.");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
