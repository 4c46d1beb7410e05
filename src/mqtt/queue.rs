//! A session's queue of messages waiting to be sent, counted in messages and in bytes (each
//! entry's topic, payload and properties), so that its bounds can be set in both: a few
//! large messages must not pin as much memory as many small ones.

use super::session::Entry;
use std::collections::VecDeque;

/// Messages waiting for a client, oldest first.
#[derive(Default)]
pub struct Queue {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// What an entry counts against a byte budget.
pub fn entry_bytes(e: &Entry) -> usize {
    super::peers::size(&e.msg)
}

impl Queue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the queued messages count for.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push_back(&mut self, e: Entry) {
        self.bytes += entry_bytes(&e);
        self.entries.push_back(e);
    }

    pub fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    pub fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.bytes -= entry_bytes(&e);
        Some(e)
    }

    /// Takes every entry, oldest first.
    pub fn take_all(&mut self) -> VecDeque<Entry> {
        self.bytes = 0;
        std::mem::take(&mut self.entries)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entries, to change what is not counted (their stored flag).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::message::Message;
    use std::sync::Arc;

    fn entry(seq: u64, payload: usize) -> Entry {
        Entry {
            seq,
            msg: Arc::new(Message {
                topic: "t".into(),
                payload: bytes::Bytes::from(vec![0u8; payload]),
                qos: 1,
                retain: false,
                props: None,
                expires_at_ms: None,
                from: Arc::from(""),
                version: None,
            }),
            qos: 1,
            retain: false,
            pkid: 0,
            state: 0,
            stored: false,
            shared: None,
        }
    }

    #[test]
    fn bytes_follow_what_is_queued() {
        let mut q = Queue::default();
        q.push_back(entry(1, 1000));
        q.push_back(entry(2, 10));
        assert_eq!(q.bytes(), 65 + 1000 + 65 + 10);
        assert_eq!(q.pop_front().map(|e| e.seq), Some(1));
        assert_eq!(q.bytes(), 65 + 10);
        assert_eq!(q.take_all().len(), 1);
        assert_eq!((q.bytes(), q.len()), (0, 0));
    }
}
