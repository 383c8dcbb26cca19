//! A waker gate against self-wakes.
//!
//! The client task both feeds rumqttc's request channel and polls rumqttc's
//! event loop. Every request it sends wakes the waker the event loop last
//! registered, which is this very task, while it runs. Tokio reschedules a
//! task woken while running as a *yield*: to the back of the run queue, with
//! a wake-up of another (parked) worker thread. That is one spurious thread
//! wake-up per forwarded message, spent right when the broker and the
//! subscriber need the CPU.
//!
//! The gate sits between the event loop and the task's waker. While closed
//! (from before the task sends requests until it polled the event loop
//! again) a wake is only noted; the gated poll then polls the event loop
//! once more instead of waking the task. Wakes from elsewhere (the socket,
//! timers) are never lost: a wake either finds the gate closed, and the task
//! is going to poll, or finds it open and wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const CLOSED_WOKEN: u8 = 2;

/// How often one gated poll re-polls for wakes it swallowed before it lets
/// the task be woken instead.
const MAX_REPOLLS: usize = 8;

#[derive(Default)]
struct Inner {
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            match s {
                CLOSED_WOKEN => return,
                CLOSED => match self.state.compare_exchange_weak(
                    CLOSED,
                    CLOSED_WOKEN,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(now) => s = now,
                },
                _ => {
                    let w = self.task.lock().ok().and_then(|t| t.clone());
                    if let Some(w) = w {
                        w.wake();
                    }
                    return;
                }
            }
        }
    }
}

/// The gate; see the module docs.
pub(crate) struct Gate {
    inner: Arc<Inner>,
    waker: Waker,
}

impl Gate {
    pub(crate) fn new() -> Self {
        let inner = Arc::new(Inner::default());
        Gate {
            waker: Waker::from(inner.clone()),
            inner,
        }
    }

    /// Closes the gate: wakes are noted, not passed on, until [`open`](Self::open).
    pub(crate) fn close(&self) {
        self.inner.state.store(CLOSED, Ordering::Release);
    }

    /// Opens the gate; whether a wake was noted while it was closed.
    pub(crate) fn open(&self) -> bool {
        self.inner.state.swap(OPEN, Ordering::AcqRel) == CLOSED_WOKEN
    }

    fn set_task(&self, w: &Waker) {
        if let Ok(mut t) = self.inner.task.lock()
            && !t.as_ref().is_some_and(|t| t.will_wake(w))
        {
            *t = Some(w.clone());
        }
    }

    /// Polls `fut` with the gate's waker, the gate closed. A wake noted
    /// meanwhile (the future waking itself, or anything else) means another
    /// poll now; the gate is open when this returns.
    pub(crate) fn poll<F: Future>(
        &self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        self.set_task(cx.waker());
        // Wakes noted so far asked for this poll; wakes during it ask for
        // another.
        self.close();
        let mut gcx = Context::from_waker(&self.waker);
        let mut fut = fut;
        for i in 1..=MAX_REPOLLS {
            let r = fut.as_mut().poll(&mut gcx);
            let woken = self.open();
            if r.is_ready() || !woken {
                return r;
            }
            if i == MAX_REPOLLS {
                // Still waking itself: let the scheduler have a turn.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.close();
        }
        Poll::Pending
    }
}

/// A future polled through a [`Gate`].
pub(crate) struct Gated<'a, F> {
    pub(crate) gate: &'a Gate,
    pub(crate) fut: Pin<&'a mut F>,
}

impl<F: Future> Future for Gated<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let gate = self.gate;
        gate.poll(self.fut.as_mut(), cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending until its waker was woken `n` times (each poll wakes itself
    /// once, like a request sent from inside the poll).
    struct SelfWaking {
        polls: usize,
        ready_after: usize,
    }
    impl Future for SelfWaking {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls >= self.ready_after {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn own_wakes_become_polls_not_task_wakes() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let gate = Gate::new();
        let mut f = SelfWaking {
            polls: 0,
            ready_after: 3,
        };
        let r = gate.poll(Pin::new(&mut f), &mut cx);
        assert_eq!(r, Poll::Ready(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // One that never settles: after the bound the task is woken.
        let mut g = SelfWaking {
            polls: 0,
            ready_after: usize::MAX,
        };
        assert!(gate.poll(Pin::new(&mut g), &mut cx).is_pending());
        assert_eq!(g.polls, MAX_REPOLLS);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn wakes_while_open_reach_the_task_and_closed_ones_are_kept() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let gate = Gate::new();
        let mut f = std::future::pending::<()>();
        assert!(gate.poll(Pin::new(&mut f), &mut cx).is_pending());
        // Open: a wake (the socket, from another thread) goes through.
        let w = gate.waker.clone();
        std::thread::spawn(move || w.wake()).join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // Closed: noted, reported by open, not passed on.
        gate.close();
        gate.waker.wake_by_ref();
        gate.waker.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(gate.open());
        assert!(!gate.open());
    }
}
