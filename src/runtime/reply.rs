//! Waiting on an executor for a reply that another OS thread (a storage writer) sends. We saw
//! such waits hang for good under load: the writer had answered, but the waiting task was never
//! woken (a cross-thread wake-up lost between flume and the glommio reactor; 1 PUT in a few
//! thousand on 3 busy nodes). `recv` also looks at the channel every `RECHECK`, so a lost
//! wake-up costs at most that long instead of the request.

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
