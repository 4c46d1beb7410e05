//! Waking the senders of the cluster executor instead of having them poll. Writers ring the
//! node's `log_grew` signal (a cross-thread channel of one slot) after a commit that logged a
//! change made on this node; `relay` turns each ring into a ring of every registered sender's
//! own bell, so a stream sends within microseconds of the commit. Senders still wake at least
//! every `cluster::POLL` (heartbeats, status, and a ring that arrived while they were busy).

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The bells of the senders on this executor.
#[derive(Default)]
pub struct Bells {
    senders: RefCell<Vec<Rc<LocalSender<()>>>>,
}

/// One sender's bell.
pub struct Bell {
    tx: Rc<LocalSender<()>>,
    rx: LocalReceiver<()>,
}

/// Rings one bell (for whatever else gives its sender work: acknowledgements, answers).
#[derive(Clone)]
pub struct Ringer(Rc<LocalSender<()>>);

impl Ringer {
    pub fn ring(&self) {
        let _ = self.0.try_send(());
    }
}

impl Bells {
    /// A new bell, rung by every later `ring_all`.
    pub fn register(&self) -> Bell {
        let (tx, rx) = local_channel::new_bounded(1);
        let tx = Rc::new(tx);
        let mut senders = self.senders.borrow_mut();
        // Forget bells whose link is gone here too, not only when rung: a link that reconnects
        // over and over on an idle node must not grow the list.
        senders.retain(|tx| Rc::strong_count(tx) > 1);
        senders.push(tx.clone());
        drop(senders);
        Bell { tx, rx }
    }

    /// Rings every live bell; forgets those whose owner is gone.
    pub fn ring_all(&self) {
        self.senders
            .borrow_mut()
            .retain(|tx| match tx.try_send(()) {
                Ok(()) => true,
                Err(glommio::GlommioError::Closed(_)) => false,
                // Full: rung already, not yet heard.
                Err(_) => true,
            });
    }
}

impl Bell {
    pub fn ringer(&self) -> Ringer {
        Ringer(self.tx.clone())
    }

    /// Waits until rung or until `most` has passed, whichever is first.
    pub async fn wait(&self, most: Duration) {
        futures_lite::future::or(
            async {
                if self.rx.recv().await.is_none() {
                    glommio::timer::sleep(most).await;
                }
            },
            glommio::timer::sleep(most),
        )
        .await;
    }
}

/// Forwards the writers' rings to every registered bell, until the signal is gone.
pub async fn relay(log_grew: flume::Receiver<()>, bells: std::rc::Rc<super::Ctx>) {
    while log_grew.recv_async().await.is_ok() {
        bells.bells.ring_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bells_of_gone_links_are_forgotten_and_live_ones_ring() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .unwrap()
            .run(async {
                let bells = Bells::default();
                let kept = bells.register();
                for _ in 0..100 {
                    drop(bells.register());
                }
                let _other = bells.register();
                assert_eq!(bells.senders.borrow().len(), 2);
                assert_eq!(futures_lite::future::poll_once(kept.rx.recv()).await, None);
                bells.ring_all();
                bells.ring_all(); // a second ring before the first is heard adds nothing
                assert_eq!(
                    futures_lite::future::poll_once(kept.rx.recv()).await,
                    Some(Some(()))
                );
                assert_eq!(futures_lite::future::poll_once(kept.rx.recv()).await, None);
            });
    }
}
