//! Bounded per-destination delivery queues with an explicit overflow policy,
//! and the explicit acknowledgement each delivery carries.
//!
//! Policy when a queue is full: an incoming QoS 0 message evicts the oldest
//! QoS 0 message (or is itself dropped when there is none); an incoming QoS >= 1
//! message evicts the oldest QoS 0 message if any, and otherwise waits for room
//! (back-pressure towards the router and so towards the source). Every drop is
//! counted on the route that produced the delivery.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio::sync::Notify;

use crate::format::Qos;
use crate::message::Message;
use crate::metrics::{DropReason, RouteCounters};

/// The acknowledgement of one delivery. A sink calls [`Ack::done`] once its
/// protocol accepted the message (sent at QoS 0, acknowledged at QoS >= 1) or
/// [`Ack::failed`] when it gave up; the route's counters follow.
#[derive(Debug, Default)]
#[must_use = "a delivery must be acknowledged with done() or failed()"]
pub struct Ack {
    counters: Option<Arc<RouteCounters>>,
}

impl Ack {
    /// An acknowledgement that counts on `counters`.
    #[inline]
    pub fn new(counters: Arc<RouteCounters>) -> Self {
        Ack {
            counters: Some(counters),
        }
    }

    /// An acknowledgement that counts nowhere (deliveries made outside routes).
    pub fn none() -> Self {
        Ack { counters: None }
    }

    /// The sink accepted the message.
    #[inline]
    pub fn done(self) {
        if let Some(c) = &self.counters {
            c.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sink gave up on the message.
    pub fn failed(self) {
        if let Some(c) = &self.counters {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The message was dropped before reaching the sink.
    pub fn dropped(self, reason: DropReason) {
        if let Some(c) = &self.counters {
            c.count_drop(reason);
        }
    }
}

/// A message routed to an adapter, with its acknowledgement.
#[derive(Debug)]
pub struct Delivery {
    /// The message; its `topic` is the destination topic, its `origin` the
    /// source. Shared: a route delivering one message to several adapters
    /// under the same topic hands each the same allocation, and moving a
    /// delivery through the queues moves a pointer.
    pub message: Arc<Message>,
    /// Call `done()` or `failed()` when the sink is finished with it.
    pub ack: Ack,
}

/// What happened to a pushed delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued with room to spare.
    Queued,
    /// Queued after evicting the oldest QoS 0 delivery.
    QueuedEvicted,
    /// Dropped: the queue was full and the delivery was QoS 0 with no older
    /// QoS 0 delivery to evict.
    Dropped,
    /// The queue is closed; the delivery was dropped.
    Closed,
    /// Handed straight to the sink's [`Express`] lane (never queued).
    Sent,
}

/// A sink's way past its queue: a QoS 0 delivery pushed while the queue is
/// empty and its receiver [settled](DeliveryQueue::settle) goes straight
/// to the sink on the pusher's thread (an MQTT client writes it to its
/// socket), with no task switch in between.
///
/// Order is kept by construction: every pop from the queue unsettles it,
/// and only the receiver settles it again, once everything it took is
/// handed to its protocol in order; a lane must check
/// [`DeliveryQueue::is_settled`] under the same lock under which its
/// receiver settles, and append behind whatever that receiver wrote.
pub trait Express: Send + Sync {
    /// Sends `d` now, or hands it back (it is then queued as usual).
    /// `queue` is the queue this lane serves.
    fn send(&self, d: Delivery, queue: &DeliveryQueue) -> Result<(), Delivery>;
}

struct State {
    items: VecDeque<Delivery>,
    closed: bool,
    /// Receivers parked in [`DeliveryQueue::recv`]: a push only wakes
    /// someone when there is someone to wake.
    rx_waiters: usize,
    /// Pushers parked in [`DeliveryQueue::push`] waiting for room.
    tx_waiters: usize,
    /// Handoffs waiting for a parked receiver to resume (see [`Handoff`]).
    after: Vec<Arc<HandoffInner>>,
    /// The sink's lane past the queue, if it has one.
    express: Option<Arc<dyn Express>>,
    /// Nothing was popped since the receiver last settled (see [`Express`]).
    settled: bool,
}

/// Decrements a waiter count when a parked call resumes or is cancelled.
struct Parked<'a> {
    queue: &'a DeliveryQueue,
    rx: bool,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let mut st = self.queue.lock();
        let n = if self.rx {
            &mut st.rx_waiters
        } else {
            &mut st.tx_waiters
        };
        *n = n.saturating_sub(1);
        if self.rx && !st.after.is_empty() {
            let after = std::mem::take(&mut st.after);
            drop(st);
            for h in after {
                h.release();
            }
        }
    }
}

thread_local! {
    /// The handoff recording pushes on this thread ([`Handoff::record`]).
    static RECORDING: RefCell<Option<Arc<HandoffInner>>> = const { RefCell::new(None) };
}

#[derive(Debug, Default)]
struct HandoffInner {
    /// Woken receivers that have not resumed yet.
    pending: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl HandoffInner {
    fn release(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

/// Lets a task that routed messages step aside until the receivers its
/// pushes woke have resumed (taken their deliveries), without a
/// [`yield_now`](tokio::task::yield_now).
///
/// A source that must acknowledge what it routed (an MQTT PUBACK) wants the
/// forwarding to go first, so the acknowledgement's write is off the
/// forwarding path. A `yield_now` does that, but on tokio's multi-threaded
/// runtime the worker that runs out of other work goes looking for some
/// and wakes another worker thread, a wasted wake-up per message. With a
/// handoff, the receiver wakes the source as it resumes: the source then
/// waits in the worker's LIFO slot and runs right after the receiver's turn.
///
/// Only pushes inside [`record`](Self::record) that wake a receiver parked
/// in [`DeliveryQueue::recv`] count. Such a receiver resumes, and so
/// releases the handoff, when its task is next polled, whether it takes the
/// delivery or drops its `recv`.
#[derive(Debug, Default)]
pub struct Handoff(Arc<HandoffInner>);

impl Handoff {
    /// A handoff with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f`, recording the receivers its pushes (on this thread) wake.
    pub fn record<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<HandoffInner>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                RECORDING.with(|r| *r.borrow_mut() = prev);
            }
        }
        let prev = RECORDING.with(|r| r.borrow_mut().replace(self.0.clone()));
        let _restore = Restore(prev);
        f()
    }

    /// Whether a receiver woken by a recorded push has yet to resume.
    pub fn is_pending(&self) -> bool {
        self.0.pending.load(Ordering::Acquire) > 0
    }

    /// Steps aside so that the receivers the recorded pushes woke go first:
    /// waits for them when there are any, and otherwise yields (which on
    /// tokio's multi-threaded runtime can cost a wake-up of another worker).
    pub async fn step_aside(&self) {
        if self.is_pending() {
            self.taken().await;
        } else {
            tokio::task::yield_now().await;
        }
    }

    /// Waits until every receiver woken by a recorded push has resumed.
    pub async fn taken(&self) {
        std::future::poll_fn(|cx| {
            if !self.is_pending() {
                return Poll::Ready(());
            }
            {
                let mut w = self.0.waker.lock().unwrap_or_else(|e| e.into_inner());
                match &mut *w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
            }
            if self.is_pending() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

/// Under the queue's lock, after a push that wakes a parked receiver: the
/// recording handoff (if any) waits for that receiver to resume.
fn record_wake(st: &mut State) {
    RECORDING.with(|r| {
        if let Some(h) = &*r.borrow() {
            h.pending.fetch_add(1, Ordering::AcqRel);
            st.after.push(h.clone());
        }
    });
}

/// A bounded multi-producer queue of deliveries to one adapter.
pub struct DeliveryQueue {
    state: Mutex<State>,
    not_empty: Notify,
    not_full: Notify,
    capacity: usize,
    evicted: AtomicU64,
}

impl std::fmt::Debug for DeliveryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryQueue")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl DeliveryQueue {
    /// A queue holding at most `capacity` deliveries (at least 1).
    pub fn new(capacity: usize) -> Self {
        DeliveryQueue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.clamp(1, 1024)),
                closed: false,
                rx_waiters: 0,
                tx_waiters: 0,
                after: Vec::new(),
                express: None,
                settled: false,
            }),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it;
        // the queue itself is still consistent (every operation is one step).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes without waiting. A QoS >= 1 delivery that finds the queue full
    /// with nothing to evict is handed back as `Err`.
    #[inline]
    pub fn try_push(&self, mut d: Delivery) -> Result<Pushed, Box<Delivery>> {
        let mut st = self.lock();
        if st.settled
            && st.items.is_empty()
            && d.message.qos == Qos::AtMostOnce
            && !st.closed
            && let Some(x) = st.express.clone()
        {
            drop(st);
            match x.send(d, self) {
                Ok(()) => return Ok(Pushed::Sent),
                Err(back) => d = back,
            }
            st = self.lock();
        }
        if st.closed {
            drop(st);
            d.ack.dropped(DropReason::Closed);
            return Ok(Pushed::Closed);
        }
        if st.items.len() < self.capacity {
            st.items.push_back(d);
            let wake = st.rx_waiters > 0;
            if wake {
                record_wake(&mut st);
            }
            drop(st);
            if wake {
                self.not_empty.notify_one();
            }
            return Ok(Pushed::Queued);
        }
        if let Some(i) = st
            .items
            .iter()
            .position(|x| x.message.qos == Qos::AtMostOnce)
        {
            let old = st.items.remove(i);
            st.items.push_back(d);
            let wake = st.rx_waiters > 0;
            if wake {
                record_wake(&mut st);
            }
            drop(st);
            self.evicted.fetch_add(1, Ordering::Relaxed);
            if let Some(old) = old {
                old.ack.dropped(DropReason::Overflow);
            }
            if wake {
                self.not_empty.notify_one();
            }
            return Ok(Pushed::QueuedEvicted);
        }
        if d.message.qos == Qos::AtMostOnce {
            drop(st);
            self.evicted.fetch_add(1, Ordering::Relaxed);
            d.ack.dropped(DropReason::Overflow);
            return Ok(Pushed::Dropped);
        }
        Err(Box::new(d))
    }

    /// Pushes, waiting for room when a QoS >= 1 delivery finds the queue full.
    pub async fn push(&self, mut d: Delivery) -> Pushed {
        loop {
            // Registered before the check, so a pop between the check and the
            // await is not missed (`notify_one` leaves a permit).
            let notified = self.not_full.notified();
            match self.try_push(d) {
                Ok(p) => return p,
                Err(back) => d = *back,
            }
            let _parked = self.park(false);
            // Room may have appeared between the failed push and parking.
            if self.lock().items.len() < self.capacity {
                continue;
            }
            notified.await;
        }
    }

    /// Waits until the queue has room (or is closed), for a caller that
    /// then uses [`try_push`](Self::try_push) (it may find the room taken
    /// again). Cancel-safe: a wake-up it took is passed on when dropped.
    pub async fn room(&self) {
        loop {
            let notified = self.not_full.notified();
            {
                let st = self.lock();
                if st.closed || st.items.len() < self.capacity {
                    return;
                }
            }
            let _parked = self.park(false);
            {
                let st = self.lock();
                if st.closed || st.items.len() < self.capacity {
                    return;
                }
            }
            notified.await;
        }
    }

    fn park(&self, rx: bool) -> Parked<'_> {
        let mut st = self.lock();
        if rx {
            st.rx_waiters += 1;
        } else {
            st.tx_waiters += 1;
        }
        Parked { queue: self, rx }
    }

    /// Takes the oldest delivery without waiting.
    #[inline]
    pub fn try_recv(&self) -> Option<Delivery> {
        let mut st = self.lock();
        let d = st.items.pop_front();
        st.settled &= d.is_none();
        let wake = d.is_some() && st.tx_waiters > 0;
        drop(st);
        if wake {
            self.not_full.notify_one();
        }
        d
    }

    /// Waits for the oldest delivery; `None` once the queue is closed and empty.
    pub async fn recv(&self) -> Option<Delivery> {
        loop {
            let notified = self.not_empty.notified();
            let _parked = {
                let mut st = self.lock();
                if let Some(d) = st.items.pop_front() {
                    st.settled = false;
                    let wake = st.tx_waiters > 0;
                    drop(st);
                    if wake {
                        self.not_full.notify_one();
                    }
                    return Some(d);
                }
                if st.closed {
                    return None;
                }
                st.rx_waiters += 1;
                Parked {
                    queue: self,
                    rx: true,
                }
            };
            notified.await;
        }
    }

    /// Gives the queue's sink a lane past the queue (see [`Express`]).
    pub fn set_express(&self, lane: Arc<dyn Express>) {
        self.lock().express = Some(lane);
    }

    /// The receiver has handed everything it took to its protocol, in
    /// order: while the queue stays empty, QoS 0 pushes may take the
    /// [`Express`] lane. Any pop undoes it. Call it under the lane's lock.
    pub fn settle(&self) {
        let mut st = self.lock();
        st.settled = st.items.is_empty();
    }

    /// Undoes [`settle`](Self::settle) (the receiver holds something that
    /// must go before any later delivery).
    pub fn unsettle(&self) {
        self.lock().settled = false;
    }

    /// Whether the queue is empty and nothing was popped since the receiver
    /// last settled: a delivery sent past the queue now overtakes nothing.
    pub fn is_settled(&self) -> bool {
        let st = self.lock();
        st.settled && st.items.is_empty()
    }

    /// Closes the queue: pushes are refused, receivers drain what is left.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_empty.notify_one();
        self.not_full.notify_waiters();
    }

    /// Deliveries waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether none are waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many QoS 0 deliveries this queue dropped on overflow.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;

    fn d(qos: Qos, n: u8, counters: &Arc<RouteCounters>) -> Delivery {
        let mut m = Message::new("t", Topic::new("a").unwrap(), vec![n]);
        m.qos = qos;
        Delivery {
            message: Arc::new(m),
            ack: Ack::new(counters.clone()),
        }
    }

    #[test]
    fn qos0_drops_oldest() {
        let c = Arc::new(RouteCounters::default());
        let q = DeliveryQueue::new(2);
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 1, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(
            q.try_push(d(Qos::AtLeastOnce, 2, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 3, &c)).ok(),
            Some(Pushed::QueuedEvicted)
        );
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 4, &c)).ok(),
            Some(Pushed::QueuedEvicted)
        );
        let got: Vec<u8> = std::iter::from_fn(|| q.try_recv())
            .map(|x| {
                let v = x.message.payload[0];
                x.ack.done();
                v
            })
            .collect();
        assert_eq!(got, vec![2, 4]);
        assert_eq!(c.dropped(DropReason::Overflow), 2);
        assert_eq!(c.delivered.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn qos1_is_handed_back_when_full() {
        let c = Arc::new(RouteCounters::default());
        let q = DeliveryQueue::new(1);
        assert!(q.try_push(d(Qos::AtLeastOnce, 1, &c)).is_ok());
        let back = q.try_push(d(Qos::AtLeastOnce, 2, &c));
        assert!(back.is_err());
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 3, &c)).ok(),
            Some(Pushed::Dropped)
        );
    }

    #[tokio::test]
    async fn push_waits_for_room() {
        let c = Arc::new(RouteCounters::default());
        let q = Arc::new(DeliveryQueue::new(1));
        q.push(d(Qos::AtLeastOnce, 1, &c)).await;
        let q2 = q.clone();
        let c2 = c.clone();
        let pusher = tokio::spawn(async move { q2.push(d(Qos::AtLeastOnce, 2, &c2)).await });
        let first = q.recv().await.unwrap();
        assert_eq!(first.message.payload[0], 1);
        first.ack.done();
        assert_eq!(pusher.await.unwrap(), Pushed::Queued);
        let second = q.recv().await.unwrap();
        assert_eq!(second.message.payload[0], 2);
        second.ack.done();
        q.close();
        assert!(q.recv().await.is_none());
    }

    /// `room` waits for a pop (or the close); a `room` future dropped while
    /// waiting takes no wake-up away from the others.
    #[tokio::test]
    async fn room_waits_for_a_pop() {
        let c = Arc::new(RouteCounters::default());
        let q = Arc::new(DeliveryQueue::new(1));
        q.push(d(Qos::AtLeastOnce, 1, &c)).await;
        // Like the MQTT client: wait for room, then try to push.
        let waiter = tokio::spawn({
            let (q, c) = (q.clone(), c.clone());
            async move {
                q.room().await;
                q.try_push(d(Qos::AtLeastOnce, 2, &c)).map_err(|_| ())
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        {
            let mut room = Box::pin(q.room());
            assert!(poll_once(&mut room).await.is_pending());
        }
        let first = q.recv().await.unwrap();
        first.ack.done();
        assert_eq!(waiter.await.unwrap(), Ok(Pushed::Queued));
        let second = q.recv().await.unwrap();
        assert_eq!(second.message.payload[0], 2);
        second.ack.done();
        q.close();
        // Closed: no waiting.
        q.room().await;
    }

    #[tokio::test]
    async fn parked_receivers_and_pushers_are_woken() {
        let c = Arc::new(RouteCounters::default());
        let q = Arc::new(DeliveryQueue::new(1));
        // Receivers parked on an empty queue, each woken by one push.
        let rx: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.recv().await.map(|d| d.message.payload[0]) })
            })
            .collect();
        for n in 0..2 {
            q.push(d(Qos::AtLeastOnce, n, &c)).await;
        }
        let mut got = Vec::new();
        for h in rx {
            got.push(h.await.unwrap().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1]);
        // Two pushers parked on a full queue, each let in by one pop.
        q.push(d(Qos::AtLeastOnce, 9, &c)).await;
        let tx: Vec<_> = (10..12)
            .map(|n| {
                let q = q.clone();
                let c = c.clone();
                tokio::spawn(async move { q.push(d(Qos::AtLeastOnce, n, &c)).await })
            })
            .collect();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let x = q.recv().await.unwrap();
            seen.push(x.message.payload[0]);
            x.ack.done();
        }
        for h in tx {
            assert_eq!(h.await.unwrap(), Pushed::Queued);
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![9, 10, 11]);
    }

    /// Polls `f` once.
    async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
    }

    #[tokio::test]
    async fn handoff_waits_until_the_woken_receiver_takes() {
        let c = Arc::new(RouteCounters::default());
        let q = Arc::new(DeliveryQueue::new(4));
        let h = Handoff::new();
        // Nobody parked: nothing to wait for, recorded or not.
        h.record(|| q.try_push(d(Qos::AtLeastOnce, 1, &c))).ok();
        assert!(!h.is_pending());
        if let Some(x) = q.try_recv() {
            x.ack.done();
        }
        let rx = tokio::spawn({
            let q = q.clone();
            async move { q.recv().await.map(|d| d.message.payload[0]) }
        });
        while q.lock().rx_waiters == 0 {
            tokio::task::yield_now().await;
        }
        h.record(|| q.try_push(d(Qos::AtLeastOnce, 2, &c))).ok();
        assert!(h.is_pending());
        // The receiver has not run yet (one thread): the handoff waits.
        let mut taken = Box::pin(h.taken());
        assert!(poll_once(&mut taken).await.is_pending());
        taken.as_mut().await;
        assert!(!h.is_pending());
        assert_eq!(rx.await.ok().flatten(), Some(2));
        // The recording ends with `record`.
        assert!(RECORDING.with(|r| r.borrow().is_none()));
    }

    #[tokio::test]
    async fn handoff_is_released_when_the_receiver_stops_waiting() {
        let c = Arc::new(RouteCounters::default());
        let q = DeliveryQueue::new(4);
        let h = Handoff::new();
        let mut r = Box::pin(q.recv());
        assert!(poll_once(&mut r).await.is_pending());
        h.record(|| q.try_push(d(Qos::AtLeastOnce, 1, &c))).ok();
        h.record(|| q.try_push(d(Qos::AtLeastOnce, 2, &c))).ok();
        assert!(h.is_pending());
        // A receiver that gives up its `recv` (another branch of its select
        // won) releases the handoff too.
        drop(r);
        assert!(!h.is_pending());
        h.taken().await;
        assert_eq!(q.len(), 2);
    }

    /// A lane that takes what `open` allows, checking the queue as a real
    /// lane must, and notes the payloads it took.
    #[derive(Default)]
    struct TestLane {
        open: std::sync::atomic::AtomicBool,
        took: Mutex<Vec<u8>>,
    }

    impl Express for TestLane {
        fn send(&self, d: Delivery, queue: &DeliveryQueue) -> Result<(), Delivery> {
            if !self.open.load(Ordering::SeqCst) || !queue.is_settled() {
                return Err(d);
            }
            self.took.lock().unwrap().push(d.message.payload[0]);
            d.ack.done();
            Ok(())
        }
    }

    #[test]
    fn express_lane_takes_qos0_only_while_settled_and_empty() {
        let c = Arc::new(RouteCounters::default());
        let q = DeliveryQueue::new(8);
        let lane = Arc::new(TestLane::default());
        q.set_express(lane.clone());
        lane.open.store(true, Ordering::SeqCst);
        // Not settled yet: queued.
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 1, &c)).ok(),
            Some(Pushed::Queued)
        );
        // Settling a queue that holds something settles nothing.
        q.settle();
        assert!(!q.is_settled());
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 2, &c)).ok(),
            Some(Pushed::Queued)
        );
        // The receiver takes both, and settles once it handed them on.
        assert_eq!(q.try_recv().map(|x| x.message.payload[0]), Some(1));
        assert_eq!(q.try_recv().map(|x| x.message.payload[0]), Some(2));
        assert!(!q.is_settled(), "a pop unsettles");
        q.settle();
        assert!(q.is_settled());
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 3, &c)).ok(),
            Some(Pushed::Sent)
        );
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 4, &c)).ok(),
            Some(Pushed::Sent)
        );
        // QoS 1 never takes the lane; QoS 0 behind it may not overtake it.
        assert_eq!(
            q.try_push(d(Qos::AtLeastOnce, 5, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 6, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(q.try_recv().map(|x| x.message.payload[0]), Some(5));
        assert_eq!(q.try_recv().map(|x| x.message.payload[0]), Some(6));
        q.settle();
        // A lane that refuses leaves the delivery to the queue.
        lane.open.store(false, Ordering::SeqCst);
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 7, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(q.try_recv().map(|x| x.message.payload[0]), Some(7));
        lane.open.store(true, Ordering::SeqCst);
        q.settle();
        q.unsettle();
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 8, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert_eq!(*lane.took.lock().unwrap(), vec![3, 4]);
        assert_eq!(
            c.delivered.load(Ordering::Relaxed),
            2,
            "the lane acknowledged"
        );
        // A closed queue sends nothing past it either.
        assert!(q.try_recv().is_some());
        q.settle();
        q.close();
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 9, &c)).ok(),
            Some(Pushed::Closed)
        );
        assert_eq!(*lane.took.lock().unwrap(), vec![3, 4]);
    }

    /// A receiver woken in `recv` takes its delivery and unsettles the
    /// queue, like `try_recv`.
    #[tokio::test]
    async fn recv_unsettles() {
        let c = Arc::new(RouteCounters::default());
        let q = DeliveryQueue::new(8);
        q.set_express(Arc::new(TestLane::default()));
        q.settle();
        assert!(q.is_settled());
        assert_eq!(
            q.try_push(d(Qos::AtMostOnce, 1, &c)).ok(),
            Some(Pushed::Queued)
        );
        assert!(q.recv().await.is_some());
        assert!(!q.is_settled());
    }
}
