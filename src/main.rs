//! The `release-oci` binary: parse, dispatch, print errors with their whole chain.

use clap::Parser;
use release_oci::cli::{Cli, Command};
use release_oci::{commands, ui};
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    ui::set_quiet(cli.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(std::io::stderr(), "  caused by: {cause}");
            }
            exit_code(&err)
        }
    }
}

/// Writes a result to stdout. A reader that went away (`release-oci inspect ... | head`) is not
/// an error of ours: the rest is dropped instead of panicking as `print!` does.
fn out(text: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_ref().as_bytes()).and_then(|()| stdout.flush());
}

/// 130/143 when SIGINT/SIGTERM stopped the build (as a shell reports it; see
/// [`release_oci::cancel`]), 1 for every other error.
fn exit_code(err: &anyhow::Error) -> ExitCode {
    let signal = err.chain().find_map(|e| {
        if let Some(i) = e.downcast_ref::<release_oci::cancel::Interrupted>() {
            return Some(i.signal);
        }
        match e.downcast_ref::<release_oci::builder::BuilderError>() {
            Some(release_oci::builder::BuilderError::Interrupted { signal, .. }) => Some(*signal),
            _ => None,
        }
    });
    signal.map_or(ExitCode::FAILURE, |s| ExitCode::from(s.exit_code()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => {
            let settings = args.validate()?;
            // With --push, stdout names the pushed image: REPOSITORY@DIGEST.
            let pushed = settings.push.as_ref().map(|p| p.reference.repository_ref());
            let plan = commands::build::BuildPlan::new(settings)?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(rt.block_on(plan.run())?.stdout(pushed.as_deref()));
        }
        Command::Inspect(args) => out(commands::inspect::run(&args)?),
        Command::K8s(args) => out(commands::k8s::run(*args)?),
        Command::Resolve(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(rt.block_on(commands::resolve::run(args))?);
        }
        Command::Cache(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(rt.block_on(commands::cache::run(&args))?);
        }
        Command::Builder(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(rt.block_on(commands::builder::run(&args))?);
        }
        Command::Verify(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(rt.block_on(commands::verify::run(*args))?);
        }
        Command::Push(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(format!("{}\n", rt.block_on(commands::push::run(*args))?));
        }
        Command::Upgrade(args) => {
            let settings = args.validate()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            out(format!("{}\n", rt.block_on(commands::upgrade::run(settings))?));
        }
    }
    Ok(())
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("release_oci={level}")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).without_time().init();
}
