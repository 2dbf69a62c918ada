"""The resource monitor lowers concurrency at once and raises it only after calm readings."""

from jobs.engines.resources import Governor, Reading, Thresholds, read

LIMITS = Thresholds(load_per_core=2.0, memory_percent=90, iowait_percent=50)
CALM = Reading(0.5, 40, 5)


def test_it_lowers_by_one_per_reading_over_a_threshold_and_names_it():
    governor = Governor(LIMITS, ceiling=4)
    decision = governor.decide(Reading(3.0, 40, 5))
    assert decision.allowed == 3 and "load 3.0 per core is above 2" in decision.reason
    assert governor.decide(Reading(0.5, 95, 5)).reason.startswith("memory use 95%")
    assert governor.decide(Reading(0.5, 40, 70)).reason.startswith("IO wait 70%")
    assert governor.decide(Reading(3.0, 95, 70)) .allowed == 1
    assert governor.decide(Reading(3.0, 95, 70)).reason == ""  # never below one


def test_it_raises_again_only_after_three_calm_readings_and_not_past_the_ceiling():
    governor = Governor(LIMITS, ceiling=2)
    governor.decide(Reading(3.0, 40, 5))
    assert [governor.decide(CALM).allowed for _ in range(3)] == [1, 1, 2]
    assert all(governor.decide(CALM).allowed == 2 for _ in range(6))


def test_a_reading_between_calm_and_over_holds_steady():
    governor = Governor(LIMITS, ceiling=3)
    governor.decide(Reading(3.0, 40, 5))
    for _ in range(5):
        assert governor.decide(Reading(1.9, 40, 5)).allowed == 2


def test_readings_come_from_this_box():
    reading, times = read()
    reading, _ = read(times)
    assert reading.load_per_core >= 0 and 0 < reading.memory_percent <= 100
    assert 0 <= reading.iowait_percent <= 100
