"""adc.tls: TLS for VIPs and members: server contexts by SNI, profiles, client identity, certificate checks."""
