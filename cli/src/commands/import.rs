//! `rinfra import`: adopt an existing cloud resource.

use super::EXIT_OK;
use crate::args::{Global, ImportArgs};
use crate::context;
use crate::error::CliError;
use crate::output;

/// Runs `import`.
pub async fn exec(g: &Global, a: ImportArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let _lock = c.lock("import")?;
    let mut state = c.s.load_state()?;
    let type_ = c.s.import(&mut state, &a.name, &a.id).await?;
    output::line(&format!(
        "Imported `{}` as `{}` ({type_}). Run `rinfra preview` to see how it differs from the stack.",
        a.id, a.name
    ));
    Ok(EXIT_OK)
}
