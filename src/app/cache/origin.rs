//! Calls to a caching table's origin, each cut at the table's timeout. An HTTP origin is
//! called with a blocking client (ureq) on the shard's blocking pool, never on the executor;
//! a function source runs on the owner shard, with its panics caught. The answer is a
//! record, "the origin has none" (404), or a failure.

use super::node::CacheEntry;
use super::spec::Source;
use super::Failure;
use crate::app::shard::AppShard;
use crate::app::{Ctx, Doc};
use futures_util::FutureExt;
use serde_json::Value;
use std::future::Future;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

/// What an origin answered: the record, or `None` when it has no such record.
pub(crate) type Fetched = Result<Option<Doc>, Failure>;

/// Asks the origin of caching table `entry` for record `id`, within the table's timeout.
pub(crate) async fn fetch(shard: &Rc<AppShard>, entry: &CacheEntry, id: &str) -> Fetched {
    let timeout = entry.spec.timeout;
    match &entry.spec.source {
        Source::Http(template) => {
            let url = expand(template, id);
            let agent = entry
                .agent
                .clone()
                .ok_or_else(|| Failure::Origin("the HTTP origin has no client".into()))?;
            let limit = shard.config().http.max_body_bytes;
            let call = glommio::executor().spawn_blocking(move || http_get(&agent, &url, limit));
            within(timeout, call).await
        }
        Source::Function(source) => {
            let ctx = Ctx::new(shard.clone(), entry.component);
            let (source, id) = (source.clone(), id.to_string());
            // Building the future runs the function's synchronous part: it may panic too.
            let call = AssertUnwindSafe(async move { source.fetch(ctx, id).await }).catch_unwind();
            within(timeout, async move {
                match call.await {
                    Ok(Ok(doc)) => Ok(doc),
                    Ok(Err(e)) if e.status == 404 => Ok(None),
                    Ok(Err(e)) => Err(Failure::Origin(e.message)),
                    Err(panic) => Err(Failure::Origin(format!(
                        "the source panicked: {}",
                        super::super::call::panic_message(&panic)
                    ))),
                }
            })
            .await
        }
    }
}

/// `call`'s answer, or a timeout failure once `timeout` has passed.
async fn within(timeout: Duration, call: impl Future<Output = Fetched>) -> Fetched {
    futures_lite::future::or(call, async {
        glommio::timer::sleep(timeout).await;
        Err(Failure::Timeout)
    })
    .await
}

/// `GET url` on a blocking thread: a JSON object is the record, 404 and 410 mean none.
fn http_get(agent: &ureq::Agent, url: &str, limit: usize) -> Fetched {
    let resp = match agent.get(url).set("Accept", "application/json").call() {
        Ok(resp) => resp,
        Err(ureq::Error::Status(404 | 410, _)) => return Ok(None),
        Err(ureq::Error::Status(code, _)) => {
            return Err(Failure::Origin(format!("the origin answered {code}")))
        }
        Err(ureq::Error::Transport(t)) if timed_out(&t) => return Err(Failure::Timeout),
        Err(ureq::Error::Transport(t)) => {
            return Err(Failure::Origin(format!(
                "the origin cannot be reached: {t}"
            )))
        }
    };
    let mut body = Vec::new();
    let read = resp
        .into_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return Err(match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Failure::Timeout,
            _ => Failure::Origin(format!("reading the origin's answer failed: {e}")),
        });
    }
    if body.len() > limit {
        return Err(Failure::Origin(format!(
            "the origin's record is larger than {limit} bytes (`http.max_body_bytes`)"
        )));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(doc)) => Ok(Some(doc)),
        Ok(_) => Err(Failure::Origin(
            "the origin's answer is not a JSON object".into(),
        )),
        Err(e) => Err(Failure::Origin(format!(
            "the origin's answer is not JSON: {e}"
        ))),
    }
}

/// Whether a transport error is the client's own timeout.
fn timed_out(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = e.source();
    }
    false
}

/// The URL template with `{id}` replaced by the percent-encoded id.
pub(crate) fn expand(template: &str, id: &str) -> String {
    template.replace("{id}", &percent_encode(id))
}

/// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_percent_encoded_into_the_template() {
        assert_eq!(
            expand("http://o/devices/{id}?x=1", "a b/é?&"),
            "http://o/devices/a%20b%2F%C3%A9%3F%26?x=1"
        );
        assert_eq!(expand("http://o/{id}", "Ab-1._~"), "http://o/Ab-1._~");
    }
}
