"""adc: an L4/L7 load balancer and application delivery controller."""
__version__ = "0.1.0"
