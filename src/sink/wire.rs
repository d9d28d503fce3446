//! The protobuf wire format: varints, and the fields of a message read where
//! they lie, over borrowed bytes (what the sink's views, [`super::view`], read
//! a body with). What the fields mean is [`super::schema`]'s concern.

/// One field's value as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 2: a string, bytes, a message or a packed run.
    Len(&'a [u8]),
}

/// A varint longer than ten bytes, or past a u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadVarint;

/// The varint at the start of `b`: its value and length, `Ok(None)` when `b`
/// ends before it does.
#[inline]
pub fn varint(b: &[u8]) -> Result<Option<(u64, usize)>, BadVarint> {
    // Most tags and lengths are one byte.
    match b.first() {
        Some(&x) if x < 0x80 => Ok(Some((u64::from(x), 1))),
        None => Ok(None),
        Some(_) => varint_long(b),
    }
}

fn varint_long(b: &[u8]) -> Result<Option<(u64, usize)>, BadVarint> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // The tenth byte may only hold the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(BadVarint);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if b.len() >= 10 {
        return Err(BadVarint);
    }
    Ok(None)
}

/// The fields of one message, in wire order, as far as they are readable: the
/// walk stops at the first field that is not (truncated, a bad varint, field
/// number 0, a group).
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The fields of the message `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    /// The varint at `pos`: its value and where it ends.
    #[inline]
    fn varint_at(&self, pos: usize) -> Option<(u64, usize)> {
        let (v, n) = varint(self.buf.get(pos..)?).ok()??;
        Some((v, pos + n))
    }

    #[inline]
    fn read(&self) -> Option<(u32, Value<'a>, usize)> {
        let (key, pos) = self.varint_at(self.pos)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n != 0)?;
        let (value, end) = match key & 7 {
            0 => {
                let (v, end) = self.varint_at(pos)?;
                (Value::Varint(v), end)
            }
            1 => {
                let b = self.buf.get(pos..pos + 8)?;
                (
                    Value::Fixed64(u64::from_le_bytes(b.try_into().ok()?)),
                    pos + 8,
                )
            }
            5 => {
                let b = self.buf.get(pos..pos + 4)?;
                (
                    Value::Fixed32(u32::from_le_bytes(b.try_into().ok()?)),
                    pos + 4,
                )
            }
            2 => {
                let (len, start) = self.varint_at(pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| start.checked_add(l))?;
                (Value::Len(self.buf.get(start..end)?), end)
            }
            // Groups (3, 4) are not OTLP.
            _ => return None,
        };
        Some((number, value, end))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Value<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        match self.read() {
            Some((number, value, end)) => {
                self.pos = end;
                Some((number, value))
            }
            None => {
                // Stop at the first unreadable field.
                self.pos = self.buf.len();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_whole_or_wait_for_more() {
        assert_eq!(varint(&[0x05]), Ok(Some((5, 1))));
        assert_eq!(varint(&[0x96, 0x01, 0xff]), Ok(Some((150, 2))));
        assert_eq!(varint(&[0x96]), Ok(None));
        assert_eq!(varint(&[]), Ok(None));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&max), Ok(Some((u64::MAX, 10))));
        let past = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(varint(&past), Err(BadVarint));
        assert_eq!(varint(&[0xff; 11]), Err(BadVarint));
    }

    #[test]
    fn fields_read_as_far_as_they_are_readable() {
        // Field 1 varint 7, field 2 "ab", field 3 fixed64, then a truncated field.
        let mut body = vec![0x08, 0x07, 0x12, 0x02, b'a', b'b', 0x19];
        body.extend_from_slice(&9u64.to_le_bytes());
        body.extend_from_slice(&[0x22, 0x05, 0x00]);
        let read: Vec<_> = fields(&body).collect();
        assert_eq!(
            read,
            [
                (1, Value::Varint(7)),
                (2, Value::Len(b"ab")),
                (3, Value::Fixed64(9))
            ]
        );
        // Field number 0 and groups stop the walk.
        assert_eq!(fields(&[0x00, 0x01]).count(), 0);
        assert_eq!(fields(&[0x08, 0x01, 0x0b]).count(), 1);
    }
}
