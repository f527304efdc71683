//! The `rinfra` command line. It parses arguments, calls the engine's
//! operations, and is the only place that prints.

mod cli;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
