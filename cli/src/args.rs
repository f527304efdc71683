//! The command line's arguments (clap). Parsing only: no behaviour.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Declarative infrastructure as code: Pulumi YAML stacks, applied to AWS.
#[derive(Debug, Parser)]
#[command(name = "rinfra", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  cd stacks/datacenter                 # a project: Pulumi.yaml
  rinfra stack init dev                # a stack, selected
  rinfra config set prefix dev         # writes Pulumi.dev.yaml
  rinfra up --yes                      # the selected stack
  rinfra preview -s prod               # another stack
  rinfra up -s old-program.yaml --yes  # a single-file program

Exit codes: 0 success, 1 error (an invalid stack included),
2 changes present (only with `preview --detailed-exitcode`).";

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The stack: a stack of the project (NAME), or a single-file program
    /// (a path containing `/` or ending in .yaml) [default: the selected stack].
    #[arg(short = 's', long = "stack", env = "RINFRA_STACK", global = true, value_name = "NAME|FILE")]
    pub stack: Option<String>,
    /// The project directory [default: the nearest directory above with a Pulumi.yaml].
    #[arg(short = 'C', long = "cwd", env = "RINFRA_CWD", global = true, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Where states live: s3://BUCKET[/PREFIX] [default: PULUMI_BACKEND_URL, the project's
    /// `backend.url`, or local files].
    #[arg(long, env = "RINFRA_BACKEND_URL", global = true, value_name = "URL")]
    pub backend: Option<String>,
    /// The state file [default: <project>/.rinfra/<stack>.json; .rinfra/<name>.json for a single file].
    #[arg(long, env = "RINFRA_STATE", global = true, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// The AWS region [default: AWS_REGION, the profile, or us-east-1].
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// An endpoint for every AWS service, such as LocalStack's [default: AWS_ENDPOINT_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The AWS profile [default: AWS_PROFILE].
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Sets a config value declared by the stack (repeatable).
    #[arg(short = 'c', long = "config", global = true, value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// How many resource operations may run at once.
    #[arg(long, global = true, default_value_t = 16)]
    pub parallel: usize,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print time per phase and API calls per operation to stderr.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Client-side limit for one API, in calls per second, such as
    /// `kinesis:CreateStream=5`; 0 lifts it (repeatable). Defaults follow
    /// AWS's account quotas, 50 times looser against a loopback endpoint.
    #[arg(long = "api-rate", global = true, value_name = "OP=N")]
    pub api_rate: Vec<String>,
    /// Log API calls and retries to stderr (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `up` would change, without changing anything.
    #[command(
        after_help = "Examples:\n  rinfra preview -s dev\n  rinfra preview -s dev --detailed-exitcode   # exit 2 when something would change\n  rinfra preview -s dev --json | jq .summary\n  rinfra preview -s dev --target alarm --refresh=false"
    )]
    Preview(PreviewArgs),
    /// Create, update and delete resources so the cloud matches the stack.
    #[command(
        after_help = "Examples:\n  rinfra up -s dev            # shows the plan, asks, applies\n  rinfra up -s dev --yes --config prefix=staging   # this run only\n  rinfra up -s dev --yes --json   # one JSON event per line"
    )]
    Up(UpArgs),
    /// Read what the cloud holds and write it into the state.
    #[command(after_help = "Examples:\n  rinfra refresh -s dev --preview-only\n  rinfra refresh -s dev --yes")]
    Refresh(RefreshArgs),
    /// Delete every resource of the stack.
    #[command(
        after_help = "Examples:\n  rinfra destroy -s dev --yes\n  rinfra destroy -s dev --yes --target stream   # the stream and its alarm"
    )]
    Destroy(DestroyArgs),
    /// Report how the cloud differs from the state, once or on a schedule.
    #[command(
        after_help = "Exit codes: 0 in sync, 2 drift found, 1 error.\n\nExamples:\n  rinfra drift -s dev\n  rinfra drift -s dev --json\n  rinfra drift -s dev --every 15m --on-drift 'notify-team'\n  rinfra drift --all-stacks --every 15m\n  rinfra drift -s dev --remediate"
    )]
    Drift(DriftArgs),
    /// Adopt an existing cloud resource as a resource of the stack.
    #[command(
        after_help = "Examples:\n  rinfra import -s dev stream xfusion-kinesis-stream\n  rinfra import -s dev alarm  xfusion-kinesis-alarm"
    )]
    Import(ImportArgs),
    /// Print the stack's outputs from the state.
    #[command(
        after_help = "Examples:\n  rinfra output -s dev\n  rinfra output -s dev kke_kinesis_stream_name\n  rinfra output -s dev --json"
    )]
    Output(OutputArgs),
    /// Check a stack file offline; no credentials needed.
    Validate(JsonArgs),
    /// Remove a lock left by a process that is gone.
    Unlock(UnlockArgs),
    /// Inspect and edit the state file.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the dependency graph as Graphviz DOT.
    #[command(after_help = "Example:\n  rinfra graph -s dev --plan | dot -Tpng > graph.png")]
    Graph(GraphArgs),
    /// Create, select, list, remove and move stacks.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Read and write the selected stack's config (Pulumi.<stack>.yaml).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the JSON Schema of stack files, for editors.
    #[command(
        after_help = "Example:\n  rinfra schema > rinfra.schema.json\n  # then, first line of a stack: # yaml-language-server: $schema=./rinfra.schema.json"
    )]
    Schema,
    /// Print shell completions.
    #[command(after_help = "Example:\n  rinfra completions bash > /etc/bash_completion.d/rinfra")]
    Completions(CompletionsArgs),
}

/// Arguments of `graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Read the cloud and mark each node with its planned operation.
    #[arg(long)]
    pub plan: bool,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Arguments of `preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the cloud before planning (`--refresh=false` plans against the state alone).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Exit 2 when there are changes, 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Limit the plan to this resource and what it depends on (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
}

/// Arguments of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Read the cloud before planning.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Limit the run to this resource and what it depends on (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// Print the plan, every event and a summary as JSON lines (needs --yes).
    #[arg(long, requires = "yes")]
    pub json: bool,
}

/// Arguments of `destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Go ahead without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Destroy only this resource and what depends on it (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// Print the plan, every event and a summary as JSON lines (needs --yes).
    #[arg(long, requires = "yes")]
    pub json: bool,
}

/// Arguments of `refresh`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Write without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Only show what would change in the state.
    #[arg(long)]
    pub preview_only: bool,
    /// Print the changes as JSON (needs --yes unless --preview-only).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Print the report as JSON (one line per run with --every).
    #[arg(long)]
    pub json: bool,
    /// Run on a schedule, such as 30s, 15m or 1h, until stopped.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Stop after this many runs.
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u64>,
    /// Append each report as a JSON line here [default with --every: .rinfra/<stack>.drift.jsonl].
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// After reporting drift, bring the cloud back to the stack (as `up`), never touching protected resources.
    #[arg(long)]
    pub remediate: bool,
    /// Run this shell command with the JSON report on stdin when drift is found.
    #[arg(long, value_name = "CMD")]
    pub on_drift: Option<String>,
    /// Check every deployed stack of the project, one report per stack.
    #[arg(long)]
    pub all_stacks: bool,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The resource's name in the stack.
    pub name: String,
    /// The cloud id: the stream's or alarm's name.
    pub id: String,
}

/// Arguments of commands that only ask for confirmation.
#[derive(Debug, Args)]
pub struct YesArgs {
    /// Go ahead without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Arguments of `output`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print only this output.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show values that come from secret config entries.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Arguments of commands with only `--json`.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove the lock even if its holder may be alive.
    #[arg(long)]
    pub force: bool,
}

/// `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Check the state file's integrity and that it belongs to the stack.
    Verify,
    /// List the resources in the state.
    List(JsonArgs),
    /// Show one resource as the state records it.
    Show(StateShowArgs),
    /// Forget a resource without deleting it from the cloud.
    Rm(StateNameArgs),
    /// Rename a resource in the state, for a rename in the stack that must not replace it.
    Mv(StateMvArgs),
}

/// Arguments of `state show`.
#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// The resource's name.
    pub name: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `state rm`.
#[derive(Debug, Args)]
pub struct StateNameArgs {
    /// The resource's name.
    pub name: String,
}

/// Arguments of `state mv`.
#[derive(Debug, Args)]
pub struct StateMvArgs {
    /// The name in the state now.
    pub old: String,
    /// The name in the stack.
    pub new: String,
}

/// `stack` subcommands.
#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Create a stack and select it.
    #[command(after_help = "Example:\n  rinfra stack init dev")]
    Init(StackNameArg),
    /// Select the stack later commands use.
    Select(StackSelectArgs),
    /// List the project's stacks.
    Ls(JsonArgs),
    /// Remove a stack: its state, lock, history and config file.
    Rm(StackRmArgs),
    /// Print the stack's outputs (as `output`).
    Output(OutputArgs),
    /// List the stack's updates.
    History(JsonArgs),
    /// Print the stack's state as JSON.
    Export(StackExportArgs),
    /// Replace the stack's state with a JSON export, checked first.
    Import(StackImportArgs),
}

/// A stack name.
#[derive(Debug, Args)]
pub struct StackNameArg {
    /// The stack's name.
    pub name: String,
}

/// Arguments of `stack select`.
#[derive(Debug, Args)]
pub struct StackSelectArgs {
    /// The stack's name.
    pub name: String,
    /// Create it when it does not exist.
    #[arg(long)]
    pub create: bool,
}

/// Arguments of `stack rm`.
#[derive(Debug, Args)]
pub struct StackRmArgs {
    /// The stack's name [default: the selected stack].
    pub name: Option<String>,
    /// Remove it even though its state still has resources (they stay in the cloud).
    #[arg(long)]
    pub force: bool,
    /// Go ahead without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Arguments of `stack export`.
#[derive(Debug, Args)]
pub struct StackExportArgs {
    /// Export a stored version (with a versioned S3 bucket): its number in
    /// `stack history` (1 is the oldest) or its version id.
    #[arg(long, value_name = "N")]
    pub version: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// Arguments of `stack import`.
#[derive(Debug, Args)]
pub struct StackImportArgs {
    /// Read from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Replace a state with a newer serial of the same lineage.
    #[arg(long)]
    pub force: bool,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set a value; `--secret` stores it encrypted.
    #[command(
        after_help = "Examples:\n  rinfra config set prefix dev\n  rinfra config set --secret alertToken s3cr3t\n  rinfra config set aws:region eu-west-1"
    )]
    Set(ConfigSetArgs),
    /// Print one value.
    Get(ConfigGetArgs),
    /// Remove a value.
    Rm(ConfigKeyArg),
    /// List the values.
    Ls(ConfigLsArgs),
}

/// Arguments of `config set`.
#[derive(Debug, Args)]
pub struct ConfigSetArgs {
    /// The key: a config entry of the program, or `aws:region`/`aws:profile`.
    pub key: String,
    /// The value.
    pub value: String,
    /// Store the value encrypted.
    #[arg(long)]
    pub secret: bool,
}

/// Arguments of `config get`.
#[derive(Debug, Args)]
pub struct ConfigGetArgs {
    /// The key.
    pub key: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show a secret's value.
    #[arg(long)]
    pub show_secrets: bool,
}

/// One config key.
#[derive(Debug, Args)]
pub struct ConfigKeyArg {
    /// The key.
    pub key: String,
}

/// Arguments of `config ls`.
#[derive(Debug, Args)]
pub struct ConfigLsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show secrets' values.
    #[arg(long)]
    pub show_secrets: bool,
}
