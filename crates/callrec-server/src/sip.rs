//! The SIP user agent server: rsipstack transactions and dialogs in, calls
//! out.
//!
//! Out of dialog: OPTIONS is answered 200; an INVITE is checked (source
//! network, SIPREC marks, body) and either refused with the reason or turned
//! into a call ([`crate::call`]); anything else is refused. In dialog,
//! requests go to rsipstack's dialog, which reports them to the call task.
//! Nothing here waits on the media or on storage.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use callrec_siprec::recording_session::RecordingSessionCheck;
use callrec_siprec::sdp::{AnswerParams, build_answer};
use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::transaction::Transaction;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::call::{self, CallSetup};

/// Methods callrec answers, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";

/// Every value of header `name` (case-insensitive, compact forms included
/// by the parser).
pub fn header_values(req: &Request, name: &str) -> Vec<String> {
    req.headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value().to_string())
        .collect()
}

/// A reason phrase that fits a status line: one line, printable, short.
pub use callrec_siprec::sip_check::reason_phrase;

/// A status with a custom reason phrase.
pub fn status(code: u16, reason: &str) -> StatusCode {
    StatusCode::Other(code, reason_phrase(reason))
}

fn source_ip(tx: &Transaction) -> Option<IpAddr> {
    tx.connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok())
        .map(|a| a.ip())
}

async fn reply(tx: &mut Transaction, code: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(code, headers, None).await {
        tracing::debug!(error = %e, "could not send a response");
    }
}

/// Runs the transaction loop until `cancel`.
pub(crate) async fn serve(
    state: Arc<AppState>,
    dialog_layer: Arc<DialogLayer>,
    mut incoming: TransactionReceiver,
    sip_addr: SocketAddr,
    cancel: CancellationToken,
) {
    loop {
        let tx = tokio::select! {
            _ = cancel.cancelled() => break,
            tx = incoming.recv() => match tx { Some(tx) => tx, None => break },
        };
        let state = state.clone();
        let dialog_layer = dialog_layer.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            handle_transaction(state, dialog_layer, tx, sip_addr, cancel).await;
        });
    }
}

async fn handle_transaction(
    state: Arc<AppState>,
    dialog_layer: Arc<DialogLayer>,
    mut tx: Transaction,
    sip_addr: SocketAddr,
    cancel: CancellationToken,
) {
    let has_to_tag = tx
        .original
        .to_header()
        .ok()
        .and_then(|h| h.tag().ok().flatten())
        .is_some();
    let method = tx.original.method;
    if has_to_tag {
        match dialog_layer.match_dialog(&tx) {
            Some(mut dialog) => {
                if let Err(e) = dialog.handle(&mut tx).await {
                    tracing::debug!(error = %e, %method, "in-dialog request failed");
                }
            }
            None if method == Method::Ack => {}
            None => {
                reply(
                    &mut tx,
                    status(481, "Call/Transaction Does Not Exist"),
                    vec![],
                )
                .await
            }
        }
        return;
    }
    match method {
        Method::Invite => {
            if cancel.is_cancelled() {
                reply(&mut tx, status(503, "Shutting Down"), vec![]).await;
                return;
            }
            new_invite(state, dialog_layer, tx, sip_addr, cancel).await;
        }
        Method::Options => {
            state.metrics.options.inc();
            reply(
                &mut tx,
                StatusCode::OK,
                vec![
                    make_header("Allow", ALLOW.into()),
                    make_header("Accept", "application/sdp, multipart/mixed".into()),
                    make_header("Supported", "siprec".into()),
                ],
            )
            .await;
        }
        Method::Ack => {}
        Method::Bye | Method::Cancel | Method::Update | Method::Info => {
            reply(
                &mut tx,
                status(481, "Call/Transaction Does Not Exist"),
                vec![],
            )
            .await
        }
        _ => {
            reply(
                &mut tx,
                StatusCode::MethodNotAllowed,
                vec![make_header("Allow", ALLOW.into())],
            )
            .await
        }
    }
}

/// An INVITE refused before any dialog exists.
async fn refuse(state: &AppState, tx: &mut Transaction, code: u16, why: &str) {
    state.metrics.refused(code);
    tracing::info!(code, reason = why, "recording session refused");
    let warning = make_header(
        "Warning",
        format!("399 callrec \"{}\"", reason_phrase(why).replace('"', "'")),
    );
    reply(tx, status(code, why), vec![warning]).await;
}

async fn new_invite(
    state: Arc<AppState>,
    dialog_layer: Arc<DialogLayer>,
    mut tx: Transaction,
    sip_addr: SocketAddr,
    cancel: CancellationToken,
) {
    let req = tx.original.clone();
    let source = source_ip(&tx);
    match source {
        Some(ip) if state.config.sip.is_allowed(ip) => {}
        _ => {
            refuse(
                &state,
                &mut tx,
                403,
                "source network not allowed to open recording sessions",
            )
            .await;
            return;
        }
    }
    let require = header_values(&req, "Require");
    let contact = header_values(&req, "Contact");
    let check = RecordingSessionCheck::from_headers(
        require.iter().map(String::as_str),
        contact.iter().map(String::as_str),
    );
    if !check.is_recording_session() {
        refuse(
            &state,
            &mut tx,
            488,
            "not a SIPREC recording session: send Require: siprec and +sip.src",
        )
        .await;
        return;
    }
    let Some(content_type) = header_values(&req, "Content-Type").into_iter().next() else {
        refuse(
            &state,
            &mut tx,
            400,
            "the INVITE has no body: send the SDP offer and metadata",
        )
        .await;
        return;
    };
    let body = match callrec_siprec::parse_body(&content_type, &req.body) {
        Ok(b) => b,
        Err(e) => {
            refuse(&state, &mut tx, 400, &format!("malformed body: {e}")).await;
            return;
        }
    };
    let Some(offer) = body.sdp else {
        refuse(
            &state,
            &mut tx,
            400,
            "the INVITE has no SDP offer (a=application/sdp part)",
        )
        .await;
        return;
    };
    let recordable = offer.recordable_streams();
    if recordable.is_empty() {
        refuse(
            &state,
            &mut tx,
            488,
            "no recordable audio stream offered (codecs: PCMU, PCMA, G722, opus)",
        )
        .await;
        return;
    }
    let Some((ports, sockets)) = bind_ports(&state, recordable.len()).await else {
        refuse(&state, &mut tx, 503, "no free RTP ports").await;
        return;
    };
    let mut per_mline: Vec<Option<u16>> = vec![None; offer.media.len()];
    for (k, &i) in recordable.iter().enumerate() {
        per_mline[i] = Some(ports[k]);
    }
    let address = state
        .config
        .sip
        .advertised_ip(match state.config.rtp.bind_address {
            ip if ip.is_unspecified() => sip_addr.ip(),
            ip => ip,
        });
    let session_id = rand_u64();
    let answer = match build_answer(
        &offer,
        &per_mline,
        &AnswerParams {
            address,
            session_id,
            session_version: 1,
        },
    ) {
        Ok(a) => a,
        Err(e) => {
            state.release_ports(&ports);
            refuse(
                &state,
                &mut tx,
                500,
                &format!("cannot answer the offer: {e}"),
            )
            .await;
            return;
        }
    };
    let contact_uri = contact_uri(&state, &tx, sip_addr);
    let (state_tx, state_rx) = dialog_layer.new_dialog_state_channel();
    let dialog = match dialog_layer.get_or_create_server_invite(
        &tx,
        state_tx,
        None,
        rsipstack::sip::Uri::try_from(contact_uri.as_str()).ok(),
    ) {
        Ok(d) => d,
        Err(e) => {
            state.release_ports(&ports);
            refuse(
                &state,
                &mut tx,
                400,
                &format!("cannot create the dialog: {e}"),
            )
            .await;
            return;
        }
    };
    let server_dialog = dialog.clone();
    let setup = CallSetup {
        sip_call_id: req
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default(),
        source,
        offer: offer.clone(),
        metadata: body.metadata,
        answer,
        ports,
        sockets,
        contact: callrec_siprec::recording_session::srs_contact(&contact_uri),
        session_id,
    };
    // The INVITE transaction runs in its own task (100 Trying, CANCEL, ACK);
    // the call task drives the dialog through its state channel.
    let mut dlg = Dialog::Invite(dialog);
    tokio::spawn(async move {
        if let Err(e) = dlg.handle(&mut tx).await {
            tracing::debug!(error = %e, "invite transaction ended with an error");
        }
    });
    call::run(state, server_dialog, state_rx, setup, cancel).await;
}

fn rand_u64() -> u64 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) >> 1
}

/// Allocates `n` pairs and binds one socket per stream; a port that cannot
/// be bound is rested and another block tried.
pub(crate) async fn bind_ports(state: &AppState, n: usize) -> Option<(Vec<u16>, Vec<UdpSocket>)> {
    for _ in 0..8 {
        let ports = state
            .ports
            .lock()
            .expect("port lock")
            .allocate(n, Instant::now())?;
        let mut sockets = Vec::with_capacity(n);
        let mut failed = None;
        for &p in &ports {
            match UdpSocket::bind(SocketAddr::new(state.config.rtp.bind_address, p)).await {
                Ok(s) => {
                    crate::rtp_in::size_receive_buffer(&s, state.config.rtp.queue_packets);
                    sockets.push(s)
                }
                Err(e) => {
                    tracing::warn!(port = p, error = %e, "cannot bind an RTP port; trying another");
                    failed = Some(p);
                    break;
                }
            }
        }
        match failed {
            None => return Some((ports, sockets)),
            Some(_) => {
                drop(sockets);
                state.release_ports(&ports);
            }
        }
    }
    None
}

/// Our Contact for a dialog of `tx`: where the recording client reaches us
/// on the transport the INVITE came over (TCP and TLS by the port of the
/// listener that accepted the connection).
fn contact_uri(state: &AppState, tx: &Transaction, sip_addr: SocketAddr) -> String {
    use rsipstack::sip::Transport;
    let connection = tx.connection.as_ref();
    let transport = connection.map(|c| c.transport()).unwrap_or(Transport::Udp);
    let local = connection
        .and_then(|c| c.get_addr().get_socketaddr().ok())
        .unwrap_or(sip_addr);
    let contact_ip = state.config.sip.advertised_ip(local.ip());
    let at = SocketAddr::new(contact_ip, local.port());
    match transport {
        Transport::Udp => format!("sip:srs@{at}"),
        Transport::Tls => format!("sip:srs@{at};transport=tls"),
        _ => format!("sip:srs@{at};transport=tcp"),
    }
}
