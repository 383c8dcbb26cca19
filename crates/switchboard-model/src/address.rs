//! Addresses (`ADAPTER:TOPIC`) and address patterns (`ADAPTER:FILTER`, `*:FILTER`).

use std::fmt;
use std::sync::Arc;

use crate::ModelError;
use crate::topic::{Pattern, Topic, truncate};

/// Validates an adapter instance name: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn validate_adapter_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::BadAdapterName(truncate(name)))
    }
}

/// A topic at one adapter instance: `mqtt:sensors/a/temp`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The adapter instance name.
    pub adapter: Arc<str>,
    /// The topic within that adapter.
    pub topic: Topic,
}

impl Address {
    /// Builds an address from its parts.
    pub fn new(adapter: impl Into<Arc<str>>, topic: Topic) -> Self {
        Address {
            adapter: adapter.into(),
            topic,
        }
    }

    /// Parses `ADAPTER:TOPIC` (split at the first `:`).
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let (adapter, topic) = s
            .split_once(':')
            .ok_or_else(|| ModelError::MissingAdapter(truncate(s)))?;
        validate_adapter_name(adapter)?;
        Ok(Address {
            adapter: Arc::from(adapter),
            topic: Topic::new(topic)?,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.adapter, self.topic)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl std::str::FromStr for Address {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// Which adapters an [`AddressPattern`] applies to.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum AdapterSel {
    /// `*`: any adapter.
    Any,
    /// One named adapter instance.
    Named(Arc<str>),
}

impl AdapterSel {
    /// Whether this selector admits the adapter `name`.
    pub fn admits(&self, name: &str) -> bool {
        match self {
            AdapterSel::Any => true,
            AdapterSel::Named(n) => &**n == name,
        }
    }
}

/// `ADAPTER:FILTER` where ADAPTER may be `*`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AddressPattern {
    /// The adapter selector.
    pub adapter: AdapterSel,
    /// The topic filter.
    pub filter: Pattern,
}

impl AddressPattern {
    /// Parses `ADAPTER:FILTER` or `*:FILTER`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let (adapter, filter) = s
            .split_once(':')
            .ok_or_else(|| ModelError::MissingAdapter(truncate(s)))?;
        let adapter = if adapter == "*" {
            AdapterSel::Any
        } else {
            validate_adapter_name(adapter)?;
            AdapterSel::Named(Arc::from(adapter))
        };
        Ok(AddressPattern {
            adapter,
            filter: Pattern::new(filter)?,
        })
    }

    /// Whether `addr` matches.
    pub fn matches(&self, addr: &Address) -> bool {
        self.adapter.admits(&addr.adapter) && self.filter.matches(&addr.topic)
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.adapter {
            AdapterSel::Any => write!(f, "*:{}", self.filter),
            AdapterSel::Named(n) => write!(f, "{n}:{}", self.filter),
        }
    }
}

impl fmt::Debug for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddressPattern({self})")
    }
}

impl std::str::FromStr for AddressPattern {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressPattern::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        let a = Address::parse("mqtt:a/b:c").unwrap();
        assert_eq!(&*a.adapter, "mqtt");
        assert_eq!(a.topic.as_str(), "b:c".replace("b:c", "a/b:c").as_str());
        assert!(Address::parse("no-colon").is_err());
        assert!(Address::parse("bad name:x").is_err());
        assert!(Address::parse("mqtt:a/+").is_err());
        assert!(Address::parse("*:a").is_err());
        let p = AddressPattern::parse("*:sensors/#").unwrap();
        assert!(p.matches(&Address::parse("coap:sensors/x").unwrap()));
        let p = AddressPattern::parse("mqtt:+/t").unwrap();
        assert!(p.matches(&Address::parse("mqtt:a/t").unwrap()));
        assert!(!p.matches(&Address::parse("http:a/t").unwrap()));
        assert_eq!(p.to_string(), "mqtt:+/t");
    }
}
