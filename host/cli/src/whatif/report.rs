//! The what-if report: one self-contained HTML page (inline SVG charts, inline CSS,
//! no script, nothing fetched), readable offline and attachable to a ticket.

use std::fmt::Write as _;

use super::charts;
use super::summary::Summary;
use super::tally::clock;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}figure{margin:1em 0}\
.pair{display:grid;gap:1em}.pair>div{border:1px solid #ddd;padding:.5em}\
.out{color:#a33}.in{color:#335}.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\
small{color:#666}";

/// The last part of `path` (the summary keeps the whole path).
fn file_name(path: &str) -> &str {
    std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The report of `summary`.
pub fn html(summary: &Summary) -> Result<String, String> {
    let labels: Vec<String> = summary
        .configurations
        .iter()
        .map(|c| c.label.clone())
        .collect();
    let totals: Vec<_> = summary.configurations.iter().map(|c| c.totals).collect();
    let delays: Vec<Vec<u64>> = summary
        .configurations
        .iter()
        .map(|c| c.close_delays_ms.clone())
        .collect();
    let hours: Vec<[u64; 24]> = summary
        .configurations
        .iter()
        .map(|c| c.closes_by_hour)
        .collect();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>autoclose what-if: {}</title><style>{STYLE}</style></head><body>",
        escape(&summary.scenario)
    );
    let _ = write!(
        page,
        "<h1>What if</h1><p>{} events of <code>{}</code> replayed under {} configurations; {} sessions end differently.</p>",
        summary.events,
        escape(file_name(&summary.scenario)),
        summary.configurations.len(),
        summary.differing_sessions
    );
    page.push_str("<table id=\"totals\"><tr><th class=\"l\">configuration</th><th>sessions</th><th>closed</th><th>warnings</th><th>pushes</th><th>rescued</th><th>came back after the close</th><th>replay</th></tr>");
    for (i, c) in summary.configurations.iter().enumerate() {
        let t = &c.totals;
        let _ = write!(
            page,
            "<tr><td class=\"l\"><span class=\"swatch\" style=\"background:{}\"></span>{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            charts::css(i),
            escape(&c.label),
            escape(file_name(&c.file)),
            t.sessions,
            t.closed,
            t.warnings,
            t.pushes,
            t.rescued,
            t.came_back,
            c.replay_ms as f64 / 1000.0
        );
    }
    page.push_str("</table><p><small>rescued: the end user answered after a warning and before the close. came back: the end user wrote again after the close, in the log: a chat closed on someone who was still there.</small></p>");
    for (id, svg) in [
        ("totals", charts::totals(&labels, &totals)?),
        ("close-delays", charts::close_delays(&labels, &delays)?),
        ("closes-by-hour", charts::closes_by_hour(&labels, &hours)?),
    ] {
        let _ = write!(page, "<figure data-chart=\"{id}\">{}</figure>", svg.trim());
    }
    page.push_str("<h2>Per tenant and channel</h2><table id=\"by-channel\"><tr><th class=\"l\">tenant</th><th class=\"l\">channel</th><th class=\"l\">configuration</th><th>sessions</th><th>closed</th><th>warnings</th><th>pushes</th><th>rescued</th><th>came back</th></tr>");
    let mut rows: Vec<(&str, &str, usize, &super::summary::ChannelCounts)> = Vec::new();
    for (i, c) in summary.configurations.iter().enumerate() {
        for row in &c.by_channel {
            rows.push((&row.tenant, &row.channel, i, row));
        }
    }
    rows.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    for (tenant, channel, i, row) in rows {
        let t = &row.counts;
        let _ = write!(
            page,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(tenant),
            escape(channel),
            escape(&summary.configurations[i].label),
            t.sessions,
            t.closed,
            t.warnings,
            t.pushes,
            t.rescued,
            t.came_back
        );
    }
    page.push_str("</table>");
    let _ = write!(
        page,
        "<h2>Sessions that end differently</h2><p>{} sessions; the first {} side by side.</p>",
        summary.differing_sessions,
        summary.differences.len()
    );
    let columns = summary.configurations.len().max(1);
    for d in &summary.differences {
        let _ = write!(
            page,
            "<section class=\"difference\" data-session=\"{}\"><h3>{} / {}</h3><div class=\"pair\" style=\"grid-template-columns:repeat({columns},1fr)\">",
            escape(&d.session),
            escape(&d.tenant),
            escape(&d.session)
        );
        for (i, (outcome, timeline)) in d.outcomes.iter().zip(&d.timelines).enumerate() {
            let _ = write!(
                page,
                "<div><b><span class=\"swatch\" style=\"background:{}\"></span>{}</b>: {}<table>",
                charts::css(i),
                escape(&summary.configurations[i].label),
                escape(outcome)
            );
            for entry in timeline {
                let _ = write!(
                    page,
                    "<tr class=\"{}\"><td>{}</td><td class=\"l\">{}</td></tr>",
                    entry.side,
                    clock(entry.at_ms),
                    escape(&entry.what)
                );
            }
            page.push_str("</table></div>");
        }
        page.push_str("</div></section>");
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
