//! Checks on a whole MQTT frame that the decoder underneath (mqttbytes) leaves out, made on
//! the raw bytes before it decodes them: the CONNECT's flags against its payload, reserved
//! Subscription Options bits, 5.0 properties given twice, and the 5.0 UNSUBSCRIBE, read here.
//! A frame that ends early is left to the decoder, which refuses it.

use super::codec::Version;
use super::packet::{Fault, Packet};

/// The protocol level of a CONNECT frame, after the checks mqttbytes leaves out: the reserved
/// flag is 0 (MQTT-3.1.2-3), a 3.1.1 password comes with a user name (3.1.1 MQTT-3.1.2-22),
/// and the payload holds the fields its flags announce and nothing after them (3.1.1
/// MQTT-3.1.2-18 to -21, 5.0 MQTT-3.1.2-16 to -19). `None`: malformed, closed without a
/// CONNACK (MQTT-3.1.4-1).
pub(super) fn connect_level(frame: &[u8]) -> Option<u8> {
    let mut f = Fields::after_fixed_header(frame)?;
    let name = f.string()?;
    let level = f.u8()?;
    let flags = f.u8()?;
    if flags & 1 != 0 {
        return None;
    }
    match name {
        b"MQTT" if level == 4 || level == 5 => {}
        b"MQTT" => return Some(level),
        b"MQIsdp" => return Some(3),
        _ => return None,
    }
    if level == 4 && flags & 0xC0 == 0x40 {
        return None;
    }
    f.skip(2)?; // keep alive
    if level == 5 {
        f.properties()?;
    }
    f.string()?; // client identifier
    if flags & 0x04 != 0 {
        if level == 5 {
            f.properties()?;
        }
        f.string()?; // will topic
        f.string()?; // will payload
    }
    if flags & 0x80 != 0 {
        f.string()?; // user name
    }
    if flags & 0x40 != 0 {
        f.string()?; // password
    }
    (f.done() && !f.repeated).then_some(level)
}

/// A 5.0 UNSUBSCRIBE, read here rather than by the decoder underneath, which writes every
/// packet identifier it reads to stderr: a packet identifier, properties (User Properties
/// only), then at least one UTF-8 Topic Filter (an empty list is a protocol error).
pub(super) fn unsubscribe_v5(frame: &[u8]) -> Result<Packet, Fault> {
    let mut f = Fields::after_fixed_header(frame).ok_or(Fault::Malformed)?;
    let pkid = u16::from_be_bytes([
        f.u8().ok_or(Fault::Malformed)?,
        f.u8().ok_or(Fault::Malformed)?,
    ]);
    f.properties().ok_or(Fault::Malformed)?;
    if f.ids & !(1 << 0x26) != 0 {
        return Err(Fault::Malformed);
    }
    let mut filters = Vec::new();
    while !f.done() {
        let bytes = f.string().ok_or(Fault::Malformed)?;
        let filter = std::str::from_utf8(bytes).map_err(|_| Fault::Malformed)?;
        filters.push(filter.to_string());
    }
    if filters.is_empty() {
        return Err(Fault::Protocol);
    }
    Ok(Packet::Unsubscribe { pkid, filters })
}

/// Whether a 5.0 frame (not a CONNECT) gives one of its properties twice (User Property
/// aside). A frame that ends early is left to the decoder, which refuses it.
pub(super) fn repeats_a_property(frame: &[u8]) -> bool {
    let (kind, flags) = (frame[0] >> 4, frame[0] & 0x0f);
    let Some(mut f) = Fields::after_fixed_header(frame) else {
        return false;
    };
    let reached = match kind {
        3 => f.string().and_then(|_| match flags & 0x06 {
            0 => Some(()),
            _ => f.skip(2),
        }),
        4..=7 => f.skip(2).and_then(|_| f.reason_then_properties()),
        8 | 10 => f.skip(2),
        14 | 15 => f.reason_then_properties(),
        _ => None,
    };
    if reached.is_some() && !f.done() {
        let _ = f.properties();
    }
    f.repeated
}

/// Checks each Subscription Options byte of a SUBSCRIBE frame where mqttbytes does not: set
/// reserved bits are malformed (3.1.1 MQTT-3-8.3-4: bits 2 to 7; 5.0 MQTT-3.8.3-5: bits 6 and
/// 7), and in 5.0 a Maximum QoS or Retain Handling of 3 is a protocol error (§3.8.3.1). A
/// frame that ends early is left to mqttbytes, which refuses it.
pub(super) fn subscription_options(frame: &[u8], v: Version) -> Result<(), Fault> {
    let Some(mut f) = Fields::after_fixed_header(frame) else {
        return Ok(());
    };
    let header = match v {
        Version::V4 => f.skip(2),
        Version::V5 => f.skip(2).and_then(|_| f.properties()),
    };
    if header.is_none() {
        return Ok(());
    }
    while !f.done() {
        let Some(options) = f.string().and_then(|_| f.u8()) else {
            return Ok(());
        };
        match v {
            Version::V4 if options & 0xFC != 0 => return Err(Fault::Malformed),
            Version::V5 if options & 0xC0 != 0 => return Err(Fault::Malformed),
            Version::V5 if options & 0x03 == 3 || options & 0x30 == 0x30 => {
                return Err(Fault::Protocol)
            }
            _ => {}
        }
    }
    Ok(())
}

/// A cursor over the fields of a whole frame, for the checks above.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    /// A property list read so far gave a property twice (User Property aside).
    repeated: bool,
    /// The property ids read so far, as bits.
    ids: u64,
}

impl<'a> Fields<'a> {
    /// The variable header and payload of `frame` (its fixed header skipped).
    fn after_fixed_header(frame: &'a [u8]) -> Option<Fields<'a>> {
        let mut at = 1;
        while frame.get(at)? & 0x80 != 0 {
            at += 1;
        }
        Some(Fields {
            bytes: frame,
            at: at + 1,
            repeated: false,
            ids: 0,
        })
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.at.checked_add(n)?;
        if end > self.bytes.len() {
            return None;
        }
        self.at = end;
        Some(())
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// A string or binary field: a two-byte length, then that many bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes([self.u8()?, self.u8()?]) as usize;
        let start = self.at;
        self.skip(len)?;
        Some(&self.bytes[start..self.at])
    }

    /// A 5.0 property list: its Variable Byte Integer length, then that many bytes; notes a
    /// property given twice.
    fn properties(&mut self) -> Option<()> {
        let len = self.var_int()?;
        let end = self
            .at
            .checked_add(len)
            .filter(|e| *e <= self.bytes.len())?;
        let mut seen = [false; 64];
        while self.at < end {
            let id = self.u8()?;
            if id != 0x26 && id < 64 && std::mem::replace(&mut seen[id as usize], true) {
                self.repeated = true;
            }
            if id < 64 {
                self.ids |= 1 << id;
            }
            self.property_value(id)?;
        }
        (self.at == end).then_some(())
    }

    /// Skips the value of property `id` by its type (§2.2.2.2); `None` for an unknown id.
    fn property_value(&mut self, id: u8) -> Option<()> {
        match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self.skip(1),
            0x13 | 0x21 | 0x22 | 0x23 => self.skip(2),
            0x02 | 0x11 | 0x18 | 0x27 => self.skip(4),
            0x0B => self.var_int().map(|_| ()),
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                self.string().map(|_| ())
            }
            0x26 => self.string().and_then(|_| self.string()).map(|_| ()),
            _ => None,
        }
    }

    /// A Variable Byte Integer.
    fn var_int(&mut self) -> Option<usize> {
        let mut v = 0usize;
        for shift in [0, 7, 14, 21] {
            let b = self.u8()?;
            v |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// An optional reason code, then optional properties (acknowledgements, DISCONNECT,
    /// AUTH): reached the properties, or the end.
    fn reason_then_properties(&mut self) -> Option<()> {
        if !self.done() {
            self.u8()?;
        }
        Some(())
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}
