//! The `rinfra` command line: it parses arguments, plugs the AWS providers
//! into the engine, runs one command, and renders its result or its error
//! once. Only `output` prints.

mod args;
mod commands;
mod context;
mod error;
mod output;
mod signals;

use clap::Parser;

fn main() {
    std::process::exit(run());
}

/// Sets up logging: `RUST_LOG` when set, else `-v` (debug) and `-vv`
/// (trace) for rinfra's crates and the AWS SDK's retries, to stderr.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbose {
            0 => "warn",
            1 => "warn,rinfra=debug,rinfra_engine=debug,rinfra_resources=debug,aws_smithy_runtime=debug",
            _ => "debug,rinfra_engine=trace,rinfra_resources=trace,aws_smithy_runtime=trace",
        })
    });
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).without_time().try_init();
}

fn run() -> i32 {
    // Exit code 2 means "changes present", so usage errors exit 1 rather
    // than clap's 2.
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { commands::EXIT_ERROR } else { commands::EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    init_logging(cli.global.verbose);
    let color_err = output::use_color(cli.global.color, false);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            output::render_error(color_err, &error::CliError::Runtime(e));
            return commands::EXIT_ERROR;
        }
    };
    runtime.block_on(async {
        signals::install(color_err);
        match commands::run(cli).await {
            Ok(code) => code,
            Err(e) => {
                output::render_error(color_err, &e);
                commands::EXIT_ERROR
            }
        }
    })
}
