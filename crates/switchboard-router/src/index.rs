//! The pattern index: a trie over topic levels with `+` and `#` nodes, so that
//! finding the routes a topic matches costs O(levels), not O(routes).

use switchboard_model::{Level, Pattern, Topic};

/// Literal levels come from configuration and topics from peers: foldhash is
/// fast and seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Literal children: a short list compared directly (most nodes have a few
/// children, and comparing a level is cheaper than hashing it), a map beyond.
#[derive(Debug)]
enum Children<V> {
    Few(Vec<(Box<str>, Node<V>)>),
    Many(HashMap<Box<str>, Node<V>>),
}

/// Children kept in a list up to this many.
const FEW: usize = 8;

impl<V> Children<V> {
    fn is_empty(&self) -> bool {
        match self {
            Children::Few(v) => v.is_empty(),
            Children::Many(m) => m.is_empty(),
        }
    }

    fn get(&self, level: &str) -> Option<&Node<V>> {
        match self {
            // Length and first byte before the full comparison.
            Children::Few(v) => v
                .iter()
                .find(|(k, _)| {
                    k.len() == level.len()
                        && k.as_bytes().first() == level.as_bytes().first()
                        && **k == *level
                })
                .map(|(_, n)| n),
            Children::Many(m) => m.get(level),
        }
    }

    fn entry(&mut self, level: &str) -> &mut Node<V> {
        if let Children::Few(v) = self
            && v.len() >= FEW
            && !v.iter().any(|(k, _)| **k == *level)
        {
            let m: HashMap<Box<str>, Node<V>> = std::mem::take(v).into_iter().collect();
            *self = Children::Many(m);
        }
        match self {
            Children::Few(v) => {
                let i = match v.iter().position(|(k, _)| **k == *level) {
                    Some(i) => i,
                    None => {
                        v.push((Box::from(level), Node::default()));
                        v.len() - 1
                    }
                };
                &mut v[i].1
            }
            Children::Many(m) => m.entry(Box::from(level)).or_default(),
        }
    }
}

#[derive(Debug)]
struct Node<V> {
    literal: Children<V>,
    single: Option<Box<Node<V>>>,
    /// Values of patterns ending in `#` at this node.
    multi: Vec<V>,
    /// Values of patterns ending exactly at this node.
    terminal: Vec<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            literal: Children::Few(Vec::new()),
            single: None,
            multi: Vec::new(),
            terminal: Vec::new(),
        }
    }
}

/// A trie of topic filters, each with a value.
#[derive(Debug)]
pub struct PatternIndex<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for PatternIndex<V> {
    fn default() -> Self {
        PatternIndex {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V: Clone> PatternIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `pattern` with `value`.
    pub fn insert(&mut self, pattern: &Pattern, value: V) {
        let mut node = &mut self.root;
        for level in pattern.levels() {
            match level {
                Level::Literal(l) => node = node.literal.entry(l),
                Level::Single => node = node.single.get_or_insert_with(Default::default),
                Level::Multi => {
                    node.multi.push(value);
                    self.len += 1;
                    return;
                }
            }
        }
        node.terminal.push(value);
        self.len += 1;
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with the value of every pattern that matches `topic` (MQTT
    /// rules, including: wildcards at the first level do not match `$` topics).
    pub fn for_each_match(&self, topic: &Topic, mut f: impl FnMut(&V)) {
        let t = topic.as_str();
        let dollar = t.starts_with('$');
        walk(&self.root, t, true, dollar, &mut f);
    }

    /// Collects the values of every matching pattern.
    pub fn matches(&self, topic: &Topic) -> Vec<V> {
        let mut out = Vec::new();
        self.for_each_match(topic, |v| out.push(v.clone()));
        out
    }
}

/// Visits matches of `rest` (the remaining levels, `None`-free: an empty string
/// is one empty level) below `node`.
fn walk<V>(node: &Node<V>, rest: &str, first: bool, dollar: bool, f: &mut impl FnMut(&V)) {
    let wild_ok = !(first && dollar);
    // `#` matches this level and everything after it (and the parent, handled
    // below when a level is consumed exactly).
    if wild_ok {
        node.multi.iter().for_each(&mut *f);
    }
    let single = if wild_ok {
        node.single.as_deref()
    } else {
        None
    };
    let literal = !node.literal.is_empty();
    if !literal && single.is_none() {
        return;
    }
    let (head, tail) = match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if literal && let Some(child) = node.literal.get(head) {
        step(child, tail, dollar, f);
    }
    if let Some(child) = single {
        step(child, tail, dollar, f);
    }
}

fn step<V>(child: &Node<V>, tail: Option<&str>, dollar: bool, f: &mut impl FnMut(&V)) {
    match tail {
        Some(t) => walk(child, t, false, dollar, f),
        None => {
            child.terminal.iter().for_each(&mut *f);
            // "sport/#" also matches "sport".
            child.multi.iter().for_each(&mut *f);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn idx(pats: &[&str]) -> PatternIndex<usize> {
        let mut i = PatternIndex::new();
        for (n, p) in pats.iter().enumerate() {
            i.insert(&Pattern::new(p).unwrap(), n);
        }
        i
    }

    fn m(i: &PatternIndex<usize>, t: &str) -> Vec<usize> {
        let mut v = i.matches(&Topic::new(t).unwrap());
        v.sort();
        v
    }

    #[test]
    fn basic() {
        let i = idx(&["a/b", "a/+", "a/#", "#", "+/b", "a/b/c", "+", "$SYS/#"]);
        assert_eq!(m(&i, "a/b"), vec![0, 1, 2, 3, 4]);
        assert_eq!(m(&i, "a"), vec![2, 3, 6]);
        assert_eq!(m(&i, "a/b/c"), vec![2, 3, 5]);
        assert_eq!(m(&i, "x/b"), vec![3, 4]);
        assert_eq!(m(&i, "$SYS/x"), vec![7]);
        assert_eq!(m(&i, "/b"), vec![3, 4]);
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just(String::new()),
            Just("$s".to_owned())
        ]
    }

    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(level(), 1..5)
            .prop_map(|v| v.join("/"))
            .prop_filter("non-empty", |s| !s.is_empty())
    }

    fn pattern() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop_oneof![level(), Just("+".to_owned())], 0..4),
            any::<bool>(),
        )
            .prop_map(|(mut v, hash)| {
                if hash || v.is_empty() {
                    v.push("#".to_owned());
                }
                v.join("/")
            })
            .prop_filter("non-empty", |s| !s.is_empty())
    }

    proptest! {
        /// The index agrees with the naive reference matcher on random inputs.
        #[test]
        fn agrees_with_reference(pats in prop::collection::vec(pattern(), 1..20), topics in prop::collection::vec(topic(), 1..20)) {
            let parsed: Vec<Pattern> = pats.iter().map(|p| Pattern::new(p).unwrap()).collect();
            let mut index = PatternIndex::new();
            for (n, p) in parsed.iter().enumerate() {
                index.insert(p, n);
            }
            for t in &topics {
                let topic = Topic::new(t).unwrap();
                let mut got = index.matches(&topic);
                got.sort();
                let want: Vec<usize> = parsed.iter().enumerate().filter(|(_, p)| p.matches(&topic)).map(|(n, _)| n).collect();
                prop_assert_eq!(got, want, "topic {}", t);
                // Captures taken after the index matched agree with the full
                // matcher's.
                for p in parsed.iter().filter(|p| p.matches(&topic)) {
                    let full = crate::Captures::of(p, &topic).unwrap();
                    let fast = crate::Captures::of_matched(p, &topic).unwrap();
                    for i in 1..=p.wildcard_count() {
                        prop_assert_eq!(full.get(i), fast.get(i), "pattern {} topic {}", p, t);
                    }
                }
            }
        }
    }
}
