//! The `callrec` command line: `callrec mix` turns the two legs of a call
//! (audio files or an RTP capture) into one recording; `callrec serve` (to
//! come) runs the recording server.
//!
//! This file only parses arguments and reports errors: one clear line on
//! standard error and a non-zero exit.

mod input;
mod mix;
mod pcap;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// callrec: a self-hosted call-recording server for contact centers.
#[derive(Debug, Parser)]
#[command(name = "callrec", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make one stereo recording (end user left, agent right) from the two
    /// legs of a call: two audio files, or the RTP streams in a capture.
    Mix(mix::MixArgs),
    /// Run the recording server: SIPREC over SIP (UDP and TCP), RTP, the
    /// recording pipeline and the HTTP endpoints.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mix(args) => mix::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined, most specific last.
            eprintln!("callrec: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
