//! One recording session, from the answer to the finished file.
//!
//! The call task owns the dialog's state channel, the recorder and the
//! metadata state, and reads the call's RTP sockets itself
//! ([`crate::rtp_in`]: latching on the first SSRC and source address, one
//! task wake per packet, no queue but the sockets' receive buffers). The
//! recording is written by this task; finalizing (flush, hash, JSON) runs
//! on a blocking thread, and the result is published as a
//! [`crate::RecordingFinished`]. Nothing here waits on storage.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use callrec_media::Role;
use callrec_media::timeline::{MediaTime, PauseMode};
use callrec_policy::{
    CallOrigin, CallPolicy, InboundEntry, NewCall, ParticipantEvent, PhoneNumber, RecordingAction,
};
use callrec_siprec::Side;
use callrec_siprec::metadata::{MetadataEvent, MetadataState};
use callrec_siprec::roles::{ChannelMap, DecidedBy, RoleResolver};
use callrec_siprec::sdp::{Answer, AnswerParams, SessionDescription, build_answer};
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, Request, StatusCode};
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use callrec_catalog::{CallId as CatalogCallId, RecordingId, RecordingStatus};
use callrec_policy::StartRecording;

use crate::config::PauseModeSetting;
use crate::pipeline::{CatalogEvent, Pipeline};
use crate::recording::Recorder;
use crate::rtp_in::RtpIn;
use crate::sip::header_values;
use crate::{AppState, LiveCall, LiveStream};

/// What the SIP side hands to a new call.
pub(crate) struct CallSetup {
    pub sip_call_id: String,
    pub source: Option<IpAddr>,
    pub offer: SessionDescription,
    pub metadata: Option<callrec_siprec::metadata::Metadata>,
    pub answer: Answer,
    /// The RTP port of each recorded stream, in m-line order of the
    /// recordable streams.
    pub ports: Vec<u16>,
    pub sockets: Vec<UdpSocket>,
    /// The Contact header value (`<sip:...>;+sip.srs`).
    pub contact: String,
    pub session_id: u64,
}

/// Most streams one call records: m-lines offered beyond it (a misbehaving
/// client) are declined with port 0.
const MAX_STREAMS: usize = 16;

/// Why the recording ended, for the metadata.
fn end_reason(r: &TerminatedReason) -> &'static str {
    match r {
        TerminatedReason::UacBye => "bye_from_recording_client",
        TerminatedReason::UasBye => "bye_from_callrec",
        TerminatedReason::UacCancel => "cancelled",
        TerminatedReason::Timeout => "timeout",
        _ => "terminated",
    }
}

fn role_of(side: Side) -> Role {
    match side {
        Side::EndUser => Role::EndUser,
        Side::Agent => Role::Agent,
    }
}

/// Runs the call to its end.
pub(crate) async fn run(
    state: Arc<AppState>,
    dialog: InviteDialog,
    mut states: DialogStateReceiver,
    setup: CallSetup,
    shutdown: CancellationToken,
) {
    let call_id = uuid::Uuid::now_v7().to_string();
    let ports = setup.ports.clone();
    // The answer waits `answer_delay_ms`; a CANCEL meanwhile ends it here.
    let delay = Duration::from_millis(state.config.sip.answer_delay_ms);
    if !delay.is_zero() {
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                s = states.recv() => match s {
                    Some(DialogState::Terminated(_, reason)) => {
                        tracing::info!(%call_id, reason = end_reason(&reason), "recording session ended before the answer; nothing recorded");
                        state.metrics.cancelled.inc();
                        state.release_ports(&ports);
                        return;
                    }
                    Some(_) => {}
                    None => { state.release_ports(&ports); return; }
                },
            }
        }
    }
    if dialog.state().is_terminated() {
        state.metrics.cancelled.inc();
        state.release_ports(&ports);
        return;
    }

    let mut metadata = MetadataState::new();
    if let Some(md) = &setup.metadata {
        metadata.apply(md);
    }
    let rules = state
        .config
        .recording
        .role_rules
        .iter()
        .map(|r| r.to_rule())
        .collect();
    let mut resolver = RoleResolver::new(rules);
    let labels = setup.offer.recordable_labels();
    let channel_map = resolver.resolve(&labels, Some(&metadata));
    // The SBC decided to fork this call; the policy decides what happens
    // when parties join and leave (the call keeps the settings version it
    // started with).
    let settings = match state.settings.current().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot read the settings; using the defaults");
            default_settings()
        }
    };
    // The node's configuration overrides the settings' file format and
    // pause mode when it sets them.
    let cfg = &state.config.recording;
    let format = match cfg.format {
        Some(f) => f.into(),
        None => match settings.settings.format {
            callrec_policy::RecordingFormat::Mp3 => callrec_media::encode::Format::Mp3,
            callrec_policy::RecordingFormat::Wav => callrec_media::encode::Format::Wav,
        },
    };
    let pause_mode = match cfg.pause_mode {
        Some(PauseModeSetting::Skip) => PauseMode::Skip,
        Some(PauseModeSetting::Silence) => PauseMode::Silence,
        None => match settings.settings.pause_mode {
            callrec_policy::PauseMode::Skip => PauseMode::Skip,
            callrec_policy::PauseMode::Silence => PauseMode::Silence,
        },
    };
    let (policy, decision) = CallPolicy::start(
        Arc::new(settings),
        &NewCall {
            origin: CallOrigin::Inbound {
                entry: InboundEntry::PhoneOrIvr,
            },
            queue: None,
            language: None,
        },
    );

    let started_at = time::OffsetDateTime::now_utc();
    let pipeline = state.pipeline.clone();
    if decision.recording == StartRecording::Never {
        // Not recorded: the catalog keeps the call with the policy's reason
        // and no audio; the recording client is told why.
        tracing::info!(%call_id, reason = %decision.reason, "not recording: the policy says so");
        if let Some(p) = &pipeline {
            let rows = catalog_start(
                p,
                &call_id,
                started_at,
                &channel_map,
                &metadata,
                &decision,
                format,
                RecordingStatus::Declined,
            );
            if let Err(e) = tokio::time::timeout(CATALOG_WAIT, rows)
                .await
                .unwrap_or_else(|_| Err("the catalog did not answer in time".into()))
            {
                tracing::warn!(%call_id, error = %e, "cannot write the declined call to the catalog");
            }
        }
        let why = crate::sip::reason_phrase(&format!("not recorded: {}", decision.reason));
        dialog.reject(Some(StatusCode::Forbidden), Some(why)).ok();
        state.metrics.cancelled.inc();
        state.release_ports(&ports);
        return;
    }
    // With the catalog: the call's rows and the spool entry exist before the
    // answer (signalling time, before any media), so that a crash from here
    // on leaves a recording that the next start repairs and delivers.
    let mut catalog_ids: Option<(RecordingId, CatalogCallId)> = None;
    if let Some(p) = &pipeline {
        let rows = catalog_start(
            p,
            &call_id,
            started_at,
            &channel_map,
            &metadata,
            &decision,
            format,
            RecordingStatus::Recording,
        );
        let begun = match tokio::time::timeout(CATALOG_WAIT, rows)
            .await
            .unwrap_or_else(|_| Err("the catalog did not answer in time".into()))
        {
            Ok((id, call)) => {
                let spool = p.spool.clone();
                let stored = callrec_storage::StoredCallId::new(call_id.clone());
                let rid = id.to_string();
                tokio::task::spawn_blocking(move || {
                    let stored = stored.map_err(|e| e.to_string())?;
                    spool
                        .begin(&stored, &rid, started_at, format)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map(|_| (id, call))
            }
            Err(e) => Err(e),
        };
        match begun {
            Ok(ids) => catalog_ids = Some(ids),
            Err(e) => {
                tracing::error!(%call_id, error = %e, "cannot start the recording in the catalog and spool");
                let why = crate::sip::reason_phrase(
                    "the recorder cannot write its catalog or spool; check the catalog database and the data directory",
                );
                dialog
                    .reject(Some(StatusCode::ServiceUnavailable), Some(why))
                    .ok();
                state.metrics.failed.inc();
                state.release_ports(&ports);
                return;
            }
        }
    }

    let start = Instant::now();
    let media_time = {
        let origin = state.origin;
        move |t: Instant| {
            MediaTime::from_nanos(t.saturating_duration_since(origin).as_nanos() as u64)
        }
    };
    let recorder = Recorder::create(
        &state.config.spool_dir(),
        &call_id,
        format,
        pause_mode,
        Duration::from_millis(state.config.rtp.jitter_delay_ms),
        Duration::from_secs(cfg.checkpoint_secs.max(1)),
        media_time(start),
    );
    let recorder = recorder.and_then(|mut r| {
        if cfg.pcm_backup {
            r.keep_pcm_backup()?;
        }
        Ok(r)
    });
    let mut recorder = match recorder {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%call_id, error = %e, "cannot start the recording");
            dialog
                .reject(Some(StatusCode::ServerInternalError), Some(e.to_string()))
                .ok();
            state.metrics.failed.inc();
            state.release_ports(&ports);
            return;
        }
    };

    // Streams: the recordable m-lines, in order, each with its socket.
    let recordable = setup.offer.recordable_streams();
    let mut stream_labels = Vec::new();
    let mut live_streams = Vec::new();
    for (k, &mline) in recordable.iter().enumerate() {
        let label = &labels[k];
        let answered = &setup.answer.streams[mline];
        let side = channel_map.side(label).unwrap_or(Side::Agent);
        recorder.add_stream(label, role_of(side), &answered.codecs);
        stream_labels.push(label.clone());
        live_streams.push(LiveStream {
            label: label.clone(),
            side: side.as_str(),
            port: setup.ports[k],
        });
    }

    // Answer.
    let headers = vec![
        make_header("Contact", setup.contact.clone()),
        Header::ContentType("application/sdp".into()),
        make_header("Require", "siprec".into()),
        make_header("Allow", crate::sip::ALLOW.into()),
    ];
    if let Err(e) = dialog.accept(Some(headers), Some(setup.answer.sdp.clone().into_bytes())) {
        tracing::info!(%call_id, error = %e, "cannot answer; the session ended");
        state.metrics.cancelled.inc();
        state.release_ports(&ports);
        drop(recorder);
        let _ = std::fs::remove_dir_all(state.config.spool_dir().join(&call_id));
        return;
    }
    state.metrics.calls_total.inc();
    state.metrics.active.fetch_add(1, Ordering::Relaxed);
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    state.live.lock().expect("live lock").insert(
        call_id.clone(),
        LiveCall {
            call_id: call_id.clone(),
            sip_call_id: setup.sip_call_id.clone(),
            source: setup.source.map(|ip| ip.to_string()),
            started_at: time::OffsetDateTime::now_utc(),
            streams: live_streams,
            paused: false,
            recording_id: catalog_ids.as_ref().map(|(id, _)| *id),
        },
    );
    tracing::info!(%call_id, streams = recordable.len(), "recording started");

    // The RTP sockets, read by this task.
    let mut rtp = RtpIn::new();
    for (k, socket) in setup.sockets.into_iter().enumerate() {
        rtp.add(socket, k);
    }

    // Pause state from the first offer: every recorded stream inactive.
    let mut session = Session {
        offer: setup.offer,
        answer: setup.answer,
        ports: setup.ports.clone(),
        session_id: setup.session_id,
        version: 1,
        contact: setup.contact,
        known: HashMap::new(),
        channel_map,
        policy,
        added_numbers: HashMap::new(),
        policy_decisions: Vec::new(),
        participants_left: Vec::new(),
        stopped: false,
        pause_reasons: Vec::new(),
    };
    session.remember_sides();
    if session.all_inactive() {
        recorder.pause(media_time(start));
        session.pause_reasons.push("sdp_inactive");
        state.set_paused(&call_id, true);
    }

    let inactivity = Duration::from_secs(state.config.rtp.inactivity_timeout_secs);
    let mut last_packet = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason: String;
    loop {
        tokio::select! {
            p = rtp.recv(&state.metrics) => {
                last_packet = p.arrival;
                if !session.stopped && recorder.push(p.stream, media_time(p.arrival), rtp.packet(&p)) {
                    state.metrics.packets_received.inc();
                } else {
                    state.metrics.packets_refused.inc();
                }
            }
            _ = tick.tick() => {
                // A stopped recording ends where it stopped: no more silence.
                let now = Instant::now();
                if !session.stopped {
                    recorder.tick(media_time(now));
                }
                if recorder.is_paused() {
                    last_packet = now;
                }
                if !inactivity.is_zero() && now.saturating_duration_since(last_packet) >= inactivity {
                    tracing::info!(%call_id, secs = inactivity.as_secs(), "no RTP: ending the recording session");
                    let _ = tokio::time::timeout(Duration::from_secs(2), dialog.bye()).await;
                    reason = "rtp_timeout".into();
                    break;
                }
            }
            s = states.recv() => match s {
                Some(DialogState::Updated(_, req, handle)) => {
                    let now = media_time(Instant::now());
                    session.update(&state, &call_id, &req, handle, &mut recorder, &mut metadata, &mut resolver, &mut stream_labels, &mut rtp, now).await;
                }
                Some(DialogState::Options(_, _, handle)) | Some(DialogState::Info(_, _, handle)) => {
                    handle.reply(StatusCode::OK).await.ok();
                }
                Some(DialogState::Message(_, _, handle)) | Some(DialogState::Refer(_, _, handle))
                | Some(DialogState::Notify(_, _, handle)) | Some(DialogState::Publish(_, _, handle)) => {
                    handle.reply(StatusCode::MethodNotAllowed).await.ok();
                }
                Some(DialogState::Terminated(_, r)) => { reason = end_reason(&r).to_owned(); break; }
                Some(_) => {}
                None => { reason = "dialog_gone".into(); break; }
            },
            _ = shutdown.cancelled() => {
                tracing::info!(%call_id, "shutting down: ending the recording session");
                let _ = tokio::time::timeout(Duration::from_secs(2), dialog.bye()).await;
                reason = "shutdown".into();
                break;
            }
        }
    }
    // Packets already received still count.
    let stopped = session.stopped;
    rtp.drain(&state.metrics, |k, arrival, packet| {
        if !stopped && recorder.push(k, media_time(arrival), packet) {
            state.metrics.packets_received.inc();
        }
    });
    drop(rtp);
    let ended = Instant::now();
    // The end of the call (BYE), as the catalog keeps it.
    let ended_at = callrec_catalog::UnixMillis::now();
    state.metrics.active.fetch_sub(1, Ordering::Relaxed);
    state.live.lock().expect("live lock").remove(&call_id);
    let extra = session.metadata_json(&setup.sip_call_id, &metadata, &reason);
    if let (Some(p), Some((id, _))) = (&pipeline, &catalog_ids) {
        // The media is over: waiting for room in the queue is fine here.
        let _ = p
            .events
            .send(CatalogEvent::Finalizing {
                id: *id,
                reason: format!("call ended: {reason}"),
            })
            .await;
    }
    let st = state.clone();
    let spool = pipeline.as_ref().map(|p| p.spool.clone());
    let stored_id = call_id.clone();
    let finished = tokio::task::spawn_blocking(move || {
        for (_, s) in recorder.stream_stats() {
            st.metrics.packets_lost.add(s.lost);
            st.metrics.packets_late.add(s.late);
        }
        let done = recorder.finish(extra)?;
        let spooled = match spool {
            // Fsyncs the audio, writes the metadata durably with the
            // audio's sha256 and marks the entry finished.
            Some(spool) => {
                let id = callrec_storage::StoredCallId::new(stored_id).map_err(|e| {
                    crate::recording::RecordingError::Io {
                        path: done.audio_path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    }
                })?;
                Some(spool.finish(&id, done.metadata.clone()).map_err(|e| {
                    crate::recording::RecordingError::Io {
                        path: done.audio_path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    }
                })?)
            }
            None => None,
        };
        Ok::<_, crate::recording::RecordingError>((done, spooled))
    })
    .await;
    if let (Some(p), Some((id, call))) = (&pipeline, &catalog_ids) {
        let event = match &finished {
            Ok(Ok((done, Some(entry)))) => CatalogEvent::Spooled {
                id: *id,
                call: call.clone(),
                entry: Box::new(entry.clone()),
                pauses: pause_spans(&done.metadata),
                ended_at,
            },
            _ => CatalogEvent::FinishFailed {
                id: *id,
                call: call.clone(),
                ended_at,
            },
        };
        let _ = p.events.send(event).await;
    }
    let finished = finished.map(|r| r.map(|(done, _)| done));
    state.release_ports(&session.ports);
    match finished {
        Ok(Ok(done)) => {
            state.metrics.finished.inc();
            state
                .metrics
                .finalize_ms
                .add(ended.elapsed().as_millis() as u64);
            tracing::info!(%call_id, reason, duration_ms = %done.metadata["duration_ms"], "recording finished");
            state.publish(done);
        }
        Ok(Err(e)) => {
            state.metrics.failed.inc();
            tracing::error!(%call_id, error = %e, "recording could not be finalized");
        }
        Err(e) => {
            state.metrics.failed.inc();
            tracing::error!(%call_id, error = %e, "recording finalizer panicked");
        }
    }
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// The call's signalling state.
struct Session {
    offer: SessionDescription,
    answer: Answer,
    ports: Vec<u16>,
    session_id: u64,
    version: u64,
    contact: String,
    channel_map: ChannelMap,
    /// Every participant's side and what decided it, as first decided.
    known: HashMap<String, (Side, DecidedBy)>,
    policy: CallPolicy,
    added_numbers: HashMap<String, PhoneNumber>,
    policy_decisions: Vec<serde_json::Value>,
    participants_left: Vec<(String, u64)>,
    /// Recording stopped for good (the agent left and the policy said stop).
    stopped: bool,
    pause_reasons: Vec<&'static str>,
}

impl Session {
    /// Whether every recorded stream of the current offer is inactive (or
    /// the offerer does not send): the recording is paused.
    fn all_inactive(&self) -> bool {
        let rec = self.offer.recordable_streams();
        !rec.is_empty()
            && rec
                .iter()
                .all(|&i| !self.offer.effective_direction(i).offerer_sends())
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &mut self,
        state: &Arc<AppState>,
        call_id: &str,
        req: &Request,
        handle: TransactionHandle,
        recorder: &mut Recorder,
        metadata: &mut MetadataState,
        resolver: &mut RoleResolver,
        labels: &mut Vec<String>,
        rtp: &mut RtpIn,
        now: MediaTime,
    ) {
        let content_type = header_values(req, "Content-Type").into_iter().next();
        let body = match content_type {
            Some(ct) if !req.body.is_empty() => match callrec_siprec::parse_body(&ct, &req.body) {
                Ok(b) => Some(b),
                Err(e) => {
                    let why = crate::sip::reason_phrase(&format!("malformed body: {e}"));
                    handle
                        .respond(crate::sip::status(400, &why), None, None)
                        .await
                        .ok();
                    return;
                }
            },
            _ => None,
        };
        let mut new_offer = false;
        if let Some(body) = body {
            if let Some(md) = &body.metadata {
                let events = metadata.apply(md);
                self.channel_map = resolver.resolve(labels, Some(metadata));
                self.remember_sides();
                self.on_metadata_events(state, call_id, &events, recorder, metadata, now);
            }
            if let Some(sdp) = body.sdp {
                if sdp.media.len() < self.offer.media.len() {
                    handle
                        .respond(
                            crate::sip::status(488, "an offer may not remove m-lines"),
                            None,
                            None,
                        )
                        .await
                        .ok();
                    return;
                }
                self.offer = sdp;
                new_offer = true;
            }
        }
        // Streams keep their ports. A recordable m-line added later (or
        // re-enabled) gets a port and a stream of its own in the recording,
        // on the side its label's participant is on (a third party's stream
        // on the agent's channel), up to MAX_STREAMS per call.
        let recordable = self.offer.recordable_streams();
        let mut per_mline: Vec<Option<u16>> = vec![None; self.offer.media.len()];
        for (i, port) in per_mline.iter_mut().enumerate() {
            if let Some(old) = self.answer.streams.get(i)
                && old.accepted()
                && recordable.contains(&i)
            {
                *port = Some(old.port);
            }
        }
        let mut added: Vec<(usize, u16, tokio::net::UdpSocket)> = Vec::new();
        if new_offer && !self.stopped {
            for &i in &recordable {
                if per_mline[i].is_some() {
                    continue;
                }
                if self.ports.len() + added.len() >= MAX_STREAMS {
                    tracing::warn!(
                        call_id,
                        max = MAX_STREAMS,
                        "too many streams: an added m-line is declined"
                    );
                    break;
                }
                match crate::sip::bind_ports(state, 1).await {
                    Some((ports, mut sockets)) => {
                        per_mline[i] = Some(ports[0]);
                        added.push((i, ports[0], sockets.remove(0)));
                    }
                    None => {
                        tracing::warn!(call_id, "no free RTP port: an added m-line is declined");
                    }
                }
            }
        }
        if new_offer {
            self.version += 1;
            match build_answer(
                &self.offer,
                &per_mline,
                &AnswerParams {
                    address: sdp_address(&self.answer.sdp),
                    session_id: self.session_id,
                    session_version: self.version,
                },
            ) {
                Ok(a) => self.answer = a,
                Err(e) => {
                    let ports: Vec<u16> = added.iter().map(|(_, p, _)| *p).collect();
                    drop(added);
                    state.release_ports(&ports);
                    handle
                        .respond(crate::sip::status(488, &e.to_string()), None, None)
                        .await
                        .ok();
                    return;
                }
            }
            for (i, port, socket) in added {
                let label = callrec_siprec::sdp::stream_key(&self.offer.media[i], i);
                labels.push(label.clone());
                self.channel_map = resolver.resolve(labels, Some(metadata));
                self.remember_sides();
                let side = self.channel_map.side(&label).unwrap_or(Side::Agent);
                let k = recorder.add_stream(&label, role_of(side), &self.answer.streams[i].codecs);
                self.ports.push(port);
                rtp.add(socket, k);
                state.add_live_stream(
                    call_id,
                    LiveStream {
                        label: label.clone(),
                        side: side.as_str(),
                        port,
                    },
                );
                tracing::info!(
                    call_id,
                    label,
                    side = side.as_str(),
                    "stream added during the call"
                );
            }
            let paused = recorder.is_paused();
            let inactive = self.all_inactive();
            if inactive && !paused {
                recorder.pause(now);
                self.pause_reasons.push("sdp_inactive");
                state.set_paused(call_id, true);
                tracing::info!(call_id, "recording paused (streams inactive)");
            } else if !inactive && paused {
                recorder.resume(now);
                state.set_paused(call_id, false);
                tracing::info!(call_id, "recording resumed");
            }
        }
        let is_invite = req.method == rsipstack::sip::Method::Invite;
        let (headers, body) = if is_invite || new_offer {
            (
                Some(vec![
                    make_header("Contact", self.contact.clone()),
                    Header::ContentType("application/sdp".into()),
                ]),
                Some(self.answer.sdp.clone().into_bytes()),
            )
        } else {
            (None, None)
        };
        handle.respond(StatusCode::OK, headers, body).await.ok();
    }

    fn remember_sides(&mut self) {
        for e in &self.channel_map.entries {
            if let Some(p) = &e.participant_id {
                self.known
                    .entry(p.clone())
                    .or_insert((e.side, e.decided_by));
            }
        }
    }

    /// Turns metadata changes into policy events (joins first: a party the
    /// agent added is on the call before the agent leaves) and acts on the
    /// decisions.
    fn on_metadata_events(
        &mut self,
        state: &AppState,
        call_id: &str,
        events: &[MetadataEvent],
        recorder: &mut Recorder,
        metadata: &MetadataState,
        now: MediaTime,
    ) {
        let mut policy_events = Vec::new();
        for e in events {
            if let MetadataEvent::ParticipantJoined { participant_id } = e {
                let added = match self.known.get(participant_id) {
                    Some((_, by)) => *by == DecidedBy::AddedParty,
                    None => true,
                };
                let number = metadata
                    .participant(participant_id)
                    .and_then(|p| p.participant.aor.as_deref())
                    .and_then(phone_number);
                let p = metadata.participant(participant_id);
                state.catalog_participant_joined(
                    call_id,
                    participant_id,
                    match self.known.get(participant_id) {
                        Some((side, _)) => catalog_role(*side, added),
                        None => callrec_catalog::ParticipantRole::ThirdParty,
                    },
                    p.and_then(|p| p.participant.aor.as_deref()),
                    p.and_then(|p| p.participant.name.as_deref()),
                );
                if added && let Some(number) = number {
                    self.added_numbers
                        .insert(participant_id.clone(), number.clone());
                    policy_events.push(ParticipantEvent::ThirdPartyAdded { number });
                }
            }
        }
        for e in events {
            if let MetadataEvent::ParticipantLeft { participant_id } = e {
                self.participants_left
                    .push((participant_id.clone(), now.as_nanos() / 1_000_000));
                state.catalog_participant_left(call_id, participant_id);
                let event = match self.known.get(participant_id) {
                    Some((Side::EndUser, _)) => ParticipantEvent::EndUserLeft,
                    Some((Side::Agent, DecidedBy::AddedParty)) | None => {
                        match self.added_numbers.get(participant_id) {
                            Some(n) => ParticipantEvent::ThirdPartyLeft { number: n.clone() },
                            None => continue,
                        }
                    }
                    Some((Side::Agent, _)) => ParticipantEvent::AgentLeft,
                };
                policy_events.push(event);
            }
        }
        for event in policy_events {
            let decision = self.policy.participant(&event);
            tracing::info!(call_id, action = ?decision.action, reason = %decision.reason, "policy decision");
            state.catalog_decision(
                call_id,
                &format!("{:?}", decision.action).to_lowercase(),
                &decision.reason,
            );
            self.policy_decisions.push(json!({
                "at_ms": now.as_nanos() / 1_000_000,
                "event": serde_json::to_value(&event).unwrap_or_default(),
                "action": format!("{:?}", decision.action).to_lowercase(),
                "reason": decision.reason,
            }));
            match decision.action {
                RecordingAction::Stop if !self.stopped => {
                    self.stopped = true;
                    for i in 0..self.ports.len() {
                        recorder.remove_stream(i, now);
                    }
                    if matches!(event, ParticipantEvent::AgentLeft) {
                        state.metrics.stopped_agent_left.inc();
                    }
                }
                RecordingAction::Pause => {
                    recorder.pause(now);
                    state.set_paused(call_id, true);
                }
                RecordingAction::Resume => {
                    recorder.resume(now);
                    state.set_paused(call_id, false);
                }
                _ => {}
            }
        }
    }

    fn metadata_json(
        &self,
        sip_call_id: &str,
        md: &MetadataState,
        reason: &str,
    ) -> serde_json::Value {
        let participants: Vec<serde_json::Value> = md
            .participants()
            .iter()
            .map(|p| {
                let entry = self
                    .channel_map
                    .entries
                    .iter()
                    .find(|c| c.participant_id.as_deref() == Some(p.participant.id.as_str()));
                json!({
                    "id": p.participant.id,
                    "aor": p.participant.aor,
                    "name": p.participant.name,
                    "role": entry.map(|c| c.side.as_str()),
                    "active": p.active,
                    "left_at_ms": self.participants_left.iter().find(|(id, _)| *id == p.participant.id).map(|(_, t)| t),
                })
            })
            .collect();
        let channel_map: Vec<serde_json::Value> = self
            .channel_map
            .entries
            .iter()
            .map(|c| {
                json!({
                    "channel": role_of(c.side).channel_number(),
                    "side": c.side.as_str(),
                    "label": c.label,
                    "participant_id": c.participant_id,
                    "aor": c.aor,
                    "decided_by": c.decided_by.as_str(),
                })
            })
            .collect();
        let session_ids: Vec<&str> = md.sessions().iter().map(|s| s.id.as_str()).collect();
        json!({
            "source": "siprec",
            "sip_call_id": sip_call_id,
            "siprec_session_ids": session_ids,
            "participants": participants,
            "channel_map": channel_map,
            "end_reason": reason,
            "recording_stopped": self.stopped,
            "settings_version": self.policy.settings_version(),
            "policy_decisions": self.policy_decisions,
            "pause_reasons": self.pause_reasons,
        })
    }
}

/// The phone number in an address of record (`sip:+15550100@host`,
/// `tel:+1-555-0100`), if its user part is one.
/// The catalog role of a participant on `side`; `added`: a party the agent
/// added (on the agent's channel).
fn catalog_role(side: Side, added: bool) -> callrec_catalog::ParticipantRole {
    match (side, added) {
        (Side::EndUser, _) => callrec_catalog::ParticipantRole::EndUser,
        (Side::Agent, true) => callrec_catalog::ParticipantRole::ThirdParty,
        (Side::Agent, false) => callrec_catalog::ParticipantRole::Agent,
    }
}

fn phone_number(aor: &str) -> Option<PhoneNumber> {
    PhoneNumber::parse(crate::aor_user(aor)?).ok()
}

/// The channel of a participant of `role`: the end user on the left,
/// everyone else on the agent's side.
pub(crate) fn catalog_channel(role: callrec_catalog::ParticipantRole) -> callrec_catalog::Channel {
    match role {
        callrec_catalog::ParticipantRole::EndUser => callrec_catalog::Channel::Left,
        _ => callrec_catalog::Channel::Right,
    }
}

fn default_settings() -> callrec_policy::VersionedSettings {
    callrec_policy::VersionedSettings {
        version: callrec_policy::SettingsVersion::FIRST,
        settings: callrec_policy::ValidSettings::default(),
        changed_by: callrec_policy::Actor::system(),
        changed_at: time::OffsetDateTime::now_utc(),
        changes: Vec::new(),
    }
}

/// The address of an earlier answer's `c=` line (kept across re-offers).
fn sdp_address(sdp: &str) -> IpAddr {
    sdp.lines()
        .find_map(|l| {
            l.strip_prefix("c=IN IP4 ")
                .or_else(|| l.strip_prefix("c=IN IP6 "))
        })
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// How long a new call waits for its catalog rows before it is refused.
const CATALOG_WAIT: Duration = Duration::from_secs(5);

/// The pause spans of the finished metadata, for the catalog.
fn pause_spans(metadata: &serde_json::Value) -> Vec<callrec_catalog::PauseSpan> {
    metadata["pause_spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|p| {
                    let start_ms = p["start_ms"].as_u64()?;
                    let end_ms = p["end_ms"].as_u64().unwrap_or(start_ms).max(start_ms);
                    Some(callrec_catalog::PauseSpan { start_ms, end_ms })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a new call to the catalog: the call, its participants with their
/// roles and channels, the policy's decision with its reason, and its
/// recording in `status` (`recording`, or `declined` with no audio).
#[allow(clippy::too_many_arguments)]
async fn catalog_start(
    p: &Pipeline,
    call_id: &str,
    started_at: time::OffsetDateTime,
    channel_map: &ChannelMap,
    metadata: &MetadataState,
    decision: &callrec_policy::CallDecision,
    format: callrec_media::encode::Format,
    status: RecordingStatus,
) -> Result<(RecordingId, CatalogCallId), String> {
    use callrec_catalog::{
        CallStart, CatalogChange, ChangeOutcome, Direction, NewCall as CatalogNewCall,
        NewParticipant, NewRecording, PolicyDecision, RecordingFormat, UnixMillis,
    };
    let s = |e: callrec_catalog::CatalogError| e.to_string();
    let id = CatalogCallId::new(call_id).map_err(s)?;
    let at = UnixMillis::from(started_at);
    let mut participants = Vec::new();
    let mut keys = Vec::new();
    for entry in &channel_map.entries {
        let role = catalog_role(entry.side, entry.decided_by == DecidedBy::AddedParty);
        let channel = catalog_channel(role);
        let known = entry
            .participant_id
            .as_deref()
            .and_then(|pid| metadata.participant(pid));
        let number = entry
            .aor
            .as_deref()
            .or_else(|| known.and_then(|k| k.participant.aor.as_deref()))
            .and_then(phone_number)
            .and_then(|n| callrec_catalog::PhoneNumber::new(n.as_str()).ok());
        let name = known.and_then(|k| k.participant.name.clone());
        participants.push(NewParticipant {
            role,
            channel,
            number,
            name,
            joined_at: at,
        });
        keys.push(entry.participant_id.clone());
    }
    let word = match decision.recording {
        StartRecording::Now => "record",
        StartRecording::AfterConsent => "ask_permission",
        StartRecording::Never => "do_not_record",
    };
    // All or nothing: the call, its participants, the decision and the
    // recording, committed with the other calls arriving now.
    let started = p
        .starts
        .apply(CatalogChange::StartCall(Box::new(CallStart {
            call: CatalogNewCall {
                id: id.clone(),
                direction: Direction::Inbound,
                kind: "siprec".into(),
                queue: None,
                language: None,
                started_at: at,
                settings_version: Some(decision.settings_version.0),
            },
            participants,
            decision: PolicyDecision {
                at,
                decision: word.into(),
                reason: decision.reason.clone(),
            },
            recording: NewRecording {
                call_id: id.clone(),
                format: match format {
                    callrec_media::encode::Format::Wav => RecordingFormat::Wav,
                    _ => RecordingFormat::Mp3,
                },
                status,
                reason: format!("policy: {}", decision.reason),
                created_at: at,
            },
        })))
        .await
        .map_err(s)?;
    let ChangeOutcome::Started(started) = started else {
        return Err("the catalog answered a call's start with something else".into());
    };
    let recording = started.recording;
    let participant_ids: Vec<(String, i64)> = keys
        .into_iter()
        .zip(&started.participants)
        .filter_map(|(k, p)| k.map(|k| (k, p.id)))
        .collect();
    if status == RecordingStatus::Recording {
        // So that their leaving is recorded against these rows.
        p.try_event(CatalogEvent::ParticipantsKnown {
            call: id.clone(),
            ids: participant_ids,
        });
    }
    Ok((recording.id, id))
}
