//! The Chatwoot adapter: an account's webhooks in, its REST API out.
//!
//! Built from Chatwoot's source (v4.15): webhook payloads from `app/models/message.rb`
//! and `app/models/conversation.rb` (`webhook_data`), sent by
//! `app/listeners/webhook_listener.rb` through `lib/webhooks/trigger.rb`; REST calls
//! from `config/routes.rb` and `app/controllers/api/v1/accounts/conversations/`.
//!
//! - [`signature`]: is a delivery the account's?
//! - [`inbound`]: a delivery as gateway events.
//! - [`outbound`]: a chat action as REST calls.
//! - [`reconcile`]: catching up with what no webhook told us.
//! - [`client`]: the REST calls; [`payload`]: the JSON they and the webhooks carry.

pub mod client;
pub mod inbound;
pub mod outbound;
pub mod payload;
pub mod reconcile;
pub mod signature;

/// The key of `content_attributes` that marks a post as ours; its value is the
/// action id. Set before the post is sent, echoed back in the webhook.
pub const ECHO_KEY: &str = "autoclose_action";

/// Our posts' `source_id` prefix, recognised as well where a version echoes the
/// source id rather than the content attributes.
pub const SOURCE_ID_PREFIX: &str = "autoclose:";

/// The channel name a Chatwoot inbox type gets in tenant settings: `web_chat` for
/// the website widget, `http_api` for API inboxes, and otherwise the type without
/// `Channel::`, in snake case (`Channel::Whatsapp` is `whatsapp`,
/// `Channel::FacebookPage` is `facebook_page`, `Channel::TwilioSms` is `twilio_sms`).
pub fn channel_name(inbox_type: &str) -> String {
    match inbox_type {
        "Channel::WebWidget" => "web_chat".to_owned(),
        "Channel::Api" => "http_api".to_owned(),
        other => {
            let bare = other.strip_prefix("Channel::").unwrap_or(other);
            let mut name = String::with_capacity(bare.len() + 4);
            for (i, c) in bare.chars().enumerate() {
                if c.is_ascii_uppercase() {
                    if i > 0 {
                        name.push('_');
                    }
                    name.push(c.to_ascii_lowercase());
                } else if c.is_ascii_alphanumeric() {
                    name.push(c);
                } else {
                    name.push('_');
                }
            }
            if name.is_empty() {
                "chatwoot".to_owned()
            } else {
                name
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_types_become_channel_names() {
        assert_eq!(channel_name("Channel::WebWidget"), "web_chat");
        assert_eq!(channel_name("Channel::Api"), "http_api");
        assert_eq!(channel_name("Channel::Whatsapp"), "whatsapp");
        assert_eq!(channel_name("Channel::FacebookPage"), "facebook_page");
        assert_eq!(channel_name("Channel::TwilioSms"), "twilio_sms");
        assert_eq!(channel_name(""), "chatwoot");
    }
}
