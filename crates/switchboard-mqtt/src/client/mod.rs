//! Client mode: a rumqttc client of an external broker.

use switchboard_model::{AdapterContext, AdapterError, Running};

use crate::config::Config;

/// Connects and returns the running client.
pub(crate) async fn start(_cfg: Config, _ctx: AdapterContext) -> Result<Running, AdapterError> {
    Err(AdapterError::Config("client mode: not yet".into()))
}
