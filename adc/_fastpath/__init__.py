"""adc._fastpath: the Cython data path: counters, TCP splicing, UDP flows, schedulers."""
