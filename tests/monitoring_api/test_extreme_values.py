"""Values the store accepts never make a report or a history point fail: a column whose
numbers overflow Evidently's histograms (1.7e308 beside -1.7e308, numpy#8627) is left
out with the reason, and the rest is measured (issue #10, found by trying the platform
with inputs from the libraries' bug reports)."""

from __future__ import annotations

import pytest

from tests.monitoring_api.conftest import DEMO, sampled

EXTREMES = {
    "overflowing range": [1.7e308, -1.7e308],
    "huge and tiny": [1.7e308, 0.0, 1.0],
    "constant at 2**53": [float(2**53)],
}


@pytest.mark.parametrize("values", EXTREMES.values(), ids=EXTREMES.keys())
def test_extreme_numbers_leave_their_column_out_not_the_report(client, stage, values):
    # Given a window in which one feature holds extreme (finite) numbers
    use_case = stage.use_case("extreme")
    readings = sampled(DEMO).iloc[:120].copy()
    for i, value in enumerate(values * (len(readings) // len(values))):
        readings.iloc[i, readings.columns.get_loc("T_data_1_1")] = value
    stage.produce(use_case, readings)

    base = f"/monitoring_api/use_cases/{use_case.name}"
    drift = client.get(f"{base}/reports/data_drift", params={"last": 120})
    quality = client.get(f"{base}/reports/data_quality", params={"last": 120})
    # (the HTML page is drawn from the same measures: asked once, of the overflowing range)
    pages = []
    if values == EXTREMES["overflowing range"]:
        html = {"last": 120, "format": "html"}
        pages.append(client.get(f"{base}/reports/data_drift", params=html))

    # Then every report answers, and says which column it could not measure, if any
    for response in (drift, quality, *pages):
        assert response.status_code == 200, response.text[:500]
    measured = drift.json()["metrics"]
    assert "T_data_1_2" in measured["features"]
    assert "T_data_1_1" in measured["features"] or "T_data_1_1" in measured["unmeasured"], measured
