//! The live recording server of callrec: a SIPREC Session Recording Server
//! (RFC 7866) on rsipstack over UDP and TCP, the RTP sockets and their port
//! allocation, the per-call recording pipeline into the spool, and the HTTP
//! endpoints (health, readiness, Prometheus metrics, live calls).
//!
//! Start-up is a value: [`App::build`] checks the configuration and prepares
//! the data directory; [`App::run`] serves on sockets the caller bound
//! ([`Listeners`]) until the shutdown future completes, then ends every
//! recording session and finalizes its file. Finished recordings are
//! published as [`RecordingFinished`] events ([`App::recordings`]).
//!
//! [`App::open`] is the whole server of `callrec serve`: it adds the catalog
//! (calls, participants, policy decisions, recordings and their statuses),
//! the spool of callrec-storage (crash recovery at start), the delivery
//! worker that takes spooled recordings to storage, the policy settings kept
//! in the catalog ([`settings_store`]) and the settings, storage and
//! recordings API. The call tasks reach the catalog through
//! [`pipeline`]'s bounded queue and never wait on storage.
//!
//! Invariants: a channel's role comes from metadata or a configured rule,
//! never from packet arrival order; the media path never waits on storage;
//! nothing at info level logs a phone number (rsipstack, which logs whole
//! messages at info, is filtered to warn by the default log filter).

pub mod call;
pub mod config;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod recording;
mod rtp_in;
pub mod settings_store;
pub mod sip;
pub mod sip_guard;
pub mod tls;

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
pub use tls::TlsListen;
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
    /// The catalog could not be opened.
    #[error("cannot open the catalog: {0}")]
    Catalog(String),
    /// The storage or the spool could not be opened.
    #[error("cannot set up delivery: {0}")]
    Delivery(String),
    /// The TLS certificate or key of SIP over TLS cannot be used.
    #[error("cannot use {what} for SIP over TLS: {why}")]
    Tls {
        /// Which setting and file.
        what: String,
        /// What is wrong with it.
        why: String,
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
    /// SIP over TLS: the address (bound by rsipstack too) and the
    /// certificate and key, read and checked.
    pub sip_tls: Option<TlsListen>,
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
        // rsipstack binds the TCP listener itself once it serves; try the
        // address now so a port in use is a clear error at start-up, not a
        // warning in the stack's log and a server without TCP.
        if let Some(a) = config.sip.tcp_listen {
            try_bind(a, "sip tcp")?;
        }
        Ok(Listeners {
            sip_udp,
            sip_tcp: config.sip.tcp_listen,
            sip_tls: Listeners::tls(&config.sip)?,
            http,
        })
    }

    /// SIP over TLS as `[sip]` sets it: the certificate and key read and
    /// checked (PEM, the key fits the certificate) and the port tried.
    /// `None` when `tls_listen` is not set.
    pub fn tls(sip: &config::SipConfig) -> Result<Option<TlsListen>, ServerError> {
        let Some(addr) = sip.tls_listen else {
            return Ok(None);
        };
        let read = |key: &str, path: &Option<std::path::PathBuf>| {
            let path = path.as_ref().ok_or_else(|| ServerError::Tls {
                what: format!("sip.{key}"),
                why: "not set; sip.tls_listen needs it".into(),
            })?;
            let what = format!("sip.{key} {}", path.display());
            std::fs::read(path)
                .map(|bytes| (bytes, what.clone()))
                .map_err(|e| ServerError::Tls {
                    what,
                    why: e.to_string(),
                })
        };
        let (certificate, cert_what) = read("tls_certificate", &sip.tls_certificate)?;
        let (private_key, key_what) = read("tls_private_key", &sip.tls_private_key)?;
        tls::check(&certificate, &private_key).map_err(|e| ServerError::Tls {
            what: match e.file {
                tls::File::Certificate => cert_what,
                tls::File::Key => key_what,
            },
            why: e.why,
        })?;
        try_bind(addr, "sip tls")?;
        Ok(Some(TlsListen {
            addr,
            certificate,
            private_key,
        }))
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
                sip_tls: None,
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
    /// The catalog's id of the recording (with the catalog only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<callrec_catalog::RecordingId>,
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
    /// The catalog, spool and delivery (`None` for an [`App::build`] app,
    /// which only writes files into the spool directory).
    pub pipeline: Option<Arc<pipeline::Pipeline>>,
    /// In-call catalog events dropped because the catalog queue was full.
    pub catalog_events_dropped: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Adds a stream to the live view of a call (a stream added mid-call).
    pub fn add_live_stream(&self, call_id: &str, stream: LiveStream) {
        if let Some(c) = self.live.lock().expect("live lock").get_mut(call_id) {
            c.streams.push(stream);
        }
    }

    pub fn release_ports(&self, ports: &[u16]) {
        self.ports
            .lock()
            .expect("port lock")
            .release(ports, std::time::Instant::now());
    }

    /// Marks the call paused or recording (live view and catalog). Never
    /// waits: a full catalog queue drops the catalog event (counted).
    pub fn set_paused(&self, call_id: &str, paused: bool) {
        let mut id = None;
        if let Some(c) = self.live.lock().expect("live lock").get_mut(call_id) {
            if c.paused != paused {
                id = c.recording_id;
            }
            c.paused = paused;
        }
        if let (Some(p), Some(id)) = (&self.pipeline, id) {
            let reason = if paused { "paused" } else { "resumed" };
            if !p.try_event(pipeline::CatalogEvent::Paused {
                id,
                paused,
                reason: reason.into(),
            }) {
                self.catalog_events_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Records a policy decision taken during a call. Never waits (see
    /// [`AppState::set_paused`]).
    pub fn catalog_decision(&self, call_id: &str, decision: &str, reason: &str) {
        let Ok(call) = callrec_catalog::CallId::new(call_id) else {
            return;
        };
        let event = pipeline::CatalogEvent::Decision {
            call,
            decision: callrec_catalog::PolicyDecision {
                at: callrec_catalog::UnixMillis::now(),
                decision: decision.into(),
                reason: reason.into(),
            },
        };
        self.catalog_event(event);
    }

    /// Tells the catalog a participant joined the call (or was on it at
    /// its start): `key` is its SIPREC participant id, `aor` its address,
    /// whose user part is stored as its number.
    pub fn catalog_participant_joined(
        &self,
        call_id: &str,
        key: &str,
        role: callrec_catalog::ParticipantRole,
        aor: Option<&str>,
        name: Option<&str>,
    ) {
        let Ok(call) = callrec_catalog::CallId::new(call_id) else {
            return;
        };
        let participant = callrec_catalog::NewParticipant {
            role,
            channel: call::catalog_channel(role),
            number: aor
                .and_then(aor_user)
                .and_then(|u| callrec_catalog::PhoneNumber::new(u).ok()),
            name: name.map(str::to_owned),
            joined_at: callrec_catalog::UnixMillis::now(),
        };
        self.catalog_event(pipeline::CatalogEvent::ParticipantJoined {
            call,
            key: key.to_owned(),
            participant,
        });
    }

    /// Tells the catalog a participant left the call.
    pub fn catalog_participant_left(&self, call_id: &str, key: &str) {
        let Ok(call) = callrec_catalog::CallId::new(call_id) else {
            return;
        };
        self.catalog_event(pipeline::CatalogEvent::ParticipantLeft {
            call,
            key: key.to_owned(),
            at: callrec_catalog::UnixMillis::now(),
        });
    }

    fn catalog_event(&self, event: pipeline::CatalogEvent) {
        let Some(p) = &self.pipeline else { return };
        if !p.try_event(event) {
            self.catalog_events_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    background: Option<Background>,
}

/// The tasks that [`App::open`] prepares and [`App::run`] runs.
struct Background {
    worker: callrec_storage::delivery::DeliveryWorker,
    catalog: Arc<dyn callrec_catalog::Catalog>,
    events: tokio::sync::mpsc::Receiver<pipeline::CatalogEvent>,
}

/// What [`App::open`] opened, for the caller's routers and tests.
#[derive(Clone)]
pub struct Opened {
    /// The catalog.
    pub catalog: Arc<dyn callrec_catalog::Catalog>,
    /// The recording store in force (switchable by the storage settings).
    pub store: callrec_storage::StoreHandle,
    /// The policy settings, kept in the catalog.
    pub settings: Arc<dyn callrec_policy::SettingsStore>,
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
                pipeline: None,
                catalog_events_dropped: std::sync::atomic::AtomicU64::new(0),
            }),
            extra_routes: None,
            background: None,
        })
    }

    /// The whole server as `callrec serve` runs it: opens the catalog
    /// (migrations run), the recording store (the storage settings saved in
    /// the catalog, else `[storage]`), the spool under the data directory;
    /// repairs what a crash left in the spool and requeues it for delivery;
    /// keeps the policy settings in the catalog; and serves the settings,
    /// storage and recordings API. [`App::run`] then runs the delivery
    /// worker beside SIP and HTTP.
    pub async fn open(config: Config) -> Result<(App, Opened), ServerError> {
        use callrec_storage::delivery::{DeliveryConfig, DeliveryWorker};
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let url = config.catalog_url();
        let catalog: Arc<dyn callrec_catalog::Catalog> = Arc::new(
            callrec_catalog::SqlCatalog::open(&url)
                .await
                .map_err(|e| ServerError::Catalog(e.to_string()))?,
        );
        let storage = match catalog.storage_settings().await {
            Ok(Some(saved)) => match serde_json::from_value(saved.document) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the storage settings saved in the catalog are unreadable; using [storage] of the configuration");
                    config.storage_config()
                }
            },
            Ok(None) => config.storage_config(),
            Err(e) => return Err(ServerError::Catalog(e.to_string())),
        };
        let backend = storage.backend().to_owned();
        let store = callrec_storage::StoreHandle::open(storage)
            .map_err(|e| ServerError::Delivery(e.to_string()))?;
        let spool = callrec_storage::Spool::open(config.spool_dir())
            .map_err(|e| ServerError::Delivery(e.to_string()))?;
        let d = &config.delivery;
        let worker = DeliveryWorker::new(
            Arc::new(store.clone()),
            catalog.clone(),
            spool.clone(),
            DeliveryConfig {
                concurrency: d.concurrency.max(1),
                scan_interval: Duration::from_secs(d.scan_interval_secs.max(1)),
                backoff_base: Duration::from_secs(d.backoff_base_secs.max(1)),
                backoff_max: Duration::from_secs(d.backoff_max_secs.max(1)),
                backend_name: backend,
                retention_days: d.retention_days,
                ..DeliveryConfig::default()
            },
        );
        let report = worker
            .startup()
            .await
            .map_err(|e| ServerError::Delivery(e.to_string()))?;
        tracing::info!(
            repaired_partial = report.repaired_partial,
            requeued = report.requeued,
            waiting = report.waiting,
            "spool recovered"
        );
        let settings: Arc<dyn callrec_policy::SettingsStore> =
            Arc::new(settings_store::CatalogSettingsStore::new(catalog.clone()));
        let (events_tx, events) = tokio::sync::mpsc::channel(pipeline::EVENT_QUEUE);
        let mut app = Self::build_with_settings(config, settings.clone())?;
        let state = Arc::get_mut(&mut app.state).expect("the state is not shared yet");
        state.pipeline = Some(Arc::new(pipeline::Pipeline {
            catalog: catalog.clone(),
            starts: callrec_catalog::GroupCommit::spawn(catalog.clone(), pipeline::CATALOG_BATCH),
            spool,
            events: events_tx,
            delivery: worker.handle(),
        }));
        let clock: callrec_api::Clock = Arc::new(time::OffsetDateTime::now_utc);
        let api = callrec_api::ApiState::new(
            settings.clone(),
            Arc::new(callrec_api::InMemoryAnnouncementStore::default()),
            clock.clone(),
        );
        let router = callrec_api::router_with_storage(
            api,
            callrec_api::storage::StorageState::new(catalog.clone(), store.clone(), clock.clone()),
        )
        .merge(callrec_api::recordings::router(
            callrec_api::recordings::RecordingsState {
                catalog: catalog.clone(),
                store: Arc::new(store.clone()),
                clock,
            },
        ));
        app.background = Some(Background {
            worker,
            catalog: catalog.clone(),
            events,
        });
        let opened = Opened {
            catalog,
            store,
            settings,
        };
        Ok((app.with_router(router), opened))
    }

    /// Serves `router` (e.g. `callrec_api::router`) beside the server's own
    /// routes on the HTTP listener, behind the same `http.api_token` check
    /// as `/api/v1/calls`.
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
        let worker_stop = CancellationToken::new();
        let (delivery_task, catalog_task) = match self.background {
            Some(bg) => {
                let stop = worker_stop.clone();
                let delivery = bg.worker.handle();
                let w = tokio::spawn(bg.worker.run(async move { stop.cancelled().await }));
                let c = tokio::spawn(pipeline::catalog_task(bg.catalog, delivery, bg.events));
                (Some(w), Some(c))
            }
            None => (None, None),
        };
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
                    conn: Arc::new(sip_guard::GuardedUdp::new(socket, state.clone())),
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
        if let Some(tls) = &listeners.sip_tls {
            tls::install_provider();
            let config = rsipstack::transport::tls::TlsConfig {
                cert: Some(tls.certificate.clone()),
                key: Some(tls.private_key.clone()),
                ..Default::default()
            };
            let l = rsipstack::transport::tls::TlsListenerConnection::new(tls.addr, None, config)
                .await
                .map_err(|e| ServerError::Sip {
                    what: format!("sip tls {}", tls.addr),
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
        // Ready means every listener accepts: rsipstack binds TCP and TLS in
        // its serve task, so wait for them.
        if let Some(tcp) = listeners.sip_tcp {
            wait_listening(tcp, "sip tcp").await?;
        }
        if let Some(tls) = &listeners.sip_tls {
            wait_listening(tls.addr, "sip tls").await?;
        }
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
            // The mounted API (settings, storage, recordings) is behind the
            // same token as the server's own `/api/` routes.
            router = router.merge(extra.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                http::require_token,
            )));
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
        let shown = |a: Option<SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
        tracing::info!(
            %sip_addr,
            sip_tcp = %shown(listeners.sip_tcp),
            sip_tls = %shown(listeners.sip_tls.as_ref().map(|t| t.addr)),
            "callrec is serving"
        );

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
        // What the calls told the catalog is applied; then the worker stops
        // (uploads in progress are taken up again at the next start).
        if let (Some(p), Some(task)) = (&state.pipeline, catalog_task) {
            let _ = p.events.send(pipeline::CatalogEvent::Stop).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        worker_stop.cancel();
        if let Some(task) = delivery_task {
            let _ = task.await;
        }
        tracing::info!("callrec stopped");
        Ok(())
    }
}

/// The user part of a SIP or tel address (`sip:1001@host;x` → `1001`).
pub(crate) fn aor_user(aor: &str) -> Option<&str> {
    let a = aor.trim().trim_start_matches('<').trim_end_matches('>');
    let a = a
        .strip_prefix("sips:")
        .or_else(|| a.strip_prefix("sip:"))
        .or_else(|| a.strip_prefix("tel:"))
        .unwrap_or(a);
    a.split(['@', ';']).next().filter(|u| !u.is_empty())
}

/// Tries to bind a stream socket to `addr` (and lets it go): a port in use
/// is an error naming `what` and the address.
fn try_bind(addr: SocketAddr, what: &str) -> Result<(), ServerError> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| ServerError::Listen {
            what: format!("{what} {addr}"),
            source,
        })
}

/// Whether a socket listens on `addr`: a bind with SO_REUSEADDR fails with
/// "address in use" only then (socket(7)), so the probe neither connects
/// (a TLS listener would log a failed handshake) nor gets in the way of
/// the listener's own bind.
fn listening(addr: SocketAddr) -> bool {
    let Ok(probe) = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    ) else {
        return false;
    };
    if probe.set_reuse_address(true).is_err() {
        return false;
    }
    matches!(probe.bind(&addr.into()), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Waits until a stream listener is up on `addr` (rsipstack binds its TCP
/// and TLS listeners in its serve task), for at most five seconds.
async fn wait_listening(addr: SocketAddr, what: &str) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !listening(addr) {
        if tokio::time::Instant::now() >= deadline {
            return Err(ServerError::Sip {
                what: format!("{what} {addr}"),
                why: "the listener is not up after 5 s (see the warnings above)".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
