"""adcctl: the command line of adc, over the control API of adcd."""
