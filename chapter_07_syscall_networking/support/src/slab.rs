//! Lab 7.6's connection table, made generic: a `Vec` of slots plus a free list, so a
//! connection's key is an index (no hashing, and it fits in an epoll token or an io_uring
//! `user_data`) and a closed connection's slot goes to the next client.

/// Values indexed by small integers that are reused once freed.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value` in a free slot (the most recently freed one first) and returns its key.
    pub fn insert(&mut self, value: T) -> usize {
        if let Some(key) = self.free.pop() {
            self.slots[key] = Some(value);
            return key;
        }
        self.slots.push(Some(value));
        self.slots.len() - 1
    }

    /// The value under `key`, if that slot is in use.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slots.get_mut(key).and_then(Option::as_mut)
    }

    /// Takes the value out of `key`'s slot and frees the slot; `None` if it was free already.
    pub fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.slots.get_mut(key)?.take()?;
        self.free.push(key);
        Some(value)
    }

    /// How many slots are in use.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_keys_and_never_frees_twice() {
        let mut slab = Slab::default();
        let (a, b) = (slab.insert("a"), slab.insert("b"));
        assert_eq!((a, b), (0, 1));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "a second remove frees nothing");
        assert_eq!(slab.insert("c"), a, "the freed key is reused");
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.get_mut(7), None);
        assert_eq!(slab.len(), 2);
    }
}
