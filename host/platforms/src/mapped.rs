//! What a webhook delivery maps to, on every platform.

use autoclose_core::event::GatewayEvent;

/// What a delivery came to: the events, and a word on why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The events, in order.
    pub events: Vec<GatewayEvent>,
    /// Why the delivery maps to nothing, for the log and the answer (`None` when it
    /// maps to events).
    pub ignored: Option<&'static str>,
}

impl Mapped {
    /// Nothing to apply, because `why`.
    pub fn ignored(why: &'static str) -> Self {
        Mapped {
            events: Vec::new(),
            ignored: Some(why),
        }
    }

    /// These events.
    pub fn events(events: Vec<GatewayEvent>) -> Self {
        Mapped {
            events,
            ignored: None,
        }
    }
}
