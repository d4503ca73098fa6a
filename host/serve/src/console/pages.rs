//! The console's pages, rendered on the server (maud escapes every value), with one
//! small script for the countdowns and one style sheet, both served by the binary:
//! nothing is fetched from anywhere else.

use maud::{DOCTYPE, Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use autoclose_core::history::History;
use autoclose_core::view::{Found, SessionDetail, SessionState, TenantOverview};

use super::words::{line, span, stamp};

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// The link to one session's page.
pub fn session_link(tenant: &str, session: &str) -> String {
    format!("/ui/sessions/{}/{}", segment(tenant), segment(session))
}

fn tenant_link(tenant: &str) -> String {
    format!("/ui/tenants/{}", segment(tenant))
}

/// The frame every page shares.
fn page(title: &str, signed_in: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · autoclose" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui/sessions" { "autoclose" }
                    @if signed_in {
                        nav {
                            a href="/ui/sessions" { "Sessions" }
                            a href="/ui/tenants" { "Tenants" }
                            form method="post" action="/ui/logout" {
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
                footer { "Times are UTC. Read-only: nothing here changes a session." }
            }
        }
    }
}

/// The sign-in page, with why the last try failed.
pub fn sign_in(problem: Option<&str>) -> Markup {
    page(
        "Sign in",
        false,
        html! {
            h1 { "Sign in" }
            p { "The console takes the admin API's tokens: the operator's (" code { "admin.token" }
                ", else " code { "ingest.token" } ") shows every tenant; a tenant's token shows its own." }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            form.sign-in method="post" action="/ui/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A page saying what went wrong.
pub fn problem(title: &str, text: &str) -> Markup {
    page(
        title,
        true,
        html! { h1 { (title) } p.problem role="alert" { (text) } },
    )
}

/// What the sessions page was asked for.
pub struct SessionFilter<'a> {
    /// The tenants the viewer may pick from (one, for a tenant's token).
    pub tenants: &'a [String],
    /// The tenant picked.
    pub tenant: Option<&'a str>,
    /// The text the ids must contain.
    pub session: &'a str,
    /// The state picked.
    pub state: Option<SessionState>,
}

/// The sessions page: the search form and what it found.
pub fn sessions(filter: &SessionFilter, found: &Found) -> Markup {
    page(
        "Sessions",
        true,
        html! {
            h1 { "Sessions" }
            form.search method="get" action="/ui/sessions" {
                label { "Tenant "
                    select name="tenant" {
                        @if filter.tenants.len() != 1 { option value="" { "any" } }
                        @for tenant in filter.tenants {
                            option value=(tenant) selected[filter.tenant == Some(tenant.as_str())] { (tenant) }
                        }
                    }
                }
                label { "Session id "
                    input type="search" name="session" value=(filter.session) placeholder="contains…";
                }
                label { "State "
                    select name="state" {
                        option value="" { "any" }
                        @for state in SessionState::ALL {
                            option value=(state.name()) selected[filter.state == Some(state)] { (state.label()) }
                        }
                    }
                }
                button type="submit" { "Search" }
            }
            p.count { (found.sessions.len()) " of " (found.matched) " matching sessions, newest activity first." }
            @if !found.sessions.is_empty() {
                table.sessions {
                    thead { tr { th { "Session" } th { "Tenant" } th { "Channel" } th { "State" } th { "Last activity" } th { "Timers" } } }
                    tbody {
                        @for s in &found.sessions {
                            tr data-session=(s.session) {
                                td { a href=(session_link(&s.tenant, &s.session)) { (s.session) } }
                                td { a href=(tenant_link(&s.tenant)) { (s.tenant) } }
                                td { (s.channel.as_deref().unwrap_or("—")) }
                                td { span class={"state " (s.state.name())} { (s.state.label()) } }
                                td { @match s.last_at { Some(at) => (stamp(at)), None => "—" } }
                                td { (s.timers) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One session's page: where it stands, what is pending, and its timeline.
pub fn session(detail: &SessionDetail) -> Markup {
    let s = &detail.summary;
    page(
        &s.session,
        true,
        html! {
            h1 { "Session " code { (s.session) } }
            dl.facts {
                dt { "Tenant" } dd { a href=(tenant_link(&s.tenant)) { (s.tenant) } }
                dt { "Channel" } dd { (s.channel.as_deref().unwrap_or("not known yet")) }
                dt { "State" } dd { span class={"state " (s.state.name())} { (s.state.label()) } }
                dt { "End user" } dd { (detail.presence) }
                @if let Some(closed) = detail.closed_at { dt { "Closed at" } dd { (stamp(closed)) } }
                @for (name, value) in &detail.attributes { dt { "Attribute " code { (name) } } dd { (value) } }
            }
            h2 { "Pending timers" }
            @if detail.timers.is_empty() { p { "None." } } @else {
                table.timers {
                    thead { tr { th { "Key" } th { "Due" } th { "In" } } }
                    tbody {
                        @for t in &detail.timers {
                            tr {
                                td { (t.key) }
                                td { (stamp(t.due)) }
                                td { span.countdown data-due=(t.due) data-now=(detail.now) { (span(t.due.saturating_sub(detail.now))) } }
                            }
                        }
                    }
                }
            }
            h2 { "Webhook deliveries under way" }
            @if detail.deliveries.is_empty() { p { "None." } } @else {
                table.deliveries {
                    thead { tr { th { "Webhook" } th { "Event" } th { "Id" } th { "Attempts" } th { "Next attempt" } th { "Gives up at" } } }
                    tbody {
                        @for d in &detail.deliveries {
                            tr {
                                td { (d.webhook) } td { (d.event_type) } td { code { (d.id) } } td { (d.attempts) }
                                td { @match d.next_at { Some(at) => (stamp(at)), None => "under way" } }
                                td { (stamp(d.deadline)) }
                            }
                        }
                    }
                }
            }
            h2 { "Timeline" }
            (timeline(detail.history.as_ref()))
        },
    )
}

/// A history as a list, newest last.
fn timeline(history: Option<&History>) -> Markup {
    let Some(history) = history else {
        return html! { p { "No history is kept for this session (it came before the history was turned on, or "
        code { "--history-steps 0" } ")." } };
    };
    html! {
        @if history.dropped > 0 {
            p.dropped { (history.dropped) " earlier steps are no longer kept (the history keeps the newest "
                (history.steps.len()) ")." }
        }
        ol.timeline {
            @for step in &history.steps {
                @let l = line(step);
                li class={"step " (l.kind)} {
                    time { (stamp(step.at)) }
                    span.what { (l.what) }
                    @if let Some(why) = &l.why { span.why { (why) } }
                }
            }
        }
    }
}

/// The tenants page.
pub fn tenants(tenants: &[TenantOverview]) -> Markup {
    page(
        "Tenants",
        true,
        html! {
            h1 { "Tenants" }
            table.tenants {
                thead { tr { th { "Tenant" } th { "Component" } th { "Open" } th { "Closed (remembered)" } th { "Timers" } th { "Deliveries" } th { "Held events" } th { "Health" } } }
                tbody {
                    @for t in tenants {
                        tr {
                            td { a href=(tenant_link(&t.name)) { (t.name) } }
                            td { (t.component.as_deref().unwrap_or("not loaded")) }
                            td { (t.open) } td { (t.closed) } td { (t.timers) } td { (t.deliveries) } td { (t.held) }
                            td { @if t.failing.is_some() { span.state.failing { "failing" } } @else { span.state.ok { "running" } } }
                        }
                    }
                }
            }
        },
    )
}

/// One tenant's page: health, counts, channels and what its settings do.
pub fn tenant(t: &TenantOverview, explained: Result<String, String>, now: u64) -> Markup {
    page(
        &t.name,
        true,
        html! {
            h1 { "Tenant " code { (t.name) } }
            @if let Some(reason) = &t.failing {
                section.failing role="alert" {
                    h2 { "Its component is failing" }
                    p { (reason) }
                    p { (t.failures) " failures in a row. "
                        @if let Some(retry) = t.retry_at {
                            @if retry > now { "Backed off: tried again at " (stamp(retry)) " (in " (span(retry - now)) ")." }
                            @else { "Tried again at its next event." }
                        }
                        " Its events are held meanwhile (" (t.held) " now)." }
                }
            }
            dl.facts {
                dt { "Component" } dd { (t.component.as_deref().unwrap_or("not loaded")) }
                dt { "Channels seen" } dd { @if t.channels.is_empty() { "none yet" } @else { (t.channels.join(", ")) } }
                dt { "Sessions open" } dd { a href={"/ui/sessions?tenant=" (segment(&t.name))} { (t.open) } }
                dt { "Closed, still remembered" } dd { (t.closed) }
                dt { "Pending timers" } dd { (t.timers) }
                dt { "Webhook deliveries under way" } dd { (t.deliveries) }
                dt { "Events held" } dd { (t.held) }
            }
            h2 { "Counters since the start" }
            table.stats {
                tbody {
                    tr { th { "Hooks that ran" } td { (t.stats.hooks_ok) } }
                    tr { th { "Hooks that failed" } td { (t.stats.hooks_failed) } }
                    tr { th { "Instances replaced" } td { (t.stats.restarts) } }
                    tr { th { "Events lost" } td { (t.stats.events_dropped) } }
                    tr { th { "Events held, delivered later" } td { (t.stats.events_deferred) } }
                    tr { th { "Pushes delivered" } td { (t.stats.deliveries_ok) } }
                    tr { th { "Pushes not delivered" } td { (t.stats.deliveries_failed) } }
                    tr { th { "Push attempts retried" } td { (t.stats.retries) } }
                }
            }
            h2 { "What its settings do" }
            p { "As " code { "autoclose check-config" } " says it, from the component itself." }
            @match explained {
                Ok(text) => pre.explain { (text) },
                Err(e) => p.problem { (e) },
            }
        },
    )
}

/// The script, served at `/ui/assets/console.js`.
pub const SCRIPT: &str = include_str!("assets/console.js");

/// The style sheet, served at `/ui/assets/console.css`.
pub const STYLE: &str = include_str!("assets/console.css");
