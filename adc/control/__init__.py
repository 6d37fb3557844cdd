"""adc.control: the supervisor: workers, listening sockets, transactional apply, the API and stats."""
