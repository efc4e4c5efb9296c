//! A small open-addressing table from property name to its position in `properties`, built
//! once per schema: a payload key is looked up with a cheap hash of its length and end bytes
//! instead of the SipHash a `HashMap` (or the payload's own map) would spend.

/// Property name → position, for one `properties` keyword.
#[derive(Debug, Clone, Default)]
pub(crate) struct PropIndex {
    /// Slots hold `position + 1`; `0` is empty. The length is a power of two (or zero).
    slots: Vec<u32>,
}

/// A hash of the length and a few bytes at both ends (overlapping word loads, as short-key
/// hashes do): property names are short, and a collision only costs a string comparison.
fn key_hash(key: &str) -> u64 {
    let b = key.as_bytes();
    let (head, tail) = if let (Some(h), Some(t)) = (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (u64::from_le_bytes(*h), u64::from_le_bytes(*t))
    } else if let (Some(h), Some(t)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        (
            u64::from(u32::from_le_bytes(*h)),
            u64::from(u32::from_le_bytes(*t)),
        )
    } else {
        let byte = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        let last = b.len().saturating_sub(1);
        ((byte(0) << 16) | (byte(b.len() / 2) << 8) | byte(last), 0)
    };
    let mut h = (b.len() as u64)
        ^ head.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ tail.rotate_left(31).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

impl PropIndex {
    /// Indexes `names` (in order; a repeated name keeps its first position).
    pub(crate) fn build<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Self {
        let count = names.clone().count();
        if count == 0 {
            return PropIndex::default();
        }
        let size = (count * 2).next_power_of_two().max(8);
        let mask = size - 1;
        let mut slots = vec![0u32; size];
        let mut stored: Vec<&str> = Vec::with_capacity(count);
        for (position, name) in names.enumerate() {
            let mut slot = (key_hash(name) as usize) & mask;
            loop {
                match slots.get(slot).copied() {
                    Some(0) => {
                        if let (Some(cell), Ok(value)) =
                            (slots.get_mut(slot), u32::try_from(position + 1))
                        {
                            *cell = value;
                        }
                        break;
                    }
                    Some(existing) => {
                        let same = (existing as usize)
                            .checked_sub(1)
                            .and_then(|i| stored.get(i))
                            .is_some_and(|s| *s == name);
                        if same {
                            break;
                        }
                    }
                    None => break,
                }
                slot = (slot + 1) & mask;
            }
            stored.push(name);
        }
        PropIndex { slots }
    }

    /// The position of `key`; `name_at` gives the name stored at a position.
    pub(crate) fn get<'n>(
        &self,
        key: &str,
        name_at: impl Fn(usize) -> Option<&'n str>,
    ) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = (key_hash(key) as usize) & mask;
        // The table is at most half full, so an empty slot always ends the probe.
        for _ in 0..self.slots.len() {
            let entry = *self.slots.get(slot)?;
            let position = (entry as usize).checked_sub(1)?;
            if name_at(position) == Some(key) {
                return Some(position);
            }
            slot = (slot + 1) & mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_nothing_else() {
        let names: Vec<String> = (0..100).map(|i| format!("key_{i}")).collect();
        let index = PropIndex::build(names.iter().map(String::as_str));
        let name_at = |i: usize| names.get(i).map(String::as_str);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, name_at), Some(i));
        }
        assert_eq!(index.get("missing", name_at), None);
        assert_eq!(PropIndex::default().get("x", name_at), None);
    }
}
