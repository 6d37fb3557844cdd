"""adc.l7: the HTTP/1.1 proxy of http and https VIPs."""
