use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use aries_image::config::Settings;
use aries_image::http::auth::token_digest_hex;
use aries_image::openapi::document_json;
use aries_image::startup::Application;

/// The aries image service: serves DescribeImage over HTTP.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Settings file layered over the defaults; environment variables
    /// ARIES__SECTION__KEY override both.
    #[arg(long, global = true, env = "ARIES_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the service (the default).
    Serve,
    /// Read a token from standard input and print its SHA-256 digest, the
    /// form auth.token_sha256 takes.
    HashToken,
    /// Print the OpenAPI document.
    Openapi,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config),
        Command::HashToken => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("failed to read the token from standard input")?;
            let token = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!token.is_empty(), "no token on standard input");
            println!("{}", token_digest_hex(token));
            Ok(())
        }
        Command::Openapi => {
            print!("{}", document_json());
            Ok(())
        }
    }
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref()).context("invalid settings")?;
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(&settings.log.level),
    )
    .init();
    actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings).await?;
        application.run_until_stopped().await?;
        log::info!("server stopped");
        Ok(())
    })
}
