"""Passive health arithmetic (adc.health.outlier): streaks from counter readings, ejection time, the share bound."""
from __future__ import annotations

from adc.config.schema import OutlierDetection
from adc.health.outlier import MemberOutlier, ejection_time, failures_and_successes, may_eject, poll

OD = OutlierDetection(consecutive_errors=3, base_ejection="10s", max_ejection="25s", max_ejected_percent=50)


def reading(conn=0, req=0, err=0, tmo=0):
    return {"conn_total": conn, "requests": req, "errors": err, "timeouts": tmo}


def test_l7_counts_a_request_when_sent_so_failures_come_off_it():
    assert failures_and_successes(reading(), reading(conn=5, req=5, err=3, tmo=1), l7=True) == (4, 1)


def test_l4_counts_a_connection_only_once_open():
    assert failures_and_successes(reading(), reading(conn=2, err=3), l7=False) == (3, 2)


def test_failures_without_a_success_add_up_to_an_ejection():
    s = MemberOutlier()
    assert not poll(OD, s, reading(), True, 0.0)                       # first reading: the baseline
    assert not poll(OD, s, reading(conn=2, req=2, err=2), True, 0.5)   # streak 2
    assert poll(OD, s, reading(conn=3, req=3, err=3), True, 1.0)       # streak 3: eject


def test_a_success_ends_the_streak():
    s = MemberOutlier()
    poll(OD, s, reading(), True, 0.0)
    poll(OD, s, reading(conn=2, req=2, err=2), True, 0.5)
    assert not poll(OD, s, reading(conn=4, req=4, err=3), True, 1.0)   # one failed, one served
    assert s.streak == 0


def test_ejection_time_grows_with_each_ejection_up_to_the_max():
    assert [ejection_time(OD, n) for n in (1, 2, 3, 4)] == [10.0, 20.0, 25.0, 25.0]


def test_share_bound_allows_at_least_one_but_never_past_the_percent():
    assert may_eject(OD, 2, 0) and not may_eject(OD, 2, 1)
    assert may_eject(OD, 10, 4) and not may_eject(OD, 10, 5)
    assert may_eject(OD, 1, 0)
    assert not may_eject(OutlierDetection(max_ejected_percent=0), 10, 0)


def test_a_clean_member_is_forgiven_one_ejection_after_max_ejection():
    s = MemberOutlier()
    s.ejections, s.clean_since = 2, 100.0
    poll(OD, s, reading(), True, 110.0)
    poll(OD, s, reading(conn=1, req=1), True, 130.0)
    assert s.ejections == 1
