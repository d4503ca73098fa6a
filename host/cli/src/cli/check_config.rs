//! `autoclose check-config`: every tenant's component explains its settings.

use anyhow::{Result, anyhow};

use autoclose_core::Core;

/// Prints, per tenant, which component runs it (as it says who it is) and, unless
/// `quiet`, what its settings make it do, indented.
pub fn explain_tenants(core: &Core, quiet: bool) -> Result<()> {
    let runtime = core.runtime();
    for (tenant, component, setup) in core.tenant_setups() {
        let info = runtime.info(component)?;
        println!(
            "  {tenant}: configured ({} {}, {})",
            info.name,
            info.version,
            component.name()
        );
        if quiet {
            continue;
        }
        let text = runtime
            .explain(component, &setup)?
            .map_err(|e| anyhow!("tenants.{tenant}.{}: {}", e.path, e.reason))?;
        if text.trim().is_empty() {
            println!("    (the component gives no explanation)");
        }
        for line in text.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}
