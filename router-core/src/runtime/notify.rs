//! A single-waiter, executor-local wakeup flag.
//!
//! Producers on the same shard call [`LocalNotify::notify`] any number of
//! times in an executor turn; the one waiting task wakes once, later in the
//! turn, and finds everything that was queued. This is what coalesces writes.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// See the module docs.
#[derive(Default)]
pub struct LocalNotify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl LocalNotify {
    /// Sets the flag and wakes the waiter, if any.
    pub fn notify(&self) {
        if !self.set.replace(true) {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Waits until the flag is set, then clears it.
    pub fn wait(&self) -> Wait<'_> {
        Wait { n: self }
    }
}

/// Future of [`LocalNotify::wait`].
pub struct Wait<'a> {
    n: &'a LocalNotify,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.n.set.replace(false) {
            Poll::Ready(())
        } else {
            *self.n.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
