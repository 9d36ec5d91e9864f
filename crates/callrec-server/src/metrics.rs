//! Counters of the running server, rendered as Prometheus text.
//!
//! Plain atomics: incrementing never blocks and never allocates, so the
//! media path can count every packet.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Recording sessions being recorded now.
    pub active: AtomicUsize,
    /// Sessions answered, or being finalized (shutdown waits for these).
    pub in_flight: AtomicUsize,
    /// Sessions answered since start.
    pub calls_total: Counter,
    /// INVITEs refused, by status.
    pub refused_400: Counter,
    /// 403: source network not allowed.
    pub refused_403: Counter,
    /// 488: not SIPREC or nothing recordable.
    pub refused_488: Counter,
    /// 5xx.
    pub refused_5xx: Counter,
    /// OPTIONS answered out of dialog.
    pub options: Counter,
    /// SIP datagrams refused as malformed (answered 400 or dropped).
    pub sip_malformed: Counter,
    /// RTP packets accepted into a recording.
    pub packets_received: Counter,
    /// RTP packets missing (gaps in sequence numbers), counted at the end of each call.
    pub packets_lost: Counter,
    /// RTP packets that came too late to be placed, counted at the end of each call.
    pub packets_late: Counter,
    /// Datagrams that were not RTP for the stream (bad, unknown payload type).
    pub packets_refused: Counter,
    /// Packets from a sender other than the latched one.
    pub packets_foreign: Counter,
    /// Recordings finalized.
    pub finished: Counter,
    /// Recordings that failed.
    pub failed: Counter,
    /// Sessions cancelled before the answer (nothing recorded).
    pub cancelled: Counter,
    /// Recordings stopped because the agent left.
    pub stopped_agent_left: Counter,
    /// Sum of BYE-to-file times, in ms.
    pub finalize_ms: Counter,
}

impl Metrics {
    /// Counts a refused INVITE.
    pub fn refused(&self, code: u16) {
        match code {
            400 => self.refused_400.inc(),
            403 => self.refused_403.inc(),
            488 => self.refused_488.inc(),
            _ => self.refused_5xx.inc(),
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, spooled: usize) -> String {
        let mut s = String::new();
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "callrec_active_calls",
            "Recording sessions being recorded now.",
            self.active.load(Ordering::Relaxed) as u64,
        );
        gauge(
            "callrec_spool_recordings",
            "Recordings in the spool waiting for delivery.",
            spooled as u64,
        );
        let mut counter = |name: &str, help: &str, labels: &[(&str, u64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for (l, v) in labels {
                if l.is_empty() {
                    let _ = writeln!(s, "{name} {v}");
                } else {
                    let _ = writeln!(s, "{name}{{{l}}} {v}");
                }
            }
        };
        counter(
            "callrec_calls_total",
            "Recording sessions answered.",
            &[("", self.calls_total.get())],
        );
        counter(
            "callrec_sessions_refused_total",
            "Recording sessions refused, by SIP status.",
            &[
                ("status=\"400\"", self.refused_400.get()),
                ("status=\"403\"", self.refused_403.get()),
                ("status=\"488\"", self.refused_488.get()),
                ("status=\"5xx\"", self.refused_5xx.get()),
            ],
        );
        counter(
            "callrec_rtp_packets_total",
            "RTP packets, by what happened to them (lost and late are counted when a call ends).",
            &[
                ("result=\"received\"", self.packets_received.get()),
                ("result=\"lost\"", self.packets_lost.get()),
                ("result=\"late\"", self.packets_late.get()),
                ("result=\"refused\"", self.packets_refused.get()),
                ("result=\"foreign_sender\"", self.packets_foreign.get()),
            ],
        );
        counter(
            "callrec_recordings_total",
            "Recordings by status.",
            &[
                ("status=\"finished\"", self.finished.get()),
                ("status=\"failed\"", self.failed.get()),
                ("status=\"cancelled\"", self.cancelled.get()),
                (
                    "status=\"stopped_agent_left\"",
                    self.stopped_agent_left.get(),
                ),
            ],
        );
        counter(
            "callrec_recording_finalize_milliseconds_sum",
            "Sum of the times from the end of a session to its file being complete.",
            &[("", self.finalize_ms.get())],
        );
        counter(
            "callrec_options_total",
            "OPTIONS requests answered.",
            &[("", self.options.get())],
        );
        counter(
            "callrec_sip_malformed_total",
            "SIP datagrams refused as malformed (answered 400, or dropped when no answer may be sent).",
            &[("", self.sip_malformed.get())],
        );
        s
    }
}
