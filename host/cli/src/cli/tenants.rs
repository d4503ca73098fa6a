//! `autoclose tenants`: the admin API's tenant settings from a shell, for operators
//! and deploy scripts. Prints each answer as JSON on stdout; a refusal is printed on
//! stderr with the server's message (the field's path, the current version) and exits
//! non-zero.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Url;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

/// What to do with the tenants.
#[derive(Subcommand)]
pub enum TenantsCommand {
    /// List the tenants the token may see, with where their settings come from.
    List,
    /// Print a tenant's document and version.
    Get {
        /// The tenant.
        tenant: String,
    },
    /// Check, store and apply a tenant's document (a JSON file, `-` for stdin).
    Put {
        /// The tenant.
        tenant: String,
        /// The document, as a tenant of the configuration file is written.
        file: PathBuf,
        /// Refuse the change unless this is still the current version.
        #[arg(long)]
        if_match: Option<u64>,
    },
    /// Remove what the API set for a tenant: the file's settings run again.
    Delete {
        /// The tenant.
        tenant: String,
        /// Refuse unless this is still the current version.
        #[arg(long)]
        if_match: Option<u64>,
    },
    /// List a tenant's kept versions.
    Versions {
        /// The tenant.
        tenant: String,
    },
    /// Write an older version's document again, as the next version.
    Rollback {
        /// The tenant.
        tenant: String,
        /// The version to restore.
        version: u64,
        /// Refuse unless this is still the current version.
        #[arg(long)]
        if_match: Option<u64>,
    },
    /// Print the audit log: who changed what, when.
    Audit {
        /// Only this tenant's changes.
        #[arg(long)]
        tenant: Option<String>,
        /// The last this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Where the server is and who is asking.
pub struct Target {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The bearer token (the operator's or a tenant's).
    pub token: Option<String>,
}

/// `base` with `segments` appended, each escaped as one path segment (a tenant name
/// may hold `/` or spaces).
fn url(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base}: not a base URL"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn read_document(file: &PathBuf) -> Result<Value> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the document from stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("{}: cannot read", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", file.display()))
}

/// Runs one subcommand against `target`.
pub fn run(target: &Target, command: TenantsCommand) -> Result<()> {
    let client = Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .context("cannot set up the HTTP client")?;
    let base =
        Url::parse(&target.url).with_context(|| format!("--url {}: not a URL", target.url))?;
    let tenant_url = |tenant: &str, more: &[&str]| {
        let mut segments = vec!["v1", "admin", "tenants", tenant];
        segments.extend_from_slice(more);
        url(&base, &segments)
    };
    let with_if_match = |request: RequestBuilder, version: Option<u64>| match version {
        Some(version) => request.header("if-match", format!("\"{version}\"")),
        None => request,
    };
    let request = match command {
        TenantsCommand::List => client.get(url(&base, &["v1", "admin", "tenants"])?),
        TenantsCommand::Get { tenant } => client.get(tenant_url(&tenant, &[])?),
        TenantsCommand::Put {
            tenant,
            file,
            if_match,
        } => {
            let document = read_document(&file)?;
            with_if_match(client.put(tenant_url(&tenant, &[])?), if_match)
                .header("content-type", "application/json")
                .body(document.to_string())
        }
        TenantsCommand::Delete { tenant, if_match } => {
            with_if_match(client.delete(tenant_url(&tenant, &[])?), if_match)
        }
        TenantsCommand::Versions { tenant } => client.get(tenant_url(&tenant, &["versions"])?),
        TenantsCommand::Rollback {
            tenant,
            version,
            if_match,
        } => with_if_match(client.post(tenant_url(&tenant, &["rollback"])?), if_match)
            .header("content-type", "application/json")
            .body(json!({ "version": version }).to_string()),
        TenantsCommand::Audit { tenant, limit } => {
            let mut audit = url(&base, &["v1", "admin", "audit"])?;
            audit
                .query_pairs_mut()
                .append_pair("limit", &limit.to_string());
            if let Some(tenant) = tenant {
                audit.query_pairs_mut().append_pair("tenant", &tenant);
            }
            client.get(audit)
        }
    };
    let request = match &target.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request
        .send()
        .with_context(|| format!("cannot reach {}", target.url))?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = body["error"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_owned);
        bail!("{status}: {message}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_escaped_as_one_segment() -> Result<()> {
        let base = Url::parse("http://127.0.0.1:8080/")?;
        let at = url(&base, &["v1", "admin", "tenants", "a/b c"])?;
        assert_eq!(
            at.as_str(),
            "http://127.0.0.1:8080/v1/admin/tenants/a%2Fb%20c"
        );
        Ok(())
    }
}
