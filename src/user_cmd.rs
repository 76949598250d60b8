//! `tubewatch user`: accounts from the command line — create a user (an admin, for a start) and
//! change a user's plan when Stripe is not configured. Passwords are read from standard input,
//! never from a flag (flags show in process lists and shell history).

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;
use tubewatch_core::Email;
use tubewatch_store::{NewUser, Plan, StoreError};
use tubewatch_web::auth::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, hash_password_blocking};

use crate::app::App;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Add {
        email: String,
        /// Make the user an administrator (no plan limits).
        #[arg(long)]
        admin: bool,
        #[arg(long, value_parser = parse_plan, default_value = "free")]
        plan: Plan,
        /// Read the password from standard input even when it is a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's plan (free or premium); recorded in the audit log.
    Plan {
        email: String,
        #[arg(value_parser = parse_plan)]
        plan: Plan,
    },
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse()
}

fn read_password(force_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() && !force_stdin {
        bail!(
            "pipe the password on standard input, e.g. `printf %s \"$PW\" | tubewatch user add EMAIL --password-stdin`"
        );
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        bail!("the password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters");
    }
    Ok(password)
}

pub async fn run(cmd: UserCommand, app: &App) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { email, admin, plan, password_stdin } => {
            let email = Email::parse(&email).with_context(|| format!("{email:?} is not an email address"))?;
            let password = read_password(password_stdin)?;
            let password_hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password))
                .await?
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
            let new = NewUser { email: email.clone(), password_hash, plan, is_admin: admin, email_verified: true };
            let user = match app.service().create_user(&new).await {
                Err(StoreError::Conflict(_)) => bail!("a user with email {email} exists already"),
                other => other.context("creating the user")?,
            };
            let role = if admin { "administrator" } else { "user" };
            println!("created {role} {} (id {}) on the {} plan", user.email, user.id, user.plan.as_str());
        }
        UserCommand::Plan { email, plan } => {
            let parsed = Email::parse(&email).with_context(|| format!("{email:?} is not an email address"))?;
            let service = app.service();
            let user = service.user_by_email(&parsed).await?.with_context(|| format!("no user with email {email}"))?;
            service.change_plan(user.id, plan, None, "tubewatch user plan").await?;
            println!("{} is now on the {} plan (was {})", user.email, plan.as_str(), user.plan.as_str());
        }
    }
    Ok(())
}
