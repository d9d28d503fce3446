//! Interned text: attribute keys, span names and the plan's constant values.
//!
//! They are made while a run is prepared, from a bounded set (the configuration,
//! the conventions, the scenarios), and then copied into every span. As
//! reference-counted strings, each copy and each drop was an atomic operation on a
//! count that every worker shares, about a tenth of the client's CPU. Interned,
//! they live for the process: a copy is two words and a drop is nothing.

use rustc_hash::FxHashSet;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// The process's interned texts, each leaked once.
static TABLE: Mutex<Option<FxHashSet<&'static str>>> = Mutex::new(None);

/// The interned copy of `s`: the same `&'static str` for the same text.
///
/// Takes a global lock: call it while preparing a run, not per span. Its memory is
/// never freed, so only bounded sets of texts belong here (never ids or messages).
pub fn intern(s: &str) -> &'static str {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let table = table.get_or_insert_with(FxHashSet::default);
    if let Some(&t) = table.get(s) {
        return t;
    }
    let t: &'static str = Box::leak(Box::from(s));
    table.insert(t);
    t
}

/// An attribute key or other name from a bounded set: interned text, copied freely.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(&'static str);

impl Key {
    /// A key from a literal (no interning needed: it already lives for the process).
    pub const fn from_static(s: &'static str) -> Self {
        Key(s)
    }

    /// The key's text.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl From<&str> for Key {
    /// Interns `s` (see [`intern`]: not per span).
    fn from(s: &str) -> Self {
        Key(intern(s))
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key(intern(&s))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// A string attribute value: interned when it comes from the plan (a model, an
/// enum's member), shared by reference count when made per trace (an id, a message).
#[derive(Clone)]
pub enum Text {
    /// Interned: copying it costs nothing.
    Static(&'static str),
    /// Made for this trace; clones share it.
    Shared(Arc<str>),
}

impl Text {
    /// The interned copy of `s` (see [`intern`]: not per span).
    pub fn interned(s: &str) -> Self {
        Text::Static(intern(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Shared(s) => s,
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Self {
        Text::Shared(s)
    }
}

impl From<&str> for Text {
    /// A copy of `s` made for this trace (use [`Text::interned`] for the plan's texts).
    fn from(s: &str) -> Self {
        Text::Shared(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::Shared(Arc::from(s))
    }
}

impl From<Text> for Arc<str> {
    fn from(t: Text) -> Self {
        match t {
            Text::Static(s) => Arc::from(s),
            Text::Shared(s) => s,
        }
    }
}

impl From<&Text> for Key {
    /// Free for an interned text; interns a shared one (see [`intern`]: not per span).
    fn from(t: &Text) -> Self {
        match t {
            Text::Static(s) => Key(s),
            Text::Shared(s) => Key(intern(s)),
        }
    }
}

impl From<Key> for Text {
    fn from(k: Key) -> Self {
        Text::Static(k.0)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_interns_to_the_same_memory_once() {
        let a = intern(&String::from("intern.test.key"));
        let b = intern(&format!("intern.test.{}", "key"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "intern.test.key");
        assert!(!std::ptr::eq(a, intern("intern.test.other")));
        assert_eq!(Key::from("k"), Key::from_static("k"));
        assert_eq!(Text::interned("v"), Text::from(String::from("v")));
    }
}
