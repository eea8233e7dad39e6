//! Wake-on-LAN: the magic packet (6 bytes 0xFF, then the MAC 16 times) as a UDP broadcast.
//! Power-on only: it can neither power a host off nor tell whether it is on.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::net::UdpSocket;

use super::{BmcConfig, PowerController, PowerError, PowerState};

pub const DEFAULT_BROADCAST: &str = "255.255.255.255:9";

pub struct WakeOnLan {
    mac: [u8; 6],
    to: SocketAddr,
}

/// Parses `52:54:00:12:34:56` or `52-54-00-12-34-56`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// The 102-byte magic packet for `mac`.
pub fn magic_packet(mac: [u8; 6]) -> [u8; 102] {
    let mut p = [0xFFu8; 102];
    for i in 0..16 {
        p[6 + i * 6..12 + i * 6].copy_from_slice(&mac);
    }
    p
}

impl WakeOnLan {
    pub fn new(cfg: &BmcConfig) -> Result<WakeOnLan, PowerError> {
        let mac = parse_mac(&cfg.address).ok_or_else(|| {
            PowerError::Unsupported(format!(
                "Wake-on-LAN address {:?} is not a MAC address (like 52:54:00:12:34:56)",
                cfg.address
            ))
        })?;
        let b = cfg.broadcast.as_deref().unwrap_or(DEFAULT_BROADCAST);
        let to = b
            .parse()
            .map_err(|e| PowerError::Unsupported(format!("Wake-on-LAN broadcast {b:?} (want IP:port): {e}")))?;
        Ok(WakeOnLan { mac, to })
    }
}

impl PowerController for WakeOnLan {
    fn power_on(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async {
            let bind: SocketAddr = if self.to.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal")
            } else {
                "[::]:0".parse().expect("literal")
            };
            let e = |e: std::io::Error| PowerError::Controller(format!("Wake-on-LAN to {}: {e}", self.to));
            let sock = UdpSocket::bind(bind).await.map_err(e)?;
            sock.set_broadcast(true).map_err(e)?;
            sock.send_to(&magic_packet(self.mac), self.to).await.map_err(e)?;
            Ok(())
        })
    }

    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async {
            Err(PowerError::Unsupported(
                "Wake-on-LAN can only power a host on; configure its BMC (redfish or ipmi) to power it off".into(),
            ))
        })
    }

    fn status(&self) -> BoxFuture<'_, Result<PowerState, PowerError>> {
        Box::pin(async {
            Err(PowerError::Unsupported(
                "Wake-on-LAN cannot read a host's power state".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::BmcKind;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("52:54:00:AB:cd:0f"), Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
        assert_eq!(parse_mac("52-54-00-ab-cd-0f"), Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
        for bad in ["", "52:54:00:ab:cd", "52:54:00:ab:cd:0g", "525:4:00:ab:cd:0f"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert!(WakeOnLan::new(&BmcConfig::new(BmcKind::Wol, "not-a-mac")).is_err());
    }

    /// The packet arrives on a real UDP socket with the exact magic bytes.
    #[tokio::test]
    async fn magic_packet_reaches_a_udp_listener() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = BmcConfig::new(BmcKind::Wol, "52:54:00:12:34:56");
        cfg.broadcast = Some(rx.local_addr().unwrap().to_string());
        let w = WakeOnLan::new(&cfg).unwrap();
        w.power_on().await.unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv_from(&mut buf))
            .await
            .expect("the magic packet arrives")
            .unwrap();
        assert_eq!(n, 102);
        assert_eq!(&buf[..6], &[0xFF; 6]);
        for i in 0..16 {
            assert_eq!(
                &buf[6 + i * 6..12 + i * 6],
                &[0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
                "repeat {i}"
            );
        }
        assert!(matches!(w.power_off().await, Err(PowerError::Unsupported(_))));
        assert!(matches!(w.status().await, Err(PowerError::Unsupported(_))));
    }
}
