"""adc.fields: the counter fields of a slot as plain ints, for the Python data paths.

The layout is defined once, in adc._fastpath.counters (Field); a plain int
module constant is what a hot Python path should index with.
"""
from adc._fastpath.counters import Field

CONN_TOTAL = int(Field.CONN_TOTAL)
CONN_ACTIVE = int(Field.CONN_ACTIVE)
BYTES_IN = int(Field.BYTES_IN)
BYTES_OUT = int(Field.BYTES_OUT)
REQUESTS = int(Field.REQUESTS)
ERRORS = int(Field.ERRORS)
REFUSED = int(Field.REFUSED)
TIMEOUTS = int(Field.TIMEOUTS)
RESP_5XX = int(Field.RESP_5XX)
TLS_HANDSHAKES = int(Field.TLS_HANDSHAKES)
TLS_RESUMED = int(Field.TLS_RESUMED)
TLS_FAILURES = int(Field.TLS_FAILURES)
