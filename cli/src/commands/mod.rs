//! One file per command, each a thin `exec` over engine operations that
//! returns an exit code or an error; `output` prints.

mod config;
mod destroy;
mod drift;
mod import;
mod output;
mod preview;
mod refresh;
mod stack;
mod state;
mod unlock;
mod up;
mod validate;

use crate::args::{Cli, Command, ConfigCommand, StackCommand, StateCommand};
use crate::error::CliError;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for any error, an invalid stack included.
pub const EXIT_ERROR: i32 = 1;
/// Exit code of `preview --detailed-exitcode` and `drift` when there are changes.
pub const EXIT_CHANGES: i32 = 2;

/// Runs the command and returns its exit code.
pub async fn run(cli: Cli) -> Result<i32, CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Preview(a) => preview::exec(g, a).await,
        Command::Up(a) => up::exec(g, a).await,
        Command::Refresh(a) => refresh::exec(g, a).await,
        Command::Destroy(a) => destroy::exec(g, a).await,
        Command::Drift(a) => drift::exec(g, a).await,
        Command::Import(a) => import::exec(g, a).await,
        Command::Output(a) => output::exec(g, a),
        Command::Validate(a) => validate::exec(g, a),
        Command::Unlock(a) => unlock::exec(g, a),
        Command::State(StateCommand::Verify) => state::verify(g),
        Command::State(StateCommand::List(a)) => state::list(g, a),
        Command::State(StateCommand::Show(a)) => state::show(g, a),
        Command::State(StateCommand::Rm(a)) => state::rm(g, a),
        Command::State(StateCommand::Mv(a)) => state::mv(g, a),
        Command::Stack(StackCommand::Init(a)) => stack::init(g, a),
        Command::Stack(StackCommand::Select(a)) => stack::select(g, a),
        Command::Stack(StackCommand::Ls(a)) => stack::ls(g, a),
        Command::Stack(StackCommand::Rm(a)) => stack::rm(g, a),
        Command::Stack(StackCommand::Output(a)) => stack::output(g, a),
        Command::Stack(StackCommand::History(a)) => stack::history(g, a),
        Command::Stack(StackCommand::Export(a)) => stack::export(g, a),
        Command::Stack(StackCommand::Import(a)) => stack::import(g, a),
        Command::Config(ConfigCommand::Set(a)) => config::set(g, a),
        Command::Config(ConfigCommand::Get(a)) => config::get(g, a),
        Command::Config(ConfigCommand::Rm(a)) => config::rm(g, a),
        Command::Config(ConfigCommand::Ls(a)) => config::ls(g, a),
        Command::Graph(a) => validate::graph(g, a).await,
        Command::Schema => validate::schema(),
        Command::Completions(a) => validate::completions(a),
    }
}
