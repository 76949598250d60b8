//! Outgoing email: one small API (`Mailer::send(&Mail)`) over two deliveries. With SMTP
//! configured, mail goes through lettre's async SMTP transport (rustls); otherwise each message is
//! written to an outbox folder as an `.eml` file (the embedded default, so the demo shows its mail
//! without a mail server). Used by the weekly digest, A/B test result emails and account mail
//! (sign-up verification, password reset).
//!
//! A `Mail` carries a stable `key` (e.g. `digest-7-2026-W03`): the outbox file is named by it, so
//! writing the same mail twice leaves one file. SMTP has no such guard; callers record what they
//! sent (the digest job keeps a `digests_sent` row per user and week).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How an SMTP server is reached.
#[derive(Clone, PartialEq, Eq)]
pub enum SmtpServer {
    /// A lettre connection URL: `smtp://host:587?tls=required`, `smtps://host:465`,
    /// `smtp://host:25` (plain, for a local relay or a test sink). May carry credentials.
    Url(String),
    /// Host and port with the TLS mode spelled out.
    Host { host: String, port: u16, tls: SmtpTls },
}

/// TLS on an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// No TLS at all: only for a relay on the same machine or network.
    None,
    /// STARTTLS required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// An SMTP server and optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub server: SmtpServer,
    pub username: Option<String>,
    pub password: Option<String>,
}

// Credentials (also inside a URL) never reach logs.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match &self.server {
            SmtpServer::Url(_) => "[url redacted]".to_owned(),
            SmtpServer::Host { host, port, tls } => format!("{host}:{port} ({tls:?})"),
        };
        f.debug_struct("SmtpConfig")
            .field("server", &server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url([redacted])"),
            Self::Host { host, port, tls } => write!(f, "Host({host}:{port}, {tls:?})"),
        }
    }
}

/// Where mail goes and who it is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `Name <address>` or a bare address.
    pub from: String,
    /// `None`: mail is written to `outbox_dir`.
    pub smtp: Option<SmtpConfig>,
    pub outbox_dir: PathBuf,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "tubewatch <tubewatch@localhost>".into(),
            smtp: None,
            outbox_dir: PathBuf::from("./tubewatch-data/outbox"),
        }
    }
}

/// A picture shown inside the HTML body, referenced there as `cid:{content_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    pub content_id: String,
    /// e.g. `image/jpeg`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One email, in both plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Stable name of this message (letters, digits, `-`, `_`, `.`): the outbox file name.
    pub key: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub images: Vec<InlineImage>,
    /// Sent as `List-Unsubscribe` so mail clients offer a one-click way out.
    pub unsubscribe_url: Option<String>,
}

/// Where a mail went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Smtp,
    Outbox(PathBuf),
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Sends `Mail`s. Cheap to clone (the SMTP transport keeps a shared connection pool).
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
        };
        f.debug_struct("Mailer").field("from", &self.from.to_string()).field("transport", &transport).finish()
    }
}

impl Mailer {
    /// Builds the mailer; no connection is made until the first `send`.
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config.from.parse().with_context(|| format!("mail from address {:?}", config.from))?;
        let transport = match &config.smtp {
            None => Transport::Outbox(config.outbox_dir.clone()),
            Some(smtp) => Transport::Smtp(smtp_transport(smtp)?),
        };
        Ok(Self { from, transport })
    }

    /// The embedded default: `MailConfig::default()`, an outbox folder.
    pub fn default_outbox() -> Self {
        let config = MailConfig::default();
        // The default address is a constant that parses; the fallback only keeps this infallible.
        let from = config
            .from
            .parse()
            .unwrap_or_else(|_| Mailbox::new(None, lettre::Address::new_dangerous("tubewatch", "localhost")));
        Self { from, transport: Transport::Outbox(config.outbox_dir) }
    }

    /// A mailer writing to `dir` (tests, demo).
    pub fn outbox(from: &str, dir: &Path) -> anyhow::Result<Self> {
        Self::new(&MailConfig { from: from.to_owned(), smtp: None, outbox_dir: dir.to_path_buf() })
    }

    /// Whether mail leaves the machine (SMTP) or stays in the outbox folder.
    pub fn delivery_kind(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    /// Builds the MIME message: `multipart/alternative` of the text and a `multipart/related`
    /// HTML part carrying the inline images.
    pub fn message(&self, mail: &Mail) -> anyhow::Result<Message> {
        let to: Mailbox = mail.to.parse().with_context(|| format!("mail recipient {:?}", mail.to))?;
        let mut builder = Message::builder().from(self.from.clone()).to(to).subject(mail.subject.clone());
        if let Some(url) = &mail.unsubscribe_url {
            // RFC 8058 one-click: the mail client POSTs `List-Unsubscribe=One-Click` to the URL.
            builder = builder
                .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let mut related = MultiPart::related().singlepart(SinglePart::html(mail.html.clone()));
        for image in &mail.images {
            let content_type = ContentType::parse(&image.content_type)
                .with_context(|| format!("content type {:?} of inline image", image.content_type))?;
            related = related
                .singlepart(Attachment::new_inline(image.content_id.clone()).body(image.bytes.clone(), content_type));
        }
        let body = MultiPart::alternative().singlepart(SinglePart::plain(mail.text.clone())).multipart(related);
        builder.multipart(body).context("building the mail message")
    }

    /// Sends one mail: over SMTP, or as `{outbox}/{key}.eml` (written whole, then renamed, so a
    /// reader never sees half a file).
    pub async fn send(&self, mail: &Mail) -> anyhow::Result<Delivery> {
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.with_context(|| format!("sending mail {} over SMTP", mail.key))?;
                Ok(Delivery::Smtp)
            }
            Transport::Outbox(dir) => {
                anyhow::ensure!(
                    !mail.key.is_empty()
                        && mail.key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        && !mail.key.starts_with('.'),
                    "mail key {:?} is not a plain file name",
                    mail.key
                );
                tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating outbox {}", dir.display()))?;
                let path = dir.join(format!("{}.eml", mail.key));
                let partial = dir.join(format!(".{}.eml.partial", mail.key));
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .with_context(|| format!("writing {}", partial.display()))?;
                tokio::fs::rename(&partial, &path).await.with_context(|| format!("writing {}", path.display()))?;
                Ok(Delivery::Outbox(path))
            }
        }
    }
}

fn smtp_transport(config: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut builder = match &config.server {
        SmtpServer::Url(url) => {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).context("SMTP URL (smtp:// or smtps://)")?
        }
        SmtpServer::Host { host, port, tls } => {
            let builder = match tls {
                SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()),
                SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                    .with_context(|| format!("SMTP host {host:?}"))?,
                SmtpTls::Implicit => {
                    AsyncSmtpTransport::<Tokio1Executor>::relay(host).with_context(|| format!("SMTP host {host:?}"))?
                }
            };
            builder.port(*port)
        }
    };
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mail(key: &str) -> Mail {
        Mail {
            key: key.into(),
            to: "ada@example.com".into(),
            subject: "Your week: 2 outliers".into(),
            text: "Plain body".into(),
            html: "<p>HTML body <img src=\"cid:thumb-1\"></p>".into(),
            images: vec![InlineImage {
                content_id: "thumb-1".into(),
                content_type: "image/jpeg".into(),
                bytes: vec![0xff, 0xd8, 0xff, 0xd9],
            }],
            unsubscribe_url: Some("http://127.0.0.1:8080/unsubscribe?token=abc".into()),
        }
    }

    #[tokio::test]
    async fn outbox_writes_one_eml_per_key_with_both_bodies_and_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox("tubewatch <digest@tubewatch.test>", dir.path()).unwrap();
        assert_eq!(mailer.delivery_kind(), "outbox");
        let delivery = mailer.send(&mail("digest-1-2026-W03")).await.unwrap();
        let path = dir.path().join("digest-1-2026-W03.eml");
        assert_eq!(delivery, Delivery::Outbox(path.clone()));
        // Sending the same key again keeps one file.
        mailer.send(&mail("digest-1-2026-W03")).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(&path).unwrap();
        for needle in [
            "From: tubewatch <digest@tubewatch.test>",
            "To: ada@example.com",
            "Subject: Your week: 2 outliers",
            "List-Unsubscribe: <http://127.0.0.1:8080/unsubscribe?token=abc>",
            "multipart/alternative",
            "multipart/related",
            "text/plain",
            "text/html",
            "Content-ID: <thumb-1>",
            "image/jpeg",
        ] {
            assert!(eml.contains(needle), "missing {needle:?} in\n{eml}");
        }
    }

    #[tokio::test]
    async fn bad_keys_and_addresses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox("digest@tubewatch.test", dir.path()).unwrap();
        assert!(mailer.send(&mail("../escape")).await.is_err());
        assert!(mailer.send(&Mail { to: "not an address".into(), ..mail("ok") }).await.is_err());
        assert!(Mailer::outbox("nobody", dir.path()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn smtp_secrets_stay_out_of_debug() {
        let config = SmtpConfig {
            server: SmtpServer::Url("smtps://u:hunter2@mail.example.com".into()),
            username: Some("u".into()),
            password: Some("pw-secret".into()),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("pw-secret"), "{debug}");
    }
}
