//! A bounded cache of compiled `junction eval` configurations, keyed by content: a configuration
//! is compiled the first time it is seen and shared by every later line that carries it.
//!
//! Two keys lead to one compiled value: the configuration's text exactly as the line wrote it
//! (found without parsing it), and its canonical JSON (the same configuration written with other
//! spacing, or read by the slow path). A `HashMap` compares whole keys after their hashes, so a
//! hash collision can never hand a line another line's configuration.

use std::collections::HashMap;
use std::rc::Rc;

/// How much the cache may hold. Whatever the input, it never keeps more than `entries` values
/// per key kind, nor more than `key_bytes` bytes of keys per key kind; compiled values grow with
/// their configuration's text, so this bounds them too.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most values kept.
    pub entries: usize,
    /// Most bytes of keys kept.
    pub key_bytes: usize,
}

impl Default for Bounds {
    /// A thousand configurations, 64 MiB of keys: far more than real inputs use (most carry one
    /// configuration), little enough that an adversarial input cannot grow the process.
    fn default() -> Self {
        Self {
            entries: 1_024,
            key_bytes: 64 << 20,
        }
    }
}

/// Compiled values found by the text or by the content of their configuration.
#[derive(Debug)]
pub struct ConfigCache<V> {
    by_text: Lru<V>,
    by_content: Lru<V>,
}

impl<V> ConfigCache<V> {
    /// An empty cache holding at most `bounds` per key kind.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            by_text: Lru::new(bounds),
            by_content: Lru::new(bounds),
        }
    }

    /// The value compiled for a configuration written exactly as `text`, if there is one.
    pub fn by_text(&mut self, text: &str) -> Option<Rc<V>> {
        self.by_text.get(text)
    }

    /// The value for the configuration whose canonical JSON is `content`, compiling it with
    /// `compile` unless a configuration with the same content was compiled before. `text`, when
    /// given, is how this line wrote it: later lines written the same way find it without
    /// parsing. With no `content` (it could not be written), the value is compiled and not kept.
    pub fn get_or_compile(
        &mut self,
        text: Option<&str>,
        content: Option<&str>,
        compile: impl FnOnce() -> V,
    ) -> Rc<V> {
        let Some(content) = content else {
            return Rc::new(compile());
        };
        let value = match self.by_content.get(content) {
            Some(value) => value,
            None => {
                let value = Rc::new(compile());
                self.by_content.insert(content, Rc::clone(&value));
                value
            }
        };
        if let Some(text) = text {
            self.by_text.insert(text, Rc::clone(&value));
        }
        value
    }
}

/// A least-recently-used map from string keys, within [`Bounds`].
#[derive(Debug)]
struct Lru<V> {
    slots: HashMap<Box<str>, Slot<V>>,
    /// Counts lookups and inserts; a slot's `used` is the tick of its last one.
    tick: u64,
    key_bytes: usize,
    bounds: Bounds,
}

#[derive(Debug)]
struct Slot<V> {
    value: Rc<V>,
    used: u64,
}

impl<V> Lru<V> {
    fn new(bounds: Bounds) -> Self {
        Self {
            slots: HashMap::new(),
            tick: 0,
            key_bytes: 0,
            bounds,
        }
    }

    fn get(&mut self, key: &str) -> Option<Rc<V>> {
        self.tick += 1;
        let slot = self.slots.get_mut(key)?;
        slot.used = self.tick;
        Some(Rc::clone(&slot.value))
    }

    /// Keeps `value` under `key`, evicting the least recently used entries to stay in bounds. A
    /// key larger than the whole byte bound is not kept: it would evict everything for one line.
    fn insert(&mut self, key: &str, value: Rc<V>) {
        if key.len() > self.bounds.key_bytes || self.slots.contains_key(key) {
            return;
        }
        while !self.slots.is_empty()
            && (self.slots.len() >= self.bounds.entries
                || self.key_bytes + key.len() > self.bounds.key_bytes)
        {
            self.evict_oldest();
        }
        self.tick += 1;
        self.key_bytes += key.len();
        let slot = Slot {
            value,
            used: self.tick,
        };
        self.slots.insert(key.into(), slot);
    }

    /// Drops the least recently used entry. A linear scan: it only runs when a new configuration
    /// is compiled, which costs far more, and the map holds at most `bounds.entries` slots.
    fn evict_oldest(&mut self) {
        let oldest = self
            .slots
            .iter()
            .min_by_key(|(_, slot)| slot.used)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.slots.remove(&key);
            self.key_bytes -= key.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn small(entries: usize, key_bytes: usize) -> ConfigCache<String> {
        ConfigCache::new(Bounds { entries, key_bytes })
    }

    #[test]
    fn a_configuration_is_compiled_once_whatever_its_spacing() {
        let mut cache = small(8, 1_024);
        let compiled = Cell::new(0);
        let compile = || {
            compiled.set(compiled.get() + 1);
            "compiled".to_owned()
        };
        assert!(cache.by_text("{ \"a\": 1 }").is_none());
        cache.get_or_compile(Some("{ \"a\": 1 }"), Some("{\"a\":1}"), compile);
        assert_eq!(
            cache.by_text("{ \"a\": 1 }").as_deref(),
            Some(&"compiled".to_owned())
        );
        // Another spacing of the same content: found by content, not compiled again.
        assert!(cache.by_text("{\"a\":1}").is_none());
        cache.get_or_compile(Some("{\"a\":1}"), Some("{\"a\":1}"), compile);
        assert_eq!(compiled.get(), 1);
        assert!(cache.by_text("{\"a\":1}").is_some());
        // Other content is compiled.
        cache.get_or_compile(None, Some("{\"a\":2}"), compile);
        assert_eq!(compiled.get(), 2);
        // Without a content key nothing is kept.
        cache.get_or_compile(None, None, compile);
        cache.get_or_compile(None, None, compile);
        assert_eq!(compiled.get(), 4);
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut cache = small(2, 1_024);
        cache.get_or_compile(Some("a"), Some("A"), || "a".to_owned());
        cache.get_or_compile(Some("b"), Some("B"), || "b".to_owned());
        assert!(cache.by_text("a").is_some()); // `a` is now more recent than `b`
        cache.get_or_compile(Some("c"), Some("C"), || "c".to_owned());
        assert!(cache.by_text("a").is_some());
        assert!(cache.by_text("b").is_none());
        assert!(cache.by_text("c").is_some());
        assert_eq!(cache.by_text.slots.len(), 2);
        assert_eq!(cache.by_content.slots.len(), 2);
    }

    #[test]
    fn key_bytes_stay_within_bounds() {
        let mut cache = small(100, 10);
        for i in 0..50 {
            let key = format!("key-{i:04}"); // 8 bytes: one fits, two do not
            cache.get_or_compile(Some(&key), Some(&key), String::new);
            assert!(cache.by_text.key_bytes <= 10);
            assert_eq!(cache.by_text.slots.len(), 1);
        }
        // A key larger than the bound is compiled but never kept.
        let huge = "x".repeat(11);
        cache.get_or_compile(Some(&huge), Some(&huge), String::new);
        assert!(cache.by_text(&huge).is_none());
        assert!(cache.by_text("key-0049").is_some());
    }
}
