//! `callrec serve`: the live recording server (SIPREC over SIP UDP and TCP,
//! RTP, the recording pipeline, the catalog, delivery to storage, and the
//! HTTP API: health, metrics, live calls, settings, storage, recordings).
//!
//! This file only reads the configuration, sets up logging and signals, and
//! hands over to `callrec_server::App`.

use std::path::PathBuf;

use anyhow::Context;
use callrec_server::config::LogFormat;
use callrec_server::{App, Config, Listeners};

/// Arguments of `callrec serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see docs/configuration.md); environment
    /// variables `CALLREC_SECTION__KEY` override it.
    #[arg(long, env = "CALLREC_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets hidden) and exit.
    #[arg(long)]
    print_config: bool,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    if args.print_config {
        print!("{}", config.print());
        return Ok(());
    }
    let filter = std::env::var("CALLREC_LOG").unwrap_or_else(|_| config.log.filter.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("invalid log filter {filter:?} (log.filter or CALLREC_LOG)"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // One rustls provider for every TLS in the process (SIP over TLS, the
    // storage clients): two are linked, so rustls cannot choose alone.
    callrec_server::tls::install_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listeners = Listeners::bind(&config)?;
        let (app, _) = App::open(config).await?;
        app.run(listeners, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
