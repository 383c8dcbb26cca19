//! The subscription index: a trie over topic levels with `+` and `#` edges,
//! holding per-client subscription options and shared-subscription groups
//! (`$share/GROUP/FILTER`, one member per group receives each message, in
//! turn). Matching applies MQTT's `$` rule: a filter starting with a wildcard
//! does not match a topic starting with `$` ([MQTT-4.7.2-1]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Options of one subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOpts {
    /// Maximum QoS granted.
    pub qos: u8,
    /// MQTT 5 no-local: do not send the client its own publications.
    pub no_local: bool,
    /// MQTT 5 retain-as-published.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier.
    pub id: Option<u32>,
}

#[derive(Debug, Default)]
struct Group {
    members: Vec<(Arc<str>, SubOpts)>,
    next: usize,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subs: HashMap<Arc<str>, SubOpts>,
    shared: BTreeMap<Box<str>, Group>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty() && self.shared.is_empty()
    }

    fn collect(
        &mut self,
        shared_only_connected: &dyn Fn(&str) -> bool,
        out: &mut Vec<(Arc<str>, SubOpts)>,
    ) {
        out.extend(self.subs.iter().map(|(c, o)| (c.clone(), *o)));
        for g in self.shared.values_mut() {
            let n = g.members.len();
            if n == 0 {
                continue;
            }
            // Round robin, preferring members that are connected.
            let pick = (0..n)
                .map(|i| (g.next + i) % n)
                .find(|&i| shared_only_connected(&g.members[i].0))
                .unwrap_or(g.next % n);
            g.next = pick + 1;
            out.push(g.members[pick].clone());
        }
    }
}

/// Splits `$share/GROUP/FILTER` into `(Some(GROUP), FILTER)`.
pub fn split_share(filter: &str) -> (Option<&str>, &str) {
    match filter
        .strip_prefix("$share/")
        .and_then(|r| r.split_once('/'))
    {
        Some((g, f)) => (Some(g), f),
        None => (None, filter),
    }
}

/// The subscription trie.
#[derive(Debug, Default)]
pub struct SubTree {
    root: Node,
    len: usize,
}

impl SubTree {
    /// Adds or replaces a client's subscription to `filter` (a validated
    /// filter, possibly shared); whether it is new.
    pub fn insert(&mut self, filter: &str, client: &Arc<str>, opts: SubOpts) -> bool {
        let (group, f) = split_share(filter);
        let mut node = &mut self.root;
        for level in f.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        let new = match group {
            None => node.subs.insert(client.clone(), opts).is_none(),
            Some(g) => {
                let grp = node.shared.entry(Box::from(g)).or_default();
                match grp.members.iter_mut().find(|(c, _)| c == client) {
                    Some(m) => {
                        m.1 = opts;
                        false
                    }
                    None => {
                        grp.members.push((client.clone(), opts));
                        true
                    }
                }
            }
        };
        if new {
            self.len += 1;
        }
        new
    }

    /// Removes a client's subscription; whether it existed.
    pub fn remove(&mut self, filter: &str, client: &str) -> bool {
        let (group, f) = split_share(filter);
        let levels: Vec<&str> = f.split('/').collect();
        let removed = remove_in(&mut self.root, &levels, group, client);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Subscriptions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends every subscription matching `topic` to `out` (one member per
    /// shared group, chosen in turn among those `connected` says are online).
    /// A client may appear more than once.
    pub fn matches(
        &mut self,
        topic: &str,
        connected: &dyn Fn(&str) -> bool,
        out: &mut Vec<(Arc<str>, SubOpts)>,
    ) {
        if self.root.is_empty() {
            return;
        }
        let dollar = topic.starts_with('$');
        // The levels on the stack for the usual depths.
        let mut stack = [""; 16];
        let mut n = 0;
        for l in topic.split('/') {
            if n == stack.len() {
                let levels: Vec<&str> = topic.split('/').collect();
                walk(&mut self.root, &levels, true, dollar, connected, out);
                return;
            }
            stack[n] = l;
            n += 1;
        }
        walk(&mut self.root, &stack[..n], true, dollar, connected, out);
    }
}

fn walk(
    node: &mut Node,
    levels: &[&str],
    root: bool,
    dollar: bool,
    connected: &dyn Fn(&str) -> bool,
    out: &mut Vec<(Arc<str>, SubOpts)>,
) {
    let wild_ok = !(root && dollar);
    if wild_ok && let Some(h) = node.children.get_mut("#") {
        h.collect(connected, out);
    }
    match levels.split_first() {
        None => node.collect(connected, out),
        Some((l, rest)) => {
            if let Some(c) = node.children.get_mut(*l) {
                walk(c, rest, false, dollar, connected, out);
            }
            if wild_ok && let Some(c) = node.children.get_mut("+") {
                walk(c, rest, false, dollar, connected, out);
            }
        }
    }
}

fn remove_in(node: &mut Node, levels: &[&str], group: Option<&str>, client: &str) -> bool {
    match levels.split_first() {
        None => match group {
            None => node.subs.remove(client).is_some(),
            Some(g) => {
                let Some(grp) = node.shared.get_mut(g) else {
                    return false;
                };
                let before = grp.members.len();
                grp.members.retain(|(c, _)| &**c != client);
                let removed = grp.members.len() != before;
                if grp.members.is_empty() {
                    node.shared.remove(g);
                }
                removed
            }
        },
        Some((l, rest)) => {
            let Some(child) = node.children.get_mut(*l) else {
                return false;
            };
            let removed = remove_in(child, rest, group, client);
            if child.is_empty() {
                node.children.remove(*l);
            }
            removed
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const O: SubOpts = SubOpts {
        qos: 1,
        no_local: false,
        retain_as_published: false,
        id: None,
    };

    fn clients(t: &mut SubTree, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.matches(topic, &|_| true, &mut out);
        let mut v: Vec<String> = out.into_iter().map(|(c, _)| c.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_and_dollar_rule() {
        let mut t = SubTree::default();
        for (f, c) in [
            ("a/b", "exact"),
            ("a/+", "plus"),
            ("a/#", "hash"),
            ("#", "all"),
            ("+/b", "pb"),
            ("$SYS/#", "sys"),
        ] {
            assert!(t.insert(f, &Arc::from(c), O));
        }
        assert_eq!(
            clients(&mut t, "a/b"),
            ["all", "exact", "hash", "pb", "plus"]
        );
        assert_eq!(clients(&mut t, "a"), ["all", "hash"]);
        assert_eq!(clients(&mut t, "a/b/c"), ["all", "hash"]);
        assert_eq!(clients(&mut t, "$SYS/x"), ["sys"]);
        assert_eq!(clients(&mut t, "$SYS"), ["sys"]);
        assert_eq!(clients(&mut t, "/b"), ["all", "pb"]);
        assert!(t.remove("a/#", "hash"));
        assert!(!t.remove("a/#", "hash"));
        assert_eq!(clients(&mut t, "a/b/c"), ["all"]);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn shared_groups_take_turns() {
        let mut t = SubTree::default();
        t.insert("$share/g/s/#", &Arc::from("x"), O);
        t.insert("$share/g/s/#", &Arc::from("y"), O);
        t.insert("s/#", &Arc::from("z"), O);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut out = Vec::new();
            t.matches("s/1", &|_| true, &mut out);
            assert_eq!(out.len(), 2);
            seen.extend(
                out.into_iter()
                    .map(|(c, _)| c.to_string())
                    .filter(|c| c != "z"),
            );
        }
        assert_eq!(seen, ["x", "y", "x", "y"]);
        // Offline members are skipped while another is connected.
        let mut out = Vec::new();
        t.matches("s/1", &|c| c != "x", &mut out);
        assert!(out.iter().any(|(c, _)| &**c == "y"));
        assert!(t.remove("$share/g/s/#", "x"));
        assert!(t.remove("$share/g/s/#", "y"));
        assert!(t.remove("s/#", "z"));
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }

    /// Topics deeper than the levels kept on the stack match as any other.
    #[test]
    fn deep_topics_and_an_empty_tree() {
        let mut t = SubTree::default();
        assert!(clients(&mut t, "a/b").is_empty());
        let deep: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        let topic = deep.join("/");
        let mut plus = deep.clone();
        plus[17] = "+".into();
        t.insert(&plus.join("/"), &Arc::from("plus17"), O);
        t.insert(
            &format!("{}/#", deep[..16].join("/")),
            &Arc::from("hash16"),
            O,
        );
        t.insert(&topic, &Arc::from("exact"), O);
        for n in [15, 16, 17, 40] {
            let topic = deep[..n].join("/");
            let want: Vec<&str> = match n {
                16 | 17 => vec!["hash16"],
                40 => vec!["exact", "hash16", "plus17"],
                _ => vec![],
            };
            assert_eq!(clients(&mut t, &topic), want, "{n} levels");
        }
    }
}
