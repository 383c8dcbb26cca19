//! [`BridgeInfo`] for the router: routes and adapters with their counters, and
//! the Prometheus text exposition of every counter.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use switchboard_model::{AdapterInfo, BridgeInfo, DropReason, RouteInfo};

use crate::router::Router;

impl BridgeInfo for Router {
    fn routes(&self) -> Vec<RouteInfo> {
        self.table()
            .routes()
            .iter()
            .enumerate()
            .map(|(index, r)| RouteInfo {
                index,
                from: r.spec.from.clone(),
                to: r.spec.to.clone(),
                format: r.spec.format.as_ref().map(|f| f.name().to_owned()),
                counters: r.counters.snapshot(),
            })
            .collect()
    }

    fn adapters(&self) -> Vec<AdapterInfo> {
        self.slots()
            .iter()
            .map(|s| AdapterInfo {
                name: s.name.to_string(),
                kind: s.kind.clone(),
                health: s.health.get(),
                endpoints: s
                    .endpoints
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|e| format!("{}={}", e.service, e.addr))
                    .collect(),
                received: s.metrics.received.load(Ordering::Relaxed),
                sent: s.metrics.sent.load(Ordering::Relaxed),
                errors: s.metrics.errors.load(Ordering::Relaxed),
                dropped: s.metrics.dropped.load(Ordering::Relaxed),
                queued: s.queue.len(),
                detail: s.metrics.detail(),
            })
            .collect()
    }

    fn metrics_text(&self) -> String {
        let mut o = String::with_capacity(4096);
        let table = self.table();
        header(
            &mut o,
            "switchboard_route_matched_total",
            "counter",
            "Messages whose source matched the route.",
        );
        for (i, r) in table.routes().iter().enumerate() {
            let _ = writeln!(
                o,
                "switchboard_route_matched_total{{route=\"{i}\",from=\"{}\"}} {}",
                esc(&r.spec.from),
                r.counters.matched.load(Ordering::Relaxed)
            );
        }
        header(
            &mut o,
            "switchboard_route_delivered_total",
            "counter",
            "Deliveries acknowledged by the destination.",
        );
        for (i, r) in table.routes().iter().enumerate() {
            let _ = writeln!(
                o,
                "switchboard_route_delivered_total{{route=\"{i}\"}} {}",
                r.counters.delivered.load(Ordering::Relaxed)
            );
        }
        header(
            &mut o,
            "switchboard_route_failed_total",
            "counter",
            "Deliveries the destination gave up on.",
        );
        for (i, r) in table.routes().iter().enumerate() {
            let _ = writeln!(
                o,
                "switchboard_route_failed_total{{route=\"{i}\"}} {}",
                r.counters.failed.load(Ordering::Relaxed)
            );
        }
        header(
            &mut o,
            "switchboard_route_dropped_total",
            "counter",
            "Messages dropped by the route, by reason.",
        );
        for (i, r) in table.routes().iter().enumerate() {
            for reason in DropReason::ALL {
                let _ = writeln!(
                    o,
                    "switchboard_route_dropped_total{{route=\"{i}\",reason=\"{}\"}} {}",
                    reason.as_str(),
                    r.counters.dropped(reason)
                );
            }
        }
        type Getter = fn(&switchboard_model::AdapterMetrics) -> u64;
        let adapter_counters: [(&str, &str, Getter); 4] = [
            (
                "switchboard_adapter_received_total",
                "Messages received from the adapter's peers.",
                |m| m.received.load(Ordering::Relaxed),
            ),
            (
                "switchboard_adapter_sent_total",
                "Messages delivered to the adapter's peers.",
                |m| m.sent.load(Ordering::Relaxed),
            ),
            (
                "switchboard_adapter_errors_total",
                "Protocol errors seen by the adapter.",
                |m| m.errors.load(Ordering::Relaxed),
            ),
            (
                "switchboard_adapter_dropped_total",
                "Messages dropped by the adapter.",
                |m| m.dropped.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, get) in adapter_counters {
            header(&mut o, name, "counter", help);
            for s in self.slots() {
                let _ = writeln!(
                    o,
                    "{name}{{adapter=\"{}\",kind=\"{}\"}} {}",
                    esc(&s.name),
                    esc(&s.kind),
                    get(&s.metrics)
                );
            }
        }
        header(
            &mut o,
            "switchboard_adapter_up",
            "gauge",
            "1 when the adapter is up.",
        );
        for s in self.slots() {
            let _ = writeln!(
                o,
                "switchboard_adapter_up{{adapter=\"{}\"}} {}",
                esc(&s.name),
                u8::from(s.health.get().up)
            );
        }
        header(
            &mut o,
            "switchboard_adapter_queue_depth",
            "gauge",
            "Deliveries waiting for the adapter.",
        );
        for s in self.slots() {
            let _ = writeln!(
                o,
                "switchboard_adapter_queue_depth{{adapter=\"{}\"}} {}",
                esc(&s.name),
                s.queue.len()
            );
        }
        let mut extras: Vec<(String, &'static str, String, u64)> = Vec::new();
        for s in self.slots() {
            for c in s.metrics.extra() {
                extras.push((
                    format!("switchboard_{}", c.name),
                    c.help,
                    s.name.to_string(),
                    c.get(),
                ));
            }
        }
        extras.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last = String::new();
        for (name, help, adapter, v) in extras {
            if name != last {
                header(&mut o, &name, "counter", help);
                last.clone_from(&name);
            }
            let _ = writeln!(o, "{name}{{adapter=\"{}\"}} {v}", esc(&adapter));
        }
        adapter_details(&mut o, self);
        let book = self.book();
        header(
            &mut o,
            "switchboard_topics",
            "gauge",
            "Addresses holding a last value.",
        );
        let _ = writeln!(o, "switchboard_topics {}", book.len());
        header(
            &mut o,
            "switchboard_topics_refused_total",
            "counter",
            "New addresses not recorded because the cache was full.",
        );
        let _ = writeln!(o, "switchboard_topics_refused_total {}", book.refused());
        header(
            &mut o,
            "switchboard_subscriber_drops_total",
            "counter",
            "Messages a slow library subscriber missed.",
        );
        let _ = writeln!(o, "switchboard_subscriber_drops_total {}", book.tap_drops());
        o
    }
}

/// Facts as `switchboard_adapter_info{adapter,FACT="..."} 1`, per-topic
/// figures as `switchboard_FIGURE{adapter,topic}`.
fn adapter_details(o: &mut String, r: &Router) {
    let details: Vec<_> = r
        .slots()
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.metrics.detail()?)))
        .collect();
    if details.is_empty() {
        return;
    }
    header(
        o,
        "switchboard_adapter_info",
        "gauge",
        "Facts an adapter reports about itself (always 1).",
    );
    for (name, d) in &details {
        let _ = write!(o, "switchboard_adapter_info{{adapter=\"{}\"", esc(name));
        for (k, v) in &d.facts {
            let k: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let _ = write!(o, ",{k}=\"{}\"", esc(v));
        }
        o.push_str("} 1\n");
    }
    let mut rows: Vec<(&str, &str, &str, u64)> = details
        .iter()
        .flat_map(|(name, d)| {
            d.topics.iter().flat_map(move |(topic, figs)| {
                figs.iter()
                    .map(move |(f, v)| (*f, &**name, topic.as_str(), *v))
            })
        })
        .collect();
    rows.sort_unstable();
    let mut last = "";
    for (figure, adapter, topic, v) in rows {
        if figure != last {
            let kind = if figure.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            header(
                o,
                &format!("switchboard_{figure}"),
                kind,
                "Per-topic figure reported by the adapter.",
            );
            last = figure;
        }
        let _ = writeln!(
            o,
            "switchboard_{figure}{{adapter=\"{}\",topic=\"{}\"}} {v}",
            esc(adapter),
            esc(topic)
        );
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
