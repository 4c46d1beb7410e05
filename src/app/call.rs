//! Running a component's handler with the node's protection around it: a bound on the calls
//! of each component running at once on a shard (past it: 503 with Retry-After, at once), a
//! deadline (`http.request_timeout_ms`: the call is dropped at its next await and answered
//! 504), and a panic caught at the boundary (answered 500, logged, counted; the shard keeps
//! serving). Every outcome is counted per component in `/status`.

use super::registry::Found;
use super::shard::AppShard;
use super::{Ctx, Error, Request, Response};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Calls the handler a request found; the answer or the error to send.
pub async fn call(
    shard: &Rc<AppShard>,
    found: Found<'_>,
    mut req: Request,
) -> Result<Response, Error> {
    let c = found.component;
    let decl = &shard.registry.components[c];
    let stats = &shard.stats.components[c].1;
    stats.calls.fetch_add(1, Ordering::Relaxed);
    let running = &shard.running[c];
    if running.get() >= decl.max_concurrent {
        stats.busy.fetch_add(1, Ordering::Relaxed);
        return Err(Error {
            retry_after: Some(1),
            ..Error::new(
                503,
                format!(
                    "component {} is at its bound of concurrent calls; retry shortly",
                    decl.name
                ),
            )
        });
    }
    running.set(running.get() + 1);
    let _running = Running(running);
    req.params = found.params;
    let ctx = Ctx::new(shard.clone(), c);
    let handler = found.route.handler.clone();
    // Building the future runs the handler's synchronous part: it may panic too.
    let call = AssertUnwindSafe(async move { handler.call(ctx, req).await }).catch_unwind();
    let timeout = Duration::from_millis(shard.config().http.request_timeout_ms);
    let outcome = futures_lite::future::or(async { Some(call.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    match outcome {
        Some(Ok(Ok(resp))) => {
            if resp.status >= 500 {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(resp)
        }
        Some(Ok(Err(e))) => {
            if e.status >= 500 {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e)
        }
        Some(Err(panic)) => {
            stats.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                component = decl.name,
                shard = shard.id,
                "handler panicked: {}",
                panic_message(&panic)
            );
            Err(Error::new(
                500,
                format!("component {} failed on this request", decl.name),
            ))
        }
        None => {
            stats.timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                component = decl.name,
                shard = shard.id,
                ?timeout,
                "handler cut at http.request_timeout_ms"
            );
            Err(Error::new(
                504,
                format!(
                    "component {} did not answer within {} ms (`http.request_timeout_ms`)",
                    decl.name,
                    timeout.as_millis()
                ),
            ))
        }
    }
}

/// Counts a call as running until it ends, however it ends.
struct Running<'a>(&'a std::cell::Cell<usize>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The message a panic carried, if it is text.
pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
