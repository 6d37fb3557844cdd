"""adc.l4: TCP and UDP forwarding of tcp and udp VIPs in the worker loop."""
