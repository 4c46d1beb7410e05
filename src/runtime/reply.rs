//! Waiting on an executor for a reply that another OS thread (a storage writer) sends, such
//! that a lost wake-up can cost at most `RECHECK`, never the wait. Under load we saw HTTP
//! requests hang for good with every thread of the node idle (a freshly accepted connection's
//! request left unread: a wake-up lost between the kernel and the reactor, see the report in
//! docs/replication.md). Whether a cross-thread wake from flume can be lost the same way is
//! unproven; the replication links, which have no client to retry for them, poll as well.

use std::time::Duration;

/// How often a waiting task checks its channel whether or not it was woken.
pub const RECHECK: Duration = Duration::from_millis(20);

/// Receives one value; `Err` when the sender is gone.
pub async fn recv<T>(rx: &flume::Receiver<T>) -> Result<T, flume::RecvError> {
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(flume::TryRecvError::Disconnected) => return Err(flume::RecvError::Disconnected),
            Err(flume::TryRecvError::Empty) => {}
        }
        let woken = futures_lite::future::or(async { Some(rx.recv_async().await) }, async {
            glommio::timer::sleep(RECHECK).await;
            None
        })
        .await;
        if let Some(r) = woken {
            return r;
        }
    }
}
