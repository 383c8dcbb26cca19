//! Router benchmarks: routing throughput (64-byte messages, fan-out 1 and 10,
//! including the queue push and the sink's pop + ack), the pattern index
//! against a linear scan with 10 000 routes in the same run, and template
//! expansion.
//!
//! `cargo bench --bench router`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_model::{AddressBook, Message, Pattern, Topic};
use switchboard_router::{PatternIndex, RouteSpec, Router, SlotSpec, Template};

fn router_with(dests: usize) -> Router {
    router_with_template(dests, "out/{1}/{2}")
}

fn router_with_template(dests: usize, topic_template: &str) -> Router {
    let mut slots = vec![SlotSpec {
        name: "src".into(),
        kind: "bench".into(),
        queue_capacity: 1024,
    }];
    let mut to = Vec::new();
    for i in 0..dests {
        slots.push(SlotSpec {
            name: format!("d{i}").into(),
            kind: "bench".into(),
            queue_capacity: 1024,
        });
        to.push(format!("d{i}:{topic_template}"));
    }
    let mut routes = vec![RouteSpec::new("src:sensors/+/temperature/#", to)];
    // Other routes that do not match, so the index has something to skip.
    for i in 0..100 {
        routes.push(RouteSpec::new(format!("src:other/{i}/#"), ["d0:{0}"]));
    }
    Router::new(slots, &routes, Arc::new(AddressBook::default()), 8).unwrap()
}

fn route_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_64B");
    g.throughput(Throughput::Elements(1));
    for fan in [1usize, 10] {
        let router = router_with(fan);
        let msg =
            Message::octets("src:sensors/kitchen/temperature/celsius", vec![7u8; 64]).unwrap();
        let mut out = Vec::with_capacity(16);
        // As the router's driver does: the table checked for a swap per
        // message through its cache.
        let mut tables = router.tables();
        g.bench_function(format!("fan_out_{fan}"), |b| {
            b.iter(|| {
                router.route_in(tables.current(), black_box(&msg), &mut out);
                for (slot, d) in out.drain(..) {
                    let q = router.queue(slot).unwrap();
                    let _ = q.try_push(d);
                    if let Some(d) = q.try_recv() {
                        d.ack.done();
                    }
                }
            });
        });
    }
    // The common case of the default route `*:{0}`: the source topic is reused.
    let router = router_with_template(1, "{0}");
    let msg = Message::octets("src:sensors/kitchen/temperature/celsius", vec![7u8; 64]).unwrap();
    let mut out = Vec::with_capacity(16);
    let mut tables = router.tables();
    g.bench_function("fan_out_1_same_topic", |b| {
        b.iter(|| {
            router.route_in(tables.current(), black_box(&msg), &mut out);
            for (slot, d) in out.drain(..) {
                let q = router.queue(slot).unwrap();
                let _ = q.try_push(d);
                if let Some(d) = q.try_recv() {
                    d.ack.done();
                }
            }
        });
    });
    g.finish();
}

fn index_vs_scan(c: &mut Criterion) {
    let pats: Vec<Pattern> = (0..10_000)
        .map(|i| match i % 4 {
            0 => Pattern::new(&format!("site{i}/+/temp")).unwrap(),
            1 => Pattern::new(&format!("site{i}/dev/#")).unwrap(),
            2 => Pattern::new(&format!("site{i}/dev/temp/raw")).unwrap(),
            _ => Pattern::new(&format!("+/site{i}/x")).unwrap(),
        })
        .collect();
    let mut idx = PatternIndex::new();
    for (i, p) in pats.iter().enumerate() {
        idx.insert(p, i as u32);
    }
    let topic = Topic::new("site5001/dev/temp").unwrap();
    let mut g = c.benchmark_group("match_10000_routes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pattern_index", |b| {
        b.iter(|| {
            let mut n = 0u32;
            idx.for_each_match(black_box(&topic), |_| n += 1);
            n
        });
    });
    g.bench_function("linear_scan", |b| {
        b.iter(|| pats.iter().filter(|p| p.matches(black_box(&topic))).count());
    });
    g.finish();
}

fn templates(c: &mut Criterion) {
    let from = Pattern::new("sensors/+/temperature/#").unwrap();
    let t = Template::parse("ws:out/{1}/t/{2}", &from).unwrap();
    let ident = Template::parse("ws:{0}", &from).unwrap();
    let topic = Topic::new("sensors/kitchen/temperature/celsius/raw").unwrap();
    let mut g = c.benchmark_group("template");
    g.throughput(Throughput::Elements(1));
    g.bench_function("captures", |b| {
        b.iter(|| t.expand(&from, black_box(&topic)))
    });
    g.bench_function("identity", |b| {
        b.iter(|| ident.expand(&from, black_box(&topic)))
    });
    g.finish();
}

criterion_group!(benches, route_throughput, index_vs_scan, templates);
criterion_main!(benches);
