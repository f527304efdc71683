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
  rinfra preview -s stacks/datacenter.yaml
  rinfra up      -s stacks/datacenter.yaml --yes
  rinfra output  -s stacks/datacenter.yaml --json
  rinfra destroy -s stacks/datacenter.yaml --yes

Exit codes: 0 success, 1 error (an invalid stack included),
2 changes present (only with `preview --detailed-exitcode`).";

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The stack file.
    #[arg(short = 's', long = "stack", env = "RINFRA_STACK", global = true, value_name = "FILE")]
    pub stack: Option<PathBuf>,
    /// The state file [default: .rinfra/<stack name>.json].
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
        after_help = "Examples:\n  rinfra preview -s stacks/datacenter.yaml\n  rinfra preview -s stacks/datacenter.yaml --detailed-exitcode   # exit 2 when something would change\n  rinfra preview -s stacks/datacenter.yaml --json | jq .summary\n  rinfra preview -s stacks/datacenter.yaml --target alarm --refresh=false"
    )]
    Preview(PreviewArgs),
    /// Create, update and delete resources so the cloud matches the stack.
    #[command(
        after_help = "Examples:\n  rinfra up -s stacks/datacenter.yaml            # shows the plan, asks, applies\n  rinfra up -s stacks/datacenter.yaml --yes --config prefix=staging\n  rinfra up -s stacks/datacenter.yaml --yes --json   # one JSON event per line"
    )]
    Up(UpArgs),
    /// Read what the cloud holds and write it into the state.
    #[command(
        after_help = "Examples:\n  rinfra refresh -s stacks/datacenter.yaml --preview-only\n  rinfra refresh -s stacks/datacenter.yaml --yes"
    )]
    Refresh(RefreshArgs),
    /// Delete every resource of the stack.
    #[command(
        after_help = "Examples:\n  rinfra destroy -s stacks/datacenter.yaml --yes\n  rinfra destroy -s stacks/datacenter.yaml --yes --target stream   # the stream and its alarm"
    )]
    Destroy(DestroyArgs),
    /// Report how the cloud differs from the state, once or on a schedule.
    #[command(
        after_help = "Exit codes: 0 in sync, 2 drift found, 1 error.\n\nExamples:\n  rinfra drift -s stacks/datacenter.yaml\n  rinfra drift -s stacks/datacenter.yaml --json\n  rinfra drift -s stacks/datacenter.yaml --every 15m --on-drift 'notify-team'\n  rinfra drift -s stacks/datacenter.yaml --remediate"
    )]
    Drift(DriftArgs),
    /// Adopt an existing cloud resource as a resource of the stack.
    #[command(
        after_help = "Examples:\n  rinfra import -s stacks/xfusion.yaml stream xfusion-kinesis-stream\n  rinfra import -s stacks/xfusion.yaml alarm  xfusion-kinesis-alarm"
    )]
    Import(ImportArgs),
    /// Print the stack's outputs from the state.
    #[command(
        after_help = "Examples:\n  rinfra output -s stacks/datacenter.yaml\n  rinfra output -s stacks/datacenter.yaml kke_kinesis_stream_name\n  rinfra output -s stacks/datacenter.yaml --json"
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
    #[command(after_help = "Example:\n  rinfra graph -s stacks/datacenter.yaml --plan | dot -Tpng > graph.png")]
    Graph(GraphArgs),
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
