//! Two small cross-thread hand-offs between the cluster's helper threads
//! (plain OS threads doing blocking Redis I/O) and the shards (glommio
//! executors that must never block): a bounded [`mailbox`] of many values
//! and a one-value [`reply`] slot.
//!
//! Why a waker and not a poll loop: a glommio task's `Waker` may be woken
//! from any thread. glommio (0.9, `task/raw.rs` `do_wake`) checks whether
//! the waking thread is the task's executor; when it is not, it queues the
//! waker on that executor's foreign-wake channel and writes its eventfd, so
//! a sleeping executor wakes up and runs the task. The std mutex here is held
//! only for a queue push or pop, never across an await or any I/O, and the
//! waker is woken after the lock is released.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a push, a pop or a swap: a panic inside one
    // cannot leave the state half-changed, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct MailboxState<T> {
    queue: VecDeque<T>,
    waker: Option<Waker>,
    /// The receiver is gone: sends fail.
    receiver_gone: bool,
    /// Every sender is gone: `recv` ends once the queue is empty.
    senders: usize,
}

/// The sending side of a [`mailbox`]: `Send`, cloneable, never blocks.
#[derive(Debug)]
pub(crate) struct MailboxSender<T> {
    shared: Arc<(Mutex<MailboxState<T>>, usize)>,
}

/// The receiving side of a `mailbox`: awaited on one executor.
#[derive(Debug)]
pub struct MailboxReceiver<T> {
    shared: Arc<(Mutex<MailboxState<T>>, usize)>,
}

/// A bounded multi-producer, single-consumer queue whose receiver is a
/// future woken from the senders' threads.
pub(crate) fn mailbox<T>(capacity: usize) -> (MailboxSender<T>, MailboxReceiver<T>) {
    let state = MailboxState { queue: VecDeque::new(), waker: None, receiver_gone: false, senders: 1 };
    let shared = Arc::new((Mutex::new(state), capacity.max(1)));
    (MailboxSender { shared: shared.clone() }, MailboxReceiver { shared })
}

impl<T> MailboxSender<T> {
    /// Queues `value` unless the mailbox is full or its receiver is gone
    /// (then hands it back). Never blocks.
    pub(crate) fn try_send(&self, value: T) -> Result<(), T> {
        let waker = {
            let mut s = lock(&self.shared.0);
            if s.receiver_gone || s.queue.len() >= self.shared.1 {
                return Err(value);
            }
            s.queue.push_back(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.0).senders += 1;
        Self { shared: self.shared.clone() }
    }
}

impl<T> Drop for MailboxSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = lock(&self.shared.0);
            s.senders -= 1;
            if s.senders == 0 {
                s.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> MailboxReceiver<T> {
    /// The next value, if one is queued. Never blocks.
    pub fn try_recv(&self) -> Option<T> {
        lock(&self.shared.0).queue.pop_front()
    }

    /// The next value; `None` once every sender is gone and the queue is
    /// empty (the cluster has shut down).
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { receiver: self }
    }
}

impl<T> Drop for MailboxReceiver<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.shared.0);
        s.receiver_gone = true;
        s.queue.clear();
    }
}

/// The future of [`MailboxReceiver::recv`].
#[derive(Debug)]
pub struct Recv<'a, T> {
    receiver: &'a mut MailboxReceiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.receiver.shared.0);
        if let Some(v) = s.queue.pop_front() {
            return Poll::Ready(Some(v));
        }
        if s.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    filled: bool,
}

/// The filling side of a [`reply`]: the first [`ReplySender::fill`] wins.
#[derive(Debug)]
pub(crate) struct ReplySender<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Clone for ReplySender<T> {
    fn clone(&self) -> Self {
        Self { slot: self.slot.clone() }
    }
}

/// A value that another thread will provide: a future.
#[derive(Debug)]
pub struct ReplyFuture<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// A one-value slot: a sender that may be cloned (the first fill wins) and
/// a future for the value.
pub(crate) fn reply<T>() -> (ReplySender<T>, ReplyFuture<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None, filled: false }));
    (ReplySender { slot: slot.clone() }, ReplyFuture { slot })
}

impl<T> ReplySender<T> {
    /// Provides the value; false when it was already provided.
    pub(crate) fn fill(&self, value: T) -> bool {
        let waker = {
            let mut s = lock(&self.slot);
            if s.filled {
                return false;
            }
            s.filled = true;
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

impl<T> ReplyFuture<T> {
    /// A future that is ready at once with `value`.
    pub(crate) fn ready(value: T) -> Self {
        let (tx, rx) = reply();
        tx.fill(value);
        rx
    }
}

impl<T> Future for ReplyFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = lock(&self.slot);
        if let Some(v) = s.value.take() {
            return Poll::Ready(v);
        }
        // Filled and already taken: a second poll after Ready is a caller
        // bug; stay pending rather than panic.
        match &mut s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn mailbox_is_bounded_and_ends_when_senders_go() {
        let (tx, mut rx) = mailbox(2);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert_eq!(tx.try_send(3), Err(3));
        assert_eq!(rx.try_recv(), Some(1));
        drop(tx);
        assert_eq!(futures_lite::future::block_on(rx.recv()), Some(2));
        assert_eq!(futures_lite::future::block_on(rx.recv()), None);
    }

    #[test]
    fn a_glommio_task_is_woken_from_a_plain_thread() {
        // The property the cluster relies on: an executor parked in its
        // reactor runs a task whose waker another OS thread woke.
        let (tx, mut rx) = mailbox::<u32>(4);
        let (reply_tx, reply_rx) = reply::<u32>();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.try_send(7).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            reply_tx.fill(8);
        });
        let got = glommio::LocalExecutorBuilder::default()
            .io_memory(128 * 1024)
            .spawn(move || async move {
                let a = rx.recv().await;
                let b = reply_rx.await;
                (a, b)
            })
            .unwrap()
            .join()
            .unwrap();
        thread.join().unwrap();
        assert_eq!(got, (Some(7), 8));
    }

    #[test]
    fn the_first_fill_wins() {
        let (tx, rx) = reply();
        let other = tx.clone();
        assert!(tx.fill("first"));
        assert!(!other.fill("second"));
        assert_eq!(futures_lite::future::block_on(rx), "first");
    }
}
