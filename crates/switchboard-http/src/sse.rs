//! Server-Sent Events: a stream of the messages at matching `http:` addresses.
//! A client that falls behind the hub's buffer misses the oldest messages
//! (counted) and never slows anyone else; the stream ends on shutdown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use switchboard_model::{Counter, Message, Pattern};

use crate::acl::ReadFilter;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::mapping::envelope;
use crate::service::Body;

/// A message on its way to the SSE streams, with its `data:` JSON made once
/// by the first stream that sends it and shared by the others.
#[derive(Debug)]
pub(crate) struct Event {
    message: Arc<Message>,
    data: OnceLock<String>,
}

impl Event {
    pub(crate) fn new(message: Arc<Message>) -> Arc<Event> {
        Arc::new(Event {
            message,
            data: OnceLock::new(),
        })
    }
}

struct State {
    rx: broadcast::Receiver<Arc<Event>>,
    patterns: Vec<(Pattern, ReadFilter)>,
    adapter: Arc<str>,
    keep_alive: tokio::time::Interval,
    shutdown: CancellationToken,
    drops: Counter,
    id: u64,
    opened: bool,
}

/// An SSE body for `patterns`.
pub(crate) fn stream(
    rx: broadcast::Receiver<Arc<Event>>,
    patterns: Vec<(Pattern, ReadFilter)>,
    adapter: Arc<str>,
    keep_alive: Duration,
    shutdown: CancellationToken,
    drops: Counter,
) -> Body {
    let mut ka = tokio::time::interval(keep_alive);
    ka.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let st = State {
        rx,
        patterns,
        adapter,
        keep_alive: ka,
        shutdown,
        drops,
        id: 0,
        opened: false,
    };
    let s = stream::unfold(st, |mut st| async move {
        if !st.opened {
            st.opened = true;
            // Tell the client at once that the stream is open.
            return Some((
                Ok(Frame::data(Bytes::from_static(b": open\nretry: 2000\n\n"))),
                st,
            ));
        }
        loop {
            tokio::select! {
                () = st.shutdown.cancelled() => return None,
                _ = st.keep_alive.tick() => {
                    return Some((Ok(Frame::data(Bytes::from_static(b": keep-alive\n\n"))), st));
                }
                r = st.rx.recv() => match r {
                    Ok(e) => {
                        let m = &e.message;
                        if !st.patterns.iter().any(|(p, f)| p.matches(&m.topic) && f.allows(&m.topic)) {
                            continue;
                        }
                        st.id += 1;
                        let data = e.data.get_or_init(|| envelope(&st.adapter, m).to_string());
                        let ev = format!("id: {}\nevent: message\ndata: {data}\n\n", st.id);
                        return Some((Ok(Frame::data(Bytes::from(ev))), st));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => st.drops.add(n),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    StreamBody::new(s).boxed()
}
