//! A tenant's auto-close configuration: layered, parsed, checked, and turned into
//! [`Settings`] per channel and group.
//!
//! Everything that can be wrong with a configuration is found here, when the tenant is
//! configured: unknown keys, wrong types, bad durations, steps out of order, unknown
//! webhooks, unknown placeholders, locales, time zones, business hours. Each error
//! carries the dotted path of the field where it was written, in the tenant's
//! document or (starting with `defaults.`) in the operator's defaults.
//!
//! Settings are resolved for every channel the configuration names, for "any other
//! channel", and for each of those with each group, so that nothing is left to check
//! when a timer fires.

pub mod layers;
pub mod raw;

use std::collections::BTreeMap;

use autoclose_duration::Duration;
use serde_json::{Map, Value};

use crate::hours::{BusinessHours, Outside, Zone};
use crate::locale::Texts;
use crate::template::{Placeholder, Template};
use layers::{Layer, Merged};
use raw::{RawAutoClose, RawTenant, RawText};

/// Longest message text a tenant may configure, in bytes. Keeps posts and push bodies small.
pub const MAX_TEXT_BYTES: usize = 2_000;

/// Most warning steps before a close.
pub const MAX_WARNINGS: usize = 10;

/// Default session attribute holding the end user's locale.
pub const DEFAULT_LOCALE_ATTRIBUTE: &str = "locale";

/// Default session attribute holding the end user's name.
pub const DEFAULT_NAME_ATTRIBUTE: &str = "name";

/// Why a configuration was refused, with the dotted path of the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path, e.g. `channels.web_chat.auto_close.close.after`; paths into the
    /// operator's defaults start with `defaults.`; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Auto-close as configured for one channel (and group) of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Which senders start a cycle.
    pub started_by: Starters,
    /// Warnings before the close, in time order.
    pub warnings: Vec<Warning>,
    /// The close.
    pub close: Close,
    /// The push webhook, if any.
    pub push: Option<PushTarget>,
    /// The tenant's time zone.
    pub zone: Zone,
    /// Business hours, if the tenant keeps any.
    pub hours: Option<BusinessHours>,
    /// Session attributes the plugin reads.
    pub attributes: AttributeNames,
    /// Most cycles that warn or close in one session.
    pub max_cycles: Option<u32>,
}

/// Which senders start a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Starters {
    /// Human agents do.
    pub agent: bool,
    /// Bots do.
    pub bot: bool,
}

/// A warning step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Idle time since the cycle started.
    pub after: Duration,
    /// The text per locale.
    pub message: Texts,
    /// Post it into the chat.
    pub post: bool,
    /// Push it.
    pub push: bool,
    /// The note for the agents, per locale, if set.
    pub agent_notice: Option<Texts>,
}

/// The close step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// Idle time since the cycle started.
    pub after: Duration,
    /// Posted just before the close, if set.
    pub message: Option<Texts>,
    /// Push the close.
    pub push: bool,
}

/// Which webhook to call for pushes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// Name of a webhook in the operator's configuration.
    pub webhook: String,
    /// Push only to users whose chat is not on screen.
    pub only_when_away: bool,
}

/// Session attributes the plugin reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeNames {
    /// The end user's locale.
    pub locale: String,
    /// The end user's name.
    pub end_user_name: String,
    /// Opting out of auto-close, if the tenant allows it.
    pub opt_out: Option<String>,
}

impl Settings {
    /// Every template of these settings.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.warnings
            .iter()
            .flat_map(|w| w.message.templates())
            .chain(self.close.message.iter().flat_map(Texts::templates))
    }

    /// The time of each step after the cycle's start, the close last.
    pub fn schedule(&self) -> Vec<u64> {
        self.warnings
            .iter()
            .map(|w| w.after.as_ms())
            .chain(std::iter::once(self.close.after.as_ms()))
            .collect()
    }
}

/// Which channel a combination is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChannelScope {
    /// A channel the configuration names.
    Named(String),
    /// Every channel the configuration does not name.
    Other,
}

/// The resolved settings of one channel and group, with where each value came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The channel.
    pub channel: ChannelScope,
    /// The group, if any.
    pub group: Option<String>,
    /// The merged settings with their origins.
    pub merged: Merged,
    /// The checked settings; `None` where auto-close is off.
    pub settings: Option<Settings>,
}

/// The configuration of one tenant: settings per channel and group.
#[derive(Clone, Debug, Default)]
pub struct TenantSettings {
    /// Named channels, each with settings per group (index 0: no group).
    channels: BTreeMap<String, Vec<Option<Settings>>>,
    /// Any other channel, per group.
    other: Vec<Option<Settings>>,
    /// Group names, in the order of the vectors above (after index 0).
    groups: Vec<String>,
    /// The session attribute naming the group.
    group_attribute: Option<String>,
}

impl TenantSettings {
    /// The settings for `channel` and the session's `group` (the value of the group
    /// attribute, if any); `None` where auto-close is off. An unknown group gets the
    /// channel's settings.
    pub fn get(&self, channel: &str, group: Option<&str>) -> Option<&Settings> {
        let index = group
            .and_then(|g| self.groups.iter().position(|name| name == g))
            .map_or(0, |i| i + 1);
        let per_group = self.channels.get(channel).unwrap_or(&self.other);
        per_group.get(index).and_then(Option::as_ref)
    }

    /// The settings for `channel` without a group.
    pub fn channel(&self, channel: &str) -> Option<&Settings> {
        self.get(channel, None)
    }

    /// The session attribute that selects a group, if the tenant has groups.
    pub fn group_attribute(&self) -> Option<&str> {
        self.group_attribute.as_deref()
    }

    /// Every settings of the tenant.
    pub fn all(&self) -> impl Iterator<Item = &Settings> {
        self.channels
            .values()
            .chain(std::iter::once(&self.other))
            .flatten()
            .flatten()
    }

    /// Whether some template names the agent, so messages must carry the sender's name.
    pub fn needs_agent_name(&self) -> bool {
        self.all()
            .flat_map(Settings::templates)
            .any(|t| t.uses(&Placeholder::AgentName))
    }
}

/// Parses and checks a tenant's configuration layered over the operator's
/// `defaults`. `webhooks` are the webhook names the tenant may call.
pub fn parse(
    text: &str,
    defaults: &str,
    webhooks: &[String],
) -> Result<TenantSettings, ConfigError> {
    let resolution = resolve_keeping(text, defaults, webhooks, false)?;
    let mut settings = TenantSettings {
        groups: resolution.groups,
        group_attribute: resolution.group_attribute,
        ..TenantSettings::default()
    };
    for r in resolution.combinations {
        let slot = match r.channel {
            ChannelScope::Named(name) => settings.channels.entry(name).or_default(),
            ChannelScope::Other => &mut settings.other,
        };
        slot.push(r.settings);
    }
    Ok(settings)
}

/// Every channel and group of a tenant, resolved.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// Channels in name order, then "other channels"; each with no group first, then
    /// the groups in name order.
    pub combinations: Vec<Resolved>,
    /// The tenant's groups, in name order.
    pub groups: Vec<String>,
    /// The session attribute that selects a group.
    pub group_attribute: Option<String>,
}

fn document(text: &str, prefix: &str) -> Result<RawTenant, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ConfigError::at(prefix.trim_end_matches('.'), format!("not valid JSON: {e}"))
    })?;
    // Deserialising from a `Value` keeps positions out of serde's messages: they would
    // point into the host's re-serialised text, not into the operator's file.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = layers::from_serde(e.path());
        ConfigError::at(
            layers::append(prefix.trim_end_matches('.'), &path),
            e.into_inner().to_string(),
        )
    })
}

/// Resolves every channel and group of a tenant: the merged layers and the checked
/// settings.
pub fn resolve(text: &str, defaults: &str, webhooks: &[String]) -> Result<Resolution, ConfigError> {
    resolve_keeping(text, defaults, webhooks, true)
}

/// [`resolve`]; without `keep_merged` the merged layers are dropped as soon as each
/// combination is checked (what a component needs: less memory while configuring).
fn resolve_keeping(
    text: &str,
    defaults: &str,
    webhooks: &[String],
    keep_merged: bool,
) -> Result<Resolution, ConfigError> {
    let defaults: RawTenant = if defaults.trim().is_empty() {
        RawTenant::default()
    } else {
        document(defaults, "defaults.")?
    };
    if let Some(name) = defaults.groups.keys().next() {
        return Err(ConfigError::at(
            layers::join("defaults.groups", name),
            "groups belong to a tenant: define them in the tenant's document",
        ));
    }
    if defaults.group_attribute.is_some() {
        return Err(ConfigError::at(
            "defaults.group_attribute",
            "groups belong to a tenant: set group_attribute in the tenant's document",
        ));
    }
    let tenant: RawTenant = document(text, "")?;
    if !tenant.groups.is_empty() {
        match tenant.group_attribute.as_deref() {
            None => {
                return Err(ConfigError::at(
                    "group_attribute",
                    "missing: groups need the session attribute whose value selects the group",
                ));
            }
            Some("") => return Err(ConfigError::at("group_attribute", "is empty")),
            Some(_) => {}
        }
    }
    let empty = Map::new();
    let mut channels: Vec<ChannelScope> = defaults
        .channels
        .keys()
        .chain(tenant.channels.keys())
        .map(|c| ChannelScope::Named(c.clone()))
        .collect();
    channels.sort();
    channels.dedup();
    channels.push(ChannelScope::Other);
    let groups: Vec<Option<&String>> = std::iter::once(None)
        .chain(tenant.groups.keys().map(Some))
        .collect();

    let mut out = Vec::new();
    for channel in &channels {
        let name = match channel {
            ChannelScope::Named(name) => Some(name.as_str()),
            ChannelScope::Other => None,
        };
        fn scope<'d>(doc: &'d RawTenant, name: Option<&str>) -> Option<&'d Map<String, Value>> {
            name.and_then(|n| doc.channels.get(n))
                .and_then(|s| s.auto_close.as_ref())
        }
        for group in &groups {
            let channel_path =
                name.map(|n| layers::join(&layers::join("channels", n), "auto_close"));
            let defaults_channel_path =
                name.map(|n| layers::join(&layers::join("defaults.channels", n), "auto_close"));
            let channel_label = name.map(|n| format!("channel {n}"));
            let defaults_channel_label = name.map(|n| format!("defaults for channel {n}"));
            let group_path = group.map(|g| layers::join(&layers::join("groups", g), "auto_close"));
            let group_label = group.map(|g| format!("group {g}"));
            let mut layer_list: Vec<Layer<'_>> = Vec::new();
            if let Some(value) = defaults.auto_close.as_ref() {
                layer_list.push(Layer {
                    label: "defaults",
                    path: "defaults.auto_close",
                    value,
                });
            }
            if let (Some(value), Some(path), Some(label)) = (
                scope(&defaults, name),
                defaults_channel_path.as_deref(),
                defaults_channel_label.as_deref(),
            ) {
                layer_list.push(Layer { label, path, value });
            }
            if let Some(value) = tenant.auto_close.as_ref() {
                layer_list.push(Layer {
                    label: "tenant",
                    path: "auto_close",
                    value,
                });
            }
            if let (Some(value), Some(path), Some(label)) = (
                scope(&tenant, name),
                channel_path.as_deref(),
                channel_label.as_deref(),
            ) {
                layer_list.push(Layer { label, path, value });
            }
            if let (Some(g), Some(path), Some(label)) =
                (group, group_path.as_deref(), group_label.as_deref())
            {
                let value = tenant.groups[*g].auto_close.as_ref().unwrap_or(&empty);
                layer_list.push(Layer { label, path, value });
            }
            let mut merged = Merged::new(&layer_list);
            // Where to point when a required value is missing: the most specific place
            // this combination could set it.
            let home = group_path
                .clone()
                .or_else(|| channel_path.clone())
                .unwrap_or_else(|| "auto_close".to_owned());
            let value = Value::Object(std::mem::take(&mut merged.value));
            let settings = check(&merged, &value, &home, webhooks)?;
            if let Value::Object(map) = value {
                merged.value = map;
            }
            out.push(Resolved {
                channel: channel.clone(),
                group: group.cloned(),
                merged: if keep_merged {
                    merged
                } else {
                    Merged::default()
                },
                settings,
            });
        }
    }
    Ok(Resolution {
        combinations: out,
        groups: tenant.groups.keys().cloned().collect(),
        group_attribute: tenant.group_attribute,
    })
}

/// Checks merged settings; `home` is where a missing value should be added.
fn check(
    merged: &Merged,
    value: &Value,
    home: &str,
    webhooks: &[String],
) -> Result<Option<Settings>, ConfigError> {
    if value.as_object().is_none_or(|m| m.is_empty()) {
        return Ok(None);
    }
    let locate = |path: &str| match merged.source_of(path) {
        Some((source, _)) => source,
        None if path.is_empty() => home.to_owned(),
        None => layers::append(home, path),
    };
    let raw: RawAutoClose = serde_path_to_error::deserialize(value).map_err(|e| {
        ConfigError::at(
            locate(&layers::from_serde(e.path())),
            e.into_inner().to_string(),
        )
    })?;
    match raw.enabled {
        Some(false) => return Ok(None),
        None if raw.close.is_none() => return Ok(None),
        _ => {}
    }
    let Some(close) = raw.close else {
        return Err(ConfigError::at(
            locate("close"),
            "missing: auto-close is enabled, so some layer must set close.after",
        ));
    };

    let started_by = match raw.started_by {
        None => Starters {
            agent: true,
            bot: true,
        },
        Some(list) if list.is_empty() => {
            return Err(ConfigError::at(
                locate("started_by"),
                "is empty: list \"agent\", \"bot\" or both (or set enabled: false)",
            ));
        }
        Some(list) => Starters {
            agent: list.contains(&raw::RawStarter::Agent),
            bot: list.contains(&raw::RawStarter::Bot),
        },
    };

    let push = match raw.push {
        None => None,
        Some(push) => {
            if !webhooks.contains(&push.webhook) {
                let known = if webhooks.is_empty() {
                    "this tenant may call no webhooks".to_owned()
                } else {
                    format!("this tenant may call: {}", webhooks.join(", "))
                };
                return Err(ConfigError::at(
                    locate("push.webhook"),
                    format!("unknown webhook {:?} ({known})", push.webhook),
                ));
            }
            Some(PushTarget {
                webhook: push.webhook,
                only_when_away: push.only_when_away,
            })
        }
    };
    let no_webhook = |path: String| {
        ConfigError::at(
            path,
            "push is on, but no push webhook is configured (set push.webhook)",
        )
    };

    let close_at = close.after;
    let raw_warnings = raw.warnings.unwrap_or_default();
    if raw_warnings.len() > MAX_WARNINGS {
        return Err(ConfigError::at(
            locate("warnings"),
            format!("{} warnings; at most {MAX_WARNINGS}", raw_warnings.len()),
        ));
    }
    let mut warnings = Vec::with_capacity(raw_warnings.len());
    let mut previous: Option<Duration> = None;
    for (i, w) in raw_warnings.into_iter().enumerate() {
        let path = format!("warnings[{i}]");
        if let Some(previous) = previous
            && w.after <= previous
        {
            return Err(ConfigError::at(
                locate(&format!("{path}.after")),
                format!(
                    "{} is not after the previous warning ({previous}): list warnings in time order, each later than the one before",
                    w.after
                ),
            ));
        }
        if w.after >= close_at {
            return Err(ConfigError::at(
                locate(&format!("{path}.after")),
                format!(
                    "a warning at {} comes at or after the close at {close_at} (set at {}): every warning must come before the close",
                    w.after,
                    locate("close.after")
                ),
            ));
        }
        if !w.post && !w.push && w.agent_notice.is_none() {
            return Err(ConfigError::at(
                locate(&path),
                "does nothing: set post, push or agent_notice (or remove the warning)",
            ));
        }
        if w.push && push.is_none() {
            return Err(no_webhook(locate(&format!("{path}.push"))));
        }
        previous = Some(w.after);
        warnings.push(Warning {
            after: w.after,
            message: texts(&merged_path(&locate, &format!("{path}.message")), w.message)?,
            post: w.post,
            push: w.push,
            agent_notice: w
                .agent_notice
                .map(|t| texts(&merged_path(&locate, &format!("{path}.agent_notice")), t))
                .transpose()?,
        });
    }
    if close.push && push.is_none() {
        return Err(no_webhook(locate("close.push")));
    }
    let close = Close {
        after: close.after,
        message: close
            .message
            .map(|m| texts(&merged_path(&locate, "close.message"), m))
            .transpose()?,
        push: close.push,
    };

    let zone = match raw.time_zone {
        None => Zone::default(),
        Some(name) => {
            Zone::parse(&name).map_err(|reason| ConfigError::at(locate("time_zone"), reason))?
        }
    };
    let hours = match raw.business_hours {
        None => None,
        Some(h) => {
            let weekly: Vec<(String, Vec<String>)> = h.weekly.into_iter().collect();
            let outside = match h.outside {
                raw::RawOutside::Pause => Outside::Pause,
                raw::RawOutside::SuppressWarnings => Outside::SuppressWarnings,
            };
            Some(
                BusinessHours::parse(&weekly, &h.holidays, outside).map_err(|(sub, reason)| {
                    ConfigError::at(locate(&layers::append("business_hours", &sub)), reason)
                })?,
            )
        }
    };
    let attributes = raw.attributes.unwrap_or_default();
    let attribute = |key: &str, value: Option<String>, default: &str| {
        let value = value.unwrap_or_else(|| default.to_owned());
        if value.is_empty() {
            Err(ConfigError::at(
                locate(&format!("attributes.{key}")),
                "is empty",
            ))
        } else {
            Ok(value)
        }
    };
    let attributes = AttributeNames {
        locale: attribute("locale", attributes.locale, DEFAULT_LOCALE_ATTRIBUTE)?,
        end_user_name: attribute(
            "end_user_name",
            attributes.end_user_name,
            DEFAULT_NAME_ATTRIBUTE,
        )?,
        opt_out: attributes
            .opt_out
            .map(|v| attribute("opt_out", Some(v), ""))
            .transpose()?,
    };
    if raw.max_cycles == Some(0) {
        return Err(ConfigError::at(
            locate("max_cycles"),
            "must be at least 1 (to turn auto-close off, set enabled: false)",
        ));
    }
    Ok(Some(Settings {
        started_by,
        warnings,
        close,
        push,
        zone,
        hours,
        attributes,
        max_cycles: raw.max_cycles,
    }))
}

/// Resolves the file location of a text's entries: a localised text may come from
/// several layers, so each entry is located on its own.
fn merged_path<'a>(locate: &'a dyn Fn(&str) -> String, path: &str) -> impl Fn(&str) -> String + 'a {
    let path = path.to_owned();
    move |key: &str| {
        if key.is_empty() {
            locate(&path)
        } else {
            locate(&layers::join(&path, key))
        }
    }
}

fn template(path: &str, text: &str) -> Result<Template, ConfigError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ConfigError::at(
            path,
            format!(
                "{} bytes long; at most {MAX_TEXT_BYTES} are allowed",
                text.len()
            ),
        ));
    }
    Template::parse(text).map_err(|reason| ConfigError::at(path, reason))
}

fn texts(locate: &impl Fn(&str) -> String, raw: RawText) -> Result<Texts, ConfigError> {
    match raw {
        RawText::Plain(text) => Ok(Texts::single(template(&locate(""), &text)?)),
        RawText::Localized(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, text) in map {
                let parsed = template(&locate(&key), &text)?;
                entries.push((key, parsed));
            }
            Texts::localized(entries).map_err(|(key, reason)| ConfigError::at(locate(&key), reason))
        }
    }
}

#[cfg(test)]
mod tests;
