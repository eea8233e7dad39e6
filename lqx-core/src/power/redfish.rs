//! Redfish (DMTF DSP0266): a host's power through its BMC's `ComputerSystem.Reset` action, with
//! the state read from the system's `PowerState`. HTTPS with basic authentication; the BMC's
//! certificate is verified (against the system roots, plus `ca_file` when given) unless the
//! config says `insecure` (lab BMCs with self-signed certificates, or plain `http://`).

use futures::future::BoxFuture;
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{BmcConfig, PowerController, PowerError, PowerState};

pub struct Redfish {
    base: Url,
    client: Client,
    username: Option<String>,
    password: Option<String>,
    /// The configured system (path or id), when given.
    configured_system: Option<String>,
    /// The system's `@odata.id`, found once.
    system: OnceCell<String>,
}

fn err(what: &str, e: impl std::fmt::Display) -> PowerError {
    PowerError::Controller(format!("Redfish {what}: {e}"))
}

/// A request error with its causes (reqwest's own text hides the TLS or connect reason).
fn send_err(what: &str, e: reqwest::Error) -> PowerError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    err(what, msg)
}

impl Redfish {
    pub fn new(cfg: &BmcConfig) -> Result<Redfish, PowerError> {
        let base = Url::parse(cfg.address.trim_end_matches('/'))
            .map_err(|e| PowerError::Unsupported(format!("Redfish address {:?}: {e}", cfg.address)))?;
        match base.scheme() {
            "https" => {}
            "http" if cfg.insecure => {}
            "http" => {
                return Err(PowerError::Unsupported(format!(
                    "Redfish address {} is plain http: the BMC password would cross the network in clear; \
                     use https (or set insecure: true in a lab)",
                    cfg.address
                )));
            }
            s => {
                return Err(PowerError::Unsupported(format!(
                    "Redfish address scheme {s:?}: use https"
                )));
            }
        }
        let mut b = Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                PowerError::Controller(format!("cannot read the Redfish CA file {}: {e}", ca.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| PowerError::Controller(format!("Redfish CA file {}: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        if cfg.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let client = b.build().map_err(|e| err("client", e))?;
        Ok(Redfish {
            base,
            client,
            username: cfg.username.clone(),
            password: cfg.read_password()?,
            configured_system: cfg.system.clone(),
            system: OnceCell::new(),
        })
    }

    fn url(&self, path: &str) -> Result<Url, PowerError> {
        self.base.join(path).map_err(|e| err("path", e))
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.username {
            Some(u) => r.basic_auth(u, self.password.as_deref()),
            None => r,
        }
    }

    async fn get(&self, path: &str) -> Result<Value, PowerError> {
        let url = self.url(path)?;
        let resp = self
            .auth(self.client.get(url.clone()))
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| send_err(&format!("GET {url}"), e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(refused("GET", &url, status, resp.text().await.unwrap_or_default()));
        }
        resp.json().await.map_err(|e| err(&format!("GET {url}"), e))
    }

    /// The system's path: the configured one, or the only member of the Systems collection.
    async fn system(&self) -> Result<&str, PowerError> {
        self.system
            .get_or_try_init(|| async {
                if let Some(s) = &self.configured_system {
                    return Ok(if s.starts_with('/') {
                        s.clone()
                    } else {
                        format!("/redfish/v1/Systems/{s}")
                    });
                }
                let c = self.get("/redfish/v1/Systems").await?;
                let members: Vec<String> = c["Members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|x| x["@odata.id"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                match members.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(err("discovery", "the BMC lists no system under /redfish/v1/Systems")),
                    many => Err(PowerError::Unsupported(format!(
                        "the BMC at {} has {} systems ({}): name one with `system:`",
                        self.base,
                        many.len(),
                        many.join(", ")
                    ))),
                }
            })
            .await
            .map(String::as_str)
    }

    async fn reset(&self, reset_type: &str) -> Result<(), PowerError> {
        let system = self.system().await?.to_string();
        let sys = self.get(&system).await?;
        let action = &sys["Actions"]["#ComputerSystem.Reset"];
        let target = action["target"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", system.trim_end_matches('/')));
        // A BMC lists the reset types it accepts; asking for another one fails with a clear
        // reason instead of a BMC-specific 400.
        if let Some(allowed) = action["ResetType@Redfish.AllowableValues"].as_array()
            && !allowed.iter().any(|v| v.as_str() == Some(reset_type))
        {
            return Err(PowerError::Unsupported(format!(
                "the BMC does not offer ResetType {reset_type} (it offers {})",
                allowed.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
            )));
        }
        let url = self.url(&target)?;
        let resp = self
            .auth(self.client.post(url.clone()))
            .json(&json!({ "ResetType": reset_type }))
            .send()
            .await
            .map_err(|e| send_err(&format!("POST {url}"), e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(refused("POST", &url, status, resp.text().await.unwrap_or_default()));
        }
        Ok(())
    }
}

/// A BMC's refusal, with its Redfish error message when it sent one.
fn refused(method: &str, url: &Url, status: StatusCode, body: String) -> PowerError {
    let msg = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v["error"]["@Message.ExtendedInfo"][0]["Message"]
                .as_str()
                .or_else(|| v["error"]["message"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let hint = if status == StatusCode::UNAUTHORIZED {
        " (check the BMC username and password)"
    } else {
        ""
    };
    PowerError::Controller(format!("Redfish {method} {url}: {status}{hint}: {msg}"))
}

/// Redfish `PowerState` in lqx's terms (`Paused` and anything else: unknown).
pub fn state_of(redfish: &str) -> PowerState {
    match redfish {
        "On" => PowerState::On,
        "Off" => PowerState::Standby,
        "PoweringOn" => PowerState::PoweringOn,
        "PoweringOff" => PowerState::PoweringOff,
        _ => PowerState::Unknown,
    }
}

impl PowerController for Redfish {
    fn power_on(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(self.reset("On"))
    }

    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(self.reset("GracefulShutdown"))
    }

    fn force_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(self.reset("ForceOff"))
    }

    fn status(&self) -> BoxFuture<'_, Result<PowerState, PowerError>> {
        Box::pin(async {
            let system = self.system().await?.to_string();
            let sys = self.get(&system).await?;
            Ok(state_of(sys["PowerState"].as_str().unwrap_or_default()))
        })
    }
}
