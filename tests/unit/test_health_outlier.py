"""Passive health arithmetic (adc.health.outlier): streaks from counter readings, ejection time, the share bound."""
from __future__ import annotations

from adc.config.schema import OutlierDetection
from adc.health.outlier import (ERRORS, RESP_5XX, MemberOutlier, ejection_time, failures_and_successes, may_eject,
                                poll)

OD = OutlierDetection(consecutive_errors=3, consecutive_5xx=None, base_ejection="10s", max_ejection="25s",
                      max_ejected_percent=50)
OD5 = OutlierDetection(consecutive_errors=3, consecutive_5xx=4, base_ejection="10s", max_ejection="25s")


def reading(conn=0, req=0, err=0, tmo=0, r5=0):
    return {"conn_total": conn, "requests": req, "errors": err, "timeouts": tmo, "resp_5xx": r5}


def test_l7_counts_a_request_when_sent_so_failures_come_off_it():
    assert failures_and_successes(reading(), reading(conn=5, req=5, err=3, tmo=1), l7=True) == (4, 1)


def test_l4_counts_a_connection_only_once_open():
    assert failures_and_successes(reading(), reading(conn=2, err=3), l7=False) == (3, 2)


def test_failures_without_a_success_add_up_to_an_ejection():
    s = MemberOutlier()
    assert poll(OD, s, reading(), True, 0.0) is None                       # first reading: the baseline
    assert poll(OD, s, reading(conn=2, req=2, err=2), True, 0.5) is None   # streak 2
    assert poll(OD, s, reading(conn=3, req=3, err=3), True, 1.0) == ERRORS  # streak 3: eject


def test_a_success_ends_the_streak():
    s = MemberOutlier()
    poll(OD, s, reading(), True, 0.0)
    poll(OD, s, reading(conn=2, req=2, err=2), True, 0.5)
    assert poll(OD, s, reading(conn=4, req=4, err=3), True, 1.0) is None   # one failed, one served
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


def test_a_5xx_answer_is_a_failure_for_consecutive_5xx_only():
    # 3 requests: one refused, two answered 500, none retried
    assert failures_and_successes(reading(), reading(conn=3, req=3, err=1, r5=2), l7=True) == (1, 2)
    assert failures_and_successes(reading(), reading(conn=3, req=3, err=1, r5=2), l7=True, with_5xx=True) == (3, 0)


def test_a_retried_5xx_counted_in_errors_too_is_not_counted_twice():
    # 4 requests answered 503 and retried elsewhere: errors 4 and resp_5xx 4 for the same 4 answers
    r = reading(conn=4, req=4, err=4, r5=4)
    assert failures_and_successes(reading(), r, l7=True, with_5xx=True, retries_5xx=True) == (4, 0)
    # without a VIP that retries statuses, errors and 5xx are different requests: they add up
    r = reading(conn=4, req=4, err=1, r5=3)
    assert failures_and_successes(reading(), r, l7=True, with_5xx=True, retries_5xx=False) == (4, 0)


def test_5xx_answers_in_a_row_eject_at_consecutive_5xx():
    s = MemberOutlier()
    poll(OD5, s, reading(), True, 0.0)
    assert poll(OD5, s, reading(conn=3, req=3, r5=3), True, 0.5) is None   # streak_5xx 3; errors streak 0
    assert s.streak == 0 and s.streak_5xx == 3
    assert poll(OD5, s, reading(conn=5, req=5, r5=5), True, 1.0) == RESP_5XX


def test_a_good_answer_ends_the_5xx_streak_and_5xx_can_be_switched_off():
    s = MemberOutlier()
    poll(OD5, s, reading(), True, 0.0)
    poll(OD5, s, reading(conn=3, req=3, r5=3), True, 0.5)
    assert poll(OD5, s, reading(conn=6, req=6, r5=5), True, 1.0) is None   # two 500s and one 200
    assert s.streak_5xx == 0
    off = MemberOutlier()
    poll(OD, off, reading(), True, 0.0)
    assert poll(OD, off, reading(conn=50, req=50, r5=50), True, 0.5) is None   # consecutive_5xx: null


def test_connect_failures_count_toward_consecutive_5xx_as_well():
    s = MemberOutlier()
    od = OD5.model_copy(update={"consecutive_errors": 100})
    poll(od, s, reading(), True, 0.0)
    assert poll(od, s, reading(conn=2, req=2, err=2, r5=0), True, 0.5) is None
    assert poll(od, s, reading(conn=4, req=4, err=2, r5=2), True, 1.0) == RESP_5XX   # 2 refused + 2 answered 502


def test_l4_has_no_5xx_streak():
    s = MemberOutlier()
    poll(OD5, s, reading(), False, 0.0)
    assert poll(OD5, s, reading(conn=0, err=2), False, 0.5) is None
    assert s.streak == 2 and s.streak_5xx == 0


def test_5xx_is_on_by_default_like_envoy():
    assert OutlierDetection().consecutive_5xx == 5
