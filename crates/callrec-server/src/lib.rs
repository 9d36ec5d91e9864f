//! The live recording server of callrec: a SIPREC Session Recording Server
//! (RFC 7866) on rsipstack over UDP and TCP, the RTP sockets and their port
//! allocation, the per-call recording pipeline into the spool, and the HTTP
//! endpoints (health, readiness, Prometheus metrics, live calls).
//!
//! Start-up is a value: [`App::build`] checks the configuration and prepares
//! the data directory; [`App::run`] serves on sockets the caller bound
//! ([`Listeners`]) until the shutdown future completes, then ends every
//! recording session and finalizes its file. Finished recordings are
//! published as [`RecordingFinished`] events ([`App::recordings`]) for the
//! delivery side; this crate never talks to storage.
//!
//! Invariants: a channel's role comes from metadata or a configured rule,
//! never from packet arrival order; the media path never waits on storage;
//! nothing at info level logs a phone number (rsipstack, which logs whole
//! messages at info, is filtered to warn by the default log filter).

pub mod call;
pub mod config;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod recording;
pub mod sip;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transport::udp::{UdpConnection, UdpInner};
use rsipstack::transport::{SipAddr, TcpListenerConnection, TransportLayer};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use recording::RecordingFinished;

use crate::metrics::Metrics;
use crate::ports::PortAllocator;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be prepared.
    #[error("cannot create {path}: {source}; check the data_dir setting and its permissions")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A listener could not be bound or used.
    #[error("cannot listen on {what}: {source}; is another process using it?")]
    Listen {
        /// Which listener.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The SIP stack refused a listener.
    #[error("the SIP stack cannot use {what}: {why}")]
    Sip {
        /// Which listener.
        what: String,
        /// The stack's message.
        why: String,
    },
}

/// The sockets the server serves on, bound by the caller (tests bind
/// `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    /// SIP over UDP.
    pub sip_udp: Option<std::net::UdpSocket>,
    /// SIP over TCP: the address to listen on (rsipstack binds it itself,
    /// with SO_REUSEADDR).
    pub sip_tcp: Option<SocketAddr>,
    /// HTTP.
    pub http: std::net::TcpListener,
}

impl Listeners {
    /// Binds what the configuration says.
    pub fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let sip_udp = match config.sip.udp_listen {
            Some(a) => {
                Some(
                    std::net::UdpSocket::bind(a).map_err(|source| ServerError::Listen {
                        what: format!("sip udp {a}"),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let http = std::net::TcpListener::bind(config.http.listen).map_err(|source| {
            ServerError::Listen {
                what: format!("http {}", config.http.listen),
                source,
            }
        })?;
        Ok(Listeners {
            sip_udp,
            sip_tcp: config.sip.tcp_listen,
            http,
        })
    }

    /// Loopback sockets on free ports (SIP UDP and TCP on the same port
    /// number), for tests and local trials.
    pub fn loopback() -> Result<Listeners, ServerError> {
        let err = |what: &str| {
            let what = what.to_owned();
            move |source| ServerError::Listen { what, source }
        };
        for _ in 0..20 {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").map_err(err("sip udp"))?;
            let addr = udp.local_addr().map_err(err("sip udp"))?;
            // The TCP port must be free too; probe it.
            if std::net::TcpListener::bind(addr).is_err() {
                continue;
            }
            let http = std::net::TcpListener::bind("127.0.0.1:0").map_err(err("http"))?;
            return Ok(Listeners {
                sip_udp: Some(udp),
                sip_tcp: Some(addr),
                http,
            });
        }
        Err(ServerError::Listen {
            what: "loopback".into(),
            source: std::io::Error::other("no free port pair found"),
        })
    }

    /// The SIP address (UDP, else TCP).
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip_udp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .or(self.sip_tcp)
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }
}

/// A live recording session, as `GET /api/v1/calls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCall {
    /// callrec's id of the recording.
    pub call_id: String,
    /// The SIP Call-ID of the recording session.
    pub sip_call_id: String,
    /// The recording client's address.
    pub source: Option<String>,
    /// When the session was answered.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// The recorded streams.
    pub streams: Vec<LiveStream>,
    /// Whether the recording is paused.
    pub paused: bool,
}

/// One stream of a live call.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStream {
    /// The SDP label.
    pub label: String,
    /// `end_user` or `agent`.
    pub side: &'static str,
    /// The local RTP port.
    pub port: u16,
}

/// What the tasks of a running server share.
pub(crate) struct AppState {
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub ports: Mutex<PortAllocator>,
    pub live: Mutex<HashMap<String, LiveCall>>,
    pub finished: broadcast::Sender<RecordingFinished>,
    /// The origin of media time.
    pub origin: tokio::time::Instant,
    pub ready: std::sync::atomic::AtomicBool,
    /// The recording policy's settings (versioned; a call keeps the version
    /// it started with).
    pub settings: Arc<dyn callrec_policy::SettingsStore>,
}

impl AppState {
    pub fn release_ports(&self, ports: &[u16]) {
        self.ports
            .lock()
            .expect("port lock")
            .release(ports, std::time::Instant::now());
    }

    pub fn set_paused(&self, call_id: &str, paused: bool) {
        if let Some(c) = self.live.lock().expect("live lock").get_mut(call_id) {
            c.paused = paused;
        }
    }

    pub fn publish(&self, done: RecordingFinished) {
        // No receiver is fine: the files are in the spool either way.
        let _ = self.finished.send(done);
    }
}

/// The server, built and not yet serving.
pub struct App {
    state: Arc<AppState>,
    extra_routes: Option<axum::Router>,
}

impl App {
    /// Checks the configuration and creates the data and spool directories;
    /// the policy settings are the defaults, in memory.
    pub fn build(config: Config) -> Result<App, ServerError> {
        let settings = callrec_policy::InMemorySettingsStore::new(
            callrec_policy::ValidSettings::default(),
            time::OffsetDateTime::now_utc(),
        );
        Self::build_with_settings(config, Arc::new(settings))
    }

    /// As [`App::build`], with the policy settings from `settings` (the
    /// catalog's store in `callrec serve`).
    pub fn build_with_settings(
        config: Config,
        settings: Arc<dyn callrec_policy::SettingsStore>,
    ) -> Result<App, ServerError> {
        let spool = config.spool_dir();
        std::fs::create_dir_all(&spool).map_err(|source| ServerError::DataDir {
            path: spool.clone(),
            source,
        })?;
        let ports = PortAllocator::new(
            config.rtp.port_min,
            config.rtp.port_max,
            Duration::from_secs(config.rtp.port_rest_secs),
        );
        let (finished, _) = broadcast::channel(1024);
        Ok(App {
            state: Arc::new(AppState {
                config: Arc::new(config),
                metrics: Metrics::default(),
                ports: Mutex::new(ports),
                live: Mutex::new(HashMap::new()),
                finished,
                origin: tokio::time::Instant::now(),
                ready: std::sync::atomic::AtomicBool::new(false),
                settings,
            }),
            extra_routes: None,
        })
    }

    /// Serves `router` (e.g. `callrec_api::router`) beside the server's own
    /// routes on the HTTP listener. The server's `/api/v1/calls` token check
    /// does not apply to it.
    pub fn with_router(mut self, router: axum::Router) -> Self {
        self.extra_routes = Some(match self.extra_routes.take() {
            Some(r) => r.merge(router),
            None => router,
        });
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Finished recordings, as they are finalized (a lagging receiver loses
    /// the oldest events, never files: they stay in the spool).
    pub fn recordings(&self) -> broadcast::Receiver<RecordingFinished> {
        self.state.finished.subscribe()
    }

    /// Serves until `shutdown` completes; then stops accepting, ends every
    /// recording session (BYE) and finalizes its file, and returns.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let state = self.state;
        let extra_routes = self.extra_routes;
        let cancel = CancellationToken::new();
        let sip_cancel = CancellationToken::new();
        let transport = TransportLayer::new(sip_cancel.child_token());
        let sip_addr = listeners
            .sip_addr()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
        if let Some(udp) = listeners.sip_udp {
            let what = format!("sip udp {sip_addr}");
            udp.set_nonblocking(true)
                .map_err(|source| ServerError::Listen {
                    what: what.clone(),
                    source,
                })?;
            let local = udp.local_addr().map_err(|source| ServerError::Listen {
                what: what.clone(),
                source,
            })?;
            let socket =
                tokio::net::UdpSocket::from_std(udp).map_err(|source| ServerError::Listen {
                    what: what.clone(),
                    source,
                })?;
            let conn = UdpConnection::attach(
                UdpInner {
                    conn: Arc::new(socket),
                    addr: SipAddr {
                        r#type: Some(rsipstack::sip::Transport::Udp),
                        addr: local.into(),
                    },
                },
                None,
                Some(sip_cancel.child_token()),
            )
            .await;
            transport.add_transport(conn.into());
        }
        if let Some(tcp) = listeners.sip_tcp {
            let l = TcpListenerConnection::new(tcp, None)
                .await
                .map_err(|e| ServerError::Sip {
                    what: format!("sip tcp {tcp}"),
                    why: e.to_string(),
                })?;
            transport.add_transport(l.into());
        }
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&state.config.sip.user_agent)
            .with_transport_layer(transport)
            .with_cancel_token(sip_cancel.child_token())
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| ServerError::Sip {
                what: "transactions".into(),
                why: e.to_string(),
            })?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let endpoint_inner = endpoint.inner.clone();
        let sip_serve = tokio::spawn(async move {
            let _ = endpoint_inner.serve().await;
        });
        let sip_loop = tokio::spawn(sip::serve(
            state.clone(),
            dialog_layer,
            incoming,
            sip_addr,
            cancel.clone(),
        ));

        listeners
            .http
            .set_nonblocking(true)
            .map_err(|source| ServerError::Listen {
                what: "http".into(),
                source,
            })?;
        let http_listener =
            tokio::net::TcpListener::from_std(listeners.http).map_err(|source| {
                ServerError::Listen {
                    what: "http".into(),
                    source,
                }
            })?;
        let http_cancel = CancellationToken::new();
        let mut router = http::router(state.clone());
        if let Some(extra) = extra_routes {
            router = router.merge(extra);
        }
        let hc = http_cancel.clone();
        let http_task = tokio::spawn(async move {
            axum::serve(http_listener, router)
                .with_graceful_shutdown(async move { hc.cancelled().await })
                .await
        });
        state
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%sip_addr, "callrec is serving");

        shutdown.await;
        tracing::info!("shutting down: no new sessions; ending the live ones");
        state
            .ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
        cancel.cancel();
        // Calls send BYE and finalize; wait for them (bounded).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while state
            .metrics
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sip_cancel.cancel();
        endpoint.shutdown();
        http_cancel.cancel();
        let _ = sip_loop.await;
        sip_serve.abort();
        let _ = http_task.await;
        tracing::info!("callrec stopped");
        Ok(())
    }
}
